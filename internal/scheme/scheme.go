// Package scheme builds the runtime.Scheme shared by the manager, tools and tests.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

// New returns a scheme with the core Kubernetes types and the project's API types.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := scimv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}
