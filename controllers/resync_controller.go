package controllers

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/clip"
	"github.com/stackscim/stack-scim-operator/internal/index"
	"github.com/stackscim/stack-scim-operator/internal/site"
	scimtenant "github.com/stackscim/stack-scim-operator/internal/tenant"
)

// ResyncReconciler reads each tenant's site back every resyncPeriod, in pages of 100
// rather than one request per user. StackUsers whose site user differs from them (drift),
// is gone, or has just appeared (first SAML sign-in of an unlinked user) are handed to the
// StackUserReconciler, which corrects or reports per driftPolicy. Site users no StackUser
// describes are counted in status.users.siteOnly and never touched.
type ResyncReconciler struct {
	client.Client
	// Sites hands out one rate-limited client per tenant (shared with the StackUser
	// reconciler, so both stay within the tenant's limit).
	Sites *site.Clients
	// Tenants reads tenants and their Secrets (internal/tenant.Reader); Client when nil.
	Tenants client.Reader
	// Cache, when set, is the manager's cache: the tenant's users are read in its index
	// in place, not copied (a copy of a 100,000-user tenant is a quarter of a gigabyte
	// per resync). Client when nil.
	Cache client.Reader
	// Enqueue receives the StackUsers to reconcile.
	Enqueue chan<- event.GenericEvent
	// Jitter spreads each period by up to ±Jitter (a fraction, default 0.1).
	Jitter float64
}

// +kubebuilder:rbac:groups=scim.stackscim.io,resources=scimsettings,verbs=get;list;watch
// +kubebuilder:rbac:groups=scim.stackscim.io,resources=scimsettings/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=scim.stackscim.io,resources=stackusers,verbs=get;list;watch
// +kubebuilder:rbac:groups=core,resources=secrets,verbs=get;list;watch

// Reconcile resyncs one tenant when its period is due and schedules the next resync.
func (r *ResyncReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	settings := &scimv1.ScimSettings{}
	if err := r.Get(ctx, req.NamespacedName, settings); err != nil {
		if client.IgnoreNotFound(err) == nil {
			r.Sites.Forget(req.String())
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	period := settings.EffectiveResyncPeriod()
	if !settings.IsEnabled() {
		return ctrl.Result{}, nil // enabling it is a spec change, which triggers us again
	}
	now := time.Now()
	if last := settings.Status.LastResyncTime; last != nil {
		if due := last.Add(period); now.Before(due) {
			return ctrl.Result{RequeueAfter: r.spread(due.Sub(now))}, nil
		}
	}
	t, te, err := loadTenant(ctx, tenantReader(r.Tenants, r.Client), r.Sites, req.Namespace, req.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	if te != nil {
		// The StackUsers carry the reason in their conditions; a fix re-triggers us.
		log.V(1).Info("tenant not usable, resync postponed", "reason", te.reason)
		return ctrl.Result{RequeueAfter: r.spread(period)}, nil
	}
	siteOnly, sample, err := r.resync(ctx, t)
	if err != nil {
		log.Info("resync failed", "error", err.Error())
		return ctrl.Result{}, err // retried with the controller's back-off
	}
	if err := r.recordStatus(ctx, settings, siteOnly, sample); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: r.spread(period)}, nil
}

func (r *ResyncReconciler) spread(d time.Duration) time.Duration {
	j := r.Jitter
	if j == 0 {
		j = 0.1
	}
	return max(jitter(d, j), time.Second)
}

// siteOnlySample is how many site-only accounts status.siteOnlyUsers names.
const siteOnlySample = 10

// resync lists the site and the tenant's StackUsers, enqueues the users that need a
// reconcile and counts the site-only users, naming the first ones.
func (r *ResyncReconciler) resync(ctx context.Context, t *tenant) (int32, []scimv1.SiteAccountSample, error) {
	settings := t.settings
	bySiteID := map[string]*scimv1.StackUser{}
	unlinkedByExt := map[string]*scimv1.StackUser{}
	unlinkedByName := map[string]*scimv1.StackUser{}
	// described holds every StackUser's userName (lower case) and externalId: a site
	// account with one of them is not site-only (the SCIM server's import uses the same rule).
	described := map[string]bool{}
	reader := r.Cache
	if reader == nil {
		reader = r.Client
	}
	// The maps hold the cache's own objects, read only, for the length of the resync.
	stackUsers := 0
	if err := index.EachUser(ctx, reader, settings.Namespace, settings.Name, func(u *scimv1.StackUser) {
		stackUsers++
		described["u:"+strings.ToLower(u.Spec.UserName)] = true
		if u.Spec.ExternalID != "" {
			described["e:"+u.Spec.ExternalID] = true
		}
		if !u.DeletionTimestamp.IsZero() {
			return
		}
		if u.Status.SiteID != "" {
			bySiteID[u.Status.SiteID] = u
			return
		}
		if u.Spec.ExternalID != "" {
			unlinkedByExt[u.Spec.ExternalID] = u
		}
		unlinkedByName[strings.ToLower(u.Spec.UserName)] = u
	}); err != nil {
		return 0, nil, err
	}

	var siteOnly int32
	var sample []scimv1.SiteAccountSample
	seen := map[string]bool{}
	enqueued := map[types.NamespacedName]bool{}
	enqueue := func(u *scimv1.StackUser) error {
		k := client.ObjectKeyFromObject(u)
		if enqueued[k] {
			return nil
		}
		enqueued[k] = true
		select {
		case r.Enqueue <- event.GenericEvent{Object: u}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := t.site.ListAll(ctx, func(page []site.User) error {
		for i := range page {
			su := &page[i]
			seen[su.ID] = true
			if u := bySiteID[su.ID]; u != nil {
				if needsSync(u, settings, su) {
					if err := enqueue(u); err != nil {
						return err
					}
				}
				continue
			}
			u := unlinkedByExt[su.ExternalID]
			if su.ExternalID == "" || u == nil {
				u = unlinkedByName[strings.ToLower(su.UserName)]
			}
			if u != nil {
				if observedUnchanged(u, su) {
					// Observe mode planned against exactly this account already.
					continue
				}
				// An unlinked StackUser's account appeared (first SAML sign-in): link it now.
				if err := enqueue(u); err != nil {
					return err
				}
				continue
			}
			if described["u:"+strings.ToLower(su.UserName)] || (su.ExternalID != "" && described["e:"+su.ExternalID]) {
				continue
			}
			siteOnly++
			if len(sample) < siteOnlySample {
				sample = append(sample, scimv1.SiteAccountSample{ID: clip.String(su.ID, 64), UserName: clipPlan(su.UserName), Active: su.Active})
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	for id, u := range bySiteID {
		if !seen[id] {
			// Removed on the site: the reconciler looks it up again or recreates it.
			if err := enqueue(u); err != nil {
				return 0, nil, err
			}
		}
	}
	logf.FromContext(ctx).V(1).Info("resync done", "siteUsers", len(seen), "stackUsers", stackUsers,
		"handedOver", len(enqueued), "siteOnly", siteOnly)
	return siteOnly, sample, nil
}

// observedUnchanged reports whether an unlinked StackUser (Observe mode plans a Link
// without linking) was last evaluated, at its current generation, against this very
// site account as it is now: a reconcile would plan the same again, at two site lookups.
func observedUnchanged(u *scimv1.StackUser, su *site.User) bool {
	o := u.Status.Site
	if o == nil || u.EvaluatedGeneration() != u.Generation || len(u.Status.PlannedChanges) == 0 ||
		u.Status.PlannedChanges[0].Action != scimv1.PlanLink || u.Status.PlannedChanges[0].New != su.ID {
		return false
	}
	now := observe(su, metav1.Time{})
	now.SyncTime = nil
	was := o.DeepCopy()
	was.SyncTime = nil
	return equality.Semantic.DeepEqual(was, now)
}

// needsSync reports whether the site user differs from the StackUser in a way a reconcile
// would act on. A role change that waits for a promotion switch is not such a difference:
// it is already recorded as blocked. A user marked Drifted is always handed over, so the
// condition clears once the site is put back by hand.
func needsSync(u *scimv1.StackUser, settings *scimv1.ScimSettings, su *site.User) bool {
	if meta.IsStatusConditionTrue(u.Status.Conditions, scimv1.ConditionDrifted) {
		return true
	}
	for _, d := range diffSite(u, su) {
		if d.field == fieldRole && !settings.PromotionAllowed(scimv1.Role(d.have), scimv1.Role(d.want)) &&
			meta.IsStatusConditionTrue(u.Status.Conditions, scimv1.ConditionRoleChangeBlocked) {
			continue
		}
		return true
	}
	return false
}

// recordStatus writes only status.users.siteOnly, siteOnlyUsers and lastResyncTime, the fields the
// resync owns, with a JSON merge patch and no lock: no other writer touches them, so it
// neither conflicts nor overwrites.
func (r *ResyncReconciler) recordStatus(ctx context.Context, settings *scimv1.ScimSettings, siteOnly int32, sample []scimv1.SiteAccountSample) error {
	var names any // null clears a sample from an earlier resync
	if len(sample) > 0 {
		names = sample
	}
	data, err := json.Marshal(map[string]any{"status": map[string]any{
		"lastResyncTime": metav1.Now(),
		"users":          map[string]any{"siteOnly": siteOnly},
		"siteOnlyUsers":  names,
	}})
	if err != nil {
		return err
	}
	return r.Status().Patch(ctx, settings, client.RawPatch(types.MergePatchType, data))
}

// SetupWithManager registers the resync: it runs per ScimSettings on spec changes (not on
// status writes) and then on its own schedule; a site token Secret change retries it.
func (r *ResyncReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.Tenants = defaultTenantReader(r.Tenants, mgr)
	return ctrl.NewControllerManagedBy(mgr).
		Named("resync").
		For(&scimv1.ScimSettings{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.settingsOfSecret)).
		Complete(r)
}

func (r *ResyncReconciler) settingsOfSecret(ctx context.Context, o client.Object) []reconcile.Request {
	return secretTenants(ctx, r.Client, o, scimtenant.SiteSecret)
}
