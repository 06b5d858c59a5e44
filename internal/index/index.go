// Package index defines the cache field indexes the SCIM server and reconcilers look
// objects up by, so no request or reconcile lists a whole namespace to find one user.
// Keys are qualified by tenant (the ScimSettings name) because several tenants may share
// a namespace; the cache scopes them by namespace.
package index

import (
	"context"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

const (
	// UserTenant indexes StackUsers by spec.settingsRef.name.
	UserTenant = "scim.stackscim.io/tenant"
	// UserNameLower indexes StackUsers by tenant and lower-cased userName.
	UserNameLower = "scim.stackscim.io/userName"
	// UserExternalID indexes StackUsers by tenant and externalId (case-exact).
	UserExternalID = "scim.stackscim.io/externalId"
	// UserSiteID indexes StackUsers by tenant and status.siteId.
	UserSiteID = "scim.stackscim.io/siteId"
	// SettingsSecret indexes ScimSettings by every Secret name they refer to.
	SettingsSecret = "scim.stackscim.io/secret"
	// SettingsBasePath indexes ScimSettings by their effective SCIM base path.
	SettingsBasePath = "scim.stackscim.io/basePath"
)

// Key joins a tenant name and a value into an index key.
func Key(tenant, value string) string { return tenant + "/" + value }

// UserNameKey is the UserNameLower key of a user name in a tenant.
func UserNameKey(tenant, userName string) string { return Key(tenant, strings.ToLower(userName)) }

// Setup registers every index with the manager's cache.
func Setup(ctx context.Context, fi client.FieldIndexer) error {
	user := &scimv1.StackUser{}
	userIndexes := map[string]func(*scimv1.StackUser) []string{
		UserTenant: func(u *scimv1.StackUser) []string { return []string{u.Spec.SettingsRef.Name} },
		UserNameLower: func(u *scimv1.StackUser) []string {
			return []string{UserNameKey(u.Spec.SettingsRef.Name, u.Spec.UserName)}
		},
		UserExternalID: func(u *scimv1.StackUser) []string { return nonEmpty(u.Spec.SettingsRef.Name, u.Spec.ExternalID) },
		UserSiteID:     func(u *scimv1.StackUser) []string { return nonEmpty(u.Spec.SettingsRef.Name, u.Status.SiteID) },
	}
	for name, fn := range userIndexes {
		if err := fi.IndexField(ctx, user, name, func(o client.Object) []string { return fn(o.(*scimv1.StackUser)) }); err != nil {
			return err
		}
	}
	settings := &scimv1.ScimSettings{}
	if err := fi.IndexField(ctx, settings, SettingsSecret, func(o client.Object) []string {
		s := o.(*scimv1.ScimSettings)
		names := []string{s.Spec.BearerTokenSecretRef.Name}
		if n := s.Spec.Site.TokenSecretRef.Name; n != names[0] {
			names = append(names, n)
		}
		return names
	}); err != nil {
		return err
	}
	return fi.IndexField(ctx, settings, SettingsBasePath, func(o client.Object) []string {
		return []string{o.(*scimv1.ScimSettings).EffectiveBasePath()}
	})
}

func nonEmpty(tenant, v string) []string {
	if v == "" {
		return nil
	}
	return []string{Key(tenant, v)}
}
