package controllers

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
	"github.com/stackscim/stack-scim-operator/internal/brake"
	"github.com/stackscim/stack-scim-operator/internal/clip"
	"github.com/stackscim/stack-scim-operator/internal/index"
	"github.com/stackscim/stack-scim-operator/internal/progress"
	"github.com/stackscim/stack-scim-operator/internal/site"
	scimtenant "github.com/stackscim/stack-scim-operator/internal/tenant"
)

// StackUserReconciler enforces a StackUser on its tenant's site: it links (or creates) the
// site user, converges activation, role (within the tenant's promotion switches) and
// profile, records what it observed and did, and deactivates (or deletes) the site user
// when the StackUser goes away.
type StackUserReconciler struct {
	client.Client
	// Audit persists history entries and emits their Events and log lines.
	Audit *audit.Recorder
	// Sites hands out one rate-limited client per tenant.
	Sites *site.Clients
	// Tenants reads tenants and their Secrets (internal/tenant.Reader); Client when nil.
	Tenants client.Reader
	// APIReader reads the API server directly: used when the cache has not yet caught up
	// with this reconciler's own last status write. Optional.
	APIReader client.Reader
	// Resync delivers users the periodic resync found out of line with the site.
	Resync <-chan event.GenericEvent
	// Released delivers users the Brake releases.
	Released <-chan event.GenericEvent
	// MinBackoff and MaxBackoff bound the requeue delay after site failures.
	MinBackoff, MaxBackoff time.Duration
	// SignInWait is how long to wait before looking again for a site user that cannot be
	// created (it appears at the user's first SAML sign-in; the resync also finds it).
	SignInWait time.Duration
	// MaxConcurrentReconciles bounds parallel reconciles (default 32).
	MaxConcurrentReconciles int
	// Brake holds deactivations and demotions past a tenant's hourly cap; nil sends them
	// all (tests of other behaviour).
	Brake *brake.Brake
	// Progress counts the user changes finished per tenant, for the backlog estimate in
	// ScimSettings status (nil: not counted).
	Progress *progress.Meter

	retry *retryPolicy
	// siteIDs remembers the site id and resourceVersion last stored per StackUser (and its
	// UID), because the cache can lag behind the status patch: a relink would record a
	// second Link, and a stale status.site would make the operator's own last write look
	// like a hand edit on the site.
	siteIDs sync.Map
	// seen holds a seenSite per StackUser.
	seen sync.Map
}

type knownSite struct {
	uid             types.UID
	siteID          string
	resourceVersion string
}

// seenSite is the site user as this process last observed it, kept even when the status
// write that carries it fails: a reconcile that follows (from a stale copy, or after a
// conflict) must not take the operator's own last write for a hand edit. A nil site
// marks a user seen whose stored status.site is what was seen: once the cache shows the
// last write, the process keeps no second copy of it.
type seenSite struct {
	uid  types.UID
	site *scimv1.ObservedSiteUser
}

// behindOwnWrite reports whether the cached u predates this reconciler's last successful
// status write of it. resourceVersions are etcd revisions (integers); anything else is
// never called stale.
func (r *StackUserReconciler) behindOwnWrite(u *scimv1.StackUser) bool {
	v, ok := r.siteIDs.Load(client.ObjectKeyFromObject(u))
	if !ok || v.(knownSite).uid != u.UID {
		return false
	}
	cached, err1 := strconv.ParseUint(u.ResourceVersion, 10, 64)
	written, err2 := strconv.ParseUint(v.(knownSite).resourceVersion, 10, 64)
	return err1 == nil && err2 == nil && cached < written
}

func (r *StackUserReconciler) knownSiteID(u *scimv1.StackUser) string {
	if v, ok := r.siteIDs.Load(client.ObjectKeyFromObject(u)); ok && v.(knownSite).uid == u.UID {
		return v.(knownSite).siteID
	}
	return ""
}

// scope carries one reconcile's state through the phases.
type scope struct {
	user *scimv1.StackUser
	// orig is the user as read (after the finalizer was added): the base of the status
	// patch and the memory of the previous conditions.
	orig   *scimv1.StackUser
	key    types.NamespacedName
	now    metav1.Time
	tenant *tenant

	// siteUser is the site user as read before any write; after as the site shows it after.
	siteUser, after *site.User

	// roleSource says where the enforced role comes from (resolveGroups).
	roleSource string
	// groupsResolved says resolveGroups ran, so status.groups and effectiveRole are fresh.
	groupsResolved bool

	planned []plannedChange
	// plan holds the Link, Create (or offboarding) changes Observe mode shows ahead of
	// the field changes; planSet says this reconcile decided status.plannedChanges and
	// heldSince (an Observe plan or a hold).
	plan    []scimv1.PlannedChange
	planSet bool
	// releasedNote explains, in the audit entry, why a change the brake held goes out now.
	releasedNote string

	driftReports []scimv1.FieldChange
	entries      []scimv1.AuditEntry

	// Conditions decided by the phases; nil leaves the stored one alone.
	synced, roleBlocked, drifted *metav1.Condition

	// unapplied says the site is left out of line on purpose (an Observe plan, a held
	// change): status.observedGeneration stays, so the change keeps the IdP request as its
	// actor when it is applied, but the reconcile did not fail.
	unapplied bool

	// skipped says skipInLine found nothing to do: no status write.
	skipped bool

	// done stops the remaining phases; failed says the site is not in line (so
	// observedGeneration stays and the backoff grows); wrote says a write was sent to the
	// site, so its audit entries must survive a status conflict.
	done, failed, wrote bool
	requeueAfter        time.Duration
}

// plannedChange is one attribute to write to the site.
type plannedChange struct {
	field      *fieldSpec
	want, have string
	actor      scimv1.Actor
	drift      bool
}

type phase func(context.Context, *scope) error

func (r *StackUserReconciler) phases() []phase {
	return []phase{
		r.ensureFinalizer,
		r.loadTenant,
		r.checkUserName,
		r.resolveGroups,
		r.skipInLine,
		r.linkSiteUser,
		r.planActive,
		r.planRole,
		r.planProfile,
		r.holdDeactivations,
		r.applyChanges,
	}
}

// +kubebuilder:rbac:groups=scim.stackscim.io,resources=stackusers,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=scim.stackscim.io,resources=stackusers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=scim.stackscim.io,resources=stackusers/finalizers,verbs=update
// +kubebuilder:rbac:groups=scim.stackscim.io,resources=scimsettings,verbs=get;list;watch
// +kubebuilder:rbac:groups=scim.stackscim.io,resources=scimsettings/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=scim.stackscim.io,resources=stackgroups,verbs=get;list;watch
// +kubebuilder:rbac:groups=core,resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=core,resources=events,verbs=create;patch

// Reconcile brings one StackUser's site user in line, phase by phase, and records the
// outcome in the StackUser's status once, at the end.
func (r *StackUserReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	user := &scimv1.StackUser{}
	if err := r.Get(ctx, req.NamespacedName, user); err != nil {
		if apierrors.IsNotFound(err) {
			r.retry.reset(req.NamespacedName)
			r.siteIDs.Delete(req.NamespacedName)
			r.seen.Delete(req.NamespacedName)
			if r.Brake != nil {
				r.Brake.Forget(req.NamespacedName)
			}
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if r.APIReader != nil && r.behindOwnWrite(user) {
		// The phases compare the site with status.site; a copy from before our own last
		// write would attribute that write to a hand edit.
		if err := r.APIReader.Get(ctx, req.NamespacedName, user); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	s := &scope{user: user, orig: user.DeepCopy(), key: req.NamespacedName, now: metav1.Now()}
	if v, ok := r.seen.Load(req.NamespacedName); ok && v.(seenSite).uid == user.UID && v.(seenSite).site != nil {
		// Only this reconciler (on the leader) writes status.site: what it last saw is at
		// least as fresh as any copy it reads.
		if seen := v.(seenSite).site; equality.Semantic.DeepEqual(seen, user.Status.Site) {
			r.seen.Store(req.NamespacedName, seenSite{uid: user.UID})
		} else {
			s.orig.Status.Site = seen.DeepCopy()
		}
	}
	if !user.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, s)
	}
	defer func() { result, retErr = r.summarize(ctx, s, retErr) }()
	for _, p := range r.phases() {
		if err := p(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
		if s.done {
			break
		}
	}
	return ctrl.Result{}, nil
}

// fail stops the reconcile with Synced=False and a backed-off requeue.
func (r *StackUserReconciler) fail(s *scope, reason, message string, floor time.Duration) {
	s.synced = &metav1.Condition{Type: scimv1.ConditionSynced, Status: metav1.ConditionFalse, Reason: reason, Message: message}
	s.failed, s.done = true, true
	s.requeueAfter = r.retry.next(s.key, floor)
}

// siteFailure stops the reconcile after a failed site request.
func (r *StackUserReconciler) siteFailure(ctx context.Context, s *scope, what string, err error) {
	logf.FromContext(ctx).Info("site request failed", "what", what, "error", err.Error())
	r.fail(s, siteErrorReason(err), fmt.Sprintf("%s: %v", what, err), retryFloor(err))
}

// summarize derives Ready from the other conditions, patches the status (optimistic lock,
// so a concurrent history append is never overwritten), then appends the audit entries.
func (r *StackUserReconciler) summarize(ctx context.Context, s *scope, err error) (ctrl.Result, error) {
	if s.skipped && err == nil {
		// What the status says is what this process saw: later reconciles compare with it.
		r.seen.Store(s.key, seenSite{uid: s.orig.UID})
		return ctrl.Result{}, nil
	}
	u := s.user
	gen := u.Generation
	set := func(c *metav1.Condition) {
		if c != nil {
			// Messages quote the site; the API server caps them at 32 KiB.
			c.Message = clip.String(c.Message, maxConditionMessage)
			c.ObservedGeneration = gen
			meta.SetStatusCondition(&u.Status.Conditions, *c)
		}
	}
	if err == nil && !s.failed && s.synced == nil {
		s.synced = &metav1.Condition{Type: scimv1.ConditionSynced, Status: metav1.ConditionTrue, Reason: ReasonSynced,
			Message: "the site shows what the StackUser asks for, within the tenant's promotion switches and drift policy"}
	}
	set(s.synced)
	set(s.roleBlocked)
	set(s.drifted)
	if err == nil {
		set(readyCondition(u.Status.Conditions))
	}
	if err == nil && !s.failed {
		if !s.unapplied {
			u.Status.ObservedGeneration = gen
		}
		r.retry.reset(s.key)
	}
	if s.after != nil {
		u.Status.Site = observe(s.after, s.now)
	} else if s.siteUser != nil {
		u.Status.Site = observe(s.siteUser, s.now)
	}
	if u.Status.Site != nil {
		seen := u.Status.Site.DeepCopy()
		if seen.SyncTime != nil {
			// As the API server stores it (seconds), so it compares like a read-back copy.
			seen.SyncTime = &metav1.Time{Time: seen.SyncTime.Truncate(time.Second)}
		}
		r.seen.Store(s.key, seenSite{uid: u.UID, site: seen})
	}

	// History goes in the same patch, so status and its audit trail appear together: the
	// entries the SCIM server left pending on the object, then this reconcile's. The
	// patch is locked to the resourceVersion read, so a stale copy cannot record an entry
	// twice.
	limit := historyLimit(s)
	for i := range s.entries {
		s.entries[i].Time = s.now
	}
	trail, err := r.trail(ctx, s)
	if err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	pending := audit.Oldest(audit.Unrecorded(s.orig, trail, limit))
	fields := map[string]any{"conditions": u.Status.Conditions, "observedGeneration": u.Status.ObservedGeneration}
	if u.Status.SiteID != "" {
		fields["siteId"] = u.Status.SiteID
	}
	if u.Status.Site != nil {
		fields["site"] = u.Status.Site
	}
	groupStatusFields(s, fields)
	planStatusFields(s, fields)
	annotatePlanOrigin(s)
	if u.Status.Drift != nil || s.orig.Status.Drift != nil {
		fields["drift"] = append([]scimv1.DriftedField{}, u.Status.Drift...)
	}
	patchErr := r.Status().Patch(ctx, u, audit.NewStatusPatch(s.orig, trail, limit, fields, append(pending, s.entries...)...))
	switch {
	case patchErr == nil:
		r.siteIDs.Store(s.key, knownSite{uid: u.UID, siteID: u.Status.SiteID, resourceVersion: u.ResourceVersion})
		if s.orig.EvaluatedGeneration() < gen && u.EvaluatedGeneration() == gen {
			r.Progress.Done(tenantOf(u))
		}
		r.Audit.Event(u, pending...)
		r.Audit.Emit(u, s.entries...)
	case apierrors.IsNotFound(patchErr):
		return ctrl.Result{}, nil
	default:
		logf.FromContext(ctx).V(1).Info("status patch failed, requeueing", "error", patchErr.Error())
		if patchDidNotApply(patchErr) {
			// The history the patch was computed against is not the stored one: forget
			// what the cache said of it, so the retry reads it live.
			logf.FromContext(ctx).Info("status patch did not apply to the stored history; reading it live", "error", patchErr.Error())
			r.Audit.Trails.Forget(s.key)
		}
		if u.Status.SiteID != "" {
			// The site user exists (maybe created just now): the retry must not look it
			// up again, nor record a second link.
			r.siteIDs.Store(s.key, knownSite{uid: u.UID, siteID: u.Status.SiteID})
		}
		// A conflict usually means this reconcile worked from a stale copy; what it only
		// observed is recomputed by the retry, but what it wrote to the site is recorded now.
		if len(s.entries) > 0 && s.wrote {
			fresh := &scimv1.StackUser{}
			if gerr := r.Get(ctx, s.key, fresh); gerr == nil {
				if aerr := r.Audit.Append(ctx, fresh, limit, s.entries...); aerr != nil && err == nil {
					err = aerr
				}
			}
		}
		if err == nil && apierrors.IsConflict(patchErr) {
			// The spec changed while we worked (or the cache was behind): retry soon,
			// without an error in the log.
			return ctrl.Result{RequeueAfter: conflictRetry}, nil
		}
		if err == nil {
			err = patchErr
		}
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: s.requeueAfter}, nil
}

// patchDidNotApply reports whether the API server refused a status patch as not applying
// to the object (a JSON patch index past the stored history), rather than for a conflict.
func patchDidNotApply(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsBadRequest(err)
}

// trail is what the status patch needs of the history of the user as read: the trail the
// cache kept for that copy or, when the cache has moved on twice since, the history read
// live. An empty history is read live too: the first history is written with a merge
// patch, which would replace entries the cache did not show, so it is only used when the
// API server says there are none. The patch is locked to the copy's resourceVersion
// either way: a live read that is newer makes it conflict, and the conflict path records
// what this reconcile did.
func (r *StackUserReconciler) trail(ctx context.Context, s *scope) (audit.Trail, error) {
	if t, ok := r.Audit.Trails.Of(s.orig); ok && t.Len() > 0 {
		return t, nil
	}
	if r.APIReader == nil || r.Audit.Trails == nil {
		return audit.TrailOf(s.orig), nil
	}
	live := &scimv1.StackUser{}
	if err := r.APIReader.Get(ctx, s.key, live); err != nil {
		return audit.Trail{}, err
	}
	return audit.TrailOf(live), nil
}

// maxConditionMessage bounds a condition message.
const maxConditionMessage = 2048

// conflictRetry is how soon a reconcile whose status patch lost a race runs again.
const conflictRetry = 100 * time.Millisecond

func historyLimit(s *scope) int {
	if s.tenant != nil && s.tenant.settings != nil {
		return s.tenant.settings.EffectiveHistoryLimit()
	}
	return 20
}

// readyCondition summarises Synced, RoleChangeBlocked and Drifted.
func readyCondition(conds []metav1.Condition) *metav1.Condition {
	ready := &metav1.Condition{Type: scimv1.ConditionReady, Status: metav1.ConditionTrue, Reason: ReasonSynced,
		Message: "the site user is in line with the StackUser"}
	if c := meta.FindStatusCondition(conds, scimv1.ConditionSynced); c == nil || c.Status != metav1.ConditionTrue {
		ready.Status = metav1.ConditionFalse
		if c != nil {
			ready.Reason, ready.Message = c.Reason, c.Message
		} else {
			ready.Reason, ready.Message = "Unknown", "not synced yet"
		}
		return ready
	}
	if c := meta.FindStatusCondition(conds, scimv1.ConditionRoleChangeBlocked); c != nil && c.Status == metav1.ConditionTrue {
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, c.Reason, c.Message
		return ready
	}
	if c := meta.FindStatusCondition(conds, scimv1.ConditionDrifted); c != nil && c.Status == metav1.ConditionTrue {
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, c.Reason, c.Message
	}
	return ready
}

// ensureFinalizer makes sure deleting the StackUser reaches the site first.
func (r *StackUserReconciler) ensureFinalizer(ctx context.Context, s *scope) error {
	if controllerutil.ContainsFinalizer(s.user, scimv1.Finalizer) {
		return nil
	}
	base := s.user.DeepCopy()
	controllerutil.AddFinalizer(s.user, scimv1.Finalizer)
	if err := r.Patch(ctx, s.user, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return err
	}
	s.orig = s.user.DeepCopy()
	return nil
}

// loadTenant reads the ScimSettings and the site token.
func (r *StackUserReconciler) loadTenant(ctx context.Context, s *scope) error {
	t, te, err := loadTenant(ctx, tenantReader(r.Tenants, r.Client), r.Sites, s.user.Namespace, s.user.Spec.SettingsRef.Name)
	if err != nil {
		return err
	}
	if t != nil {
		s.tenant = t
	}
	if te != nil {
		r.fail(s, te.reason, te.message, 0)
		return nil
	}
	if !t.settings.IsEnabled() {
		// SCIM is switched off for the tenant, as on the site's own settings page: nothing
		// goes to the site until it is on again (the ScimSettings watch re-queues us).
		s.synced = &metav1.Condition{Type: scimv1.ConditionSynced, Status: metav1.ConditionFalse, Reason: ReasonTenantDisabled,
			Message: fmt.Sprintf("ScimSettings %q has enabled: false; the site is not changed until it is enabled", t.settings.Name)}
		s.failed, s.done = true, true
	}
	return nil
}

// checkUserName stops a StackUser whose userName an older StackUser of the tenant owns
// (two made with kubectl, which the SCIM server's uniqueness check does not see): the
// older one wins, so the two never fight over one site account.
func (r *StackUserReconciler) checkUserName(ctx context.Context, s *scope) error {
	var same scimv1.StackUserList
	if err := r.List(ctx, &same, client.InNamespace(s.user.Namespace),
		client.MatchingFields{index.UserNameLower: index.UserNameKey(s.user.Spec.SettingsRef.Name, s.user.Spec.UserName)}); err != nil {
		return err
	}
	owner := scimtenant.UserNameOwner(same.Items)
	if owner == nil || owner.UID == s.user.UID {
		return nil
	}
	r.fail(s, ReasonDuplicateUserName, fmt.Sprintf("StackUser %q, created earlier, has userName %q in this tenant and owns its site account; this one is not synced until the other is deleted or the userName changes",
		owner.Name, owner.Spec.UserName), r.SignInWait)
	return nil
}

// SetupWithManager registers the reconciler: StackUser spec changes, deletion and a removed
// finalizer trigger it (not its own status writes); so do changes to the tenant's
// ScimSettings spec or site token Secret, and the periodic resync.
func (r *StackUserReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.Tenants = defaultTenantReader(r.Tenants, mgr)
	if r.retry == nil {
		r.retry = newRetryPolicy(r.MinBackoff, r.MaxBackoff)
	}
	if r.SignInWait <= 0 {
		r.SignInWait = 2 * time.Minute
	}
	if r.MaxConcurrentReconciles <= 0 {
		r.MaxConcurrentReconciles = 32
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("stackuser").
		// Not For(): offboardingFirst puts deactivations, demotions and deletions ahead of
		// a bulk import's creates in the (priority) work queue.
		Watches(&scimv1.StackUser{}, offboardingFirst(), builder.WithPredicates(predicate.Or[client.Object](
			predicate.GenerationChangedPredicate{}, deletionOrFinalizerChanged(), groupLabelsChanged()))).
		Watches(&scimv1.ScimSettings{}, r.releaseHeld(), builder.WithPredicates(releaseHeldChanged())).
		Watches(&scimv1.StackGroup{}, handler.EnqueueRequestsFromMapFunc(r.membersOfGroup),
			builder.WithPredicates(groupMeaningChanged())).
		Watches(&scimv1.ScimSettings{}, handler.EnqueueRequestsFromMapFunc(r.usersOfSettings),
			builder.WithPredicates(predicate.GenerationChangedPredicate{}, userSettingsChanged())).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.usersOfSecret)).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles})
	if r.Resync != nil {
		b = b.WatchesRawSource(source.Channel(r.Resync, &handler.EnqueueRequestForObject{}))
	}
	if r.Released != nil {
		b = b.WatchesRawSource(source.Channel(r.Released, releasedFirst()))
	}
	return b.Complete(r)
}

// userSettingsChanged passes ScimSettings updates that change what a StackUser reconcile
// decides on: a field only the resync or the SCIM server reads (resyncPeriod, the base
// path, the IdP token) would otherwise cost one site request per user of the tenant.
func userSettingsChanged() predicate.Funcs {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*scimv1.ScimSettings)
		n, ok2 := e.ObjectNew.(*scimv1.ScimSettings)
		if !ok1 || !ok2 {
			return true
		}
		return !equality.Semantic.DeepEqual(userReconcileSpec(o), userReconcileSpec(n))
	}}
}

// userReconcileSpec is the part of a tenant's spec a StackUser reconcile reads.
func userReconcileSpec(s *scimv1.ScimSettings) *scimv1.ScimSettingsSpec {
	spec := s.Spec.DeepCopy()
	spec.ResyncPeriod, spec.BasePath, spec.RoleAttributeSchemas = nil, "", nil
	spec.BearerTokenSecretRef = scimv1.BearerTokenSecretReference{}
	return spec
}

// deletionOrFinalizerChanged passes updates that start deletion or drop our finalizer.
func deletionOrFinalizerChanged() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return true },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return true },
		UpdateFunc: func(e event.UpdateEvent) bool {
			if e.ObjectOld == nil || e.ObjectNew == nil {
				return false
			}
			if e.ObjectOld.GetDeletionTimestamp().IsZero() && !e.ObjectNew.GetDeletionTimestamp().IsZero() {
				return true
			}
			// The offboarding escape hatch set on a user whose deletion is blocked.
			if !e.ObjectNew.GetDeletionTimestamp().IsZero() &&
				e.ObjectOld.GetAnnotations()[scimv1.SkipOffboardingAnnotation] != e.ObjectNew.GetAnnotations()[scimv1.SkipOffboardingAnnotation] {
				return true
			}
			return e.ObjectNew.GetDeletionTimestamp().IsZero() &&
				controllerutil.ContainsFinalizer(e.ObjectOld, scimv1.Finalizer) &&
				!controllerutil.ContainsFinalizer(e.ObjectNew, scimv1.Finalizer)
		},
	}
}

// usersOfSettings maps a ScimSettings to its StackUsers.
func (r *StackUserReconciler) usersOfSettings(ctx context.Context, o client.Object) []reconcile.Request {
	return tenantUsers(ctx, r.Client, o.GetNamespace(), o.GetName())
}

// usersOfSecret maps a site token Secret to the StackUsers of every tenant using it.
func (r *StackUserReconciler) usersOfSecret(ctx context.Context, o client.Object) []reconcile.Request {
	var out []reconcile.Request
	for _, t := range secretTenants(ctx, r.Client, o, scimtenant.SiteSecret) {
		out = append(out, tenantUsers(ctx, r.Client, t.Namespace, t.Name)...)
	}
	return out
}

func tenantUsers(ctx context.Context, c client.Reader, namespace, tenant string) []reconcile.Request {
	var users scimv1.StackUserList
	if err := c.List(ctx, &users, client.InNamespace(namespace), client.MatchingFields{index.UserTenant: tenant}); err != nil {
		logf.FromContext(ctx).Error(err, "listing a tenant's StackUsers", "tenant", tenant)
		return nil
	}
	out := make([]reconcile.Request, 0, len(users.Items))
	for i := range users.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&users.Items[i])})
	}
	return out
}

// tenantOf names u's tenant: its ScimSettings.
func tenantOf(u *scimv1.StackUser) types.NamespacedName {
	return types.NamespacedName{Namespace: u.Namespace, Name: u.Spec.SettingsRef.Name}
}
