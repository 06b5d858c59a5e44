package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LabelGroupPrefix starts the label that records a StackUser's membership of one
// StackGroup: key LabelGroupPrefix+<StackGroup name>, value the StackGroup's UID. A group's
// members are not listed on the group itself (a 100,000-member list would pass etcd's
// object size limit, and every change would rewrite it); adding or removing a member is one
// label write on that user. A label whose value is not the group's current UID is left over
// from a deleted group of the same name and does not count.
const LabelGroupPrefix = "group.scim.stackscim.io/"

// StackGroupSpec is a SCIM group as the identity provider pushed it (Okta Push Groups,
// Entra group provisioning). Its members are the StackUsers labelled with the group.
type StackGroupSpec struct {
	// settingsRef names the ScimSettings (SCIM tenant) this group belongs to. It cannot be
	// changed: the members' labels belong to that tenant.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="settingsRef is immutable: create a new StackGroup for another tenant"
	SettingsRef SettingsReference `json:"settingsRef"`

	// displayName is the group's name at the identity provider. Unique within the tenant,
	// compared case-insensitively; ScimSettings.spec.groupRoles refers to groups by it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	DisplayName string `json:"displayName"`

	// externalId is the identity provider's own identifier for the group.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	ExternalID string `json:"externalId,omitempty"`
}

// StackGroupStatus is the observed state of a StackGroup.
type StackGroupStatus struct {
	// members is the number of StackUsers in the group, counted from their membership
	// labels.
	// +optional
	Members int32 `json:"members"`

	// observedGeneration is the spec generation the count was taken for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// StackGroup is one SCIM group of a tenant. The site receives no groups: a group matters
// to the site only through ScimSettings.spec.groupRoles, which turns membership into a
// role.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sg;stackgroup,categories=scim
// +kubebuilder:printcolumn:name="Display Name",type=string,JSONPath=`.spec.displayName`
// +kubebuilder:printcolumn:name="Members",type=integer,JSONPath=`.status.members`
// +kubebuilder:printcolumn:name="Settings",type=string,JSONPath=`.spec.settingsRef.name`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type StackGroup struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec is the group as the identity provider describes it.
	// +required
	Spec StackGroupSpec `json:"spec"`

	// status is what the operator observed.
	// +optional
	Status StackGroupStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// StackGroupList is a list of StackGroups.
type StackGroupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []StackGroup `json:"items"`
}

func init() {
	SchemeBuilder.Register(&StackGroup{}, &StackGroupList{})
}
