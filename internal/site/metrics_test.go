package site_test

import (
	"context"
	"net/http"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/stackscim/stack-scim-operator/internal/site"
	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

// TestClient_metricsCountEachAttemptByTenantAndOutcome: a GET that meets a 429, then a
// 503, then succeeds shows up as three attempts (429, 5xx, 2xx), two retries and three
// latency samples under the tenant's label, on the registry the manager serves.
func TestClient_metricsCountEachAttemptByTenantAndOutcome(t *testing.T) {
	g := NewWithT(t)
	const tenant = "metrics-ns/okta"
	f := &failFirst{n: 1, status: http.StatusTooManyRequests}
	f503 := &failFirst{n: 1, status: http.StatusServiceUnavailable}
	sim, c := newSite(t, sitesim.Config{}, func(h http.Handler) http.Handler { return f.wrap(f503.wrap(h)) }, site.Config{Tenant: tenant})
	seed(sim, 1)
	_, err := c.Get(context.Background(), sim.Users()[0].ID)
	g.Expect(err).NotTo(HaveOccurred())

	families, err := metrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	count := func(name string, labels map[string]string) float64 {
		for _, mf := range families {
			if mf.GetName() != name {
				continue
			}
		metric:
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
						continue metric
					}
				}
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
		return 0
	}
	for outcome, want := range map[string]float64{"429": 1, "5xx": 1, "2xx": 1} {
		g.Expect(count("stackscim_site_requests_total", map[string]string{"tenant": tenant, "method": "GET", "outcome": outcome})).
			To(Equal(want), "outcome %s", outcome)
	}
	g.Expect(count("stackscim_site_retries_total", map[string]string{"tenant": tenant, "method": "GET"})).To(Equal(2.0))
	g.Expect(count("stackscim_site_request_duration_seconds", map[string]string{"tenant": tenant, "method": "GET"})).To(Equal(3.0))
}
