package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	offboardingBlocked = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stackscim_offboarding_blocked_total",
		Help: "Reconciles of a deleted StackUser that could not reach its site because its tenant or site token is gone; the finalizer stays.",
	}, []string{"namespace"})
	offboardingSkipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stackscim_offboarding_skipped_total",
		Help: "Deleted StackUsers released without touching the site because of the skip-offboarding annotation.",
	}, []string{"namespace"})
)

func init() { metrics.Registry.MustRegister(offboardingBlocked, offboardingSkipped) }
