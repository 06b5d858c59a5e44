package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

// The events that take access away are the ones the work queue ranks first.
func TestOffboarding_ranksEventsThatTakeAccessAway(t *testing.T) {
	base := func() *scimv1.StackUser {
		u := &scimv1.StackUser{Spec: scimv1.StackUserSpec{UserName: "a@example.com", Role: ptr.To(scimv1.RoleAdmin)}}
		u.Labels = map[string]string{scimv1.LabelGroupPrefix + "g1": "uid-1"}
		return u
	}
	cases := map[string]struct {
		change func(*scimv1.StackUser)
		want   bool
	}{
		"deactivated":    {func(u *scimv1.StackUser) { u.Spec.Active = ptr.To(false) }, true},
		"demoted":        {func(u *scimv1.StackUser) { u.Spec.Role = ptr.To(scimv1.RoleModerator) }, true},
		"role unmanaged": {func(u *scimv1.StackUser) { u.Spec.Role = nil }, true},
		"left a group":   {func(u *scimv1.StackUser) { delete(u.Labels, scimv1.LabelGroupPrefix+"g1") }, true},
		"deleted":        {func(u *scimv1.StackUser) { u.DeletionTimestamp = ptr.To(metav1.Now()) }, true},
		"title changed":  {func(u *scimv1.StackUser) { u.Spec.Title = "CTO" }, false},
		"joined a group": {func(u *scimv1.StackUser) { u.Labels[scimv1.LabelGroupPrefix+"g2"] = "uid-2" }, false},
		"no change":      {func(u *scimv1.StackUser) {}, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			o, n := base(), base()
			tc.change(n)
			if got := offboarding(o, n); got != tc.want {
				t.Fatalf("offboarding = %v, want %v", got, tc.want)
			}
		})
	}
}

// Observe plans name each change as an admin reads it.
func TestPlanAction_namesChangesAsAdminsReadThem(t *testing.T) {
	cases := []struct {
		p    plannedChange
		want scimv1.PlanAction
	}{
		{plannedChange{field: fieldActive, want: "false", have: "true"}, scimv1.PlanDeactivate},
		{plannedChange{field: fieldActive, want: "true", have: "false"}, scimv1.PlanActivate},
		{plannedChange{field: fieldRole, want: "Registered", have: "Admin"}, scimv1.PlanDemote},
		{plannedChange{field: fieldRole, want: "Moderator", have: ""}, scimv1.PlanPromote},
		{plannedChange{field: profileFields[0], want: "A", have: "B"}, scimv1.PlanUpdate},
	}
	for _, tc := range cases {
		if got := planAction(tc.p); got != tc.want {
			t.Errorf("%s %q→%q: %s, want %s", tc.p.field.name, tc.p.have, tc.p.want, got, tc.want)
		}
		if got := braked(tc.p); got != (tc.want == scimv1.PlanDeactivate || tc.want == scimv1.PlanDemote) {
			t.Errorf("%s %q→%q: braked = %v", tc.p.field.name, tc.p.have, tc.p.want, got)
		}
	}
}
