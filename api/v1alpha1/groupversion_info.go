// Package v1alpha1 contains the API types of the scim.stackscim.io group: StackUser, one
// user provisioned by an identity provider, and ScimSettings, one SCIM tenant bound to one
// Stack Internal Enterprise site.
// +kubebuilder:object:generate=true
// +groupName=scim.stackscim.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of these API types.
	GroupVersion = schema.GroupVersion{Group: "scim.stackscim.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this group-version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
