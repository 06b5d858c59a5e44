// Package sitedir keeps, per tenant, a snapshot of the accounts on the tenant's site, so
// the SCIM server can show an identity provider's import the site accounts no StackUser
// describes yet (issue 12, item 5). The SCIM server runs on every replica and the
// reconcilers only on the leader, so the server needs a source of its own; this is it.
//
// A snapshot is read on demand through the tenant's rate-limited site client, kept for a
// short TTL, and refreshed by one goroutine at a time per tenant (single flight); callers
// get the snapshot they find while a newer one is read (stale while revalidate), and wait
// a bounded time only when there is none. A failing site never fails a caller: it gets
// the last good snapshot while that is not too old, else none with the error, and the site
// is not asked again before RetryAfter, so a down site is not hammered by every request.
//
// Memory is bounded: a snapshot keeps only the fields a SCIM User shows, at most
// MaxAccounts accounts, and (through Options.Keep) only accounts not already linked to a
// StackUser when it was read.
package sitedir

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stackscim/stack-scim-operator/internal/site"
)

// Defaults of Options.
const (
	DefaultTTL          = time.Minute
	DefaultWait         = 10 * time.Second
	DefaultRetryAfter   = 30 * time.Second
	DefaultMaxAge       = 10 * time.Minute
	DefaultFetchTimeout = 10 * time.Minute
	DefaultMaxAccounts  = 100_000
)

// Account is what a snapshot keeps of one site account: the site user without its
// profile URL (a SCIM User does not show it; a snapshot may hold 100,000 of them).
type Account = site.User

// FromSite keeps the fields of a site user an Account holds.
func FromSite(u *site.User) Account {
	a := *u
	a.ProfileURL = ""
	return a
}

// Snapshot is a tenant's site accounts as read at one time. It is shared: never modify it.
type Snapshot struct {
	// Accounts are ordered by site id (numerically when ids are digits, as the site's
	// are), so new accounts sort last and an import's pages stay stable.
	Accounts []Account
	// Fetched is when the site was read, Took how long reading it took.
	Fetched time.Time
	Took    time.Duration
	// Truncated is set when the site had more accounts than MaxAccounts kept.
	Truncated bool
}

// Lister lists every account of a site in pages (*site.Client is one).
type Lister interface {
	ListAll(ctx context.Context, fn func([]site.User) error) error
}

// Source returns the site client of a tenant.
type Source func(ctx context.Context, tenant types.NamespacedName) (Lister, error)

// Options configure a Directory.
type Options struct {
	// Source returns a tenant's site client; required.
	Source Source
	// Keep, when set, is asked once per refresh for a predicate that says which accounts
	// the snapshot keeps (the SCIM server drops accounts already linked to a StackUser:
	// they are never shown, and a 100,000-user tenant need not hold its site twice).
	Keep func(tenant types.NamespacedName) func(*site.User) bool
	// TTL is how long a snapshot counts as fresh (default 1m), and at least ten times
	// as long as reading it took, so listing a large site takes at most a tenth of the
	// time (and of the tenant's site rate limit). An older one is still served while a
	// refresh runs.
	TTL time.Duration
	// Wait bounds how long callers with no snapshot wait for a refresh, counted from its
	// start (default 10s): a large site's first listing delays the first requests by at
	// most that, and later ones not at all. Identity providers wait 60s for an answer.
	Wait time.Duration
	// RetryAfter is how long after a failed refresh the site is not asked again
	// (default 30s).
	RetryAfter time.Duration
	// MaxAge is the oldest snapshot served after refreshes failed (default 10m, and at
	// least twice the snapshot's TTL); past it the tenant's site accounts are not shown
	// until the site answers again.
	MaxAge time.Duration
	// FetchTimeout bounds one refresh (default 10m: 100,000 accounts are 1,000 site
	// requests, 100 s at the default 10 requests per second).
	FetchTimeout time.Duration
	// MaxAccounts bounds the accounts one snapshot keeps (default 100,000).
	MaxAccounts int
	// Log receives one line per failed refresh (and per truncation).
	Log logr.Logger
	// Now is the clock; time.Now when nil (tests move it).
	Now func() time.Time
}

// Directory holds the snapshots of every tenant. It is safe for concurrent use.
type Directory struct {
	opts Options

	mu      sync.Mutex
	tenants map[types.NamespacedName]*entry
}

// entry is one tenant's state; every field is guarded by Directory.mu.
type entry struct {
	snap *Snapshot
	// failed is when the last refresh failed (zero after a success), err why.
	failed time.Time
	err    error
	// running is closed when the refresh in flight ends; nil when none runs. started is
	// when it started.
	running chan struct{}
	started time.Time
	// used is when the tenant was last asked for: tenants nobody asks for any more (a
	// deleted ScimSettings) are dropped, with their snapshot.
	used time.Time
}

// New returns a Directory.
func New(opts Options) *Directory {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Wait <= 0 {
		opts.Wait = DefaultWait
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = DefaultRetryAfter
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = DefaultFetchTimeout
	}
	if opts.MaxAccounts <= 0 {
		opts.MaxAccounts = DefaultMaxAccounts
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Directory{opts: opts, tenants: map[types.NamespacedName]*entry{}}
}

// ErrNoSnapshot is returned when no snapshot could be read in time and no refresh
// failed yet (the first one is still running).
var ErrNoSnapshot = errors.New("the site's accounts have not been read yet")

// Get returns the tenant's snapshot: the fresh one, else the last one while a refresh
// runs in the background, else (none yet, or too old) whatever a refresh brings within
// Wait. It never returns a snapshot older than its max age (Options.MaxAge). With no
// snapshot the error says why (the site's error, or ErrNoSnapshot); callers serve
// without site accounts then.
func (d *Directory) Get(ctx context.Context, tenant types.NamespacedName) (*Snapshot, error) {
	d.mu.Lock()
	e := d.tenants[tenant]
	if e == nil {
		e = &entry{}
		d.tenants[tenant] = e
	}
	now := d.opts.Now()
	e.used = now
	if e.snap != nil && now.Sub(e.snap.Fetched) < d.ttl(e.snap) {
		s := e.snap
		d.mu.Unlock()
		return s, nil
	}
	d.startLocked(tenant, e, now)
	if s := e.snap; s != nil && now.Sub(s.Fetched) < d.maxAge(s) {
		d.mu.Unlock()
		return s, nil
	}
	running, err, wait := e.running, e.err, d.opts.Wait-now.Sub(e.started)
	d.mu.Unlock()
	if running == nil || wait <= 0 {
		// Backing off after a failure, or a long first listing: answer at once.
		return nil, orNoSnapshot(err)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-running:
	case <-t.C:
	case <-ctx.Done():
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := e.snap; s != nil && d.opts.Now().Sub(s.Fetched) < d.maxAge(s) {
		return s, nil
	}
	return nil, orNoSnapshot(e.err)
}

// ttl is how long snap counts as fresh: TTL, or ten times what reading it took.
func (d *Directory) ttl(snap *Snapshot) time.Duration { return max(d.opts.TTL, 10*snap.Took) }

// maxAge is the oldest snap is served at: MaxAge, and at least twice its TTL, so a large
// site's snapshot is still served while the next one is read.
func (d *Directory) maxAge(snap *Snapshot) time.Duration { return max(d.opts.MaxAge, 2*d.ttl(snap)) }

func orNoSnapshot(err error) error {
	if err == nil {
		return ErrNoSnapshot
	}
	return err
}

// startLocked starts a refresh unless one runs or the tenant is backing off after a
// failure. The caller holds d.mu.
func (d *Directory) startLocked(tenant types.NamespacedName, e *entry, now time.Time) {
	if e.running != nil || (!e.failed.IsZero() && now.Sub(e.failed) < d.opts.RetryAfter) {
		return
	}
	// Refreshes are rare (one per TTL per tenant asked for): the time to drop tenants
	// nobody asked for in MaxAge.
	for k, o := range d.tenants {
		if o != e && o.running == nil && now.Sub(o.used) > d.opts.MaxAge {
			delete(d.tenants, k)
			accounts.DeleteLabelValues(k.String())
		}
	}
	done := make(chan struct{})
	e.running, e.started = done, now
	go func() {
		defer close(done)
		// Detached from the request that started it: the next requests want its result.
		ctx, cancel := context.WithTimeout(context.Background(), d.opts.FetchTimeout)
		defer cancel()
		snap, err := d.fetch(ctx, tenant)
		d.mu.Lock()
		defer d.mu.Unlock()
		e.running = nil
		if err != nil {
			e.failed, e.err = d.opts.Now(), err
			refreshes.WithLabelValues(tenant.String(), "error").Inc()
			d.opts.Log.Info("site accounts could not be read; SCIM lists show StackUsers only until the site answers",
				"tenant", tenant.String(), "error", err.Error(), "retryIn", d.opts.RetryAfter.String())
			return
		}
		e.snap, e.failed, e.err = snap, time.Time{}, nil
		refreshes.WithLabelValues(tenant.String(), "ok").Inc()
		accounts.WithLabelValues(tenant.String()).Set(float64(len(snap.Accounts)))
	}()
}

// fetch reads the tenant's site.
func (d *Directory) fetch(ctx context.Context, tenant types.NamespacedName) (*Snapshot, error) {
	start := d.opts.Now()
	l, err := d.opts.Source(ctx, tenant)
	if err != nil {
		return nil, err
	}
	var keep func(*site.User) bool
	if d.opts.Keep != nil {
		keep = d.opts.Keep(tenant)
	}
	snap := &Snapshot{}
	err = l.ListAll(ctx, func(page []site.User) error {
		for i := range page {
			u := &page[i]
			if u.ID == "" || strings.TrimSpace(u.UserName) == "" || (keep != nil && !keep(u)) {
				continue
			}
			if len(snap.Accounts) >= d.opts.MaxAccounts {
				snap.Truncated = true
				return site.ErrStop
			}
			snap.Accounts = append(snap.Accounts, FromSite(u))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the site's users: %w", err)
	}
	if snap.Truncated {
		d.opts.Log.Info("the site has more accounts than a snapshot keeps; the rest are not shown to identity providers",
			"tenant", tenant.String(), "kept", len(snap.Accounts))
	}
	slices.SortFunc(snap.Accounts, func(a, b Account) int { return CompareIDs(a.ID, b.ID) })
	// A site that lists an account twice (its pages shifted under a concurrent change)
	// must not show it twice.
	snap.Accounts = slices.CompactFunc(snap.Accounts, func(a, b Account) bool { return a.ID == b.ID })
	snap.Accounts = slices.Clip(snap.Accounts)
	snap.Fetched = d.opts.Now()
	snap.Took = snap.Fetched.Sub(start)
	return snap, nil
}

// CompareIDs orders site ids: numerically when both are digits (the site's network
// account ids), else as strings after the numeric ones.
func CompareIDs(a, b string) int {
	an, aerr := strconv.ParseUint(a, 10, 64)
	bn, berr := strconv.ParseUint(b, 10, 64)
	switch {
	case aerr == nil && berr == nil:
		switch {
		case an < bn:
			return -1
		case an > bn:
			return 1
		}
		return 0
	case aerr == nil:
		return -1
	case berr == nil:
		return 1
	}
	return strings.Compare(a, b)
}

// Forget drops a tenant's snapshot (the tenant was deleted or its site changed).
func (d *Directory) Forget(tenant types.NamespacedName) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.tenants, tenant)
	accounts.DeleteLabelValues(tenant.String())
}
