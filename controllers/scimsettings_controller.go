package controllers

import (
	"context"
	"net/http"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/index"
	"github.com/stackscim/stack-scim-operator/internal/progress"
	scimtenant "github.com/stackscim/stack-scim-operator/internal/tenant"
)

// Defaults of the ScimSettingsReconciler's tunables.
const (
	DefaultSiteRecheckInterval = 5 * time.Minute
	DefaultMaxProbeTimeout     = 10 * time.Second
	DefaultCountDelay          = 5 * time.Second
	firstProbeBackoff          = 10 * time.Second
)

// ScimSettingsReconciler checks a tenant's Secrets and site credentials and publishes its
// SCIM endpoint, user counts and Ready condition. It writes only status.conditions,
// observedGeneration, basePath, url and the StackUser-derived user counts; other status
// fields belong to the SCIM server and the StackUser reconciler.
type ScimSettingsReconciler struct {
	// Client should be the manager's cached client.
	Client client.Client
	// Tenants reads tenants and their Secrets (internal/tenant.Reader); Client when nil.
	Tenants client.Reader
	// Cache, when set, is the manager's cache: users are counted in its index without
	// copying them. Without it they are listed through Client.
	Cache cache.Cache
	// ExternalURL is the public base URL of the SCIM server; status.url is ExternalURL +
	// the base path. Empty leaves status.url unset.
	ExternalURL string
	// Recorder, when set, receives an Event whenever Ready changes.
	Recorder events.EventRecorder
	// HTTPClient probes the site; a default client when nil.
	HTTPClient *http.Client
	// SiteRecheckInterval is how often a healthy site is tested again.
	SiteRecheckInterval time.Duration
	// MaxProbeTimeout bounds one site probe, whatever spec.site.timeout says: a worker must
	// not hang for the site's (long) request timeout.
	MaxProbeTimeout time.Duration
	// CountDelay coalesces StackUser changes: at most one count per tenant per CountDelay,
	// so a bulk import of 100k users does not cause 100k reconciles.
	CountDelay time.Duration
	// Progress is the StackUser reconciler's count of finished changes: the backlog's
	// rate and estimate come from it (nil: the backlog is counted without them).
	Progress *progress.Meter

	probes probeCache
}

// +kubebuilder:rbac:groups=scim.stackscim.io,resources=scimsettings,verbs=get;list;watch
// +kubebuilder:rbac:groups=scim.stackscim.io,resources=scimsettings/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=scim.stackscim.io,resources=stackusers,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile runs the phases in order and writes the status fields it owns once.
func (r *ScimSettingsReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var s scimv1.ScimSettings
	if err := r.Client.Get(ctx, req.NamespacedName, &s); err != nil {
		if apierrors.IsNotFound(err) {
			r.probes.forget(req.NamespacedName)
			r.Progress.Forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	st := &tenantState{conditions: slices.Clone(s.Status.Conditions)}
	phases := []func(context.Context, *scimv1.ScimSettings, *tenantState) error{
		r.checkCredentials,
		r.checkBasePath,
		r.checkSite,
		r.countUsers,
		r.checkHeld,
	}
	for _, phase := range phases {
		// Every expected failure is a condition; an error here is a transient API error,
		// retried with backoff without touching status.
		if err := phase(ctx, &s, st); err != nil {
			return ctrl.Result{}, err
		}
	}
	r.summarize(&s, st)
	if err := r.patchStatus(ctx, &s, st); err != nil {
		if apierrors.IsConflict(err) {
			// Our copy was stale (another writer's status write, a spec change): not an
			// error, just run again on the fresh copy.
			ctrl.LoggerFrom(ctx).V(1).Info("status changed meanwhile, reconciling again")
			return ctrl.Result{RequeueAfter: conflictRetry}, nil
		}
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: st.requeueAfter}, nil
}

// SetupWithManager registers the reconciler and its watches.
func (r *ScimSettingsReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.Tenants = defaultTenantReader(r.Tenants, mgr)
	// Other components write status (lastRequest on every SCIM call): only spec and
	// metadata changes need a reconcile.
	specChanged := predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{},
		predicate.LabelChangedPredicate{})
	return ctrl.NewControllerManagedBy(mgr).
		Named("scimsettings").
		For(&scimv1.ScimSettings{}, builder.WithPredicates(specChanged)).
		Watches(&scimv1.ScimSettings{}, r.basePathPeers(), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.settingsForSecret)).
		Watches(&scimv1.StackUser{}, r.tenantOfUser()).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Complete(r)
}

// settingsForSecret maps a Secret to the tenants referring to it, so a token rotation
// re-checks only those.
func (r *ScimSettingsReconciler) settingsForSecret(ctx context.Context, o client.Object) []reconcile.Request {
	return secretTenants(ctx, r.Client, o, scimtenant.AnySecret)
}

// basePathPeers re-queues every tenant sharing a base path with one that was created,
// deleted or changed, so a conflict resolves as soon as the older claimant goes away.
func (r *ScimSettingsReconciler) basePathPeers() handler.EventHandler {
	enqueue := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], self client.Object, paths ...string) {
		for _, p := range slices.Compact(paths) {
			var list scimv1.ScimSettingsList
			if err := r.Client.List(ctx, &list, client.MatchingFields{index.SettingsBasePath: p}, client.UnsafeDisableDeepCopy); err != nil {
				ctrl.LoggerFrom(ctx).Error(err, "listing ScimSettings by base path", "basePath", p)
				continue
			}
			for i := range list.Items {
				if list.Items[i].UID != self.GetUID() {
					q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
				}
			}
		}
	}
	path := func(o client.Object) string { return o.(*scimv1.ScimSettings).EffectiveBasePath() }
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q, e.Object, path(e.Object))
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q, e.ObjectNew, path(e.ObjectOld), path(e.ObjectNew))
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q, e.Object, path(e.Object))
		},
	}
}

// tenantOfUser queues a user's tenant for a recount after CountDelay. The queue keeps the
// earliest due time of an item, so a burst of user events costs one reconcile per tenant
// per CountDelay. Updates that leave tenant, role, activation, plan, hold and backlog
// alone are ignored.
func (r *ScimSettingsReconciler) tenantOfUser() handler.EventHandler {
	delay := r.CountDelay
	if delay <= 0 {
		delay = DefaultCountDelay
	}
	enqueue := func(q workqueue.TypedRateLimitingInterface[reconcile.Request], o client.Object) {
		u := o.(*scimv1.StackUser)
		q.AddAfter(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: u.Namespace, Name: u.Spec.SettingsRef.Name}}, delay)
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.Object)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			oldU, newU := e.ObjectOld.(*scimv1.StackUser), e.ObjectNew.(*scimv1.StackUser)
			if oldU.Spec.SettingsRef == newU.Spec.SettingsRef && oldU.IsActive() == newU.IsActive() &&
				userRoleOrEmpty(oldU) == userRoleOrEmpty(newU) && (oldU.DeletionTimestamp == nil) == (newU.DeletionTimestamp == nil) &&
				equality.Semantic.DeepEqual(oldU.Status.PlannedChanges, newU.Status.PlannedChanges) && oldU.Status.HeldSince.Equal(newU.Status.HeldSince) &&
				awaiting(oldU) == awaiting(newU) {
				return
			}
			enqueue(q, oldU)
			enqueue(q, newU)
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.Object)
		},
	}
}

func userRoleOrEmpty(u *scimv1.StackUser) scimv1.Role {
	// The enforced role (own attribute and mapped groups) once the reconciler has seen the
	// user; until then, what the IdP asked for.
	if u.Status.EffectiveRole != "" {
		return scimv1.Role(u.Status.EffectiveRole)
	}
	if u.Spec.Role == nil {
		return ""
	}
	return *u.Spec.Role
}

func (r *ScimSettingsReconciler) tenants() client.Reader {
	if r.Tenants != nil {
		return r.Tenants
	}
	return r.Client
}

func (r *ScimSettingsReconciler) recheckInterval() time.Duration {
	if r.SiteRecheckInterval > 0 {
		return r.SiteRecheckInterval
	}
	return DefaultSiteRecheckInterval
}

func (r *ScimSettingsReconciler) maxProbeTimeout() time.Duration {
	if r.MaxProbeTimeout > 0 {
		return r.MaxProbeTimeout
	}
	return DefaultMaxProbeTimeout
}
