package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/brake"
	"github.com/stackscim/stack-scim-operator/internal/clip"
	"github.com/stackscim/stack-scim-operator/internal/site"
)

// Safe onboarding: Observe mode (plan, write nothing) and the deactivation brake (hold
// deactivations and demotions past the tenant's hourly cap).

// observing reports whether the tenant is in Observe mode: nothing may be written to the
// site.
func observing(s *scope) bool {
	return s.tenant != nil && s.tenant.settings.EffectiveMode() == scimv1.ModeObserve
}

// planAhead records a change that happens before the field changes (Link, Create,
// Deactivate or Delete of a deleted user) in Observe mode.
func planAhead(s *scope, action scimv1.PlanAction, field, old, new string) {
	s.plan = append(s.plan, scimv1.PlannedChange{Action: action, Field: field, Old: clipPlan(old), New: clipPlan(new)})
}

// observeLink plans, in Observe mode, what linkSiteUser would do for a StackUser not (or
// no longer) linked: link the account found, or create one. Nothing is recorded in
// status.siteId: Enforce links it, so an account found now and claimed later is not
// double-linked.
func (r *StackUserReconciler) observeLink(ctx context.Context, s *scope, su *site.User, how, lost string) error {
	if su != nil {
		if claimed, err := r.claimed(ctx, s, su, how); err != nil || claimed {
			return err
		}
		s.siteUser = su
		s.user.Status.SiteID = s.orig.Status.SiteID
		planAhead(s, scimv1.PlanLink, "siteId", "", su.ID)
		return nil
	}
	if !createUsers(s.tenant.settings) {
		r.waitForSignIn(s, "the tenant does not create site users (spec.site.createUsers is false)")
		return nil
	}
	old := ""
	if lost != "" {
		old = lost // recreate the account deleted by hand (driftPolicy Enforce)
	}
	planAhead(s, scimv1.PlanCreate, "userName", old, s.user.Spec.UserName)
	r.observeOnly(s)
	return nil
}

// observeOnly ends an Observe-mode reconcile: the planned changes go to status instead of
// the site.
func (r *StackUserReconciler) observeOnly(s *scope) {
	plan := append(slices.Clone(s.plan), plannedChanges(s.planned)...)
	s.planSet, s.user.Status.PlannedChanges, s.user.Status.HeldSince = true, plan, nil
	s.done = true
	if len(plan) == 0 {
		s.synced = &metav1.Condition{Type: scimv1.ConditionSynced, Status: metav1.ConditionTrue, Reason: ReasonSynced,
			Message: "the site already shows what the StackUser asks for (Observe mode: nothing would change)"}
		return
	}
	s.unapplied = true
	s.synced = &metav1.Condition{Type: scimv1.ConditionSynced, Status: metav1.ConditionFalse, Reason: ReasonObserveOnly,
		Message: fmt.Sprintf("Observe mode: nothing is written to the site; Enforce would %s (see status.plannedChanges)", planSummary(plan))}
}

// plannedChanges turns the field writes the phases planned into plan entries.
func plannedChanges(planned []plannedChange) []scimv1.PlannedChange {
	out := make([]scimv1.PlannedChange, 0, len(planned))
	for _, p := range planned {
		out = append(out, scimv1.PlannedChange{Action: planAction(p), Field: p.field.name, Old: clipPlan(p.have), New: clipPlan(p.want)})
	}
	return out
}

func planAction(p plannedChange) scimv1.PlanAction {
	switch p.field {
	case fieldActive:
		if p.want == "true" {
			return scimv1.PlanActivate
		}
		return scimv1.PlanDeactivate
	case fieldRole:
		if roleRank(p.want) < roleRank(p.have) {
			return scimv1.PlanDemote
		}
		return scimv1.PlanPromote
	}
	return scimv1.PlanUpdate
}

// roleRank orders roles; an absent role on the site is Registered.
func roleRank(role string) int {
	if role == "" {
		role = string(scimv1.RoleRegistered)
	}
	return slices.Index(scimv1.Roles, scimv1.Role(role))
}

// planSummary is "deactivate, update title" for a condition message.
func planSummary(plan []scimv1.PlannedChange) string {
	parts := make([]string, 0, len(plan))
	for _, p := range plan {
		part := strings.ToLower(string(p.Action))
		if p.Action == scimv1.PlanUpdate {
			part += " " + p.Field
		}
		if !slices.Contains(parts, part) {
			parts = append(parts, part)
		}
	}
	return strings.Join(parts, ", ")
}

// clipPlan bounds a value shown in the plan to the CRD's 512.
func clipPlan(v string) string { return clip.String(v, 512) }

// braked reports whether a planned change is one the brake counts: a deactivation or a
// demotion.
func braked(p plannedChange) bool {
	switch p.field {
	case fieldActive:
		return p.want == "false"
	case fieldRole:
		return roleRank(p.want) < roleRank(p.have)
	}
	return false
}

// holdDeactivations asks the tenant's brake before a deactivation or demotion goes out.
// Past the cap the change is held: taken out of this reconcile's writes and shown in
// status (plannedChanges, heldSince, Synced=False ChangeHeld); the other changes still go.
func (r *StackUserReconciler) holdDeactivations(ctx context.Context, s *scope) error {
	if observing(s) || r.Brake == nil {
		return nil
	}
	var held []plannedChange
	for _, p := range s.planned {
		if braked(p) {
			held = append(held, p)
		}
	}
	if len(held) == 0 {
		r.Brake.Forget(s.key)
		return nil
	}
	d, err := r.Brake.Admit(ctx, s.tenant.settings, s.key, s.orig.Status.HeldSince)
	if err != nil {
		return err
	}
	if d.Send {
		s.releasedNote = releaseNote(d)
		return nil
	}
	s.planned = slices.DeleteFunc(s.planned, braked)
	r.hold(s, plannedChanges(held), d)
	return nil
}

// hold records a held change on the user: status, condition, and (the first time) an
// audit entry, a Warning Event and the metric.
func (r *StackUserReconciler) hold(s *scope, plan []scimv1.PlannedChange, d brake.Decision) {
	since := metav1.NewTime(d.HeldSince.Truncate(time.Second))
	s.planSet, s.user.Status.PlannedChanges, s.user.Status.HeldSince = true, plan, &since
	settings := s.tenant.settings
	msg := fmt.Sprintf("%s held by the deactivation brake since %s: %d of maxDeactivationsPerHour %d sent in the last hour, %d held before this one; released oldest first as the hour rolls on, when the cap is raised, or when annotation %s on ScimSettings %q gets a new value",
		planSummary(plan), since.UTC().Format(time.RFC3339), d.Sent, d.Cap, d.Ahead, scimv1.ReleaseHeldAnnotation, settings.Name)
	s.unapplied = true
	s.synced = &metav1.Condition{Type: scimv1.ConditionSynced, Status: metav1.ConditionFalse, Reason: ReasonChangeHeld,
		Message: msg}
	s.requeueAfter = time.Hour // a backstop: the brake wakes held users when slots free up
	if !d.NextSlot.IsZero() {
		s.requeueAfter = max(time.Until(d.NextSlot)+30*time.Second, time.Minute)
	}
	if s.orig.Status.HeldSince != nil {
		return
	}
	changesHeld.WithLabelValues(tenantLabel(s)).Inc()
	for _, p := range plan {
		action := ActionDeactivate
		if p.Field == fieldRole.name {
			action = ActionRoleChange
		}
		s.entries = append(s.entries, entry(specActor(s.user), action, scimv1.ResultBlocked,
			fmt.Sprintf("held by the deactivation brake (maxDeactivationsPerHour %d reached)", d.Cap), change(p.Field, p.Old, p.New)))
	}
	r.warn(s.user, ReasonChangeHeld, "Hold", "%s", msg)
}

// releaseNote says why a change the brake held goes out now, for its audit entry.
func releaseNote(d brake.Decision) string {
	switch {
	case d.HeldSince.IsZero():
		return ""
	case d.Released:
		return fmt.Sprintf("released by annotation %s (held since %s)", scimv1.ReleaseHeldAnnotation, d.HeldSince.UTC().Format(time.RFC3339))
	default:
		return fmt.Sprintf("released by the deactivation brake (held since %s)", d.HeldSince.UTC().Format(time.RFC3339))
	}
}

// annotatePlanOrigin notes on this reconcile's applied entries that they carry out the plan
// made in Observe mode, or a change the brake held.
func annotatePlanOrigin(s *scope) {
	fromPlan := !observing(s) && s.orig.Status.PlannedChanges != nil && s.orig.Status.HeldSince == nil &&
		isReason(s.orig, scimv1.ConditionSynced, ReasonObserveOnly)
	for i := range s.entries {
		e := &s.entries[i]
		if e.Result != scimv1.ResultApplied {
			continue
		}
		if fromPlan {
			e.Message = joinNote(e.Message, "as planned in Observe mode")
		}
		if s.releasedNote != "" && (e.Action == ActionDeactivate || e.Action == ActionRoleChange || e.Action == ActionDelete) {
			e.Message = joinNote(e.Message, s.releasedNote)
		}
	}
}

func joinNote(msg, note string) string {
	if msg == "" {
		return note
	}
	return msg + "; " + note
}

// waitsOnPurpose reports whether a StackUser's last reconcile left the site out of line on
// purpose: an Observe plan or a change the brake holds. Such users are not a backlog.
func waitsOnPurpose(u *scimv1.StackUser) bool {
	return isReason(u, scimv1.ConditionSynced, ReasonObserveOnly) || isReason(u, scimv1.ConditionSynced, ReasonChangeHeld)
}

func isReason(u *scimv1.StackUser, typ, reason string) bool {
	c := meta.FindStatusCondition(u.Status.Conditions, typ)
	return c != nil && c.Reason == reason
}

// planStatusFields adds status.plannedChanges and status.heldSince to the status patch
// when this reconcile decided them: an Observe plan, a hold, or an Enforce reconcile that
// got through (which clears them). A failed reconcile keeps the last plan.
func planStatusFields(s *scope, fields map[string]any) {
	u := &s.user.Status
	switch {
	case s.planSet:
	case s.tenant != nil && !observing(s) && !s.failed:
		u.PlannedChanges, u.HeldSince = nil, nil
	default:
		return
	}
	if len(u.PlannedChanges) == 0 && len(s.orig.Status.PlannedChanges) == 0 && u.HeldSince == nil && s.orig.Status.HeldSince == nil {
		return
	}
	plan := u.PlannedChanges
	if plan == nil {
		plan = []scimv1.PlannedChange{}
	}
	fields["plannedChanges"] = plan
	fields["heldSince"] = nullTime(u.HeldSince)
}

// nullTime is a JSON null for a nil time, so a patch clears the field.
func nullTime(t *metav1.Time) any {
	if t == nil {
		return jsonNull{}
	}
	return t
}

// jsonNull marshals to null (a nil interface in the patch map would be dropped).
type jsonNull struct{}

func (jsonNull) MarshalJSON() ([]byte, error) { return []byte("null"), nil }

// offboardSite plans or holds the deactivation (or deletion) of a deleted StackUser's site
// user. It reports whether the finalizer must wait: Observe mode, or the brake holds it.
func (r *StackUserReconciler) offboardSite(ctx context.Context, s *scope, su *site.User) (wait bool, err error) {
	del := s.tenant.settings.EffectiveDeletionPolicy() == scimv1.DeletionDelete
	if !su.Active && !del {
		return false, nil
	}
	var plan []scimv1.PlannedChange
	if su.Active {
		plan = append(plan, scimv1.PlannedChange{Action: scimv1.PlanDeactivate, Field: fieldActive.name, Old: "true", New: "false"})
	}
	if del {
		plan = append(plan, scimv1.PlannedChange{Action: scimv1.PlanDelete, Field: "siteId", Old: su.ID})
	}
	if observing(s) {
		s.plan = plan
		r.observeOnly(s)
		s.synced.Message = "Observe mode: the StackUser was deleted; Enforce would " + planSummary(plan) +
			" the site user, and the finalizer waits until then (or set annotation " + scimv1.SkipOffboardingAnnotation + "=true)"
		return true, nil
	}
	if r.Brake == nil {
		return false, nil
	}
	d, err := r.Brake.Admit(ctx, s.tenant.settings, s.key, s.orig.Status.HeldSince)
	if err != nil {
		return false, err
	}
	if d.Send {
		s.releasedNote = releaseNote(d)
		return false, nil
	}
	r.hold(s, plan, d)
	return true, nil
}

// offboardingPriority ranks deactivations, demotions and deletions above everything else
// in the StackUser work queue (default 0; the initial list is handler.LowPriority).
const offboardingPriority = 100

// offboardingFirst enqueues StackUser events, offboarding ones at offboardingPriority, so
// a user deactivated at the IdP during a 10,000-user push does not wait behind it.
func offboardingFirst() handler.TypedEventHandler[client.Object, reconcile.Request] {
	add := func(q workqueue.TypedRateLimitingInterface[reconcile.Request], o client.Object, priority int) {
		req := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)}
		if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok && priority != 0 {
			pq.AddWithOpts(priorityqueue.AddOpts{Priority: &priority}, req)
			return
		}
		q.Add(req)
	}
	return handler.TypedFuncs[client.Object, reconcile.Request]{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q, e.Object, 0)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			p := 0
			if offboarding(e.ObjectOld, e.ObjectNew) {
				p = offboardingPriority
			}
			add(q, e.ObjectNew, p)
		},
		GenericFunc: func(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q, e.Object, 0)
		},
	}
}

// releasedFirst enqueues the users the brake releases at offboarding priority.
func releasedFirst() handler.EventHandler {
	return handler.Funcs{GenericFunc: func(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		req := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(e.Object)}
		if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
			p := offboardingPriority
			pq.AddWithOpts(priorityqueue.AddOpts{Priority: &p}, req)
			return
		}
		q.Add(req)
	}}
}

// offboarding reports whether an update takes access away: deletion, deactivation, a
// lower role, or leaving a group (which may lower the role).
func offboarding(o, n client.Object) bool {
	if o.GetDeletionTimestamp().IsZero() && !n.GetDeletionTimestamp().IsZero() {
		return true
	}
	ou, ok1 := o.(*scimv1.StackUser)
	nu, ok2 := n.(*scimv1.StackUser)
	if !ok1 || !ok2 {
		return false
	}
	if ou.IsActive() && !nu.IsActive() {
		return true
	}
	if ou.Spec.Role != nil && (nu.Spec.Role == nil || roleRank(string(*nu.Spec.Role)) < roleRank(string(*ou.Spec.Role))) {
		return true
	}
	for k := range ou.Labels {
		if strings.HasPrefix(k, scimv1.LabelGroupPrefix) && nu.Labels[k] == "" {
			return true
		}
	}
	return false
}

// releaseHeldChanged passes ScimSettings updates that change the release-held annotation.
func releaseHeldChanged() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			return e.ObjectOld.GetAnnotations()[scimv1.ReleaseHeldAnnotation] != e.ObjectNew.GetAnnotations()[scimv1.ReleaseHeldAnnotation]
		},
	}
}

// releaseHeld tells the brake that a tenant's release-held annotation changed; the brake
// wakes the users it holds (through the Resync channel), nothing is enqueued here.
func (r *StackUserReconciler) releaseHeld() handler.EventHandler {
	return handler.Funcs{UpdateFunc: func(ctx context.Context, e event.UpdateEvent, _ workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		if s, ok := e.ObjectNew.(*scimv1.ScimSettings); ok && r.Brake != nil {
			r.Brake.SettingsChanged(ctx, s)
		}
	}}
}

// wakeUsers hands the users the brake releases to the StackUser controller (its Released
// channel, enqueued at offboarding priority). It never blocks the brake.
func wakeUsers(ch chan<- event.GenericEvent) brake.Waker {
	return func(users []types.NamespacedName) {
		if len(users) == 0 {
			return
		}
		go func() {
			for _, k := range users {
				u := &scimv1.StackUser{}
				u.Namespace, u.Name = k.Namespace, k.Name
				ch <- event.GenericEvent{Object: u}
			}
		}()
	}
}
