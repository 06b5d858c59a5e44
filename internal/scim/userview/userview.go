// Package userview keeps an ordered, per-tenant view of the StackUsers in the informer
// cache, fed by the informer's events. SCIM lists page through it: listing a 100,000-user
// tenant from the cache would copy and sort every object on every page of an import,
// while the view hands out a page of shared pointers in stable order. It also finds users
// by externalId, which only SCIM filters ask for: a map entry here costs a fraction of a
// cache field index, which keeps a set of its own for every distinct value.
package userview

import (
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

// tenantKey names a tenant: the ScimSettings' namespace and name.
type tenantKey struct{ namespace, name string }

// tenant holds one tenant's users, sorted by creation time then object name, which is
// the order SCIM lists use so that paging is stable.
type tenant struct {
	sorted []*scimv1.StackUser
	byName map[string]*scimv1.StackUser
	// byExternalID holds the users with a non-empty externalId; nearly always one each.
	byExternalID map[string][]*scimv1.StackUser
	// identities changes whenever a user is added or removed or its userName,
	// externalId or status.siteId changes: what decides which site accounts no user
	// describes (see Identities).
	identities uint64
}

func (t *tenant) linkExternalID(u *scimv1.StackUser) {
	if id := u.Spec.ExternalID; id != "" {
		t.byExternalID[id] = append(t.byExternalID[id], u)
	}
}

func (t *tenant) unlinkExternalID(u *scimv1.StackUser) {
	id := u.Spec.ExternalID
	if id == "" {
		return
	}
	users := slices.DeleteFunc(t.byExternalID[id], func(x *scimv1.StackUser) bool { return x == u })
	if len(users) == 0 {
		delete(t.byExternalID, id)
	} else {
		t.byExternalID[id] = users
	}
}

// View is the per-tenant view. The objects it returns are the informer's own: callers
// must not modify them.
type View struct {
	mu      sync.RWMutex
	tenants map[tenantKey]*tenant
	// seq hands out identities values, unique across tenants and their re-creation.
	seq uint64
}

// New returns an empty View; register it with the StackUser informer (it is a
// ResourceEventHandler).
func New() *View { return &View{tenants: map[tenantKey]*tenant{}} }

var _ toolscache.ResourceEventHandler = (*View)(nil)

func keyOf(u *scimv1.StackUser) tenantKey {
	return tenantKey{u.Namespace, u.Spec.SettingsRef.Name}
}

// Compare orders users as SCIM lists show them: by creation time, then object name.
func Compare(a, b *scimv1.StackUser) int {
	if c := a.CreationTimestamp.Time.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// OnAdd inserts a user.
func (v *View) OnAdd(obj any, _ bool) {
	u, ok := obj.(*scimv1.StackUser)
	if !ok {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.put(u)
}

// OnUpdate replaces a user, moving it when its tenant changed.
func (v *View) OnUpdate(oldObj, newObj any) {
	old, ok1 := oldObj.(*scimv1.StackUser)
	u, ok2 := newObj.(*scimv1.StackUser)
	if !ok1 || !ok2 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if keyOf(old) != keyOf(u) {
		v.remove(old)
	}
	v.put(u)
}

// OnDelete removes a user.
func (v *View) OnDelete(obj any) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	u, ok := obj.(*scimv1.StackUser)
	if !ok {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.remove(u)
}

// put inserts or replaces u; the caller holds the write lock. New users usually sort
// last, so the insertion is an append.
func (v *View) put(u *scimv1.StackUser) {
	if u.DeletionTimestamp != nil {
		// Being deleted: gone for SCIM, though the finalizer keeps it in the cache.
		v.remove(u)
		return
	}
	k := keyOf(u)
	t := v.tenants[k]
	if t == nil {
		t = &tenant{byName: map[string]*scimv1.StackUser{}, byExternalID: map[string][]*scimv1.StackUser{}}
		v.tenants[k] = t
	}
	prev, replacing := t.byName[u.Name]
	if !replacing || !sameIdentity(prev, u) {
		v.seq++
		t.identities = v.seq
	}
	if replacing {
		t.unlinkExternalID(prev)
	}
	t.byName[u.Name] = u
	t.linkExternalID(u)
	if replacing {
		i, found := slices.BinarySearchFunc(t.sorted, prev, Compare)
		if found && t.sorted[i] == prev && Compare(prev, u) == 0 {
			t.sorted[i] = u
			return
		}
		t.sorted = deleteAt(t.sorted, prev)
	}
	i, _ := slices.BinarySearchFunc(t.sorted, u, Compare)
	t.sorted = slices.Insert(t.sorted, i, u)
}

// remove deletes u; the caller holds the write lock.
func (v *View) remove(u *scimv1.StackUser) {
	k := keyOf(u)
	t := v.tenants[k]
	if t == nil {
		return
	}
	prev, ok := t.byName[u.Name]
	if !ok {
		return
	}
	t.sorted = deleteAt(t.sorted, prev)
	t.unlinkExternalID(prev)
	delete(t.byName, u.Name)
	v.seq++
	t.identities = v.seq
	if len(t.byName) == 0 {
		delete(v.tenants, k)
	}
}

func deleteAt(s []*scimv1.StackUser, u *scimv1.StackUser) []*scimv1.StackUser {
	i, found := slices.BinarySearchFunc(s, u, Compare)
	if found && s[i].Name == u.Name {
		return slices.Delete(s, i, i+1)
	}
	// Not where its order says: find it the slow way rather than leave it behind.
	if j := slices.IndexFunc(s, func(x *scimv1.StackUser) bool { return x.Name == u.Name }); j >= 0 {
		return slices.Delete(s, j, j+1)
	}
	return s
}

// Count is the number of users of a tenant.
func (v *View) Count(namespace, name string) int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if t := v.tenants[tenantKey{namespace, name}]; t != nil {
		return len(t.sorted)
	}
	return 0
}

// All returns a tenant's users in list order (a copy of the pointers, so the caller can
// filter at leisure without holding up the informer).
func (v *View) All(namespace, name string) []*scimv1.StackUser {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if t := v.tenants[tenantKey{namespace, name}]; t != nil {
		return slices.Clone(t.sorted)
	}
	return nil
}

// Page returns the tenant's total and the users at 0-based positions [from, from+count).
func (v *View) Page(namespace, name string, from, count int) (int, []*scimv1.StackUser) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	t := v.tenants[tenantKey{namespace, name}]
	if t == nil {
		return 0, nil
	}
	total := len(t.sorted)
	if from >= total || count <= 0 {
		return total, nil
	}
	return total, slices.Clone(t.sorted[from:min(from+count, total)])
}

// ByExternalID returns the tenant's users with the externalId (compared exactly, as
// RFC 7643 defines it), in list order.
func (v *View) ByExternalID(namespace, name, externalID string) []*scimv1.StackUser {
	v.mu.RLock()
	defer v.mu.RUnlock()
	t := v.tenants[tenantKey{namespace, name}]
	if t == nil {
		return nil
	}
	users := slices.Clone(t.byExternalID[externalID])
	slices.SortFunc(users, Compare)
	return users
}

// Version returns the UID and resourceVersion of a tenant's user as the view has it; ok
// is false when the view does not hold it (never seen, deleted, or being deleted).
func (v *View) Version(namespace, tenantName, name string) (uid types.UID, resourceVersion string, ok bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	t := v.tenants[tenantKey{namespace, tenantName}]
	if t == nil {
		return "", "", false
	}
	u, ok := t.byName[name]
	if !ok {
		return "", "", false
	}
	return u.UID, u.ResourceVersion, true
}

func sameIdentity(a, b *scimv1.StackUser) bool {
	return a.Spec.UserName == b.Spec.UserName && a.Spec.ExternalID == b.Spec.ExternalID && a.Status.SiteID == b.Status.SiteID
}

// Identities is a value that changes whenever a user of the tenant is added or removed
// or changes its userName, externalId or status.siteId, and only then (0 for a tenant
// with no users): callers cache what they derive from those fields, such as which site
// accounts no user describes, and recompute when it changes. Status writes of other
// fields, the reconciler's steady traffic, leave it alone.
func (v *View) Identities(namespace, name string) uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if t := v.tenants[tenantKey{namespace, name}]; t != nil {
		return t.identities
	}
	return 0
}
