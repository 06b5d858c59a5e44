package v1alpha1

// Role is a Stack Internal Enterprise user role, carried by the IdP attribute
// `stackUserType` (or core `userType`) and sent to the site as `userType`.
// +kubebuilder:validation:Enum=Registered;Moderator;Admin
type Role string

const (
	// RoleRegistered is a regular user.
	RoleRegistered Role = "Registered"
	// RoleModerator has moderator privileges.
	RoleModerator Role = "Moderator"
	// RoleAdmin has admin and moderator privileges.
	RoleAdmin Role = "Admin"
)

// Roles lists every valid role, in order of privilege.
var Roles = []Role{RoleRegistered, RoleModerator, RoleAdmin}

// RoleAttributeForm names the attribute a SCIM client carries the role in: one of the
// RoleForm constants, or the URN of the extension schema whose object holds
// `stackUserType`.
type RoleAttributeForm string

const (
	// RoleFormUserType is core `userType`.
	RoleFormUserType RoleAttributeForm = "userType"
	// RoleFormTopLevel is `stackUserType` at the top level of the user.
	RoleFormTopLevel RoleAttributeForm = "stackUserType"
)

// Condition types shared by StackUser and ScimSettings.
const (
	// ConditionReady summarises the object: true when everything it asks for is in effect.
	ConditionReady = "Ready"
	// ConditionSynced is true when the site shows what the StackUser asks for.
	ConditionSynced = "Synced"
	// ConditionRoleChangeBlocked is true while a role change waits for a promotion switch.
	ConditionRoleChangeBlocked = "RoleChangeBlocked"
	// ConditionDrifted is true when the site was changed by hand away from the desired state.
	ConditionDrifted = "Drifted"
	// ConditionSiteReachable is true when the site answers with the configured credentials.
	ConditionSiteReachable = "SiteReachable"
	// ConditionCredentialsValid is true when the referenced token Secrets hold usable tokens.
	ConditionCredentialsValid = "CredentialsValid"
	// ConditionChangesHeld is true on a ScimSettings while the deactivation brake holds
	// changes back.
	ConditionChangesHeld = "ChangesHeld"
)

// Finalizer is put on every StackUser so that deleting it deactivates (or deletes) the
// user on the site first.
const Finalizer = "scim.stackscim.io/finalizer"

// LabelSettings carries the name of a StackUser's ScimSettings, so a tenant's users can be
// selected without reading every object.
const LabelSettings = "scim.stackscim.io/settings"

// SecretKeyReference names one key of a Secret in the same namespace.
type SecretKeyReference struct {
	// name of the Secret, in the namespace of the object that refers to it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// key within the Secret's data that holds the token.
	// +optional
	// +kubebuilder:default=token
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key,omitempty"`
}

// SkipOffboardingAnnotation, set to "true" on a StackUser being deleted whose tenant or
// site token is gone, releases it without touching the site: the escape hatch for a
// deleted namespace. The site user keeps its state (it stays active unless deactivated
// there or in the IdP first).
const SkipOffboardingAnnotation = "scim.stackscim.io/skip-offboarding"
