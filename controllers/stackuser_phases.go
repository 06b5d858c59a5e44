package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
	"github.com/stackscim/stack-scim-operator/internal/index"
	"github.com/stackscim/stack-scim-operator/internal/site"
	scimtenant "github.com/stackscim/stack-scim-operator/internal/tenant"
)

// linkSiteUser finds the StackUser's site user: by status.siteId, else by externalId,
// then userName, else creates it when the tenant and the site allow. The id is recorded in
// status.siteId.
func (r *StackUserReconciler) linkSiteUser(ctx context.Context, s *scope) error {
	sc := s.tenant.site
	if s.user.Status.SiteID == "" {
		// The cache may not show the id this reconciler stored a moment ago yet.
		if id := r.knownSiteID(s.user); id != "" {
			s.user.Status.SiteID = id
		}
	}
	// lost is the id of a linked site account that is gone: deleted by hand on the site.
	var lost string
	if id := s.user.Status.SiteID; id != "" {
		su, err := sc.Get(ctx, id)
		if err == nil {
			s.siteUser = su
			return nil
		}
		if !site.IsNotFound(err) {
			r.siteFailure(ctx, s, "reading the site user", err)
			return nil
		}
		// Removed on the site: look it up afresh (it may have been recreated), then the
		// drift policy decides whether to create it again.
		lost = id
	}

	su, how, err := r.linkHint(ctx, s)
	if su == nil && err == nil {
		su, how, err = r.lookup(ctx, s)
	}
	if err != nil {
		r.siteFailure(ctx, s, "looking up the site user", err)
		return nil
	}
	if su == nil && lost != "" && s.tenant.settings.EffectiveDriftPolicy() == scimv1.DriftReport {
		r.reportDeleted(s, lost)
		return nil
	}
	if observing(s) {
		return r.observeLink(ctx, s, su, how, lost)
	}
	if lost != "" {
		s.entries = append(s.entries, entry(operatorActor, ActionLink, scimv1.ResultFailed,
			fmt.Sprintf("site user %s no longer exists; looking it up again", lost), change("siteId", lost, "")))
		s.user.Status.SiteID = ""
		s.user.Status.Site = nil
	}
	if su != nil {
		if claimed, err := r.claimed(ctx, s, su, how); err != nil || claimed {
			return err
		}
		s.siteUser = su
		s.user.Status.SiteID = su.ID
		s.entries = append(s.entries, entry(operatorActor, ActionLink, scimv1.ResultApplied,
			"linked the existing site user found by "+how, change("siteId", "", su.ID)))
		return nil
	}

	if !createUsers(s.tenant.settings) {
		r.waitForSignIn(s, "the tenant does not create site users (spec.site.createUsers is false)")
		return nil
	}
	want := desiredSiteUser(s.user)
	// A role the switches allow goes in the create, which saves a PATCH; one they do not
	// allow is left to planRole, which records it as blocked.
	if role, managed := fieldRole.want(s.user); managed && s.tenant.settings.PromotionAllowed(scimv1.RoleRegistered, scimv1.Role(role)) {
		want.Role = role
	}
	created, err := sc.Create(ctx, want)
	s.wrote = true
	if errors.Is(err, site.ErrCreateUnsupported) {
		r.waitForSignIn(s, "the site does not create users over SCIM")
		return nil
	}
	actor, why := specActor(s.user), "created site user "
	if lost != "" {
		actor, why = driftActor, fmt.Sprintf("recreated the site user deleted by hand (was %s, driftPolicy Enforce): ", lost)
	}
	if err != nil {
		r.siteFailure(ctx, s, "creating the site user", err)
		if s.orig.Status.SiteID == "" && !sameCondition(s.orig, s.synced) {
			s.entries = append(s.entries, entry(actor, ActionCreate, scimv1.ResultFailed, err.Error(), createChanges(want, nil)...))
		}
		return nil
	}
	s.siteUser = created
	s.user.Status.SiteID = created.ID
	s.entries = append(s.entries, entry(actor, ActionCreate, scimv1.ResultApplied,
		why+created.ID, createChanges(want, created)...))
	if lost != "" {
		s.drifted = &metav1.Condition{Type: scimv1.ConditionDrifted, Status: metav1.ConditionFalse, Reason: ReasonDriftCorrected,
			Message: fmt.Sprintf("site user %s was deleted by hand and has been recreated as %s (driftPolicy Enforce)", lost, created.ID)}
	}
	return nil
}

// reportDeleted records, under driftPolicy Report, that the linked site account was
// deleted by hand: Drifted and an audit entry, once; nothing is created. status.siteId
// keeps the lost id, so the next reconcile reports rather than creates.
func (r *StackUserReconciler) reportDeleted(s *scope, lost string) {
	msg := fmt.Sprintf("site user %s was deleted by hand on the site; not recreated (driftPolicy Report)", lost)
	s.drifted = &metav1.Condition{Type: scimv1.ConditionDrifted, Status: metav1.ConditionTrue, Reason: ReasonDriftReported, Message: msg}
	if !sameCondition(s.orig, s.drifted) {
		s.entries = append(s.entries, entry(scimv1.Actor{Kind: scimv1.ActorOperator, Name: "drift-detection"}, ActionDrift,
			scimv1.ResultReported, msg, change("siteId", lost, "")))
	}
	s.synced = &metav1.Condition{Type: scimv1.ConditionSynced, Status: metav1.ConditionFalse, Reason: ReasonDriftReported, Message: msg}
	s.failed, s.done = true, true
	// Not a hot loop: the resync re-queues the user if an account appears.
	s.requeueAfter = r.SignInWait
}

// linkHint reads the site account the SCIM server named when an IdP linked it
// (LinkSiteIDAnnotation): one GET instead of the lookups, and exact. It is used only while
// that account still has the StackUser's userName; otherwise the lookups decide.
func (r *StackUserReconciler) linkHint(ctx context.Context, s *scope) (*site.User, string, error) {
	id := s.user.Annotations[scimv1.LinkSiteIDAnnotation]
	if id == "" {
		return nil, "", nil
	}
	su, err := s.tenant.site.Get(ctx, id)
	if site.IsNotFound(err) || (err == nil && !strings.EqualFold(su.UserName, s.user.Spec.UserName)) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	return su, "the site id the identity provider linked", nil
}

// lookup finds a site user by externalId, then userName.
func (r *StackUserReconciler) lookup(ctx context.Context, s *scope) (*site.User, string, error) {
	// One site request where the site takes an `or` filter (site.Client.Lookup).
	return s.tenant.site.Lookup(ctx, s.user.Spec.ExternalID, s.user.Spec.UserName)
}

// claimed stops the reconcile when another StackUser of the tenant is linked to su.
func (r *StackUserReconciler) claimed(ctx context.Context, s *scope, su *site.User, how string) (bool, error) {
	owner, err := r.siteIDOwner(ctx, s, su.ID)
	if err != nil || owner == "" {
		return false, err
	}
	r.fail(s, ReasonSiteUserClaimed, fmt.Sprintf("site user %s (found by %s) is already linked to StackUser %q", su.ID, how, owner), r.SignInWait)
	return true, nil
}

// siteIDOwner names another StackUser of the tenant already linked to siteID.
func (r *StackUserReconciler) siteIDOwner(ctx context.Context, s *scope, siteID string) (string, error) {
	var users scimv1.StackUserList
	if err := r.List(ctx, &users, client.InNamespace(s.user.Namespace),
		client.MatchingFields{index.UserSiteID: index.Key(s.user.Spec.SettingsRef.Name, siteID)}); err != nil {
		return "", err
	}
	for i := range users.Items {
		u := &users.Items[i]
		// A younger StackUser with the same userName never owns the account (checkUserName).
		if u.Name != s.user.Name && !(strings.EqualFold(u.Spec.UserName, s.user.Spec.UserName) && scimtenant.OwnsUserNameBefore(s.user, u)) {
			return u.Name, nil
		}
	}
	return "", nil
}

// waitForSignIn parks a user whose site account can only appear at first SAML sign-in.
// Not a hot loop: a slow requeue, and the resync re-queues the user once the site has it.
func (r *StackUserReconciler) waitForSignIn(s *scope, why string) {
	s.synced = &metav1.Condition{Type: scimv1.ConditionSynced, Status: metav1.ConditionFalse, Reason: ReasonSiteUserNotFound,
		Message: fmt.Sprintf("no site user with externalId %q or userName %q and %s: waiting for the user's first SAML sign-in",
			s.user.Spec.ExternalID, s.user.Spec.UserName, why)}
	s.failed, s.done = true, true
	s.requeueAfter = r.SignInWait
}

// classify says why the site differs from the StackUser on one field: a spec change not
// yet applied, a hand edit on the site (drift), or something the operator still owes
// (a retry, a change unblocked by a promotion switch).
func classify(s *scope, f *fieldSpec, want, have string) (actor scimv1.Actor, drift bool) {
	u := s.orig
	if f == fieldRole && meta.IsStatusConditionTrue(u.Status.Conditions, scimv1.ConditionRoleChangeBlocked) {
		return operatorActor, false
	}
	// Checked before the generation: a user whose last reconcile failed keeps an old
	// observedGeneration, and a hand edit of a field the spec did not change is drift
	// all the same (it used to be enforced under Report).
	if o := u.Status.Site; o != nil {
		seen := f.seen(o)
		// It was in line when last observed and is not now: changed by hand.
		if f.equal(seen, want) {
			return driftActor, true
		}
		// A drift already reported and still there.
		if f.equal(seen, have) && driftListed(u, f.name) {
			return driftActor, true
		}
	}
	if u.Generation != u.Status.ObservedGeneration {
		return specActor(u), false
	}
	return operatorActor, false
}

// driftListed reports whether status.drift lists field.
func driftListed(u *scimv1.StackUser, field string) bool {
	return slices.ContainsFunc(u.Status.Drift, func(d scimv1.DriftedField) bool { return d.Field == field })
}

// plan queues a field write, or records it as reported drift under driftPolicy Report.
func (r *StackUserReconciler) plan(s *scope, f *fieldSpec, want, have string) {
	actor, drift := classify(s, f, want, have)
	if drift && s.tenant.settings.EffectiveDriftPolicy() == scimv1.DriftReport {
		s.driftReports = append(s.driftReports, change(f.name, want, have))
		return
	}
	s.planned = append(s.planned, plannedChange{field: f, want: want, have: have, actor: actor, drift: drift})
}

// planActive converges activation: deactivate or reactivate, never delete.
func (r *StackUserReconciler) planActive(_ context.Context, s *scope) error {
	want, _ := fieldActive.want(s.user)
	if have := fieldActive.have(s.siteUser); have != want {
		r.plan(s, fieldActive, want, have)
	}
	return nil
}

// planRole converges the role within the tenant's promotion switches. An absent role is
// not managed; a change the switches do not allow is recorded as blocked once and applied
// when a switch turns on.
func (r *StackUserReconciler) planRole(_ context.Context, s *scope) error {
	cond := func(status metav1.ConditionStatus, reason, msg string) {
		s.roleBlocked = &metav1.Condition{Type: scimv1.ConditionRoleChangeBlocked, Status: status, Reason: reason, Message: msg}
	}
	want, managed := fieldRole.want(s.user)
	if !managed {
		cond(metav1.ConditionFalse, ReasonRoleNotManaged, "the StackUser has no role; the site's role is left alone")
		return nil
	}
	have := fieldRole.have(s.siteUser)
	if want == have {
		cond(metav1.ConditionFalse, ReasonRoleInSync, "the site user has role "+want)
		return nil
	}
	actor, drift := classify(s, fieldRole, want, have)
	actor = groupRequestActor(s, actor)
	settings := s.tenant.settings
	if drift && settings.EffectiveDriftPolicy() == scimv1.DriftReport {
		s.driftReports = append(s.driftReports, change(fieldRole.name, want, have))
		cond(metav1.ConditionFalse, ReasonDriftReported, "the site's role was changed by hand and is not corrected (driftPolicy Report)")
		return nil
	}
	from, to := scimv1.Role(have), scimv1.Role(want)
	if !settings.PromotionAllowed(from, to) {
		msg := fmt.Sprintf("role change %s → %s%s waits for %s on ScimSettings %q", from, to, roleOrigin(s), missingSwitches(settings, from, to), settings.Name)
		cond(metav1.ConditionTrue, ReasonPromotionNotAllowed, msg)
		prev := meta.FindStatusCondition(s.orig.Status.Conditions, scimv1.ConditionRoleChangeBlocked)
		if prev == nil || prev.Status != metav1.ConditionTrue || prev.Message != msg {
			roleChangesBlocked.WithLabelValues(tenantLabel(s)).Inc()
			s.entries = append(s.entries, entry(actor, ActionRoleChange, scimv1.ResultBlocked, msg, change("role", have, want)))
		}
		return nil
	}
	cond(metav1.ConditionFalse, ReasonRoleInSync, "role change "+have+" → "+want+roleOrigin(s)+" is allowed")
	s.planned = append(s.planned, plannedChange{field: fieldRole, want: want, have: have, actor: actor, drift: drift})
	return nil
}

func missingSwitches(s *scimv1.ScimSettings, roles ...scimv1.Role) string {
	var out []string
	if !s.Spec.AllowModeratorPromotion && (roles[0] == scimv1.RoleModerator || roles[1] == scimv1.RoleModerator) {
		out = append(out, "allowModeratorPromotion")
	}
	if !s.Spec.AllowAdminPromotion && (roles[0] == scimv1.RoleAdmin || roles[1] == scimv1.RoleAdmin) {
		out = append(out, "allowAdminPromotion")
	}
	return strings.Join(out, " and ")
}

// planProfile converges the profile attributes the StackUser sets.
func (r *StackUserReconciler) planProfile(_ context.Context, s *scope) error {
	for _, f := range profileFields {
		want, managed := f.want(s.user)
		if !managed {
			continue
		}
		if have := f.have(s.siteUser); !f.equal(want, have) {
			r.plan(s, f, want, have)
		}
	}
	return nil
}

// applyChanges sends every planned change in one PATCH (never a PUT, which would wipe what
// it leaves out), reads the result back, and records what took effect.
func (r *StackUserReconciler) applyChanges(ctx context.Context, s *scope) error {
	r.recordDrift(s)
	if observing(s) {
		r.observeOnly(s)
		return nil
	}
	if len(s.planned) == 0 {
		return nil
	}
	ops := make([]site.PatchOp, 0, len(s.planned))
	for _, p := range s.planned {
		ops = append(ops, site.Replace(p.field.path, p.field.value(p.want)))
	}
	after, err := s.tenant.site.Patch(ctx, s.siteUser.ID, ops)
	s.wrote = true
	if err != nil {
		if site.IsNotFound(err) {
			// status.siteId stays: the next reconcile finds it gone and applies the drift
			// policy (clearing it here made that reconcile create a new account).
			r.fail(s, ReasonSiteUserNotFound, fmt.Sprintf("site user %s no longer exists; looking it up again", s.siteUser.ID), 0)
			s.siteUser = nil
			return nil
		}
		r.siteFailure(ctx, s, "updating the site user", err)
		if !sameCondition(s.orig, s.synced) {
			r.recordPlanned(s, func(plannedChange) (scimv1.AuditResult, string) { return scimv1.ResultFailed, err.Error() })
		}
		return nil
	}
	s.after = after

	// The site answers 200 to writes it ignores (a role while its own switches are off):
	// only the read-back tells.
	var ignored []string
	roleIgnored := false
	for _, p := range s.planned {
		if !p.field.equal(p.field.have(after), p.want) {
			ignored = append(ignored, fmt.Sprintf("%s stayed %q (wanted %q)", p.field.name, p.field.have(after), p.want))
			roleIgnored = roleIgnored || p.field == fieldRole
		}
	}
	if len(ignored) > 0 {
		reason, msg := ReasonFieldWriteIgnored, "the site accepted but ignored: "+strings.Join(ignored, "; ")
		if roleIgnored {
			reason = ReasonRoleWriteIgnored
			msg += " (the site's own promotion switches are probably off)"
		}
		r.fail(s, reason, msg, 0)
	}
	report := !sameCondition(s.orig, s.synced)
	r.recordPlanned(s, func(p plannedChange) (scimv1.AuditResult, string) {
		if p.field.equal(p.field.have(after), p.want) {
			if p.drift {
				return scimv1.ResultApplied, "undid a change made by hand on the site"
			}
			if p.field == fieldRole {
				return scimv1.ResultApplied, strings.TrimPrefix(roleOrigin(s), " ")
			}
			return scimv1.ResultApplied, ""
		}
		if !report {
			return "", ""
		}
		if p.field == fieldRole {
			return scimv1.ResultFailed, "the site answered 200 but kept role " + p.field.have(after)
		}
		return scimv1.ResultFailed, "the site answered 200 but kept the old value"
	})
	observeDrift(s)
	for _, p := range s.planned {
		if p.drift && p.field.equal(p.field.have(after), p.want) && len(s.driftReports) == 0 {
			s.drifted = &metav1.Condition{Type: scimv1.ConditionDrifted, Status: metav1.ConditionFalse, Reason: ReasonDriftCorrected,
				Message: "a change made by hand on the site was undone (driftPolicy Enforce)"}
		}
	}
	return nil
}

// recordDrift sets Drifted and records a Reported entry once per distinct drift.
func (r *StackUserReconciler) recordDrift(s *scope) {
	s.user.Status.Drift = driftedFields(s.orig.Status.Drift, s.driftReports, s.now)
	if len(s.driftReports) == 0 {
		s.drifted = &metav1.Condition{Type: scimv1.ConditionDrifted, Status: metav1.ConditionFalse, Reason: ReasonNoDrift,
			Message: "the site matches what the operator last saw"}
		return
	}
	msg := "changed by hand on the site, not corrected (driftPolicy Report): " + audit.Summary(s.driftReports)
	s.drifted = &metav1.Condition{Type: scimv1.ConditionDrifted, Status: metav1.ConditionTrue, Reason: ReasonDriftReported, Message: msg}
	prev := meta.FindStatusCondition(s.orig.Status.Conditions, scimv1.ConditionDrifted)
	if prev == nil || prev.Status != metav1.ConditionTrue || prev.Message != msg {
		driftFound.WithLabelValues(tenantLabel(s), string(scimv1.DriftReport)).Add(float64(len(s.driftReports)))
		s.entries = append(s.entries, entry(scimv1.Actor{Kind: scimv1.ActorOperator, Name: "drift-detection"}, ActionDrift,
			scimv1.ResultReported, "changed by hand on the site; not corrected (driftPolicy Report)", s.driftReports...))
	}
}

// driftedFields is status.drift for this reconcile's reports (want → site value), keeping
// the first-seen time of a drift that is unchanged.
func driftedFields(prev []scimv1.DriftedField, reports []scimv1.FieldChange, now metav1.Time) []scimv1.DriftedField {
	out := make([]scimv1.DriftedField, 0, len(reports))
	for _, r := range reports {
		d := scimv1.DriftedField{Field: r.Field, WantedValue: r.Old, SiteValue: r.New, Since: now}
		for _, p := range prev {
			if p.Field == d.Field && p.SiteValue == d.SiteValue && p.WantedValue == d.WantedValue {
				d.Since = p.Since
			}
		}
		out = append(out, d)
	}
	return out
}

// recordPlanned turns planned changes into audit entries, one per action, actor and
// result; result "" skips a change.
func (r *StackUserReconciler) recordPlanned(s *scope, outcome func(plannedChange) (scimv1.AuditResult, string)) {
	type key struct {
		action string
		actor  scimv1.Actor
		result scimv1.AuditResult
	}
	var order []key
	grouped := map[key]*scimv1.AuditEntry{}
	for _, p := range s.planned {
		result, msg := outcome(p)
		if result == "" {
			continue
		}
		k := key{action: actionOf(p), actor: p.actor, result: result}
		e, ok := grouped[k]
		if !ok {
			ne := entry(p.actor, k.action, result, msg)
			e = &ne
			grouped[k] = e
			order = append(order, k)
		}
		e.Changes = append(e.Changes, change(p.field.name, p.have, p.want))
	}
	for _, k := range order {
		s.entries = append(s.entries, *grouped[k])
	}
}

func actionOf(p plannedChange) string {
	switch p.field {
	case fieldActive:
		if p.want == "true" {
			return ActionReactivate
		}
		return ActionDeactivate
	case fieldRole:
		return ActionRoleChange
	}
	return ActionUpdate
}

// sameCondition reports whether the stored condition of c's type already says the same,
// so the same failure is not recorded in the history on every retry.
func sameCondition(u *scimv1.StackUser, c *metav1.Condition) bool {
	if c == nil {
		return false
	}
	prev := meta.FindStatusCondition(u.Status.Conditions, c.Type)
	return prev != nil && prev.Status == c.Status && prev.Reason == c.Reason && prev.Message == c.Message
}

func entry(actor scimv1.Actor, action string, result scimv1.AuditResult, msg string, changes ...scimv1.FieldChange) scimv1.AuditEntry {
	return scimv1.AuditEntry{Time: metav1.Now(), Actor: actor, Action: action, Result: result, Message: msg, Changes: changes}
}

func change(field, old, new string) scimv1.FieldChange {
	return scimv1.FieldChange{Field: field, Old: old, New: new}
}

// createChanges lists what a create sets; the role only when it took (created is nil
// for a failed create), else planRole's read-back records it.
func createChanges(u site.User, created *site.User) []scimv1.FieldChange {
	out := []scimv1.FieldChange{change("userName", "", u.UserName), change("active", "", fmt.Sprint(u.Active))}
	if u.Role != "" && u.Role != site.RoleRegistered && (created == nil || created.Role == u.Role) {
		out = append(out, change("role", "", u.Role))
	}
	for _, c := range []scimv1.FieldChange{
		change("externalId", "", u.ExternalID), change("displayName", "", u.DisplayName),
		change("name.givenName", "", u.GivenName), change("name.familyName", "", u.FamilyName),
		change("email", "", u.Email), change("title", "", u.Title), change("department", "", u.Department),
	} {
		if c.New != "" {
			out = append(out, c)
		}
	}
	return out
}
