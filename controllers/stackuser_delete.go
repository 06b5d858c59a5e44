package controllers

import (
	"context"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/site"
)

// reconcileDelete runs the finalizer: the site user is deactivated (deletionPolicy
// Deactivate, the default) or demoted to Registered and permanently deleted (Delete), then
// the finalizer is released. Transient site failures are retried with back-off; a site
// that refuses deletion gets the user deactivated instead.
//
// Offboarding is never skipped silently: when the tenant or its site token is gone (a
// namespace deletion, a GitOps prune) the finalizer stays, with Synced=False reason
// OffboardingBlocked, a Warning Event and the stackscim_offboarding_blocked_total metric,
// until the tenant is back or an admin sets the SkipOffboardingAnnotation.
func (r *StackUserReconciler) reconcileDelete(ctx context.Context, s *scope) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(s.user, scimv1.Finalizer) {
		return ctrl.Result{}, nil
	}
	if s.user.Annotations[scimv1.SkipOffboardingAnnotation] == "true" {
		logf.FromContext(ctx).Info("releasing StackUser without touching the site, as its annotation asks",
			"annotation", scimv1.SkipOffboardingAnnotation, "siteId", s.user.Status.SiteID)
		offboardingSkipped.WithLabelValues(s.user.Namespace).Inc()
		r.warn(s.user, ReasonOffboardingSkipped, "Offboard",
			"released without touching the site (annotation %s); site user %q keeps its state there",
			scimv1.SkipOffboardingAnnotation, s.user.Status.SiteID)
		return ctrl.Result{}, r.release(ctx, s)
	}
	t, te, err := loadTenant(ctx, tenantReader(r.Tenants, r.Client), r.Sites, s.user.Namespace, s.user.Spec.SettingsRef.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	if t != nil {
		s.tenant = t
	}
	if te != nil {
		msg := fmt.Sprintf("the site user cannot be offboarded: %s; restore it, or set the annotation %s=true to release the StackUser without touching the site",
			te.message, scimv1.SkipOffboardingAnnotation)
		offboardingBlocked.WithLabelValues(s.user.Namespace).Inc()
		if !sameCondition(s.orig, &metav1.Condition{Type: scimv1.ConditionSynced, Status: metav1.ConditionFalse,
			Reason: ReasonOffboardingBlocked, Message: msg}) {
			r.warn(s.user, ReasonOffboardingBlocked, "Offboard", "%s", msg)
		}
		r.fail(s, ReasonOffboardingBlocked, msg, 0)
		return r.summarize(ctx, s, nil)
	}

	su, err := r.siteUserForDelete(ctx, s)
	if err != nil {
		r.siteFailure(ctx, s, "reading the site user before deletion", err)
		return r.summarize(ctx, s, nil)
	}
	if su != nil {
		s.siteUser = su
		wait, err := r.offboardSite(ctx, s, su)
		if err != nil {
			return ctrl.Result{}, err
		}
		if wait {
			return r.summarize(ctx, s, nil)
		}
		if t.settings.EffectiveDeletionPolicy() == scimv1.DeletionDelete {
			r.deleteSiteUser(ctx, s, su)
		} else {
			r.deactivateSiteUser(ctx, s, su, "the StackUser was deleted (deletionPolicy Deactivate)")
		}
		if s.failed {
			return r.summarize(ctx, s, nil)
		}
	}
	return ctrl.Result{}, r.release(ctx, s)
}

// siteUserForDelete finds the site user by status.siteId, or by externalId / userName when
// the StackUser was never linked; nil when there is none.
func (r *StackUserReconciler) siteUserForDelete(ctx context.Context, s *scope) (*site.User, error) {
	if id := s.user.Status.SiteID; id != "" {
		su, err := s.tenant.site.Get(ctx, id)
		if site.IsNotFound(err) {
			return nil, nil
		}
		return su, err
	}
	su, _, err := r.lookup(ctx, s)
	return su, err
}

// deactivateSiteUser deactivates the site user unless it already is.
func (r *StackUserReconciler) deactivateSiteUser(ctx context.Context, s *scope, su *site.User, why string) {
	if !su.Active {
		return
	}
	after, err := s.tenant.site.Patch(ctx, su.ID, []site.PatchOp{site.Replace(site.PathActive, false)})
	s.wrote = true
	if site.IsNotFound(err) {
		return
	}
	if err != nil {
		r.siteFailure(ctx, s, "deactivating the site user", err)
		return
	}
	s.after = after
	s.entries = append(s.entries, entry(operatorActor, ActionDeactivate, scimv1.ResultApplied, why, change("active", "true", "false")))
}

// deleteSiteUser demotes the site user to Registered (the site refuses to delete moderators
// and admins) and deletes it. When the site cannot or will not delete, it deactivates.
func (r *StackUserReconciler) deleteSiteUser(ctx context.Context, s *scope, su *site.User) {
	sc := s.tenant.site
	if su.Role != site.RoleRegistered {
		after, err := sc.Patch(ctx, su.ID, []site.PatchOp{site.Replace(site.PathUserType, site.RoleRegistered)})
		s.wrote = true
		if err != nil {
			if !site.IsNotFound(err) {
				r.siteFailure(ctx, s, "demoting the site user before deletion", err)
			}
			return
		}
		s.after = after
		if after.Role != site.RoleRegistered {
			s.entries = append(s.entries, entry(operatorActor, ActionRoleChange, scimv1.ResultFailed,
				"the site ignored the demotion needed before deletion (its own promotion switches are probably off); deactivating instead",
				change("role", su.Role, site.RoleRegistered)))
			r.deactivateSiteUser(ctx, s, after, "the site user could not be deleted, so it was deactivated")
			return
		}
		s.entries = append(s.entries, entry(operatorActor, ActionRoleChange, scimv1.ResultApplied,
			"demoted before deletion", change("role", su.Role, site.RoleRegistered)))
		su = after
	}
	err := sc.Delete(ctx, su.ID)
	s.wrote = true
	switch code := site.StatusCode(err); {
	case err == nil:
		s.after = nil
		s.entries = append(s.entries, entry(operatorActor, ActionDelete, scimv1.ResultApplied,
			"the StackUser was deleted (deletionPolicy Delete); the site user was permanently deleted", change("siteId", su.ID, "")))
	case code == http.StatusNotFound:
		// 404 means both "unknown user" and "deletion disabled": ask which.
		if _, gerr := sc.Get(ctx, su.ID); site.IsNotFound(gerr) {
			return
		} else if gerr != nil {
			r.siteFailure(ctx, s, "reading the site user after a refused deletion", gerr)
			return
		}
		s.entries = append(s.entries, entry(operatorActor, ActionDelete, scimv1.ResultFailed,
			"the site does not allow deleting users (deletion is off unless the vendor enables it); deactivating instead",
			change("siteId", su.ID, "")))
		r.deactivateSiteUser(ctx, s, su, "the site user could not be deleted, so it was deactivated")
	case site.IsUnreachable(err) && code != http.StatusInternalServerError:
		r.siteFailure(ctx, s, "deleting the site user", err)
	default:
		// A 500 or 4xx with a message is the site refusing this deletion.
		s.entries = append(s.entries, entry(operatorActor, ActionDelete, scimv1.ResultFailed,
			"the site refused the deletion ("+err.Error()+"); deactivating instead", change("siteId", su.ID, "")))
		r.deactivateSiteUser(ctx, s, su, "the site user could not be deleted, so it was deactivated")
	}
}

// release records the entries and removes the finalizer.
func (r *StackUserReconciler) release(ctx context.Context, s *scope) error {
	annotatePlanOrigin(s)
	if len(s.entries) > 0 {
		if err := r.Audit.Append(ctx, s.user, historyLimit(s), s.entries...); err != nil {
			return client.IgnoreNotFound(err)
		}
	}
	base := s.user.DeepCopy()
	controllerutil.RemoveFinalizer(s.user, scimv1.Finalizer)
	err := r.Patch(ctx, s.user, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	if err == nil {
		r.Progress.Done(tenantOf(s.user))
	}
	r.retry.reset(s.key)
	r.siteIDs.Delete(s.key)
	r.seen.Delete(s.key)
	return client.IgnoreNotFound(err)
}

// warn sends a Warning Event about u (best-effort, like every Event).
func (r *StackUserReconciler) warn(u *scimv1.StackUser, reason, action, format string, args ...any) {
	if r.Audit == nil || r.Audit.Events == nil {
		return
	}
	r.Audit.Events.Eventf(u, nil, corev1.EventTypeWarning, reason, action, format, args...)
}
