package audit

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
