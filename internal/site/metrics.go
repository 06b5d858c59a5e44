package site

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Site call metrics, per attempt: what the alerts on site throttling and errors read.
var (
	requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stackscim_site_requests_total",
		Help: "Requests to the downstream sites by tenant (namespace/name), method and outcome: 2xx, 4xx, 429, 5xx, or error (no answer: refused, timeout). Every attempt counts, retries included.",
	}, []string{"tenant", "method", "outcome"})
	retriesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stackscim_site_retries_total",
		Help: "Requests to the downstream sites sent again after a 429, 5xx or timeout, by tenant and method.",
	}, []string{"tenant", "method"})
	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "stackscim_site_request_duration_seconds",
		Help:    "Latency of one attempt of a request to a downstream site (rate-limit wait excluded), by tenant and method.",
		Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	}, []string{"tenant", "method"})
)

func init() {
	metrics.Registry.MustRegister(requestsTotal, retriesTotal, requestDuration)
}

// observe records one attempt's outcome and latency.
func (c *Client) observe(method string, start time.Time, err error) {
	requestDuration.WithLabelValues(c.cfg.Tenant, method).Observe(time.Since(start).Seconds())
	requestsTotal.WithLabelValues(c.cfg.Tenant, method, outcome(err)).Inc()
}

// outcome is the metric label of an attempt's result.
func outcome(err error) string {
	var se *Error
	switch {
	case err == nil:
		return "2xx"
	case errors.As(err, &se) && se.StatusCode == 429:
		return "429"
	case errors.As(err, &se):
		return strconv.Itoa(se.StatusCode/100) + "xx"
	default:
		return "error"
	}
}
