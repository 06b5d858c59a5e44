package tenant

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/index"
)

// Use says which of a tenant's Secret references a lookup follows.
type Use int

const (
	// AnySecret follows both the bearer token and the site token reference.
	AnySecret Use = iota
	// SiteSecret follows only spec.site.tokenSecretRef.
	SiteSecret
	// BearerSecret follows only spec.bearerTokenSecretRef.
	BearerSecret
)

// Names reports the Secret names a tenant refers to for use.
func Names(s *scimv1.ScimSettings, use Use) []string {
	switch use {
	case SiteSecret:
		return []string{s.Spec.Site.TokenSecretRef.Name}
	case BearerSecret:
		return []string{s.Spec.BearerTokenSecretRef.Name}
	}
	return s.SecretNames()
}

// UsingSecret lists the tenants of the Secret's namespace that refer to it for use,
// through the SettingsSecret index, so a token rotation re-queues only those.
func UsingSecret(ctx context.Context, r client.Reader, secret types.NamespacedName, use Use) ([]types.NamespacedName, error) {
	var list scimv1.ScimSettingsList
	if err := r.List(ctx, &list, client.InNamespace(secret.Namespace),
		client.MatchingFields{index.SettingsSecret: secret.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing ScimSettings of Secret %s: %w", secret, err)
	}
	var out []types.NamespacedName
	for i := range list.Items {
		s := &list.Items[i]
		for _, n := range Names(s, use) {
			if n == secret.Name {
				out = append(out, types.NamespacedName{Namespace: s.Namespace, Name: s.Name})
				break
			}
		}
	}
	return out, nil
}
