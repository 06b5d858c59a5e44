package testenv

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

// Tenant is a test tenant: a namespace of its own, the IdP bearer token and site token
// Secrets, and a ScimSettings naming them.
type Tenant struct {
	// Namespace holds everything of the tenant.
	Namespace string
	// Settings is the ScimSettings as created.
	Settings *scimv1.ScimSettings
	// BearerToken is what an IdP presents; SiteToken what the site expects.
	BearerToken, SiteToken string
}

// TenantOptions shape a test tenant; the zero value is a working tenant for a site at
// https://site.example.
type TenantOptions struct {
	// Name of the ScimSettings (default "acme").
	Name string
	// SiteURL is spec.site.url (default https://site.example/api/scim/v2).
	SiteURL string
	// BearerToken and SiteToken are the Secret values as stored, e.g. with a trailing
	// newline (defaults: fixed test tokens).
	BearerToken, SiteToken string
	// Mutate adjusts the ScimSettings before it is created.
	Mutate func(*scimv1.ScimSettings)
}

// Key names of the fixture's Secrets.
const (
	BearerTokenSecret = "scim-token"
	SiteTokenSecret   = "site-token"
)

// Tenant creates a namespace with a tenant in it; the namespace goes when the test ends.
func (e *Env) Tenant(t testing.TB, o TenantOptions) *Tenant {
	t.Helper()
	if o.Name == "" {
		o.Name = "acme"
	}
	if o.SiteURL == "" {
		o.SiteURL = "https://site.example/api/scim/v2"
	}
	if o.BearerToken == "" {
		o.BearerToken = "idp-token-for-tests-3f9a"
	}
	if o.SiteToken == "" {
		o.SiteToken = "site-token-for-tests-7c4e"
	}
	ns := e.Namespace(t)
	ctx := context.Background()
	for name, value := range map[string]string{BearerTokenSecret: o.BearerToken, SiteTokenSecret: o.SiteToken} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{"token": []byte(value)}}
		if err := e.Client.Create(ctx, s); err != nil {
			t.Fatalf("creating Secret %s: %v", name, err)
		}
	}
	s := &scimv1.ScimSettings{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: o.Name},
		Spec: scimv1.ScimSettingsSpec{
			BearerTokenSecretRef: scimv1.BearerTokenSecretReference{Name: BearerTokenSecret},
			Site:                 scimv1.SiteSpec{URL: o.SiteURL, TokenSecretRef: scimv1.SecretKeyReference{Name: SiteTokenSecret}},
		},
	}
	if o.Mutate != nil {
		o.Mutate(s)
	}
	if err := e.Client.Create(ctx, s); err != nil {
		t.Fatalf("creating ScimSettings: %v", err)
	}
	return &Tenant{Namespace: ns, Settings: s, BearerToken: o.BearerToken, SiteToken: o.SiteToken}
}

// Key is the ScimSettings' namespace and name.
func (tn *Tenant) Key() types.NamespacedName {
	return types.NamespacedName{Namespace: tn.Namespace, Name: tn.Settings.Name}
}
