package bench

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

// simState reads the simulator's users and request counters.
func simState(admin string) (*sitesim.State, error) {
	st := &sitesim.State{}
	code, _, err := call(http.MethodGet, admin+"/_sim/state", "", nil, st)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("simulator state: %d", code)
	}
	return st, err
}

// endToEnd provisions users through SCIM until the site shows them active with the right
// role, next to pushing the same users straight to the site; then measures one resync.
func (h *harness) endToEnd() error {
	cfg := h.cfg
	direct := h.figure("e2e.direct.time", fmt.Sprintf("direct to site: %d users", cfg.E2EUsers), "s")
	through := h.figure("e2e.operator.time", fmt.Sprintf("end to end via SCIM + operator: %d users", cfg.E2EUsers), "s")
	floor := h.figure("e2e.floor.time", fmt.Sprintf("floor (plain client: create, site lookup and create, status write): %d users", cfg.E2EUsers), "s")
	ratio := h.figure("e2e.ratio.direct", "end to end / direct", "x")
	floorRatio := h.figure("e2e.ratio.floor", "end to end / floor", "x")
	perUser := h.figure("e2e.site_requests_per_user", "site requests per provisioned user", "requests")
	requests := h.figure("resync.site_requests", fmt.Sprintf("site requests per resync @ %d users", cfg.E2EUsers), "requests")
	resync := h.figure("resync.time", fmt.Sprintf("resync time @ %d users", cfg.E2EUsers), "s")

	siteURL, admin, err := h.site("site-e2e", cfg.SiteLatency)
	if err != nil {
		return err
	}
	user := func(i int) map[string]any {
		u := scimUser(fmt.Sprintf("e2e%06d@example.com", i), fmt.Sprintf("e2e-%d", i))
		u["userType"] = []string{"Registered", "Moderator", "Admin"}[i%3]
		return u
	}

	log.Printf("pushing %d users straight to the site", cfg.E2EUsers)
	start := time.Now()
	if err := parallel(cfg.E2EUsers, cfg.Concurrency, func(i int) error {
		code, _, err := call(http.MethodPost, siteURL+"/users", siteToken, user(i), nil)
		if err != nil {
			return fmt.Errorf("direct POST %d: %w", i, err)
		}
		if code != http.StatusCreated {
			return fmt.Errorf("direct POST %d: HTTP %d", i, code)
		}
		return nil
	}); err != nil {
		return err
	}
	direct.Samples = append(direct.Samples, time.Since(start).Seconds())
	if err := resetSim(admin); err != nil {
		return err
	}

	log.Printf("the floor: %d users by a plain client", cfg.E2EUsers)
	took, err := h.floor("bench-floor", siteURL, cfg.E2EUsers)
	if err != nil {
		return err
	}
	floor.Samples = []float64{took.Seconds()}
	floor.Note = fmt.Sprintf("the API work the operator cannot avoid (one create, one status write per user) and its site calls (a lookup, a create), %d workers like the reconciler", floorWorkers)
	if err := resetSim(admin); err != nil {
		return err
	}

	const ns = "bench-e2e"
	st, err := h.tenant(ns, siteURL)
	if err != nil {
		return err
	}
	m, err := h.manager("manager-e2e", ns, st, "--scim-rate-limit=-1")
	if err != nil {
		return err
	}
	// People to offboard while the push runs, on the site before it starts.
	staff, err := provisionStaff(m.scim, admin, offboardStaff)
	if err != nil {
		return fmt.Errorf("provisioning the staff to offboard: %w", err)
	}
	offStop := make(chan struct{})
	offDone := make(chan []time.Duration)
	go func() { offDone <- offboardDuring(m.scim, admin, staff, offboardGap, offStop) }()
	log.Printf("provisioning %d users through SCIM and the operator", cfg.E2EUsers)
	// One user at a time, timed to the site, while the push runs.
	probeStop := make(chan struct{})
	probeDone := make(chan []time.Duration)
	go func() {
		var lat []time.Duration
		for i := 0; ; i++ {
			select {
			case <-probeStop:
				probeDone <- lat
				return
			default:
			}
			name := fmt.Sprintf("push-probe%04d@example.com", i)
			code, _, err := call(http.MethodPost, m.scim+"/Users", idpToken, scimUser(name, fmt.Sprintf("push-probe-%d", i)), nil)
			if err != nil || code != http.StatusCreated {
				continue
			}
			t0 := time.Now()
			if untilSite(admin, name, true) == nil {
				lat = append(lat, time.Since(t0))
			}
		}
	}()
	start = time.Now()
	if err := parallel(cfg.E2EUsers, cfg.Concurrency, func(i int) error {
		code, _, err := call(http.MethodPost, m.scim+"/Users", idpToken, user(i), nil)
		if err != nil {
			return fmt.Errorf("SCIM POST %d: %w", i, err)
		}
		if code != http.StatusCreated {
			return fmt.Errorf("SCIM POST %d: HTTP %d", i, code)
		}
		return nil
	}); err != nil {
		return err
	}
	// The simulator's state dump holds every user: polled at 10/s it would load the
	// machine being measured.
	if err := poll(30*time.Minute, 500*time.Millisecond, func() bool {
		st, err := simState(admin)
		if err != nil {
			return false
		}
		ok := 0
		for _, u := range st.Users {
			var i int
			if _, err := fmt.Sscanf(u.UserName, "e2e%06d@example.com", &i); err == nil && u.Active &&
				u.Role == []string{"Registered", "Moderator", "Admin"}[i%3] {
				ok++
			}
		}
		return ok == cfg.E2EUsers
	}); err != nil {
		return fmt.Errorf("users never converged on the site: %w", err)
	}
	through.Samples = append(through.Samples, time.Since(start).Seconds())
	close(probeStop)
	probes := <-probeDone
	close(offStop)
	offboarded := <-offDone
	if st, err := simState(admin); err == nil {
		// The probes are users provisioned like the others.
		// (The staff's creates and deactivations are in the count too: a rounding error.)
		perUser.Samples = append(perUser.Samples, float64(st.Requests[sitesim.CountTotal])/float64(cfg.E2EUsers+len(probes)+len(staff)))
	}
	ratio.Samples = append(ratio.Samples, through.Samples[0]/direct.Samples[0])
	ratio.Check("<= 2x", 2, true)
	ratio.Explain("the direct push makes no API write; the floor (one create and one status write per user, e2e.floor.time) is most of the gap on this machine")
	floorRatio.Samples = append(floorRatio.Samples, through.Samples[0]/floor.Samples[0])
	floorRatio.Check("<= 1.3x", 1.3, true)
	floorRatio.Explain("what the operator adds to the floor: the SCIM request (HTTP, JSON, admission of the create, its watch event in two caches) and audit Events, on the same 2 cores as kube-apiserver and etcd")
	for _, p := range []float64{50, 99} {
		f := h.figure(fmt.Sprintf("time_to_site.push.create.p%.0f", p), fmt.Sprintf("time to site, create p%.0f during the %d-user push (%d probes)", p, cfg.E2EUsers, len(probes)), "ms")
		f.Samples = []float64{Percentile(probes, p)}
		f.Note = "a user created during a bulk push queues behind the push's users (one work queue per manager)"
	}

	h.offboardingFigures(offboarded, cfg.E2EUsers)

	log.Printf("measuring one resync of %d users", cfg.E2EUsers)
	before, err := simState(admin)
	if err != nil {
		return err
	}
	cur := &scimv1.ScimSettings{}
	if err := h.env.Client.Get(context.Background(), client.ObjectKeyFromObject(st), cur); err != nil {
		return err
	}
	var last time.Time
	if cur.Status.LastResyncTime != nil {
		last = cur.Status.LastResyncTime.Time
	}
	// A resync period shorter than the time since the last one makes the next resync due now.
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Spec.ResyncPeriod = &metav1.Duration{Duration: 2 * time.Second}
	start = time.Now()
	if err := h.env.Client.Patch(context.Background(), cur, patch); err != nil {
		return err
	}
	if err := waitFor(10*time.Minute, func() bool {
		got := &scimv1.ScimSettings{}
		if err := h.env.Client.Get(context.Background(), client.ObjectKeyFromObject(st), got); err != nil {
			return false
		}
		return got.Status.LastResyncTime != nil && got.Status.LastResyncTime.After(last)
	}); err != nil {
		return fmt.Errorf("no resync happened: %w", err)
	}
	took = time.Since(start)
	after, err := simState(admin)
	if err != nil {
		return err
	}
	requests.Samples = append(requests.Samples, float64(after.Requests[sitesim.CountTotal]-before.Requests[sitesim.CountTotal]))
	resync.Samples = append(resync.Samples, took.Seconds())
	resync.Note = "from the settings change to lastResyncTime, so it includes up to one status write"
	m.proc.Stop()
	return nil
}

// poll calls ok every interval until it holds or timeout passes.
func poll(timeout, interval time.Duration, ok func() bool) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ok() {
			return nil
		}
		time.Sleep(interval)
	}
	return fmt.Errorf("timed out after %s", timeout)
}

func resetSim(admin string) error {
	code, _, err := call(http.MethodPost, admin+"/_sim/reset", "", nil, nil)
	if err != nil {
		return fmt.Errorf("resetting the simulator: %w", err)
	}
	if code != http.StatusNoContent {
		return fmt.Errorf("resetting the simulator: HTTP %d", code)
	}
	return nil
}

// floorWorkers is the floor's parallelism: the StackUser reconciler's default.
const floorWorkers = 32

// floor provisions n users as a plain client doing only what the operator cannot avoid:
// the StackUser create, the site lookup and create, and one status write (shaped like the
// reconciler's after a create). No SCIM server, no operator.
func (h *harness) floor(ns, siteURL string, n int) (time.Duration, error) {
	ctx := context.Background()
	if err := h.env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return 0, err
	}
	roles := []scimv1.Role{scimv1.RoleRegistered, scimv1.RoleModerator, scimv1.RoleAdmin}
	start := time.Now()
	err := parallel(n, floorWorkers, func(i int) error {
		u := fillUser(ns, "okta", "floor", i, roles[i%3])
		status := u.Status
		if err := h.env.Client.Create(ctx, u); err != nil {
			return err
		}
		q := url.Values{"filter": {fmt.Sprintf("externalId eq %q or userName eq %q", u.Spec.ExternalID, u.Spec.UserName)}}
		if code, _, err := call(http.MethodGet, siteURL+"/users?"+q.Encode(), siteToken, nil, nil); err != nil || code != http.StatusOK {
			return callErr(fmt.Sprintf("floor lookup %d", i), code, err)
		}
		body := scimUser(u.Spec.UserName, u.Spec.ExternalID)
		body["userType"] = string(roles[i%3])
		var created struct {
			ID string `json:"id"`
		}
		if code, _, err := call(http.MethodPost, siteURL+"/users", siteToken, body, &created); err != nil || code != http.StatusCreated {
			return callErr(fmt.Sprintf("floor create %d", i), code, err)
		}
		status.SiteID = created.ID
		status.History = status.History[len(status.History)-2:]
		u.Status = status
		return h.env.Client.Status().Update(ctx, u)
	})
	return time.Since(start), err
}
