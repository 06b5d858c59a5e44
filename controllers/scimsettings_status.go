package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/clip"
)

// The ScimSettings reconciler's status: what the phases found, the Ready summary, and the
// one write of the fields it owns.

// tenantState collects what the phases observed, for the status patch.
type tenantState struct {
	conditions   []metav1.Condition
	basePath     string
	url          string
	conflictWith string
	users        scimv1.UserCounts
	plan         scimv1.PlanSummary
	backlog      *scimv1.Backlog
	// siteToken is held in memory for the probe only; it never reaches status or logs.
	siteToken    string
	requeueAfter time.Duration
}

func (st *tenantState) setCondition(s *scimv1.ScimSettings, typ string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&st.conditions, metav1.Condition{
		Type:               typ,
		Status:             status,
		Reason:             reason,
		Message:            clipMessage(message, 1024),
		ObservedGeneration: s.Generation,
	})
}

func (st *tenantState) requeueWithin(d time.Duration) {
	if d > 0 && (st.requeueAfter == 0 || d < st.requeueAfter) {
		st.requeueAfter = d
	}
}

// summarize derives Ready from the other findings; the first problem found names it.
func (r *ScimSettingsReconciler) summarize(s *scimv1.ScimSettings, st *tenantState) {
	creds := meta.FindStatusCondition(st.conditions, scimv1.ConditionCredentialsValid)
	site := meta.FindStatusCondition(st.conditions, scimv1.ConditionSiteReachable)
	status, reason, message := metav1.ConditionTrue, SettingsReasonAvailable,
		fmt.Sprintf("SCIM base path %s is served and the site answers", st.basePath)
	switch {
	case st.conflictWith != "":
		status, reason = metav1.ConditionFalse, SettingsReasonBasePathConflict
		message = fmt.Sprintf("base path %s is already claimed by ScimSettings %s, created earlier; set a different spec.basePath",
			st.basePath, st.conflictWith)
	case len(s.SpecProblems()) > 0:
		status, reason = metav1.ConditionFalse, SettingsReasonSpecInvalid
		message = strings.Join(s.SpecProblems(), "; ") + "; the tenant keeps serving SCIM, fix the spec"
	case !s.IsEnabled():
		status, reason, message = metav1.ConditionFalse, SettingsReasonDisabled, "the SCIM tenant is switched off (spec.enabled is false)"
	case creds.Status != metav1.ConditionTrue:
		status, reason, message = metav1.ConditionFalse, creds.Reason, creds.Message
	case site.Status != metav1.ConditionTrue:
		status, reason, message = metav1.ConditionFalse, site.Reason, site.Message
	}
	if held := meta.FindStatusCondition(st.conditions, scimv1.ConditionChangesHeld); held != nil && held.Status == metav1.ConditionTrue &&
		!meta.IsStatusConditionTrue(s.Status.Conditions, scimv1.ConditionChangesHeld) && r.Recorder != nil {
		r.Recorder.Eventf(s, nil, corev1.EventTypeWarning, held.Reason, "Hold", "%s", held.Message)
	}
	old := meta.FindStatusCondition(s.Status.Conditions, scimv1.ConditionReady)
	st.setCondition(s, scimv1.ConditionReady, status, reason, message)
	if r.Recorder != nil && (old == nil || old.Status != status || old.Reason != reason) {
		eventType := corev1.EventTypeNormal
		if status != metav1.ConditionTrue {
			eventType = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(s, nil, eventType, reason, "CheckTenant", "%s", clipMessage(message, 1024))
	}
}

// patchStatus writes only the fields this reconciler owns, with a JSON merge patch:
// lastRequest, lastAuthFailure, lastResyncTime and users.siteOnly stay untouched. The
// conditions list is replaced whole by a merge patch, so that write carries the
// resourceVersion it was computed from.
func (r *ScimSettingsReconciler) patchStatus(ctx context.Context, s *scimv1.ScimSettings, st *tenantState) error {
	old := s.Status
	var oldUsers scimv1.UserCounts
	if old.Users != nil {
		oldUsers = *old.Users
		oldUsers.SiteOnly = 0
	}
	conditionsChanged := !settingsConditionsEqual(old.Conditions, st.conditions)
	if !conditionsChanged && old.ObservedGeneration == s.Generation && old.BasePath == st.basePath &&
		old.URL == st.url && old.Users != nil && oldUsers == st.users && old.Plan != nil && equality.Semantic.DeepEqual(*old.Plan, st.plan) &&
		equality.Semantic.DeepEqual(old.Backlog, st.backlog) {
		return nil
	}
	status := map[string]any{
		"observedGeneration": s.Generation,
		"basePath":           st.basePath,
		"url":                jsonNullIfEmpty(st.url),
		"users": map[string]any{
			"total":         st.users.Total,
			"active":        st.users.Active,
			"registered":    st.users.Registered,
			"moderators":    st.users.Moderators,
			"admins":        st.users.Admins,
			"unmanagedRole": st.users.UnmanagedRole,
		},
		// Replaced whole: the merge patch must also clear heldUsers and counts gone to 0.
		"plan": planPatch(st.plan),
		// null removes it once the work is done.
		"backlog": backlogPatch(st.backlog),
	}
	patch := map[string]any{"status": status}
	if conditionsChanged {
		status["conditions"] = st.conditions
		patch["metadata"] = map[string]any{"resourceVersion": s.ResourceVersion}
	}
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	if err := r.Client.Status().Patch(ctx, s, client.RawPatch(types.MergePatchType, data)); err != nil {
		return fmt.Errorf("patching ScimSettings status: %w", err)
	}
	return nil
}

// planPatch is status.plan for a merge patch: every count present (0 clears a stale one)
// and heldUsers null when empty.
func planPatch(p scimv1.PlanSummary) map[string]any {
	var held any
	if len(p.HeldUsers) > 0 {
		held = p.HeldUsers
	}
	return map[string]any{"users": p.Users, "link": p.Link, "create": p.Create, "update": p.Update,
		"activate": p.Activate, "deactivate": p.Deactivate, "promote": p.Promote, "demote": p.Demote,
		"delete": p.Delete, "held": p.Held, "heldUsers": held}
}

func settingsConditionsEqual(a, b []metav1.Condition) bool {
	return slices.EqualFunc(a, b, func(x, y metav1.Condition) bool {
		return x.Type == y.Type && x.Status == y.Status && x.Reason == y.Reason && x.Message == y.Message &&
			x.ObservedGeneration == y.ObservedGeneration && x.LastTransitionTime.Equal(&y.LastTransitionTime)
	})
}

func jsonNullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func clipMessage(s string, n int) string { return clip.String(s, n) }

// backlogPatch is status.backlog for a merge patch: every field, so none is left over.
func backlogPatch(b *scimv1.Backlog) any {
	if b == nil {
		return nil
	}
	return map[string]any{"users": b.Users, "perMinute": b.PerMinute, "estimatedCompletionTime": b.EstimatedCompletionTime}
}
