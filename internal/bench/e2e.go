package bench

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"time"

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
	ratio := h.figure("e2e.ratio.direct", "end to end / direct", "x")
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
	if code, _, err := call(http.MethodPost, admin+"/_sim/reset", "", nil, nil); err != nil {
		return fmt.Errorf("resetting the simulator: %w", err)
	} else if code != http.StatusNoContent {
		return fmt.Errorf("resetting the simulator: HTTP %d", code)
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
	log.Printf("provisioning %d users through SCIM and the operator", cfg.E2EUsers)
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
	if st, err := simState(admin); err == nil {
		perUser.Samples = append(perUser.Samples, float64(st.Requests[sitesim.CountTotal])/float64(cfg.E2EUsers))
	}
	ratio.Samples = append(ratio.Samples, through.Samples[0]/direct.Samples[0])
	ratio.Check("<= 2x", 2, true)

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
	took := time.Since(start)
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
