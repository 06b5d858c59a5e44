package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DriftPolicy says what the operator does when a user was changed by hand on the site.
// +kubebuilder:validation:Enum=Enforce;Report
type DriftPolicy string

const (
	// DriftEnforce puts the site back to the desired state.
	DriftEnforce DriftPolicy = "Enforce"
	// DriftReport records the drift (condition and audit entry) and leaves the site alone.
	DriftReport DriftPolicy = "Report"
)

// DeletionPolicy says what happens on the site when a StackUser is deleted.
// +kubebuilder:validation:Enum=Deactivate;Delete
type DeletionPolicy string

const (
	// DeletionDeactivate deactivates the site user; content and history stay.
	DeletionDeactivate DeletionPolicy = "Deactivate"
	// DeletionDelete permanently deletes the site user (demoting it to Registered first).
	// The site must have deletion enabled by the vendor; it cannot be undone.
	DeletionDelete DeletionPolicy = "Delete"
)

// BearerTokenSecretReference names the Secret that holds the bearer token identity
// providers must present, with an optional second key for rotation.
type BearerTokenSecretReference struct {
	// name of the Secret in the ScimSettings' namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// key within the Secret that holds the current token.
	// +optional
	// +kubebuilder:default=token
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key,omitempty"`

	// nextKey is an optional second key whose token is accepted too, so that a token can be
	// rotated without downtime: put the new token under nextKey, update the identity
	// provider, then move it to key.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	NextKey string `json:"nextKey,omitempty"`
}

// SiteSpec says how to reach the downstream Stack Internal Enterprise site's SCIM API.
type SiteSpec struct {
	// url is the site's SCIM base URL, e.g. https://stack.example.com/api/scim/v2.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('https://') || self.startsWith('http://')",message="url must be an http:// or https:// URL"
	URL string `json:"url"`

	// tokenSecretRef names the Secret key holding the token typed into the site's SCIM
	// settings page.
	// +required
	TokenSecretRef SecretKeyReference `json:"tokenSecretRef"`

	// timeout bounds each request to the site: a Go duration such as 30s or 2m (units
	// ns, us, ms, s, m, h; no days), from 100ms to 10m.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('100ms') && duration(self) <= duration('10m')",message="timeout must be between 100ms and 10m"
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// requestsPerSecond caps the steady request rate to the site for this tenant. The
	// default, 25 with a burst of 50, is the site's documented REST API limit (bursts of 50
	// requests per 2 s); a 429 from the site is honoured (Retry-After) on top of it.
	// +optional
	// +kubebuilder:default=25
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	RequestsPerSecond int32 `json:"requestsPerSecond,omitempty"`

	// burst is how many requests may go to the site at once above the steady rate.
	// +optional
	// +kubebuilder:default=50
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Burst int32 `json:"burst,omitempty"`

	// createUsers lets the operator create users on the site (POST). Older site versions
	// cannot: their accounts appear at first SAML sign-in, and the operator links them then.
	// +optional
	// +kubebuilder:default=true
	CreateUsers *bool `json:"createUsers,omitempty"`

	// DecodeProblems lists fields that could not be decoded (see UnmarshalJSON); never
	// serialized.
	DecodeProblems []string `json:"-"`
}

// GroupRole gives the members of one SCIM group a site role.
type GroupRole struct {
	// group is the displayName of the SCIM group (a StackGroup of the tenant).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Group string `json:"group"`
	// role the group's members get on the site (unless another mapped group or their own
	// role attribute gives a higher one).
	// +required
	Role Role `json:"role"`
}

// ScimSettingsSpec is what a site admin sets on the site's SCIM settings page, plus how
// the operator reaches the site and how it enforces users there.
type ScimSettingsSpec struct {
	// enabled switches the SCIM tenant on or off. While off, SCIM requests are answered
	// with an error and nothing is written.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// bearerTokenSecretRef names the Secret holding the token identity providers send as
	// `Authorization: Bearer <token>`.
	// +required
	BearerTokenSecretRef BearerTokenSecretReference `json:"bearerTokenSecretRef"`

	// allowModeratorPromotion allows role changes between Registered and Moderator
	// ("Allow Moderator Promotion via a userType property").
	// +optional
	AllowModeratorPromotion bool `json:"allowModeratorPromotion,omitempty"`

	// allowAdminPromotion allows role changes between Registered and Admin
	// ("Allow Admin Promotion via a userType property").
	// +optional
	AllowAdminPromotion bool `json:"allowAdminPromotion,omitempty"`

	// site says how to reach the downstream site's SCIM API.
	// +required
	Site SiteSpec `json:"site"`

	// basePath is the tenant's SCIM base path on the operator's SCIM server. Defaults to
	// /scim/v2/<namespace>/<name>.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^(/[A-Za-z0-9.~-]+)+$`
	BasePath string `json:"basePath,omitempty"`

	// roleAttributeSchemas lists the extension schema URNs under which a `stackUserType`
	// attribute counts as the role. Empty means any extension (and the top level) counts.
	// Core `userType` always counts.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	RoleAttributeSchemas []string `json:"roleAttributeSchemas,omitempty"`

	// driftPolicy says what to do when a user was changed by hand on the site.
	// +optional
	// +kubebuilder:default=Enforce
	DriftPolicy DriftPolicy `json:"driftPolicy,omitempty"`

	// resyncPeriod is how often the site's users are read back to detect drift: a Go
	// duration such as 10m or 24h (units ns, us, ms, s, m, h; no days), at least 1s.
	// +optional
	// +kubebuilder:default="10m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="resyncPeriod must be at least 1s"
	ResyncPeriod *metav1.Duration `json:"resyncPeriod,omitempty"`

	// deletionPolicy says what happens on the site when a StackUser is deleted.
	// +optional
	// +kubebuilder:default=Deactivate
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// groupRoles maps SCIM groups (by displayName, compared case-insensitively) to site
	// roles. When set, a user's role is the highest of its own role attribute and the
	// roles of the mapped groups it belongs to, and Registered when it has neither: the
	// tenant then manages every user's role. The promotion switches apply as for the
	// role attribute.
	// +optional
	// +listType=map
	// +listMapKey=group
	// +kubebuilder:validation:MaxItems=64
	GroupRoles []GroupRole `json:"groupRoles,omitempty"`

	// mode is Enforce (the default: the site is brought in line) or Observe (nothing is
	// written to the site; each StackUser shows what Enforce would change).
	// +optional
	// +kubebuilder:default=Enforce
	Mode Mode `json:"mode,omitempty"`

	// safety holds the brake on mass deactivation.
	// +optional
	Safety *SafetySpec `json:"safety,omitempty"`

	// historyLimit bounds the audit entries kept in each StackUser's status.
	// +optional
	// +kubebuilder:default=20
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=200
	HistoryLimit int32 `json:"historyLimit,omitempty"`

	// DecodeProblems lists fields that could not be decoded (see UnmarshalJSON); never
	// serialized.
	DecodeProblems []string `json:"-"`
}

// UserCounts counts a tenant's StackUsers. The ScimSettings reconciler writes every count
// but siteOnly, which the resync writes: one writer per field, so neither overwrites nor
// conflicts with the other.
type UserCounts struct {
	// total is the number of StackUsers of the tenant.
	// +optional
	Total int32 `json:"total"`
	// active is the number of active StackUsers.
	// +optional
	Active int32 `json:"active"`
	// registered is the number of StackUsers whose role is Registered.
	// +optional
	Registered int32 `json:"registered,omitempty"`
	// moderators is the number of StackUsers whose role is Moderator.
	// +optional
	Moderators int32 `json:"moderators,omitempty"`
	// admins is the number of StackUsers whose role is Admin.
	// +optional
	Admins int32 `json:"admins,omitempty"`
	// unmanagedRole is the number of StackUsers whose role the IdP does not manage.
	// +optional
	UnmanagedRole int32 `json:"unmanagedRole,omitempty"`
	// siteOnly is the number of users found on the site that no StackUser describes; the
	// operator never touches them.
	// +optional
	SiteOnly int32 `json:"siteOnly,omitempty"`
}

// Backlog is the provisioning work still to do for a tenant.
type Backlog struct {
	// users is the number of StackUsers whose latest change the reconciler has not
	// finished: created, changed or deleted since it last wrote their status. Users held
	// by the brake or planned in Observe mode are not counted: they wait for a person.
	// +required
	Users int32 `json:"users"`
	// perMinute is how many user changes the reconciler finished in the last minute,
	// scaled to a minute. spec.site.requestsPerSecond bounds it: a change costs about two
	// site requests.
	// +optional
	PerMinute int32 `json:"perMinute,omitempty"`
	// estimatedCompletionTime is when the backlog should be done at perMinute; absent
	// until a rate has been measured.
	// +optional
	EstimatedCompletionTime *metav1.Time `json:"estimatedCompletionTime,omitempty"`
}

// RequestRecord describes one SCIM request, without any secret.
type RequestRecord struct {
	// time of the request.
	// +required
	Time metav1.Time `json:"time"`
	// userAgent is the client's User-Agent header, e.g. "Okta SCIM Client 1.0.0".
	// +optional
	// +kubebuilder:validation:MaxLength=256
	UserAgent string `json:"userAgent,omitempty"`
	// operation is the SCIM operation, e.g. "GET /Users".
	// +optional
	// +kubebuilder:validation:MaxLength=128
	Operation string `json:"operation,omitempty"`
	// remoteAddress is the client's address.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	RemoteAddress string `json:"remoteAddress,omitempty"`
	// reason explains a failure, e.g. "token does not match".
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Reason string `json:"reason,omitempty"`
}

// ScimSettingsStatus is the observed state of a SCIM tenant.
type ScimSettingsStatus struct {
	// conditions: Ready, CredentialsValid and SiteReachable.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the spec generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// basePath is the tenant's SCIM base path on the operator's SCIM server.
	// +optional
	BasePath string `json:"basePath,omitempty"`

	// url is the full SCIM base URL to paste into the identity provider ("SCIM 2.0 Base
	// Url" in Okta, "Tenant URL" in Entra ID), when the external host is configured.
	// +optional
	URL string `json:"url,omitempty"`

	// users counts the tenant's users.
	// +optional
	Users *UserCounts `json:"users,omitempty"`

	// backlog is the provisioning work the reconcilers have not finished yet, and when
	// it should be done; absent when there is none.
	// +optional
	Backlog *Backlog `json:"backlog,omitempty"`

	// lastRequest is the most recent authenticated SCIM request.
	// +optional
	LastRequest *RequestRecord `json:"lastRequest,omitempty"`

	// lastAuthFailure is the most recent request rejected for its credentials.
	// +optional
	LastAuthFailure *RequestRecord `json:"lastAuthFailure,omitempty"`

	// lastResyncTime is when the site's users were last read back in full.
	// +optional
	LastResyncTime *metav1.Time `json:"lastResyncTime,omitempty"`

	// siteOnlyUsers names the first site accounts that no StackUser describes (the
	// resync writes it with users.siteOnly). The operator never changes them; an IdP
	// import lists them, and linking one makes it a StackUser.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	SiteOnlyUsers []SiteAccountSample `json:"siteOnlyUsers,omitempty"`

	// plan sums the changes the tenant's StackUsers plan (Observe mode) or the brake
	// holds.
	// +optional
	Plan *PlanSummary `json:"plan,omitempty"`

	// safety is the deactivation brake's ledger (written by the StackUser reconciler).
	// +optional
	Safety *SafetyStatus `json:"safety,omitempty"`
}

// ScimSettings is one SCIM tenant: the settings a Stack Internal Enterprise site admin
// sets on the SCIM settings page (on/off, bearer token, promotion switches) and how the
// operator reaches that site. StackUsers in the same namespace refer to it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=scims,categories=scim
// +kubebuilder:printcolumn:name="Enabled",type=boolean,JSONPath=`.spec.enabled`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Users",type=integer,JSONPath=`.status.users.total`
// +kubebuilder:printcolumn:name="Backlog",type=integer,JSONPath=`.status.backlog.users`
// +kubebuilder:printcolumn:name="Planned",type=integer,JSONPath=`.status.plan.users`
// +kubebuilder:printcolumn:name="Held",type=integer,JSONPath=`.status.plan.held`
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.status.basePath`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ScimSettings struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec holds the tenant's settings.
	// +required
	Spec ScimSettingsSpec `json:"spec"`

	// status is what the operator observed.
	// +optional
	Status ScimSettingsStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// ScimSettingsList is a list of ScimSettings.
type ScimSettingsList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []ScimSettings `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ScimSettings{}, &ScimSettingsList{})
}
