package bench

import (
	"fmt"
	"log"
	"net/http"
	"net/url"
	"time"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

// siteLimit is a tenant's spec.site rate limit; zero fields take the CRD defaults.
type siteLimit struct{ rps, burst int32 }

// unlimited is what a site admin sets for a bulk import the site allows.
var unlimited = siteLimit{1000, 1000}

// timeToSite measures, for one user at a time, the time from the SCIM 2xx to the moment
// the site shows the change: first with an instant site under three client rate limits
// (the former default 10/s burst 20, the current default, none), which isolates what the
// limiter adds; then with the default limit and the simulated site latency.
func (h *harness) timeToSite() error {
	n := h.cfg.ProbeUsers
	if n <= 0 {
		return nil
	}
	instant, instantAdmin, err := h.site("site-latency-0", 0)
	if err != nil {
		return err
	}
	slow, slowAdmin, err := h.site("site-latency", h.cfg.SiteLatency)
	if err != nil {
		return err
	}
	type run struct {
		ns, what, admin string
		site            string
		limit           siteLimit
		gap             time.Duration // pause between users: idle is one user now and then
		target          bool
	}
	runs := []run{
		{"lat-old", "instant site, former limit 10/s burst 20, back to back", instantAdmin, instant, siteLimit{10, 20}, 0, false},
		{"lat-default", "instant site, default limit, back to back", instantAdmin, instant, siteLimit{}, 0, false},
		{"lat-off", "instant site, no limit, back to back", instantAdmin, instant, unlimited, 0, false},
		{"lat-idle", fmt.Sprintf("site %s, default limit, idle", h.cfg.SiteLatency), slowAdmin, slow, siteLimit{}, 250 * time.Millisecond, true},
	}
	var nss []string
	tenants := map[string]*scimv1.ScimSettings{}
	for _, r := range runs {
		st, err := h.tenantWith(r.ns, r.site, r.limit)
		if err != nil {
			return err
		}
		tenants[r.ns], nss = st, append(nss, r.ns)
	}
	m, err := h.manager("manager-latency", joinNS(nss), tenants[runs[0].ns])
	if err != nil {
		return err
	}
	defer m.proc.Stop()
	for _, r := range runs {
		base := m.base + tenants[r.ns].EffectiveBasePath()
		if err := waitFor(60*time.Second, func() bool {
			code, _, err := call(http.MethodGet, base+"/Users?count=0", idpToken, nil, nil)
			return err == nil && code == http.StatusOK
		}); err != nil {
			return fmt.Errorf("tenant %s never served: %w", r.ns, err)
		}
		log.Printf("time to site: %d users one after another, %s", n, r.what)
		create, deactivate, err := probeUsers(base, r.admin, r.ns, n, r.gap)
		if err != nil {
			return fmt.Errorf("%s: %w", r.ns, err)
		}
		id := "time_to_site." + r.ns
		for _, f := range []struct {
			op  string
			lat []time.Duration
		}{{"create", create}, {"deactivate", deactivate}} {
			p50 := h.figure(id+"."+f.op+".p50", fmt.Sprintf("time to site, %s p50 (%s)", f.op, r.what), "ms")
			p50.Samples = []float64{Percentile(f.lat, 50)}
			p99 := h.figure(id+"."+f.op+".p99", fmt.Sprintf("time to site, %s p99 (%s)", f.op, r.what), "ms")
			p99.Samples = []float64{Percentile(f.lat, 99)}
			if r.target {
				p99.Check("< 150 ms", 150, true)
				p99.Explain("the slowest of the samples: two site calls of " + h.cfg.SiteLatency.String() + " (a lookup or GET, then the write), the reconcile and one status write, on a 2-core machine shared with the API server")
			}
		}
	}
	return nil
}

// probeUsers creates n users one after another through SCIM, each timed from the 201 to
// the site showing it, then deactivates them the same way; gap separates users.
func probeUsers(scim, admin, prefix string, n int, gap time.Duration) (create, deactivate []time.Duration, err error) {
	ids := make([]string, n)
	for i := range n {
		time.Sleep(gap)
		name := fmt.Sprintf("%s-probe%03d@example.com", prefix, i)
		var created struct {
			ID string `json:"id"`
		}
		code, _, err := call(http.MethodPost, scim+"/Users", idpToken, scimUser(name, fmt.Sprintf("%s-probe-%d", prefix, i)), &created)
		if err != nil || code != http.StatusCreated {
			return nil, nil, callErr("POST "+name, code, err)
		}
		start := time.Now()
		if err := untilSite(admin, name, true); err != nil {
			return nil, nil, err
		}
		create = append(create, time.Since(start))
		ids[i] = created.ID
	}
	off := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"active": false}}}}
	for i, id := range ids {
		time.Sleep(gap)
		name := fmt.Sprintf("%s-probe%03d@example.com", prefix, i)
		code, _, err := call(http.MethodPatch, scim+"/Users/"+id, idpToken, off, nil)
		if err != nil || code != http.StatusOK {
			return nil, nil, callErr("PATCH "+name, code, err)
		}
		start := time.Now()
		if err := untilSite(admin, name, false); err != nil {
			return nil, nil, err
		}
		deactivate = append(deactivate, time.Since(start))
	}
	return create, deactivate, nil
}

// untilSite polls the simulator's admin endpoint (not the SCIM API, so it costs the
// operator's site budget nothing) until userName exists with the given activation.
func untilSite(admin, userName string, active bool) error {
	return poll(60*time.Second, 2*time.Millisecond, func() bool {
		var u sitesim.User
		code, _, err := call(http.MethodGet, admin+"/_sim/users?userName="+url.QueryEscape(userName), "", nil, &u)
		return err == nil && code == http.StatusOK && u.Active == active
	})
}
