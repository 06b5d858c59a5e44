package audit

import scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"

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

// RequestInfo describes one SCIM request for attribution. It travels in the same write
// as the spec change, so the request's audit entry (Action, Changes) survives a crash
// between that write and the history append: the reconciler restores a missing entry.
type RequestInfo struct {
	RequestID string               `json:"requestId,omitempty"`
	UserAgent string               `json:"userAgent,omitempty"`
	Tenant    string               `json:"tenant,omitempty"`
	Time      string               `json:"time,omitempty"`
	Action    string               `json:"action,omitempty"`
	Changes   []scimv1.FieldChange `json:"changes,omitempty"`
}
