package site_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/stackscim/stack-scim-operator/internal/site"
	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

const token = "site-token-4f1b9c"

// newSite serves a simulator, optionally behind wrap, and returns it with a client.
func newSite(t *testing.T, cfg sitesim.Config, wrap func(http.Handler) http.Handler, clientCfg site.Config) (*sitesim.Sim, *site.Client) {
	t.Helper()
	cfg.Token = token
	sim := sitesim.New(cfg)
	var h http.Handler = sim
	if wrap != nil {
		h = wrap(sim)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	clientCfg.URL = srv.URL + sitesim.BasePath
	if clientCfg.Token == "" {
		clientCfg.Token = token
	}
	if clientCfg.MinBackoff == 0 {
		clientCfg.MinBackoff = 10 * time.Millisecond
	}
	if clientCfg.RequestsPerSecond == 0 {
		clientCfg.RequestsPerSecond, clientCfg.Burst = 1000, 1000
	}
	c, err := site.New(clientCfg)
	if err != nil {
		t.Fatal(err)
	}
	return sim, c
}

func seed(sim *sitesim.Sim, n int) {
	for i := 1; i <= n; i++ {
		sim.Seed(sitesim.User{UserName: fmt.Sprintf("User%d@Example.com", i), ExternalID: fmt.Sprintf("ext-%d", i), Active: true})
	}
}

func TestClient_listAllReadsPagesOf100(t *testing.T) {
	g := NewWithT(t)
	sim, c := newSite(t, sitesim.Config{}, nil, site.Config{})
	seed(sim, 250)
	var sizes []int
	g.Expect(c.ListAll(context.Background(), func(p []site.User) error { sizes = append(sizes, len(p)); return nil })).To(Succeed())
	g.Expect(sizes).To(Equal([]int{100, 100, 50}))
	g.Expect(sim.Requests()[sitesim.CountListUsers]).To(BeEquivalentTo(3))
}

func TestClient_findUsesTheFilterWhenSupported(t *testing.T) {
	g := NewWithT(t)
	sim, c := newSite(t, sitesim.Config{}, nil, site.Config{})
	seed(sim, 150)
	u, err := c.FindByExternalID(context.Background(), "ext-140")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(u).NotTo(BeNil())
	g.Expect(u.UserName).To(Equal("User140@Example.com"))
	u, err = c.FindByUserName(context.Background(), "user7@example.COM")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(u.ExternalID).To(Equal("ext-7"))
	missing, err := c.FindByExternalID(context.Background(), "nobody")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(missing).To(BeNil())
	g.Expect(sim.Requests()[sitesim.CountListUsers]).To(BeEquivalentTo(3), "one filtered request per lookup")
}

func TestClient_findFallsBackToListingWhenFilterUnsupported(t *testing.T) {
	for name, status := range map[string]int{"400": http.StatusBadRequest, "501": http.StatusNotImplemented} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			sim, c := newSite(t, sitesim.Config{FilterUnsupported: true, FilterErrorStatus: status}, nil, site.Config{})
			seed(sim, 150)
			u, err := c.FindByExternalID(context.Background(), "ext-140")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(u).NotTo(BeNil())
			g.Expect(u.ID).NotTo(BeEmpty())
			// One failed filter, then two pages.
			g.Expect(sim.Requests()[sitesim.CountListUsers]).To(BeEquivalentTo(3))
			// The client remembers: the next lookup lists straight away (one page suffices).
			u, err = c.FindByUserName(context.Background(), "USER3@example.com")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(u.ExternalID).To(Equal("ext-3"))
			g.Expect(sim.Requests()[sitesim.CountListUsers]).To(BeEquivalentTo(4))
		})
	}
}

func TestClient_findFallsBackWhenTheSiteIgnoresTheFilter(t *testing.T) {
	g := NewWithT(t)
	// A site that drops ?filter= and lists everyone.
	stripFilter := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			q.Del("filter")
			r.URL.RawQuery = q.Encode()
			h.ServeHTTP(w, r)
		})
	}
	sim, c := newSite(t, sitesim.Config{}, stripFilter, site.Config{})
	seed(sim, 120)
	u, err := c.FindByExternalID(context.Background(), "ext-110")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(u).NotTo(BeNil())
	g.Expect(u.ExternalID).To(Equal("ext-110"))
}

// failFirst answers the first n SCIM requests with status (and Retry-After when set),
// then passes through; it records request times and User-Agents.
type failFirst struct {
	n          int32
	status     int
	retryAfter string
	seen       atomic.Int32
	mu         sync.Mutex
	times      []time.Time
	agents     []string
}

func (f *failFirst) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.times = append(f.times, time.Now())
		f.agents = append(f.agents, r.UserAgent())
		f.mu.Unlock()
		if f.seen.Add(1) <= f.n {
			if f.retryAfter != "" {
				w.Header().Set("Retry-After", f.retryAfter)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(f.status)
			_, _ = w.Write([]byte(`{"ErrorMessage":"slow down"}`))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func TestClient_honoursRetryAfterOn429(t *testing.T) {
	g := NewWithT(t)
	f := &failFirst{n: 1, status: http.StatusTooManyRequests, retryAfter: "1"}
	sim, c := newSite(t, sitesim.Config{}, f.wrap, site.Config{})
	seed(sim, 1)
	start := time.Now()
	_, err := c.Get(context.Background(), sim.Users()[0].ID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(time.Since(start)).To(BeNumerically(">=", time.Second))
	g.Expect(f.times).To(HaveLen(2))
	g.Expect(f.times[1].Sub(f.times[0])).To(BeNumerically(">=", time.Second))
}

func TestClient_longRetryAfterIsReturnedToTheCaller(t *testing.T) {
	g := NewWithT(t)
	f := &failFirst{n: 100, status: http.StatusTooManyRequests, retryAfter: "120"}
	sim, c := newSite(t, sitesim.Config{}, f.wrap, site.Config{MaxRetryAfter: time.Second})
	seed(sim, 1)
	_, err := c.Get(context.Background(), "100001")
	g.Expect(site.StatusCode(err)).To(Equal(http.StatusTooManyRequests))
	g.Expect(site.RetryAfter(err)).To(Equal(120 * time.Second))
	g.Expect(site.IsUnreachable(err)).To(BeTrue())
	g.Expect(f.seen.Load()).To(BeEquivalentTo(1))
}

func TestClient_retriesServerErrorsABoundedNumberOfTimes(t *testing.T) {
	g := NewWithT(t)
	f := &failFirst{n: 1000, status: http.StatusServiceUnavailable}
	_, c := newSite(t, sitesim.Config{}, f.wrap, site.Config{MaxRetries: 3})
	_, err := c.Get(context.Background(), "1")
	g.Expect(site.StatusCode(err)).To(Equal(http.StatusServiceUnavailable))
	g.Expect(site.IsUnreachable(err)).To(BeTrue())
	g.Expect(f.seen.Load()).To(BeEquivalentTo(4))

	// A transient failure is retried through to success.
	f2 := &failFirst{n: 2, status: http.StatusBadGateway}
	sim, c2 := newSite(t, sitesim.Config{}, f2.wrap, site.Config{})
	seed(sim, 1)
	_, err = c2.Patch(context.Background(), sim.Users()[0].ID, []site.PatchOp{site.Replace(site.PathTitle, "Engineer")})
	g.Expect(err).NotTo(HaveOccurred())
	u, _ := sim.User(sim.Users()[0].ID)
	g.Expect(u.Title).To(Equal("Engineer"))
}

func TestClient_postIsNotRetriedAfterAServerError(t *testing.T) {
	g := NewWithT(t)
	f := &failFirst{n: 1, status: http.StatusServiceUnavailable}
	sim, c := newSite(t, sitesim.Config{CreateUsers: true}, f.wrap, site.Config{})
	_, err := c.Create(context.Background(), site.User{UserName: "a@example.com", Active: true})
	g.Expect(site.StatusCode(err)).To(Equal(http.StatusServiceUnavailable))
	g.Expect(sim.Users()).To(BeEmpty())
	g.Expect(f.seen.Load()).To(BeEquivalentTo(1))
}

func TestClient_timesOutSlowRequests(t *testing.T) {
	g := NewWithT(t)
	sim, c := newSite(t, sitesim.Config{Latency: sitesim.Duration(time.Second)}, nil, site.Config{Timeout: 100 * time.Millisecond, MaxRetries: 1})
	seed(sim, 1)
	start := time.Now()
	_, err := c.Get(context.Background(), sim.Users()[0].ID)
	var te *site.TransportError
	g.Expect(errors.As(err, &te)).To(BeTrue(), "got %v", err)
	g.Expect(site.IsUnreachable(err)).To(BeTrue())
	g.Expect(time.Since(start)).To(BeNumerically("<", 900*time.Millisecond))
}

func TestClient_parsesErrorMessages(t *testing.T) {
	g := NewWithT(t)
	_, c := newSite(t, sitesim.Config{}, nil, site.Config{})
	_, err := c.Get(context.Background(), "999")
	var se *site.Error
	g.Expect(errors.As(err, &se)).To(BeTrue())
	g.Expect(se.StatusCode).To(Equal(http.StatusNotFound))
	g.Expect(se.Message).To(Equal("Could not find user with id 999"))
	g.Expect(site.IsNotFound(err)).To(BeTrue())
	g.Expect(err.Error()).To(ContainSubstring("GET /users/999: 404: Could not find user with id 999"))
}

func TestClient_createUnsupportedMeansWaitForSignIn(t *testing.T) {
	g := NewWithT(t)
	_, c := newSite(t, sitesim.Config{CreateUsers: false}, nil, site.Config{})
	_, err := c.Create(context.Background(), site.User{UserName: "a@example.com", Active: true})
	g.Expect(errors.Is(err, site.ErrCreateUnsupported)).To(BeTrue())
}

func TestClient_createsAndPatches(t *testing.T) {
	g := NewWithT(t)
	sim, c := newSite(t, sitesim.Config{CreateUsers: true, AllowModeratorPromotion: true}, nil, site.Config{})
	u, err := c.Create(context.Background(), site.User{UserName: "a@example.com", ExternalID: "okta-1", GivenName: "Ada", FamilyName: "Lovelace",
		DisplayName: "Ada Lovelace", Email: "a@example.com", Active: true, Title: "Engineer", Department: "R&D"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(u.ID).To(MatchRegexp(`^\d+$`))
	g.Expect(u.Role).To(Equal(site.RoleRegistered))
	g.Expect(u.ProfileURL).To(HaveSuffix("/accounts/" + u.ID))
	got, err := c.Patch(context.Background(), u.ID, []site.PatchOp{
		site.Replace(site.PathActive, false), site.Replace(site.PathUserType, "Moderator"),
		site.Replace(site.PathDepartment, "Ops"), site.Replace(site.PathEmails, site.EmailValue("b@example.com")),
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Active).To(BeFalse())
	g.Expect(got.Role).To(Equal(site.RoleModerator))
	g.Expect(got.Department).To(Equal("Ops"))
	g.Expect(got.Email).To(Equal("b@example.com"))
	g.Expect(got.ExternalID).To(Equal("okta-1"), "PATCH leaves other attributes alone")
	g.Expect(sim.Requests()[sitesim.CountPutUser]).To(BeZero())
}

func TestClient_patchReadsTheRoleBack(t *testing.T) {
	g := NewWithT(t)
	// The site's own switches are off: it answers 200 and keeps the role.
	sim, c := newSite(t, sitesim.Config{}, nil, site.Config{})
	seed(sim, 1)
	id := sim.Users()[0].ID
	got, err := c.Patch(context.Background(), id, []site.PatchOp{site.Replace(site.PathUserType, "Admin")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Role).To(Equal(site.RoleRegistered))
	g.Expect(sim.Requests()[sitesim.CountGetUser]).To(BeEquivalentTo(1))
}

func TestClient_neverPutsTheTokenInErrors(t *testing.T) {
	g := NewWithT(t)
	_, c := newSite(t, sitesim.Config{}, nil, site.Config{Token: "wrong-token-77aa"})
	_, err := c.Get(context.Background(), "1")
	g.Expect(site.IsUnauthorized(err)).To(BeTrue())
	g.Expect(err.Error()).NotTo(ContainSubstring("wrong-token-77aa"))
	g.Expect(err.Error()).NotTo(ContainSubstring(token))

	_, err = site.New(site.Config{URL: "http://user:hunter2@[::1", Token: "x"})
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).NotTo(ContainSubstring("hunter2"))
}

func TestClient_sendsItsUserAgentAndRateLimits(t *testing.T) {
	g := NewWithT(t)
	f := &failFirst{}
	sim, c := newSite(t, sitesim.Config{}, f.wrap, site.Config{RequestsPerSecond: 10, Burst: 1})
	seed(sim, 1)
	id := sim.Users()[0].ID
	start := time.Now()
	for range 6 {
		_, err := c.Get(context.Background(), id)
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(time.Since(start)).To(BeNumerically(">=", 450*time.Millisecond))
	g.Expect(f.agents[0]).To(HavePrefix("stack-scim-operator/"))
}

func TestClients_reuseAClientUntilItsConfigChanges(t *testing.T) {
	g := NewWithT(t)
	var cs site.Clients
	a, err := cs.For("ns/t", site.Config{URL: "http://site/api/scim/v2", Token: "a"})
	g.Expect(err).NotTo(HaveOccurred())
	b, _ := cs.For("ns/t", site.Config{URL: "http://site/api/scim/v2", Token: "a"})
	g.Expect(b).To(BeIdenticalTo(a))
	c, _ := cs.For("ns/t", site.Config{URL: "http://site/api/scim/v2", Token: "rotated"})
	g.Expect(c).NotTo(BeIdenticalTo(a))
	_, err = cs.For("ns/t", site.Config{URL: "ftp://site", Token: "a"})
	g.Expect(err).To(HaveOccurred())
	g.Expect(strings.Contains(err.Error(), "rotated")).To(BeFalse())
}

func TestClient_lookupIsOneRequestWhenTheSiteTakesOrFilters(t *testing.T) {
	g := NewWithT(t)
	sim, c := newSite(t, sitesim.Config{}, nil, site.Config{})
	seed(sim, 150)
	ctx := context.Background()
	// externalId wins over userName when they name different users.
	u, how, err := c.Lookup(ctx, "ext-140", "user7@example.com")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(how).To(Equal("externalId"))
	g.Expect(u.UserName).To(Equal("User140@Example.com"))
	u, how, err = c.Lookup(ctx, "ext-unknown", "USER7@example.com")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(how).To(Equal("userName"))
	g.Expect(u.ExternalID).To(Equal("ext-7"))
	u, _, err = c.Lookup(ctx, "ext-unknown", "nobody@example.com")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(u).To(BeNil())
	g.Expect(sim.Requests()[sitesim.CountTotal]).To(BeEquivalentTo(3))
}

func TestClient_lookupFallsBackWhenOrFiltersAreRefused(t *testing.T) {
	g := NewWithT(t)
	sim, c := newSite(t, sitesim.Config{FilterOrUnsupported: true}, nil, site.Config{})
	seed(sim, 150)
	ctx := context.Background()
	u, how, err := c.Lookup(ctx, "ext-unknown", "user9@example.com")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(how).To(Equal("userName"))
	g.Expect(u.ExternalID).To(Equal("ext-9"))
	// The refused `or`, then one filter per attribute.
	g.Expect(sim.Requests()[sitesim.CountListUsers]).To(BeEquivalentTo(3))
	// Learned: no more `or` attempts.
	_, how, err = c.Lookup(ctx, "ext-3", "user9@example.com")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(how).To(Equal("externalId"))
	g.Expect(sim.Requests()[sitesim.CountListUsers]).To(BeEquivalentTo(4))
}

func TestClient_lookupListsOnceWhenFiltersAreUnsupported(t *testing.T) {
	g := NewWithT(t)
	sim, c := newSite(t, sitesim.Config{FilterUnsupported: true}, nil, site.Config{})
	seed(sim, 250)
	ctx := context.Background()
	// Learn that filters fail.
	_, err := c.FindByUserName(ctx, "user1@example.com")
	g.Expect(err).NotTo(HaveOccurred())
	before := sim.Requests()[sitesim.CountListUsers]
	u, how, err := c.Lookup(ctx, "ext-unknown", "user240@example.com")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(how).To(Equal("userName"))
	g.Expect(u.ExternalID).To(Equal("ext-240"))
	g.Expect(sim.Requests()[sitesim.CountListUsers]-before).To(BeEquivalentTo(3), "one pass over three pages")
}

func TestClient_createWithARoleTrustsTheAnswer(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	// The site's admin switch is off: it creates the user as Registered and says so.
	sim, c := newSite(t, sitesim.Config{CreateUsers: true, AllowModeratorPromotion: true}, nil, site.Config{})
	u, err := c.Create(ctx, site.User{UserName: "m@example.com", Active: true, Role: site.RoleModerator})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(u.Role).To(Equal(site.RoleModerator))
	u, err = c.Create(ctx, site.User{UserName: "a@example.com", Active: true, Role: site.RoleAdmin})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(u.Role).To(Equal(site.RoleRegistered))
	g.Expect(sim.Requests()[sitesim.CountGetUser]).To(BeZero())

	sim, c = newSite(t, sitesim.Config{CreateUsers: true}, nil, site.Config{ReadBackCreate: true})
	u, err = c.Create(ctx, site.User{UserName: "a@example.com", Active: true, Role: site.RoleAdmin})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(u.Role).To(Equal(site.RoleRegistered))
	g.Expect(sim.Requests()[sitesim.CountGetUser]).To(BeEquivalentTo(1))
}

func TestClient_a429HoldsEveryCallerOfTheTenant(t *testing.T) {
	g := NewWithT(t)
	f := &failFirst{n: 1, status: http.StatusTooManyRequests, retryAfter: "1"}
	const tenant = "pause-ns/okta"
	sim, c := newSite(t, sitesim.Config{}, f.wrap, site.Config{Tenant: tenant})
	seed(sim, 1)
	id := sim.Users()[0].ID
	ctx := context.Background()
	first := make(chan error, 1)
	go func() { _, err := c.Get(ctx, id); first <- err }()
	// The retry is counted once the client holds its requests.
	g.Eventually(func() float64 {
		families, err := metrics.Registry.Gather()
		g.Expect(err).NotTo(HaveOccurred())
		for _, mf := range families {
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if mf.GetName() == "stackscim_site_retries_total" && lp.GetName() == "tenant" && lp.GetValue() == tenant {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		return 0
	}).Should(BeEquivalentTo(1))
	// A second caller arriving while the first waits out Retry-After waits too.
	_, err := c.Get(ctx, id)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(<-first).NotTo(HaveOccurred())
	f.mu.Lock()
	defer f.mu.Unlock()
	g.Expect(f.times).To(HaveLen(3))
	for _, at := range f.times[1:] {
		g.Expect(at.Sub(f.times[0])).To(BeNumerically(">=", time.Second))
	}
}
