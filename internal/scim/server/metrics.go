package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stackscim_scim_requests_total",
		Help: "SCIM requests by tenant (namespace/name), operation (e.g. \"GET /Users\") and HTTP status code.",
	}, []string{"tenant", "operation", "code"})
	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "stackscim_scim_request_duration_seconds",
		Help:    "Latency of SCIM requests by tenant and operation.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"tenant", "operation"})
	statusWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stackscim_scim_status_writes_total",
		Help: "ScimSettings status writes of lastRequest/lastAuthFailure by result.",
	}, []string{"result"})
)

func init() {
	// Registered once per process with controller-runtime's registry, which the
	// manager's metrics endpoint serves.
	metrics.Registry.MustRegister(requestsTotal, requestDuration, statusWrites)
}
