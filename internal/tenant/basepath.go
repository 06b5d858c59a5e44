package tenant

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/index"
)

// ClaimsEarlier reports whether a's claim on a base path comes before b's: the older
// object (creationTimestamp, then namespace/name) wins, so the owner never changes when a
// newer tenant appears.
func ClaimsEarlier(a, b *scimv1.ScimSettings) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}

// Owner is the claimant that owns a base path: the earliest one not being deleted; nil
// when there is none.
func Owner(claimants []scimv1.ScimSettings) *scimv1.ScimSettings {
	var owner *scimv1.ScimSettings
	for i := range claimants {
		c := &claimants[i]
		if c.DeletionTimestamp == nil && (owner == nil || ClaimsEarlier(c, owner)) {
			owner = c
		}
	}
	return owner
}

// Claimants lists the ScimSettings whose effective base path is path, from the cache's
// index without copying them: callers must not change them.
func Claimants(ctx context.Context, r client.Reader, path string) ([]scimv1.ScimSettings, error) {
	var list scimv1.ScimSettingsList
	if err := r.List(ctx, &list, client.MatchingFields{index.SettingsBasePath: path}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing ScimSettings with base path %s: %w", path, err)
	}
	return list.Items, nil
}

// OwnerOf returns the tenant that owns base path path, nil when none claims it. The
// result is the cached object: read it, do not change it.
func OwnerOf(ctx context.Context, r client.Reader, path string) (*scimv1.ScimSettings, error) {
	claimants, err := Claimants(ctx, r, path)
	if err != nil {
		return nil, err
	}
	return Owner(claimants), nil
}
