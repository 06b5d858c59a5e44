package audit

import (
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SCIMFieldManager is the field manager the SCIM server writes StackUsers with. The
// reconciler reads metadata.managedFields to tell an identity provider's change (this
// manager) from a GitOps edit (any other manager) when it attributes a spec change.
const SCIMFieldManager = "stack-scim-operator-scim"

// ControllerFieldManager is the field manager of the reconcilers.
const ControllerFieldManager = "stack-scim-operator"

// AnnotationLastSCIMRequest holds a JSON RequestInfo describing the SCIM request that last
// wrote the StackUser's spec (no secrets), so site-side audit entries can name it.
const AnnotationLastSCIMRequest = "scim.stackscim.io/last-scim-request"

// AnnotationLastModified holds the RFC 3339 time of the last SCIM-visible change of the
// resource (SCIM meta.lastModified).
const AnnotationLastModified = "scim.stackscim.io/last-modified"

// RequestInfo describes one SCIM request for attribution: the reconciler names it as the
// actor of the site changes that follow from the spec change it made.
type RequestInfo struct {
	RequestID string `json:"requestId,omitempty"`
	UserAgent string `json:"userAgent,omitempty"`
	Tenant    string `json:"tenant,omitempty"`
	Time      string `json:"time,omitempty"`
	// Generation is the StackUser's metadata.generation after the request's spec change:
	// a higher generation means someone else changed the spec since.
	Generation int64 `json:"generation,omitempty"`
}

// SetLastRequest records info on u (AnnotationLastSCIMRequest): the one encoder of it.
func SetLastRequest(u metav1.Object, info RequestInfo) {
	raw, err := json.Marshal(info)
	if err != nil {
		return // a struct of strings and an int always encodes
	}
	a := u.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[AnnotationLastSCIMRequest] = string(raw)
	u.SetAnnotations(a)
}

// LastRequest reads the RequestInfo recorded on u; ok is false when there is none (or it
// cannot be read).
func LastRequest(u metav1.Object) (info RequestInfo, ok bool) {
	raw := u.GetAnnotations()[AnnotationLastSCIMRequest]
	if raw == "" {
		return RequestInfo{}, false
	}
	return info, json.Unmarshal([]byte(raw), &info) == nil
}

// Audit actions: the one set the SCIM server and the reconcilers record entries with.
const (
	// ActionCreate: a user was created (SCIM POST, or on the site).
	ActionCreate = "Create"
	// ActionReplace: a SCIM PUT replaced a user.
	ActionReplace = "Replace"
	// ActionPatch: a SCIM PATCH changed a user.
	ActionPatch = "Patch"
	// ActionLink: a StackUser was linked to (or unlinked from) a site user.
	ActionLink = "Link"
	// ActionDeactivate and ActionReactivate: the site user's activation changed.
	ActionDeactivate = "Deactivate"
	ActionReactivate = "Reactivate"
	// ActionRoleChange: the site user's role changed (or was blocked).
	ActionRoleChange = "RoleChange"
	// ActionUpdate: profile fields changed on the site.
	ActionUpdate = "Update"
	// ActionDelete: a user was deleted (SCIM DELETE, or on the site).
	ActionDelete = "Delete"
	// ActionDrift: a change made by hand on the site was found.
	ActionDrift = "Drift"
	// ActionGroupJoin and ActionGroupLeave: a SCIM group request changed the user's
	// membership (recorded on the member's history).
	ActionGroupJoin  = "GroupJoin"
	ActionGroupLeave = "GroupLeave"
)
