package sitedir_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stackscim/stack-scim-operator/internal/site"
	"github.com/stackscim/stack-scim-operator/internal/sitedir"
)

// fakeSite is a site whose user list, failure and speed a test sets.
type fakeSite struct {
	mu    sync.Mutex
	users []site.User
	err   error
	// gate, when set, holds every listing until it is closed.
	gate  chan struct{}
	calls atomic.Int32
}

func (f *fakeSite) ListAll(ctx context.Context, fn func([]site.User) error) error {
	f.calls.Add(1)
	f.mu.Lock()
	gate, users, err := f.gate, append([]site.User(nil), f.users...), f.err
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err != nil {
		return err
	}
	for len(users) > 0 {
		n := min(len(users), 2)
		if err := fn(users[:n]); err != nil {
			if errors.Is(err, site.ErrStop) {
				return nil
			}
			return err
		}
		users = users[n:]
	}
	return nil
}

func (f *fakeSite) set(fn func(*fakeSite)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// clock is a settable time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var acme = types.NamespacedName{Namespace: "ns", Name: "acme"}

func newDir(f *fakeSite, c *clock, mutate ...func(*sitedir.Options)) *sitedir.Directory {
	o := sitedir.Options{
		Source:     func(context.Context, types.NamespacedName) (sitedir.Lister, error) { return f, nil },
		TTL:        time.Minute,
		Wait:       5 * time.Second,
		RetryAfter: 30 * time.Second,
		MaxAge:     10 * time.Minute,
		Now:        c.Now,
	}
	for _, m := range mutate {
		m(&o)
	}
	return sitedir.New(o)
}

func userNames(s *sitedir.Snapshot) []string {
	var out []string
	for _, a := range s.Accounts {
		out = append(out, a.UserName)
	}
	return out
}

func TestDirectory_oneRefreshAtATimeServesEveryCaller(t *testing.T) {
	g := NewWithT(t)
	f := &fakeSite{users: []site.User{{ID: "2", UserName: "b"}, {ID: "1", UserName: "a"}}, gate: make(chan struct{})}
	d := newDir(f, &clock{now: time.Unix(1000, 0)})
	var wg sync.WaitGroup
	got := make([]*sitedir.Snapshot, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = d.Get(context.Background(), acme)
		}()
	}
	g.Eventually(f.calls.Load).Should(BeEquivalentTo(1))
	close(f.gate)
	wg.Wait()
	g.Expect(f.calls.Load()).To(BeEquivalentTo(1), "one site listing for eight concurrent callers")
	for _, s := range got {
		g.Expect(s).NotTo(BeNil())
		g.Expect(userNames(s)).To(Equal([]string{"a", "b"}), "ordered by site id")
	}
}

func TestDirectory_freshWithinTTLThenStaleWhileRefreshing(t *testing.T) {
	g := NewWithT(t)
	c := &clock{now: time.Unix(1000, 0)}
	f := &fakeSite{users: []site.User{{ID: "1", UserName: "a"}}}
	d := newDir(f, c)
	s, err := d.Get(context.Background(), acme)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(userNames(s)).To(Equal([]string{"a"}))

	f.set(func(f *fakeSite) { f.users = append(f.users, site.User{ID: "2", UserName: "b"}) })
	c.advance(30 * time.Second)
	s, _ = d.Get(context.Background(), acme)
	g.Expect(userNames(s)).To(Equal([]string{"a"}), "fresh: the site is not read again")
	g.Expect(f.calls.Load()).To(BeEquivalentTo(1))

	// Past the TTL the caller gets the old snapshot at once and a refresh starts.
	gate := make(chan struct{})
	f.set(func(f *fakeSite) { f.gate = gate })
	c.advance(time.Minute)
	s, _ = d.Get(context.Background(), acme)
	g.Expect(userNames(s)).To(Equal([]string{"a"}))
	close(gate)
	g.Eventually(func() []string { s, _ := d.Get(context.Background(), acme); return userNames(s) }).Should(Equal([]string{"a", "b"}))
	g.Expect(f.calls.Load()).To(BeEquivalentTo(2))
}

func TestDirectory_failingSiteNeverBlocksAndIsNotHammered(t *testing.T) {
	g := NewWithT(t)
	c := &clock{now: time.Unix(1000, 0)}
	down := errors.New("connection refused")
	f := &fakeSite{err: down}
	d := newDir(f, c)

	s, err := d.Get(context.Background(), acme)
	g.Expect(s).To(BeNil())
	g.Expect(err).To(MatchError(ContainSubstring("connection refused")))
	for range 5 {
		start := time.Now()
		s, err = d.Get(context.Background(), acme)
		g.Expect(time.Since(start)).To(BeNumerically("<", time.Second), "a backing-off tenant answers at once")
		g.Expect(s).To(BeNil())
		g.Expect(err).To(HaveOccurred())
	}
	g.Expect(f.calls.Load()).To(BeEquivalentTo(1), "not asked again before RetryAfter")

	// After RetryAfter the site is asked again and, now up, read.
	f.set(func(f *fakeSite) { f.err, f.users = nil, []site.User{{ID: "7", UserName: "seven"}} })
	c.advance(31 * time.Second)
	s, err = d.Get(context.Background(), acme)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(userNames(s)).To(Equal([]string{"seven"}))

	// The site goes down again: the last snapshot is served until MaxAge, then none.
	f.set(func(f *fakeSite) { f.err = down })
	c.advance(2 * time.Minute)
	s, _ = d.Get(context.Background(), acme)
	g.Expect(userNames(s)).To(Equal([]string{"seven"}), "stale, served while the refresh runs")
	g.Eventually(f.calls.Load).Should(BeEquivalentTo(3))
	s, _ = d.Get(context.Background(), acme)
	g.Expect(userNames(s)).To(Equal([]string{"seven"}), "the refresh failed: still served within MaxAge")
	c.advance(10 * time.Minute)
	s, err = d.Get(context.Background(), acme)
	g.Expect(s).To(BeNil(), "older than MaxAge: not shown")
	g.Expect(err).To(HaveOccurred())
}

func TestDirectory_callersWaitOnlyBoundedForAHangingSite(t *testing.T) {
	g := NewWithT(t)
	f := &fakeSite{gate: make(chan struct{})}
	defer close(f.gate)
	d := newDir(f, &clock{now: time.Unix(1000, 0)}, func(o *sitedir.Options) { o.Wait = 200 * time.Millisecond })
	start := time.Now()
	s, err := d.Get(context.Background(), acme)
	g.Expect(time.Since(start)).To(BeNumerically("<", 2*time.Second))
	g.Expect(s).To(BeNil())
	g.Expect(err).To(MatchError(sitedir.ErrNoSnapshot))

	// A caller whose request ends stops waiting too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = d.Get(ctx, acme)
	g.Expect(err).To(HaveOccurred())
	g.Expect(f.calls.Load()).To(BeEquivalentTo(1), "still the one refresh")
}

func TestDirectory_keepsOnlyWhatItNeedsBounded(t *testing.T) {
	g := NewWithT(t)
	f := &fakeSite{users: []site.User{
		{ID: "10", UserName: "ten", Email: "ten@example.com", ProfileURL: "https://site/accounts/10"},
		{ID: "9", UserName: "nine"},
		{ID: "linked", UserName: "managed-already"},
		{ID: "9", UserName: "nine"}, // listed twice by a shifting page
		{ID: "3", UserName: "  "},   // no userName: nothing an IdP could match
		{ID: "11", UserName: "eleven"},
		{ID: "12", UserName: "twelve"},
	}}
	d := newDir(f, &clock{now: time.Unix(1000, 0)}, func(o *sitedir.Options) {
		o.MaxAccounts = 3
		o.Keep = func(types.NamespacedName) func(*site.User) bool {
			return func(u *site.User) bool { return u.ID != "linked" }
		}
	})
	s, err := d.Get(context.Background(), acme)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s.Truncated).To(BeTrue())
	g.Expect(userNames(s)).To(Equal([]string{"nine", "ten"}), "linked and nameless dropped, cut after 3 kept (9 counted twice), 9 shown once, sorted numerically")
	g.Expect(s.Accounts[1]).To(Equal(sitedir.Account{ID: "10", UserName: "ten", Email: "ten@example.com"}))
}

func TestCompareIDs(t *testing.T) {
	g := NewWithT(t)
	g.Expect(sitedir.CompareIDs("9", "10")).To(Equal(-1))
	g.Expect(sitedir.CompareIDs("10", "10")).To(Equal(0))
	g.Expect(sitedir.CompareIDs("10", "abc")).To(Equal(-1))
	g.Expect(sitedir.CompareIDs("b", "a")).To(Equal(1))
}

// slowSite is a site whose listing takes took on the test's clock.
type slowSite struct {
	fakeSite
	c    *clock
	took time.Duration
}

func (s *slowSite) ListAll(ctx context.Context, fn func([]site.User) error) error {
	s.c.advance(s.took)
	return s.fakeSite.ListAll(ctx, fn)
}

// A site that takes long to list is listed at most a tenth of the time, and its snapshot
// is served while the next one is read.
func TestDirectory_largeSitesAreListedLessOften(t *testing.T) {
	g := NewWithT(t)
	c := &clock{now: time.Unix(1000, 0)}
	f := &slowSite{fakeSite: fakeSite{users: []site.User{{ID: "1", UserName: "a"}}}, c: c, took: time.Minute}
	d := sitedir.New(sitedir.Options{
		Source: func(context.Context, types.NamespacedName) (sitedir.Lister, error) { return f, nil },
		TTL:    time.Minute, MaxAge: 5 * time.Minute, Now: c.Now,
	})
	s, err := d.Get(context.Background(), acme)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s.Took).To(Equal(time.Minute))
	c.advance(9 * time.Minute)
	_, _ = d.Get(context.Background(), acme)
	g.Expect(f.calls.Load()).To(BeEquivalentTo(1), "fresh for ten times the minute it took")
	c.advance(10 * time.Minute) // 19 minutes old: past MaxAge, within twice its TTL
	s, _ = d.Get(context.Background(), acme)
	g.Expect(s).NotTo(BeNil(), "still served while the next listing runs")
	g.Eventually(f.calls.Load).Should(BeEquivalentTo(2))
}

// Callers wait for a refresh only during its first Wait: a long first listing delays the
// first requests, not every request until it ends.
func TestDirectory_waitIsCountedFromTheRefreshStart(t *testing.T) {
	g := NewWithT(t)
	c := &clock{now: time.Unix(1000, 0)}
	f := &fakeSite{gate: make(chan struct{})}
	defer close(f.gate)
	d := newDir(f, c, func(o *sitedir.Options) { o.Wait = 300 * time.Millisecond })
	start := time.Now()
	_, err := d.Get(context.Background(), acme)
	g.Expect(err).To(MatchError(sitedir.ErrNoSnapshot))
	g.Expect(time.Since(start)).To(BeNumerically(">=", 300*time.Millisecond), "the first caller waited")
	c.advance(time.Second)
	start = time.Now()
	_, err = d.Get(context.Background(), acme)
	g.Expect(err).To(MatchError(sitedir.ErrNoSnapshot))
	g.Expect(time.Since(start)).To(BeNumerically("<", 200*time.Millisecond), "a later one did not")
	g.Expect(f.calls.Load()).To(BeEquivalentTo(1))
}
