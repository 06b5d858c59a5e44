package server

// Existing site accounts and IdP import (issue 12, item 5).
//
// When a tenant starts with a site that already has accounts (people signed in over SAML
// before provisioning was set up), an identity provider's import (Okta "Import Users",
// Entra's matching lookup) must find them, or it creates duplicates or sees an empty app.
// So GET /Users also shows every site account no StackUser describes, as an ordinary SCIM
// User marked unmanaged: the SchemaOperator extension with "managed": false and the
// account's siteId.
//
//   - Which accounts: those of the tenant's site snapshot (internal/sitedir, refreshed
//     on demand through the tenant's rate-limited site client) whose id is no StackUser's
//     status.siteId and whose userName (case-insensitively) and externalId no StackUser
//     of the tenant has. Which StackUsers exist is read live from the user view at each
//     request, so an account stops being shown as soon as a StackUser describes it.
//   - Their id is the StackUser name a POST of that userName would get (NameFor), so it
//     stays the same once linked; in the rare case a StackUser of another userName holds
//     that name, a name hashed from the site id instead.
//   - Lists show the StackUsers first, then the unmanaged accounts in site id order;
//     totalResults counts both; filters are evaluated over the same documents a GET shows.
//   - Linking: a PUT or PATCH of an unmanaged id creates its StackUser, named that id,
//     from the account's values with the request applied (so nothing is lost); the
//     reconciler then finds the account by externalId or userName and links it, with no
//     second account. That is why a link may not change the userName: the account could
//     not be found by it (400 mutability; rename after linking). A POST of the account's
//     userName does the same (201).
//   - DELETE of an unmanaged id answers 404 and changes nothing: there is no managed
//     resource to delete, and the server never deletes or deactivates a site account it
//     does not manage. RFC 7644 3.6 wants a deleted resource to answer 404 ever after,
//     which a 204 would break (the account would still be listed); Entra, the one IdP
//     that sends DELETE, takes 404 as "already gone" and does not retry.
//   - Group members must be StackUsers: an unmanaged id in members is a 400 that says to
//     link the account first. A group request creating users as a side effect would
//     provision someone the IdP never assigned to the app.
//   - The site down, slow or misconfigured never fails a request: the StackUsers are
//     served alone (the directory logs and counts the failure).
//
// Nothing here writes to the site: the only site call is the directory's listing.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
	"github.com/stackscim/stack-scim-operator/internal/index"
	"github.com/stackscim/stack-scim-operator/internal/scim/filter"
	"github.com/stackscim/stack-scim-operator/internal/scim/resource"
	"github.com/stackscim/stack-scim-operator/internal/scim/scimerr"
	"github.com/stackscim/stack-scim-operator/internal/site"
	"github.com/stackscim/stack-scim-operator/internal/sitedir"
	"github.com/stackscim/stack-scim-operator/internal/tenant"
)

// newDirectory builds the directory of site accounts on the server's tenant reader and
// site clients.
func (s *Server) newDirectory(o sitedir.Options) *sitedir.Directory {
	o.Source = func(ctx context.Context, key types.NamespacedName) (sitedir.Lister, error) {
		t, err := tenant.Load(ctx, s.opts.Tenants, s.opts.Sites, key)
		if err != nil {
			return nil, err
		}
		return t.Site, nil
	}
	// Accounts already linked to a StackUser are never shown: the snapshot need not hold
	// them (at 100,000 users that would be the whole site once more). One whose StackUser
	// is deleted later is back in the next snapshot.
	o.Keep = func(key types.NamespacedName) func(*site.User) bool {
		linked := map[string]struct{}{}
		if s.users != nil {
			for _, u := range s.users.All(key.Namespace, key.Name) {
				if u.Status.SiteID != "" {
					linked[u.Status.SiteID] = struct{}{}
				}
			}
		}
		return func(u *site.User) bool {
			_, ok := linked[u.ID]
			return !ok
		}
	}
	o.Log = s.log.WithName("site-accounts")
	return sitedir.New(o)
}

// unmanagedAccount is a site account shown as an unmanaged SCIM User.
type unmanagedAccount struct {
	id      string
	account *sitedir.Account
}

// unmanagedSet is a tenant's unmanaged accounts, derived from one snapshot and one state
// of the tenant's StackUsers.
type unmanagedSet struct {
	snap       *sitedir.Snapshot
	identities uint64
	accounts   []unmanagedAccount // list order: site id
	byID       map[string]int
}

// snapshotIndex finds a snapshot's accounts by lower-cased userName, externalId and the
// ids they may be shown under; built once per snapshot. Accounts sharing a lower-cased
// userName (a group) compete for one id, so lookups always consider whole groups.
type snapshotIndex struct {
	snap *sitedir.Snapshot
	// groups maps a lower-cased userName to its accounts, in site id order.
	groups       map[string][]int
	byExternalID map[string][]int
	// byName maps NameFor of a group to its userName key, and the site-id name of an
	// account to the account.
	byName   map[string]string
	bySiteID map[string]int
}

// unmanagedCache keeps, per tenant, the last full set (an import's pages and the lookups
// between them reuse it until the snapshot or the StackUsers' identities change) and the
// snapshot's index.
type unmanagedCache struct {
	mu      sync.Mutex
	sets    map[types.NamespacedName]*unmanagedSet
	indexes map[types.NamespacedName]*snapshotIndex
}

// snapshot returns the tenant's site snapshot; nil when site accounts are not shown or
// the site could not be read (then StackUsers are served alone).
func (s *Server) snapshot(ctx context.Context, q *request) *sitedir.Snapshot {
	if s.sites == nil || s.users == nil {
		return nil
	}
	snap, err := s.sites.Get(ctx, q.tenant)
	if err != nil {
		// The directory logs the site's failures once per refresh; not per request.
		return nil
	}
	return snap
}

// owners says which StackUsers of a tenant describe site accounts.
type owners interface {
	// describes reports whether a StackUser has the account's site id, userName
	// (case-insensitively) or externalId.
	describes(a *sitedir.Account) bool
	// holds reports whether a StackUser of the tenant has the object name.
	holds(name string) bool
}

// ownerMaps answers from maps of every StackUser of the tenant: for checking many
// accounts against few users.
type ownerMaps struct{ siteIDs, userNames, externalIDs, names map[string]bool }

func (s *Server) ownerMaps(q *request) *ownerMaps {
	o := &ownerMaps{map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}}
	for _, u := range s.users.All(q.tenant.Namespace, q.tenant.Name) {
		if u.Status.SiteID != "" {
			o.siteIDs[u.Status.SiteID] = true
		}
		if u.Spec.ExternalID != "" {
			o.externalIDs[u.Spec.ExternalID] = true
		}
		o.userNames[strings.ToLower(u.Spec.UserName)] = true
		o.names[u.Name] = true
	}
	return o
}

func (o *ownerMaps) describes(a *sitedir.Account) bool {
	return o.siteIDs[a.ID] || o.userNames[strings.ToLower(a.UserName)] || (a.ExternalID != "" && o.externalIDs[a.ExternalID])
}

func (o *ownerMaps) holds(name string) bool { return o.names[name] }

// ownerIndex answers through the cache's field indexes and the user view: for checking
// few accounts against many users (a userName lookup before each POST of a bulk push).
type ownerIndex struct {
	s   *Server
	ctx context.Context
	q   *request
}

func (o ownerIndex) listed(field, key string) bool {
	var list scimv1.StackUserList
	if err := o.s.opts.Client.List(o.ctx, &list, client.InNamespace(o.q.tenant.Namespace),
		client.MatchingFields{field: key}, client.UnsafeDisableDeepCopy); err != nil {
		// Unknown: count the account as described, so it is never shown twice.
		return true
	}
	for i := range list.Items {
		if u := &list.Items[i]; u.DeletionTimestamp == nil && u.Spec.SettingsRef.Name == o.q.tenant.Name {
			return true
		}
	}
	return false
}

func (o ownerIndex) describes(a *sitedir.Account) bool {
	t := o.q.tenant
	return o.listed(index.UserSiteID, index.Key(t.Name, a.ID)) ||
		o.listed(index.UserNameLower, index.UserNameKey(t.Name, a.UserName)) ||
		(a.ExternalID != "" && len(o.s.users.ByExternalID(t.Namespace, t.Name, a.ExternalID)) > 0)
}

func (o ownerIndex) holds(name string) bool {
	_, _, ok := o.s.users.Version(o.q.tenant.Namespace, o.q.tenant.Name, name)
	return ok
}

// decide picks, from accounts in site id order (whole userName groups), the unmanaged ones
// and their ids: NameFor of the userName, or, when a StackUser or an earlier account of
// the group holds it, a name hashed from the site id.
func decide(o owners, tenantName string, accounts []*sitedir.Account) []unmanagedAccount {
	var out []unmanagedAccount
	claimed := map[string]bool{}
	for _, a := range accounts {
		if o.describes(a) {
			continue
		}
		id := NameFor(tenantName, a.UserName)
		if claimed[id] || o.holds(id) {
			id = siteAccountName(tenantName, a.ID)
			if claimed[id] || o.holds(id) {
				continue
			}
		}
		claimed[id] = true
		out = append(out, unmanagedAccount{id: id, account: a})
	}
	return out
}

// unmanagedAccounts returns the tenant's unmanaged accounts; nil when none are shown.
func (s *Server) unmanagedAccounts(ctx context.Context, q *request) *unmanagedSet {
	snap := s.snapshot(ctx, q)
	if snap == nil {
		return nil
	}
	ns, name := q.tenant.Namespace, q.tenant.Name
	identities := s.users.Identities(ns, name)
	if set := s.cachedSet(q, snap, identities); set != nil {
		return set
	}
	all := make([]*sitedir.Account, len(snap.Accounts))
	for i := range snap.Accounts {
		all[i] = &snap.Accounts[i]
	}
	// Three index lookups per account, or one pass over the users: whichever is less.
	var o owners = ownerIndex{s: s, ctx: ctx, q: q}
	if 3*len(all) > s.users.Count(ns, name) {
		o = s.ownerMaps(q)
	}
	set := &unmanagedSet{snap: snap, identities: identities, accounts: decide(o, name, all), byID: map[string]int{}}
	for i, a := range set.accounts {
		set.byID[a.id] = i
	}
	s.unmanaged.mu.Lock()
	if s.unmanaged.sets == nil {
		s.unmanaged.sets = map[types.NamespacedName]*unmanagedSet{}
	}
	s.unmanaged.sets[q.tenant] = set
	s.unmanaged.sweepLocked(q.tenant, s.maxSnapshotAge())
	s.unmanaged.mu.Unlock()
	return set
}

// maxSnapshotAge is the oldest snapshot the directory serves.
func (s *Server) maxSnapshotAge() time.Duration {
	if a := s.opts.SiteAccounts.MaxAge; a > 0 {
		return a
	}
	return sitedir.DefaultMaxAge
}

// sweepLocked drops what is kept for other tenants from snapshots the directory would no
// longer serve (a deleted tenant, or one no IdP reads any more), so nothing is held for
// good. The caller holds c.mu.
func (c *unmanagedCache) sweepLocked(keep types.NamespacedName, maxAge time.Duration) {
	for k, set := range c.sets {
		if k != keep && time.Since(set.snap.Fetched) > maxAge {
			delete(c.sets, k)
		}
	}
	for k, x := range c.indexes {
		if k != keep && time.Since(x.snap.Fetched) > maxAge {
			delete(c.indexes, k)
		}
	}
}

func (s *Server) cachedSet(q *request, snap *sitedir.Snapshot, identities uint64) *unmanagedSet {
	s.unmanaged.mu.Lock()
	defer s.unmanaged.mu.Unlock()
	if set := s.unmanaged.sets[q.tenant]; set != nil && set.snap == snap && set.identities == identities {
		return set
	}
	return nil
}

// index returns the snapshot's index, building it once.
func (s *Server) index(q *request, snap *sitedir.Snapshot) *snapshotIndex {
	s.unmanaged.mu.Lock()
	defer s.unmanaged.mu.Unlock()
	if x := s.unmanaged.indexes[q.tenant]; x != nil && x.snap == snap {
		return x
	}
	x := &snapshotIndex{snap: snap, groups: map[string][]int{}, byExternalID: map[string][]int{},
		byName: map[string]string{}, bySiteID: map[string]int{}}
	for i := range snap.Accounts {
		a := &snap.Accounts[i]
		key := strings.ToLower(a.UserName)
		if _, ok := x.groups[key]; !ok {
			x.byName[NameFor(q.tenant.Name, a.UserName)] = key
		}
		x.groups[key] = append(x.groups[key], i)
		if a.ExternalID != "" {
			x.byExternalID[a.ExternalID] = append(x.byExternalID[a.ExternalID], i)
		}
		x.bySiteID[siteAccountName(q.tenant.Name, a.ID)] = i
	}
	if s.unmanaged.indexes == nil {
		s.unmanaged.indexes = map[types.NamespacedName]*snapshotIndex{}
	}
	s.unmanaged.indexes[q.tenant] = x
	s.unmanaged.sweepLocked(q.tenant, s.maxSnapshotAge())
	return x
}

// lookup returns the unmanaged accounts an equality on attr (userName, externalId or id)
// can match, deciding only their userName groups: a lookup before each POST of a bulk
// push costs a map lookup, not a pass over every user. A valid full set is used as is.
func (s *Server) lookup(ctx context.Context, q *request, attr, value string) []unmanagedAccount {
	snap := s.snapshot(ctx, q)
	if snap == nil {
		return nil
	}
	if set := s.cachedSet(q, snap, s.users.Identities(q.tenant.Namespace, q.tenant.Name)); set != nil {
		return narrow(set.accounts, attr, value)
	}
	x := s.index(q, snap)
	keys := map[string]bool{}
	switch attr {
	case "userName":
		keys[strings.ToLower(value)] = true
	case "externalId":
		for _, i := range x.byExternalID[value] {
			keys[strings.ToLower(snap.Accounts[i].UserName)] = true
		}
	case "id":
		if key, ok := x.byName[value]; ok {
			keys[key] = true
		}
		if i, ok := x.bySiteID[value]; ok {
			keys[strings.ToLower(snap.Accounts[i].UserName)] = true
		}
	}
	var accounts []*sitedir.Account
	for key := range keys {
		for _, i := range x.groups[key] {
			accounts = append(accounts, &snap.Accounts[i])
		}
	}
	slices.SortFunc(accounts, func(a, b *sitedir.Account) int { return sitedir.CompareIDs(a.ID, b.ID) })
	return narrow(decide(ownerIndex{s: s, ctx: ctx, q: q}, q.tenant.Name, accounts), attr, value)
}

// narrow keeps the accounts whose attr equals value (userName case-insensitively).
func narrow(accounts []unmanagedAccount, attr, value string) []unmanagedAccount {
	var out []unmanagedAccount
	for _, a := range accounts {
		switch {
		case attr == "userName" && strings.EqualFold(a.account.UserName, value),
			attr == "externalId" && a.account.ExternalID == value,
			attr == "id" && a.id == value:
			out = append(out, a)
		}
	}
	return out
}

// siteAccountName is an unmanaged account's id when NameFor's is taken.
func siteAccountName(tenantName, siteID string) string {
	sum := sha256.Sum256([]byte(tenantName + "\x00site\x00" + siteID))
	return "u-" + hex.EncodeToString(sum[:])[:20]
}

// unmanagedByID finds an unmanaged account by its id.
func (s *Server) unmanagedByID(ctx context.Context, q *request, id string) *unmanagedAccount {
	if found := s.lookup(ctx, q, "id", id); len(found) > 0 {
		return &found[0]
	}
	return nil
}

// unmanagedMatching returns the unmanaged accounts a filter matches (all with none), in
// list order. The filter sees the document a GET shows; an equality on userName,
// externalId or id narrows the candidates first, as it does for StackUsers.
func (s *Server) unmanagedMatching(ctx context.Context, q *request, f filter.Expression) []unmanagedAccount {
	var candidates []unmanagedAccount
	attr, value, ok := filter.Lookup(f)
	if ok {
		candidates = s.lookup(ctx, q, attr, value)
	} else if set := s.unmanagedAccounts(ctx, q); set != nil {
		candidates = set.accounts
	}
	if f == nil {
		return candidates
	}
	var hits []unmanagedAccount
	for _, a := range candidates {
		if filter.Match(f, resource.AccountToSCIM(a.account, a.id, s.location(q, a.id))) {
			hits = append(hits, a)
		}
	}
	return hits
}

// accountDoc renders an unmanaged account as answered (attributes applied).
func (s *Server) accountDoc(q *request, a *unmanagedAccount) map[string]any {
	return s.project(q, resource.AccountToSCIM(a.account, a.id, s.location(q, a.id)))
}

func (s *Server) writeAccount(q *request, a *unmanagedAccount) {
	q.w.Header().Set("ETag", resource.AccountVersion(a.account))
	writeJSON(q.w, q.r, http.StatusOK, s.accountDoc(q, a))
}

// checkAccountIfMatch enforces If-Match against an unmanaged account's version.
func checkAccountIfMatch(q *request, a *unmanagedAccount) error {
	h := strings.TrimSpace(q.r.Header.Get("If-Match"))
	if h == "" || h == "*" {
		return nil
	}
	want := resource.AccountVersion(a.account)
	for _, tag := range strings.Split(h, ",") {
		if strings.TrimSpace(tag) == want || "W/"+strings.TrimSpace(tag) == want {
			return nil
		}
	}
	return scimerr.New(http.StatusPreconditionFailed, "", "the site account has changed since version %s was read (now %s); read it again", truncate(h, 64), want)
}

// link turns an unmanaged account into a StackUser: a PUT or PATCH of its id. mutate is
// the request's change, applied to the account's values as shown. done is false when a
// StackUser of that name appeared meanwhile: the caller updates it instead.
func (s *Server) link(ctx context.Context, q *request, a *unmanagedAccount, mutate func(*scimv1.StackUser) (scimv1.StackUserSpec, error)) (done bool, err error) {
	if err := checkAccountIfMatch(q, a); err != nil {
		return true, err
	}
	base, err := resource.FromSCIM(resource.AccountToSCIM(a.account, a.id, ""), s.userOptions(q, nil))
	if err != nil {
		detail := err.Error()
		if se := scimerr.As(err); se != nil {
			detail = se.Detail
		}
		return true, scimerr.BadRequest(scimerr.InvalidValue, "site account %s cannot be linked: its values on the site are not valid SCIM (%s); correct them on the site first",
			a.account.ID, detail)
	}
	base.SettingsRef.Name = q.tenant.Name
	cur := &scimv1.StackUser{ObjectMeta: metav1.ObjectMeta{Namespace: q.tenant.Namespace, Name: a.id}, Spec: base}
	spec, err := mutate(cur)
	if err != nil {
		return true, err
	}
	spec.SettingsRef = base.SettingsRef
	if !strings.EqualFold(spec.UserName, a.account.UserName) {
		return true, scimerr.BadRequest(scimerr.Mutability,
			"id %s is the existing site account %q (site id %s), not managed yet; the request would link it under userName %q, by which the operator could not find the account and would create a second one. Link it with its userName first, then rename it",
			a.id, truncate(a.account.UserName, 256), a.account.ID, truncate(spec.UserName, 256))
	}
	if other, err := s.userByName(ctx, q, spec.UserName, ""); err != nil {
		return true, err
	} else if other != nil && other.Name == a.id {
		return false, nil // linked by a concurrent request: update it
	} else if other != nil {
		return true, duplicate(other.Spec.UserName, other.Name)
	}
	u := newStackUser(q, a.id, spec)
	metav1.SetMetaDataAnnotation(&u.ObjectMeta, scimv1.LinkSiteIDAnnotation, a.account.ID)
	entry := s.entry(q, audit.ActionCreate, audit.Diff(nil, audit.Flatten(&u.Spec)))
	entry.Message = "created by a SCIM " + q.r.Method + " of the unmanaged site account " + a.account.ID + "; the operator links it to that account"
	s.annotate(u, q, entry, 1)
	err = s.opts.Client.Create(ctx, u, client.FieldOwner(audit.SCIMFieldManager))
	if apierrors.IsAlreadyExists(err) {
		// Linked (or POSTed) by a concurrent request: update that StackUser instead,
		// unless it is on its way out.
		var existing scimv1.StackUser
		if gerr := s.opts.APIReader.Get(ctx, client.ObjectKeyFromObject(u), &existing); gerr != nil {
			return true, s.apiError(gerr, "reading the existing user")
		}
		if existing.Spec.SettingsRef.Name == q.tenant.Name && existing.DeletionTimestamp == nil {
			return false, nil
		}
		return true, scimerr.New(http.StatusConflict, "", "id %s is being deleted; retry in a few seconds", a.id).WithRetryAfter(5)
	}
	if err != nil {
		return true, s.apiError(err, "creating user")
	}
	s.recent.put(client.ObjectKeyFromObject(u), u)
	s.own.record(s.users, u, false)
	s.recorder.LogEntries(u, entry)
	s.writeUser(q, http.StatusOK, u)
	return true, nil
}

// notManaged is the answer to a DELETE of an unmanaged account.
func notManaged(a *unmanagedAccount) error {
	return scimerr.New(http.StatusNotFound, "",
		"id %s is the site account %q (site id %s), which this tenant does not manage: nothing was deleted or changed on the site. Link it (PUT or PATCH) to manage it",
		a.id, truncate(a.account.UserName, 256), a.account.ID)
}

// unmanagedMembers rejects group members that are unmanaged site accounts, saying how to
// fix it: a group request does not link accounts, because that would provision users the
// identity provider never assigned to the application. nil when none of ids is one.
func (s *Server) unmanagedMembers(ctx context.Context, q *request, ids []string) error {
	var found []string
	for _, id := range ids {
		if s.unmanagedByID(ctx, q, id) != nil {
			found = append(found, id)
		}
	}
	if len(found) == 0 {
		return nil
	}
	shown := found[:min(len(found), 10)]
	more := ""
	if len(found) > len(shown) {
		more = fmt.Sprintf(" and %d more", len(found)-len(shown))
	}
	return scimerr.BadRequest(scimerr.InvalidValue,
		"members %s%s are existing site accounts this tenant does not manage yet: assign them to the application (or PUT/PATCH /Users/{id}) so they are linked, then add them to the group; nothing was changed",
		quoteList(shown), more)
}
