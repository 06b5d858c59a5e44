package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SettingsReference names the ScimSettings (the SCIM tenant) a StackUser belongs to.
type SettingsReference struct {
	// name of the ScimSettings in the StackUser's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// Name is the SCIM `name` complex attribute of a user (RFC 7643 section 4.1.1).
type Name struct {
	// formatted is the full name as it should be displayed.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Formatted string `json:"formatted,omitempty"`
	// familyName is the family (last) name.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	FamilyName string `json:"familyName,omitempty"`
	// givenName is the given (first) name.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	GivenName string `json:"givenName,omitempty"`
	// middleName is the middle name(s).
	// +optional
	// +kubebuilder:validation:MaxLength=256
	MiddleName string `json:"middleName,omitempty"`
	// honorificPrefix is a title such as "Ms." or "Dr.".
	// +optional
	// +kubebuilder:validation:MaxLength=64
	HonorificPrefix string `json:"honorificPrefix,omitempty"`
	// honorificSuffix is a suffix such as "III".
	// +optional
	// +kubebuilder:validation:MaxLength=64
	HonorificSuffix string `json:"honorificSuffix,omitempty"`
}

// MultiValuedAttribute is one element of a SCIM multi-valued attribute such as emails or
// phoneNumbers (RFC 7643 section 2.4).
type MultiValuedAttribute struct {
	// value is the attribute's value, for example an e-mail address.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Value string `json:"value"`
	// type is a label such as "work", "home" or "other".
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Type string `json:"type,omitempty"`
	// display is a human-readable name for the value.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Display string `json:"display,omitempty"`
	// primary marks the preferred element; at most one element is primary.
	// +optional
	Primary bool `json:"primary,omitempty"`
}

// StackUserSpec is the desired state of one user, as the identity provider (or a GitOps
// repository) describes it.
// +kubebuilder:validation:XValidation:rule="!has(self.emails) || self.emails.filter(e, has(e.primary) && e.primary).size() <= 1",message="at most one email may be primary"
type StackUserSpec struct {
	// settingsRef names the ScimSettings (SCIM tenant and downstream site) this user belongs
	// to. It cannot be changed: status.siteId is an account of that tenant's site.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="settingsRef is immutable: create a new StackUser for another tenant"
	SettingsRef SettingsReference `json:"settingsRef"`

	// userName is the unique identifier the user signs in with (the SAML user identifier,
	// often an e-mail address). Unique within the tenant, compared case-insensitively.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	UserName string `json:"userName"`

	// externalId is the identity provider's own identifier for the user.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	ExternalID string `json:"externalId,omitempty"`

	// displayName is the name shown on the site.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	DisplayName string `json:"displayName,omitempty"`

	// name holds the components of the user's real name.
	// +optional
	Name *Name `json:"name,omitempty"`

	// emails are the user's e-mail addresses.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	Emails []MultiValuedAttribute `json:"emails,omitempty"`

	// active says whether the user may sign in. false deactivates the user on the site
	// (content stays attributed); true reactivates. A user is never deleted on deactivation.
	// +optional
	// +kubebuilder:default=true
	Active *bool `json:"active,omitempty"`

	// role is the site role the identity provider asks for (the `stackUserType` attribute).
	// When absent, the role is not managed by the identity provider and the operator leaves
	// the site's role alone. Changes to or from Moderator or Admin take effect only while the
	// tenant's matching promotion switch is on; until then they are recorded as blocked.
	// +optional
	Role *Role `json:"role,omitempty"`

	// roleAttribute is the attribute form the identity provider last sent the role in, so
	// the SCIM server answers the role in that form only and Okta's GET-then-PUT changes
	// it: `userType` (core), `stackUserType` (top level), or an extension schema URN whose
	// object carries `stackUserType`. Empty: the vendor extension
	// urn:ietf:params:scim:schemas:extension:stackoverflow:2.0:User.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^(userType|stackUserType|[uU][rR][nN]:.+)$`
	RoleAttribute RoleAttributeForm `json:"roleAttribute,omitempty"`

	// title is the user's job title (core SCIM `title`).
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Title string `json:"title,omitempty"`

	// department is the user's department (enterprise extension `department`).
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Department string `json:"department,omitempty"`

	// nickName is the casual name of the user.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	NickName string `json:"nickName,omitempty"`

	// locale is the user's default location for localisation, e.g. "en-US".
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Locale string `json:"locale,omitempty"`

	// preferredLanguage is the user's preferred written or spoken language, e.g. "en".
	// +optional
	// +kubebuilder:validation:MaxLength=64
	PreferredLanguage string `json:"preferredLanguage,omitempty"`

	// timezone is the user's time zone in IANA format, e.g. "Europe/Berlin".
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Timezone string `json:"timezone,omitempty"`

	// profileUrl is a URL to the user's profile elsewhere.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	ProfileURL string `json:"profileUrl,omitempty"`

	// phoneNumbers are the user's telephone numbers.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	PhoneNumbers []MultiValuedAttribute `json:"phoneNumbers,omitempty"`

	// enterprise holds the other attributes of the enterprise user extension
	// (urn:ietf:params:scim:schemas:extension:enterprise:2.0:User) besides department.
	// +optional
	Enterprise *EnterpriseAttributes `json:"enterprise,omitempty"`

	// additionalAttributes keeps any other attribute the identity provider sent (by its
	// SCIM name or extension URN), so that a GET returns what a PUT stored. The operator
	// does not send these to the site.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	AdditionalAttributes *apiextensionsv1.JSON `json:"additionalAttributes,omitempty"`
}

// EnterpriseAttributes are attributes of the SCIM enterprise user extension (RFC 7643
// section 4.3), except department, which is a first-class field.
type EnterpriseAttributes struct {
	// employeeNumber is the organisation's identifier for the user.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	EmployeeNumber string `json:"employeeNumber,omitempty"`
	// costCenter is the user's cost center.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	CostCenter string `json:"costCenter,omitempty"`
	// organization is the user's organisation.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Organization string `json:"organization,omitempty"`
	// division is the user's division.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Division string `json:"division,omitempty"`
	// manager is the SCIM id or display name of the user's manager.
	// +optional
	Manager *Manager `json:"manager,omitempty"`
}

// Manager refers to a user's manager (enterprise extension).
type Manager struct {
	// value is the SCIM id of the manager.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Value string `json:"value,omitempty"`
	// displayName is the manager's display name.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	DisplayName string `json:"displayName,omitempty"`
}

// ObservedSiteUser is what the operator last read of the user on the site.
type ObservedSiteUser struct {
	// active is whether the site user can sign in.
	// +optional
	Active *bool `json:"active,omitempty"`
	// role is the role the site reports (Registered when the site omits it).
	// +optional
	Role Role `json:"role,omitempty"`
	// userName is the site user's user name.
	// +optional
	UserName string `json:"userName,omitempty"`
	// externalId is the identity provider id the site has for the user.
	// +optional
	ExternalID string `json:"externalId,omitempty"`
	// displayName is the site user's display name.
	// +optional
	DisplayName string `json:"displayName,omitempty"`
	// givenName is the site user's given name.
	// +optional
	GivenName string `json:"givenName,omitempty"`
	// familyName is the site user's family name.
	// +optional
	FamilyName string `json:"familyName,omitempty"`
	// email is the site user's primary e-mail address.
	// +optional
	Email string `json:"email,omitempty"`
	// title is the site user's job title.
	// +optional
	Title string `json:"title,omitempty"`
	// department is the site user's department.
	// +optional
	Department string `json:"department,omitempty"`
	// syncTime is when the site was last read or written for this user.
	// +optional
	SyncTime *metav1.Time `json:"syncTime,omitempty"`
}

// ActorKind says who caused a change.
// +kubebuilder:validation:Enum=IdentityProvider;GitOps;Operator;DriftCorrection
type ActorKind string

const (
	// ActorIdentityProvider is a SCIM request from an identity provider.
	ActorIdentityProvider ActorKind = "IdentityProvider"
	// ActorGitOps is an edit of the StackUser spec outside SCIM (kubectl, Helm, Argo CD, Flux).
	ActorGitOps ActorKind = "GitOps"
	// ActorOperator is the operator enforcing the desired state on the site.
	ActorOperator ActorKind = "Operator"
	// ActorDriftCorrection is the operator undoing a change made by hand on the site.
	ActorDriftCorrection ActorKind = "DriftCorrection"
)

// AuditResult is the outcome of a change.
// +kubebuilder:validation:Enum=Applied;Blocked;Failed;Reported
type AuditResult string

const (
	// ResultApplied means the change took effect.
	ResultApplied AuditResult = "Applied"
	// ResultBlocked means a policy (a promotion switch) held the change back.
	ResultBlocked AuditResult = "Blocked"
	// ResultFailed means the change was attempted and failed; it is retried.
	ResultFailed AuditResult = "Failed"
	// ResultReported means a difference was recorded but, by policy, not corrected.
	ResultReported AuditResult = "Reported"
)

// Actor identifies who caused an audited change.
type Actor struct {
	// kind of actor.
	// +required
	Kind ActorKind `json:"kind"`
	// name identifies the actor: the tenant and client for an identity provider, the field
	// manager for a GitOps edit, the controller for the operator.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name,omitempty"`
	// userAgent is the HTTP User-Agent of the identity provider's request.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	UserAgent string `json:"userAgent,omitempty"`
	// requestId correlates the entry with the SCIM server's request log.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	RequestID string `json:"requestId,omitempty"`
}

// FieldChange is one attribute changed by an audited action. Secrets are never recorded.
type FieldChange struct {
	// field is the attribute's path, e.g. "active", "role", "name.givenName".
	// +required
	// +kubebuilder:validation:MaxLength=256
	Field string `json:"field"`
	// old is the value before the change (empty when unset).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Old string `json:"old,omitempty"`
	// new is the value after the change (empty when unset).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	New string `json:"new,omitempty"`
}

// AuditEntry records one change to a user: who, what, and with what result.
type AuditEntry struct {
	// time the change was made or attempted.
	// +required
	Time metav1.Time `json:"time"`
	// actor that caused the change.
	// +required
	Actor Actor `json:"actor"`
	// action names what was done, e.g. Create, Update, Deactivate, Reactivate, RoleChange,
	// Link, Delete.
	// +required
	// +kubebuilder:validation:MaxLength=64
	Action string `json:"action"`
	// changes lists the fields changed, old to new.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Changes []FieldChange `json:"changes,omitempty"`
	// result of the change.
	// +required
	Result AuditResult `json:"result"`
	// message explains the result in words.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// GroupMembership names one StackGroup a user belongs to.
type GroupMembership struct {
	// name of the StackGroup (its SCIM id).
	// +required
	Name string `json:"name"`
	// displayName of the group.
	// +optional
	DisplayName string `json:"displayName,omitempty"`
}

// DriftedField is one attribute changed by hand on the site and not put back (driftPolicy
// Report, or a correction still to come).
type DriftedField struct {
	// field is the attribute's path, e.g. "role", "active", "title".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Field string `json:"field"`
	// siteValue is what the site shows.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	SiteValue string `json:"siteValue,omitempty"`
	// wantedValue is what the StackUser asks for.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	WantedValue string `json:"wantedValue,omitempty"`
	// since is when this drift was first seen.
	// +required
	Since metav1.Time `json:"since"`
}

// StackUserStatus is the observed state of a StackUser.
type StackUserStatus struct {
	// conditions: Ready, Synced, RoleChangeBlocked and Drifted.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// siteId is the id of the linked user on the site (its network account id).
	// +optional
	SiteID string `json:"siteId,omitempty"`

	// site is what the operator last observed of the user on the site.
	// +optional
	Site *ObservedSiteUser `json:"site,omitempty"`

	// observedGeneration is the spec generation the site was last brought in line with.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// groups are the SCIM groups the user belongs to, by name.
	// +optional
	// +listType=atomic
	Groups []GroupMembership `json:"groups,omitempty"`

	// effectiveRole is the role the operator enforces on the site: spec.role combined
	// with the roles of the mapped groups (ScimSettings.spec.groupRoles). Empty when the
	// role is not managed.
	// One of Registered, Moderator, Admin, or empty.
	// +optional
	// +kubebuilder:validation:MaxLength=16
	EffectiveRole string `json:"effectiveRole,omitempty"`

	// drift lists the fields changed by hand on the site and not put back; the Drifted
	// condition sums it up.
	// +optional
	// +listType=map
	// +listMapKey=field
	// +kubebuilder:validation:MaxItems=32
	Drift []DriftedField `json:"drift,omitempty"`

	// plannedChanges lists what the operator would change on the site while the tenant is
	// in Observe mode, or the deactivation or demotion the brake holds back.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	PlannedChanges []PlannedChange `json:"plannedChanges,omitempty"`

	// heldSince is when the brake first held this user's deactivation or demotion:
	// held changes are released oldest first.
	// +optional
	HeldSince *metav1.Time `json:"heldSince,omitempty"`

	// history is the audit trail of this user, newest first, bounded by the tenant's
	// historyLimit and by size (the oldest entries go first).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=200
	History []AuditEntry `json:"history,omitempty"`
}

// StackUser is one user provisioned into a Stack Internal Enterprise site: its spec is the
// desired state set by the identity provider over SCIM (or by GitOps), its status what the
// operator observed and did on the site.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=su;stackuser,categories=scim
// +kubebuilder:printcolumn:name="User Name",type=string,JSONPath=`.spec.userName`
// +kubebuilder:printcolumn:name="Active",type=boolean,JSONPath=`.spec.active`
// +kubebuilder:printcolumn:name="Role",type=string,JSONPath=`.spec.role`
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.conditions[?(@.type=="Synced")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Synced")].reason`
// +kubebuilder:printcolumn:name="Planned",type=string,JSONPath=`.status.plannedChanges[*].action`,priority=1
// +kubebuilder:printcolumn:name="Site ID",type=string,JSONPath=`.status.siteId`,priority=1
// +kubebuilder:printcolumn:name="Settings",type=string,JSONPath=`.spec.settingsRef.name`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type StackUser struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec is the desired state of the user.
	// +required
	Spec StackUserSpec `json:"spec"`

	// status is what the operator observed and did.
	// +optional
	Status StackUserStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// StackUserList is a list of StackUsers.
type StackUserList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []StackUser `json:"items"`
}

func init() {
	SchemeBuilder.Register(&StackUser{}, &StackUserList{})
}
