package bench

import (
	"fmt"
	"log"
	"net/http"
	"time"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

// shardScenario runs two managers side by side, as the chart's `shards` renders them:
// each watches its own tenant's namespace, holds only that tenant's objects, and serves
// only its tenant. Then the second tenant moves to the first shard (its manager restarted
// with both namespaces, as a values change does) and must keep working: all its users
// served, a new user provisioned to its site.
func (h *harness) shardScenario() error {
	n := h.cfg.ShardUsers
	if n <= 0 {
		return nil
	}
	type shard struct {
		ns, prefix, site, admin string
		st                      *scimv1.ScimSettings
		m                       *manager
	}
	shards := []*shard{{ns: "shard-a", prefix: "sa"}, {ns: "shard-b", prefix: "sb"}}
	for _, s := range shards {
		var err error
		if s.site, s.admin, err = h.site("site-"+s.ns, h.cfg.SiteLatency); err != nil {
			return err
		}
	}
	for _, s := range shards {
		var err error
		if s.st, err = h.tenant(s.ns, s.site); err != nil {
			return err
		}
		if err := h.realisticFill(s.ns, s.st.Name, s.admin, s.prefix, n); err != nil {
			return err
		}
		if s.m, err = h.manager("manager-"+s.ns, s.ns, s.st, "--scim-rate-limit=-1"); err != nil {
			return err
		}
	}
	for _, s := range shards {
		if err := waitFor(10*time.Minute, func() bool { t, err := s.m.total(); return err == nil && t >= n }); err != nil {
			return fmt.Errorf("%s never served %d users: %w", s.ns, n, err)
		}
	}
	for _, s := range shards {
		if err := settled(s.admin, 10*time.Second, 60*time.Minute); err != nil {
			return fmt.Errorf("%s: the reconcilers never settled: %w", s.ns, err)
		}
	}
	settle()
	for _, s := range shards {
		other := shards[0]
		if other == s {
			other = shards[1]
		}
		// A shard serves only its own tenants: the other's base path is unknown to it.
		code, _, err := call(http.MethodGet, s.m.base+other.st.EffectiveBasePath()+"/Users?count=0", idpToken, nil, nil)
		if err != nil || code != http.StatusNotFound {
			return callErr(s.ns+" answering for "+other.ns, code, err)
		}
		rss := h.figure("shards."+s.ns+".rss", fmt.Sprintf("two shards: %s manager RSS at rest (its tenant's %d users only)", s.ns, n), "MiB")
		heap := h.figure("shards."+s.ns+".heap", fmt.Sprintf("two shards: %s manager heap in use at rest", s.ns), "MiB")
		cpu := h.figure("shards."+s.ns+".cpu", fmt.Sprintf("two shards: %s manager CPU at rest", s.ns), "% of a core")
		if err := atRest(s.m, 1, rss, heap, cpu); err != nil {
			return err
		}
	}

	// The move: shard-b's namespace joins shard-a (a values change rolls both).
	a, b := shards[0], shards[1]
	log.Printf("moving %s to the first shard", b.ns)
	a.m.proc.Stop()
	b.m.proc.Stop()
	start := time.Now()
	m, err := h.manager("manager-shard-a-moved", a.ns+","+b.ns, a.st, "--scim-rate-limit=-1")
	if err != nil {
		return err
	}
	defer m.proc.Stop()
	moved := m.base + b.st.EffectiveBasePath()
	if err := waitFor(10*time.Minute, func() bool {
		var lr struct {
			TotalResults int `json:"totalResults"`
		}
		code, _, err := call(http.MethodGet, moved+"/Users?count=0", idpToken, nil, &lr)
		return err == nil && code == http.StatusOK && lr.TotalResults >= n
	}); err != nil {
		return fmt.Errorf("the moved tenant is not served: %w", err)
	}
	h.figure("shards.move.serving", fmt.Sprintf("tenant move: restart until the moved tenant serves its %d users", n), "s").Samples =
		[]float64{time.Since(start).Seconds()}
	name := "moved-probe@example.com"
	code, _, err := call(http.MethodPost, moved+"/Users", idpToken, scimUser(name, "moved-probe"), nil)
	if err != nil || code != http.StatusCreated {
		return callErr("POST to the moved tenant", code, err)
	}
	t0 := time.Now()
	if err := untilSite(b.admin, name, true); err != nil {
		return fmt.Errorf("a user created after the move never reached its site: %w", err)
	}
	f := h.figure("shards.move.time_to_site", "tenant move: a new user of the moved tenant reaches its site", "ms")
	f.Samples = []float64{float64(time.Since(t0)) / float64(time.Millisecond)}
	f.Note = "right after the move the manager reconciles both tenants' users once (start-up); the new user waits behind them"
	return nil
}
