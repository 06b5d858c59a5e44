package audit

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var eventsDropped = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "stackscim_audit_events_dropped_total",
	Help: "Audit Events not sent because of the Event rate limit; the history and the log lines still hold the entries.",
})

func init() { metrics.Registry.MustRegister(eventsDropped) }
