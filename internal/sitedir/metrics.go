package sitedir

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stackscim_site_accounts_refreshes_total",
		Help: "Reads of a tenant's site accounts for SCIM imports, by tenant (namespace/name) and result (ok, error). While they fail, SCIM lists show the tenant's StackUsers only.",
	}, []string{"tenant", "result"})
	accounts = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "stackscim_site_accounts_snapshot",
		Help: "Site accounts held in this replica's snapshot of a tenant's site (those not linked to a StackUser when read), by tenant.",
	}, []string{"tenant"})
)

func init() {
	metrics.Registry.MustRegister(refreshes, accounts)
}
