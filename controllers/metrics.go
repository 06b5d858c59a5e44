package controllers

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/index"
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

// Reconcile metrics under the stackscim_ prefix; the chart's PrometheusRule alerts on them.
var (
	driftFound = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stackscim_drift_found_total",
		Help: "Fields found changed by hand on the site, by tenant and drift policy (Enforce: put back; Report: recorded once per distinct drift).",
	}, []string{"tenant", "policy"})
	driftCorrected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stackscim_drift_corrected_total",
		Help: "Fields changed by hand on the site that the operator put back (driftPolicy Enforce), by tenant.",
	}, []string{"tenant"})
	roleChangesBlocked = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stackscim_role_changes_blocked_total",
		Help: "Role changes recorded as blocked because a promotion switch is off, by tenant.",
	}, []string{"tenant"})
	changesHeld = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stackscim_changes_held_total",
		Help: "Deactivations and demotions the brake held back (spec.safety.maxDeactivationsPerHour), by tenant; counted once per hold.",
	}, []string{"tenant"})
	heldDesc = prometheus.NewDesc("stackscim_changes_held",
		"StackUsers whose deactivation or demotion the brake holds now, by tenant.",
		[]string{"tenant"}, nil)
	plannedDesc = prometheus.NewDesc("stackscim_planned_changes",
		"StackUsers with changes planned in Observe mode, by tenant.",
		[]string{"tenant"}, nil)
	backlogDesc = prometheus.NewDesc("stackscim_reconcile_backlog",
		"StackUsers whose latest spec the operator has not yet brought to the site (generation not observed), by tenant.",
		[]string{"tenant"}, nil)
	tenantReadyDesc = prometheus.NewDesc("stackscim_tenant_ready",
		"1 when the tenant's ScimSettings has condition Ready=True, else 0, by tenant.",
		[]string{"tenant"}, nil)
)

func init() {
	metrics.Registry.MustRegister(driftFound, driftCorrected, roleChangesBlocked, changesHeld, backlog, offboardingBlocked, offboardingSkipped)
}

// tenantLabel is the tenant metric label of a reconcile: namespace/name of its ScimSettings.
func tenantLabel(s *scope) string {
	if s.tenant == nil || s.tenant.settings == nil {
		return s.key.Namespace + "/"
	}
	return s.tenant.settings.Namespace + "/" + s.tenant.settings.Name
}

// observeDrift counts the drift an Enforce reconcile planned to put back and what it did.
func observeDrift(s *scope) {
	for _, p := range s.planned {
		if !p.drift {
			continue
		}
		driftFound.WithLabelValues(tenantLabel(s), string(scimv1.DriftEnforce)).Inc()
		if s.after != nil && p.field.equal(p.field.have(s.after), p.want) {
			driftCorrected.WithLabelValues(tenantLabel(s)).Inc()
		}
	}
}

// backlogCollector reports, at scrape time, each tenant's readiness and the users waiting
// for a reconcile, from the manager's cache (no API call, no copy of the users).
type backlogCollector struct {
	reader atomic.Pointer[client.Reader]
}

var backlog = &backlogCollector{}

// watchBacklog points the collector at a manager's cache (the last manager set up wins;
// one per process in production).
func watchBacklog(r client.Reader) { backlog.reader.Store(&r) }

func (b *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogDesc
	ch <- tenantReadyDesc
	ch <- heldDesc
	ch <- plannedDesc
}

func (b *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	rp := b.reader.Load()
	if rp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var tenants scimv1.ScimSettingsList
	if err := (*rp).List(ctx, &tenants); err != nil {
		return // the cache is not synced yet (or stopping): no sample rather than a wrong one
	}
	for _, t := range tenants.Items {
		ready := 0.0
		if meta.IsStatusConditionTrue(t.Status.Conditions, scimv1.ConditionReady) {
			ready = 1
		}
		ch <- prometheus.MustNewConstMetric(tenantReadyDesc, prometheus.GaugeValue, ready, t.Namespace+"/"+t.Name)
		waiting, held, planned := 0, 0, 0
		err := index.EachUser(ctx, *rp, t.Namespace, t.Name, func(u *scimv1.StackUser) {
			if (u.Generation != u.Status.ObservedGeneration || u.DeletionTimestamp != nil) && !waitsOnPurpose(u) {
				waiting++
			}
			switch {
			case u.Status.HeldSince != nil:
				held++
			case len(u.Status.PlannedChanges) > 0:
				planned++
			}
		})
		if err == nil {
			label := t.Namespace + "/" + t.Name
			ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(waiting), label)
			ch <- prometheus.MustNewConstMetric(heldDesc, prometheus.GaugeValue, float64(held), label)
			ch <- prometheus.MustNewConstMetric(plannedDesc, prometheus.GaugeValue, float64(planned), label)
		}
	}
}
