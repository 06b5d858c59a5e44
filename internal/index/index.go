// Package index defines the cache field indexes the SCIM server and reconcilers look
// objects up by, so no request or reconcile lists a whole namespace to find one user.
// Keys are qualified by tenant (the ScimSettings name) because several tenants may share
// a namespace; the cache scopes them by namespace.
package index

import (
	"context"
	"fmt"
	"strings"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

const (
	// UserTenant indexes StackUsers by spec.settingsRef.name.
	UserTenant = "scim.stackscim.io/tenant"
	// UserNameLower indexes StackUsers by tenant and lower-cased userName.
	UserNameLower = "scim.stackscim.io/userName"
	// UserSiteID indexes StackUsers by tenant and status.siteId.
	UserSiteID = "scim.stackscim.io/siteId"
	// UserGroup indexes StackUsers by each group membership label, as GroupMemberKey: a
	// group's members are listed through it (internal/groups).
	UserGroup = "scim.stackscim.io/group"
	// GroupTenant indexes StackGroups by spec.settingsRef.name.
	GroupTenant = "scim.stackscim.io/groupTenant"
	// GroupDisplayName indexes StackGroups by tenant and lower-cased displayName.
	GroupDisplayName = "scim.stackscim.io/groupDisplayName"
	// SettingsSecret indexes ScimSettings by every Secret name they refer to.
	SettingsSecret = "scim.stackscim.io/secret"
	// SettingsBasePath indexes ScimSettings by their effective SCIM base path.
	SettingsBasePath = "scim.stackscim.io/basePath"
)

// Key joins a tenant name and a value into an index key.
func Key(tenant, value string) string { return tenant + "/" + value }

// UserNameKey is the UserNameLower key of a user name in a tenant.
func UserNameKey(tenant, userName string) string { return Key(tenant, strings.ToLower(userName)) }

// GroupMemberKey is the UserGroup key of a membership: the group's name and UID, so a
// label left over from a deleted group of the same name does not match.
func GroupMemberKey(group, uid string) string { return group + "/" + uid }

// DisplayNameKey is the GroupDisplayName key of a group display name in a tenant.
func DisplayNameKey(tenant, displayName string) string {
	return Key(tenant, strings.ToLower(displayName))
}

// userIndexes are the StackUser indexes. They only answer namespaced lists
// (client.InNamespace): a user belongs to a tenant, and a tenant to a namespace.
var userIndexes = map[string]func(*scimv1.StackUser) []string{
	UserTenant: func(u *scimv1.StackUser) []string { return []string{u.Spec.SettingsRef.Name} },
	UserNameLower: func(u *scimv1.StackUser) []string {
		return []string{UserNameKey(u.Spec.SettingsRef.Name, u.Spec.UserName)}
	},
	UserSiteID: func(u *scimv1.StackUser) []string { return nonEmpty(u.Spec.SettingsRef.Name, u.Status.SiteID) },
	UserGroup: func(u *scimv1.StackUser) []string {
		var keys []string
		for k, v := range u.Labels {
			if g, ok := strings.CutPrefix(k, scimv1.LabelGroupPrefix); ok {
				keys = append(keys, GroupMemberKey(g, v))
			}
		}
		return keys
	},
}

// informerGetter is the part of the manager's cache that hands out informers.
type informerGetter interface {
	GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error)
}

// Setup registers every index with the manager's cache (or any other FieldIndexer, such
// as a fake client builder).
func Setup(ctx context.Context, fi client.FieldIndexer) error {
	if err := setupUserIndexes(ctx, fi); err != nil {
		return err
	}
	group := &scimv1.StackGroup{}
	if err := fi.IndexField(ctx, group, GroupTenant, func(o client.Object) []string {
		return []string{o.(*scimv1.StackGroup).Spec.SettingsRef.Name}
	}); err != nil {
		return err
	}
	if err := fi.IndexField(ctx, group, GroupDisplayName, func(o client.Object) []string {
		g := o.(*scimv1.StackGroup)
		return []string{DisplayNameKey(g.Spec.SettingsRef.Name, g.Spec.DisplayName)}
	}); err != nil {
		return err
	}
	settings := &scimv1.ScimSettings{}
	if err := fi.IndexField(ctx, settings, SettingsSecret, func(o client.Object) []string {
		return o.(*scimv1.ScimSettings).SecretNames()
	}); err != nil {
		return err
	}
	return fi.IndexField(ctx, settings, SettingsBasePath, func(o client.Object) []string {
		return []string{o.(*scimv1.ScimSettings).EffectiveBasePath()}
	})
}

// setupUserIndexes registers the StackUser indexes. On a cache it adds them to the
// informer directly: FieldIndexer.IndexField stores every key twice (per namespace and
// for all namespaces), and the index keeps a set per distinct key, which at 100,000
// users made the indexes nearly as large as the users themselves. The index names and keys
// are the ones controller-runtime's cache reader looks up for a namespaced
// MatchingFields list ("field:<name>", "<namespace>/<value>").
func setupUserIndexes(ctx context.Context, fi client.FieldIndexer) error {
	user := &scimv1.StackUser{}
	ig, ok := fi.(informerGetter)
	if !ok {
		for name, fn := range userIndexes {
			if err := fi.IndexField(ctx, user, name, func(o client.Object) []string { return fn(o.(*scimv1.StackUser)) }); err != nil {
				return err
			}
		}
		return nil
	}
	informer, err := ig.GetInformer(ctx, user, cache.BlockUntilSynced(false))
	if err != nil {
		return err
	}
	indexers := toolscache.Indexers{}
	for name, fn := range userIndexes {
		indexers["field:"+name] = func(obj any) ([]string, error) {
			u, ok := obj.(*scimv1.StackUser)
			if !ok {
				return nil, fmt.Errorf("index %s: %T is not a StackUser", name, obj)
			}
			keys := fn(u)
			for i, k := range keys {
				keys[i] = u.Namespace + "/" + k
			}
			return keys, nil
		}
	}
	return informer.AddIndexers(indexers)
}

func nonEmpty(tenant, v string) []string {
	if v == "" {
		return nil
	}
	return []string{Key(tenant, v)}
}

// EachUser calls fn with every StackUser of a tenant straight from the cache's index,
// without copying them: a List copies each user, which at 100,000 users is tens of
// megabytes of garbage per count. fn must not change or keep the user. Other readers (a
// multi-namespace cache, a fake client in tests) are listed instead.
func EachUser(ctx context.Context, r client.Reader, namespace, tenant string, fn func(*scimv1.StackUser)) error {
	if ig, ok := r.(informerGetter); ok {
		inf, err := ig.GetInformer(ctx, &scimv1.StackUser{}, cache.BlockUntilSynced(false))
		if err != nil {
			return err
		}
		if sii, ok := inf.(toolscache.SharedIndexInformer); ok {
			objs, err := sii.GetIndexer().ByIndex("field:"+UserTenant, namespace+"/"+tenant)
			if err != nil {
				return err
			}
			for _, o := range objs {
				if u, ok := o.(*scimv1.StackUser); ok {
					fn(u)
				}
			}
			return nil
		}
	}
	// A manager watching several namespaces has a multi-namespace cache whose informer has
	// no indexer to read: list without the deep copies (fn only reads), which leaves one
	// shallow struct per user instead of a copy of the whole tenant per count.
	var users scimv1.StackUserList
	if err := r.List(ctx, &users, client.InNamespace(namespace), client.MatchingFields{UserTenant: tenant}, client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	for i := range users.Items {
		fn(&users.Items[i])
	}
	return nil
}
