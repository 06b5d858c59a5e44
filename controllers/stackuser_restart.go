package controllers

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
)

// skipInLine ends, without a site request or a status write, the first reconcile in this
// process of a user whose status says it is in line with the site and nothing has changed
// since. A manager start (or fail-over) reconciles every user: at 100,000 users one GET
// each would hold the tenant's site budget for over an hour and write every status again.
// Drift made meanwhile is the resync's to find (it reads the site 100 users a request);
// any later reconcile of the user in this process runs in full.
func (r *StackUserReconciler) skipInLine(_ context.Context, s *scope) error {
	if _, seen := r.seen.Load(s.key); seen || !inLine(s, r.Audit.Trails) {
		return nil
	}
	s.skipped, s.done = true, true
	return nil
}

// inLine reports whether the stored status shows the user in line with the site at its
// current generation, with nothing waiting: no blocked role, drift, plan, hold or audit
// entry to record, and the same groups and effective role as resolveGroups finds now.
func inLine(s *scope, trails *audit.Trails) bool {
	u := s.orig
	c := meta.FindStatusCondition(u.Status.Conditions, scimv1.ConditionSynced)
	return c != nil && c.Status == "True" && c.ObservedGeneration == u.Generation &&
		u.Status.ObservedGeneration == u.Generation &&
		u.Status.SiteID != "" && u.Status.Site != nil &&
		!meta.IsStatusConditionTrue(u.Status.Conditions, scimv1.ConditionRoleChangeBlocked) &&
		!meta.IsStatusConditionTrue(u.Status.Conditions, scimv1.ConditionDrifted) &&
		len(u.Status.PlannedChanges) == 0 && u.Status.HeldSince == nil &&
		nothingToRecord(s, trails) &&
		s.groupsResolved && s.user.Status.EffectiveRole == u.Status.EffectiveRole &&
		equality.Semantic.DeepEqual(s.user.Status.Groups, u.Status.Groups)
}

// nothingToRecord reports whether the SCIM requests left no entry for the history.
func nothingToRecord(s *scope, trails *audit.Trails) bool {
	trail, known := trails.Of(s.orig)
	return known && len(audit.Unrecorded(s.orig, trail, historyLimit(s))) == 0
}
