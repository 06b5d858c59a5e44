package controllers_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/controllers"
	"github.com/stackscim/stack-scim-operator/internal/audit"
	"github.com/stackscim/stack-scim-operator/internal/groups"
	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

// createGroup creates a StackGroup of the harness tenant as the SCIM server does.
func (h *userHarness) createGroup(name, displayName string) *scimv1.StackGroup {
	h.t.Helper()
	sg := &scimv1.StackGroup{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name, Finalizers: []string{groups.Finalizer}},
		Spec:       scimv1.StackGroupSpec{SettingsRef: scimv1.SettingsReference{Name: tenantName}, DisplayName: displayName},
	}
	if err := testEnv.Client.Create(context.Background(), sg); err != nil {
		h.t.Fatalf("creating StackGroup: %v", err)
	}
	return sg
}

// setMember writes the membership label and group request annotation as the SCIM server
// does for one member of a group PATCH.
func (h *userHarness) setMember(user string, sg *scimv1.StackGroup, join bool, requestID string) {
	h.t.Helper()
	var label any
	if join {
		label = string(sg.UID)
	}
	req := groups.Request{RequestInfo: audit.RequestInfo{RequestID: requestID, UserAgent: "Okta SCIM Client 1.0.0", Tenant: h.ns + "/" + tenantName,
		Time: time.Now().UTC().Format(time.RFC3339Nano)}, Group: sg.Spec.DisplayName, Joined: join}
	body, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"labels":      map[string]any{sg.MemberLabel(): label},
		"annotations": map[string]string{groups.AnnotationLastRequest: groups.EncodeRequest(req)},
	}})
	u := &scimv1.StackUser{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: user}}
	if err := testEnv.Client.Patch(context.Background(), u, client.RawPatch(types.MergePatchType, body)); err != nil {
		h.t.Fatalf("labelling StackUser: %v", err)
	}
}

func mapGroups(m ...scimv1.GroupRole) func(*scimv1.ScimSettings) {
	return func(s *scimv1.ScimSettings) { s.Spec.GroupRoles = m }
}

// TestStackUserReconciler_groupRoleFollowsMembershipWithinSwitches: a user added to a
// group mapped to Admin becomes Admin on the site with allowAdminPromotion on, with no
// change to the user itself, and the entry names the group and the request; with the
// switch off the change is recorded as blocked and the site keeps Registered.
func TestStackUserReconciler_groupRoleFollowsMembershipWithinSwitches(t *testing.T) {
	for name, allowed := range map[string]bool{"switch on": true, "switch off": false} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			h := newUserHarness(t, harnessOptions{
				sim: sitesim.Config{CreateUsers: true, AllowAdminPromotion: true, AllowModeratorPromotion: true},
				settings: func(s *scimv1.ScimSettings) {
					mapGroups(scimv1.GroupRole{Group: "stack admins", Role: scimv1.RoleAdmin})(s)
					s.Spec.AllowAdminPromotion = allowed
				},
			})
			h.createUser("grace", nil)
			u := h.eventuallySynced("grace")
			g.Expect(u.Status.EffectiveRole).To(Equal("Registered"), "groupRoles set: every role is managed")
			g.Expect(h.siteUser(g, u).Role).To(Equal(sitesim.RoleRegistered))

			sg := h.createGroup("g-admins", "Stack Admins")
			h.setMember("grace", sg, true, "req-push-1")
			u = h.eventually("grace", func(g Gomega, u *scimv1.StackUser) {
				g.Expect(u.Status.Groups).To(Equal([]scimv1.GroupMembership{{Name: "g-admins", DisplayName: "Stack Admins"}}))
				g.Expect(u.Status.EffectiveRole).To(Equal("Admin"))
				if allowed {
					g.Expect(u).To(haveCondition(scimv1.ConditionRoleChangeBlocked, metav1.ConditionFalse, controllers.ReasonRoleInSync))
					g.Expect(h.siteUser(g, u).Role).To(Equal(sitesim.RoleAdmin))
				} else {
					g.Expect(u).To(haveCondition(scimv1.ConditionRoleChangeBlocked, metav1.ConditionTrue, controllers.ReasonPromotionNotAllowed))
				}
			})
			result := scimv1.ResultBlocked
			if allowed {
				result = scimv1.ResultApplied
			}
			e := entries(u, controllers.ActionRoleChange, result)
			g.Expect(e).To(HaveLen(1))
			g.Expect(e[0].Message).To(ContainSubstring(`group "Stack Admins"`))
			g.Expect(e[0].Actor).To(HaveField("Kind", scimv1.ActorIdentityProvider))
			g.Expect(e[0].Actor).To(HaveField("RequestID", "req-push-1"))
			if !allowed {
				g.Consistently(func(g Gomega) { g.Expect(h.siteUser(g, h.user(g, "grace")).Role).To(Equal(sitesim.RoleRegistered)) },
					time.Second, 100*time.Millisecond).Should(Succeed())
				// Turned on later, the recorded change is applied.
				h.updateSettings(func(s *scimv1.ScimSettings) { s.Spec.AllowAdminPromotion = true })
				h.eventually("grace", func(g Gomega, u *scimv1.StackUser) {
					g.Expect(h.siteUser(g, u).Role).To(Equal(sitesim.RoleAdmin))
					g.Expect(entries(u, controllers.ActionRoleChange, scimv1.ResultApplied)).To(HaveLen(1))
				})
			}
		})
	}
}

// TestStackUserReconciler_highestOfOwnRoleAndGroups: the user's own Moderator role and a
// group mapped to Admin give Admin; leaving the last mapped group falls back to the own
// role; without an own role, leaving the last mapped group gives Registered.
func TestStackUserReconciler_highestOfOwnRoleAndGroups(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{
		sim: sitesim.Config{CreateUsers: true, AllowAdminPromotion: true, AllowModeratorPromotion: true},
		settings: func(s *scimv1.ScimSettings) {
			mapGroups(scimv1.GroupRole{Group: "Admins", Role: scimv1.RoleAdmin}, scimv1.GroupRole{Group: "Mods", Role: scimv1.RoleModerator})(s)
			s.Spec.AllowAdminPromotion, s.Spec.AllowModeratorPromotion = true, true
		},
	})
	h.createUser("mod", func(s *scimv1.StackUserSpec) { s.Role = role(scimv1.RoleModerator) })
	h.createUser("plain", nil)
	admins := h.createGroup("g-admins", "Admins")
	mods := h.createGroup("g-mods", "Mods")
	h.createGroup("g-unmapped", "Everyone")
	h.eventuallySynced("mod")
	h.eventuallySynced("plain")

	h.setMember("mod", admins, true, "req-1")
	h.setMember("plain", admins, true, "req-2")
	h.setMember("plain", mods, true, "req-3")
	for _, name := range []string{"mod", "plain"} {
		h.eventually(name, func(g Gomega, u *scimv1.StackUser) {
			g.Expect(u.Status.EffectiveRole).To(Equal("Admin"))
			g.Expect(h.siteUser(g, u).Role).To(Equal(sitesim.RoleAdmin))
		})
	}
	h.setMember("mod", admins, false, "req-4")
	h.setMember("plain", admins, false, "req-5")
	h.eventually("mod", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u.Status.Groups).To(BeEmpty())
		g.Expect(h.siteUser(g, u).Role).To(Equal(sitesim.RoleModerator))
	})
	h.eventually("plain", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(h.siteUser(g, u).Role).To(Equal(sitesim.RoleModerator))
	})
	// Leaving the last mapped group (still in an unmapped one): Registered.
	h.setMember("plain", h.group(g, "g-unmapped"), true, "req-6")
	h.setMember("plain", mods, false, "req-7")
	u := h.eventually("plain", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u.Status.Groups).To(Equal([]scimv1.GroupMembership{{Name: "g-unmapped", DisplayName: "Everyone"}}))
		g.Expect(h.siteUser(g, u).Role).To(Equal(sitesim.RoleRegistered))
	})
	last := entries(u, controllers.ActionRoleChange, scimv1.ResultApplied)[0]
	g.Expect(last.Changes).To(Equal([]scimv1.FieldChange{{Field: "role", Old: "Moderator", New: "Registered"}}))
	g.Expect(last.Actor.RequestID).To(Equal("req-7"))
	g.Expect(last.Message).To(ContainSubstring("no mapped group"))
}

func (h *userHarness) group(g Gomega, name string) *scimv1.StackGroup {
	sg := &scimv1.StackGroup{}
	g.Expect(testEnv.Client.Get(context.Background(), types.NamespacedName{Namespace: h.ns, Name: name}, sg)).To(Succeed())
	return sg
}

// TestStackUserReconciler_groupRenamedOrDeletedWhileMapped: renaming a mapped group away
// from its mapping, or deleting it, re-evaluates its members with no request for them;
// the deleted group's finalizer takes its label off the members. The group count shows
// in the group's status.
func TestStackUserReconciler_groupRenamedOrDeletedWhileMapped(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{
		sim: sitesim.Config{CreateUsers: true, AllowAdminPromotion: true},
		settings: func(s *scimv1.ScimSettings) {
			mapGroups(scimv1.GroupRole{Group: "Admins", Role: scimv1.RoleAdmin})(s)
			s.Spec.AllowAdminPromotion = true
		},
	})
	h.createUser("renamed", nil)
	h.createUser("deleted", nil)
	a := h.createGroup("g-a", "Admins")
	h.setMember("renamed", a, true, "req-a")
	for _, name := range []string{"renamed"} {
		h.eventually(name, func(g Gomega, u *scimv1.StackUser) { g.Expect(h.siteUser(g, u).Role).To(Equal(sitesim.RoleAdmin)) })
	}
	g.Eventually(func(g Gomega) { g.Expect(h.group(g, "g-a").Status.Members).To(Equal(int32(1))) }, 20*time.Second, 100*time.Millisecond).Should(Succeed())

	// Renamed: no longer mapped.
	sg := h.group(g, "g-a")
	sg.Spec.DisplayName = "Former Admins"
	g.Expect(testEnv.Client.Update(context.Background(), sg)).To(Succeed())
	h.eventually("renamed", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u.Status.Groups).To(Equal([]scimv1.GroupMembership{{Name: "g-a", DisplayName: "Former Admins"}}))
		g.Expect(h.siteUser(g, u).Role).To(Equal(sitesim.RoleRegistered))
	})

	// Deleted while mapped.
	b := h.createGroup("g-b", "Admins")
	h.setMember("deleted", b, true, "req-b")
	h.eventually("deleted", func(g Gomega, u *scimv1.StackUser) { g.Expect(h.siteUser(g, u).Role).To(Equal(sitesim.RoleAdmin)) })
	g.Expect(testEnv.Client.Delete(context.Background(), h.group(g, "g-b"))).To(Succeed())
	u := h.eventually("deleted", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u.Status.Groups).To(BeEmpty())
		g.Expect(u.Labels).NotTo(HaveKey(b.MemberLabel()))
		g.Expect(h.siteUser(g, u).Role).To(Equal(sitesim.RoleRegistered))
	})
	demote := entries(u, controllers.ActionRoleChange, scimv1.ResultApplied)[0]
	g.Expect(demote.Actor.Kind).To(Equal(scimv1.ActorOperator), "a deleted group is not the last membership request")
	g.Eventually(func() bool {
		err := testEnv.Client.Get(context.Background(), types.NamespacedName{Namespace: h.ns, Name: "g-b"}, &scimv1.StackGroup{})
		return client.IgnoreNotFound(err) == nil && err != nil
	}, 20*time.Second, 100*time.Millisecond).Should(BeTrue())
}

// TestStackUserReconciler_groupsWithoutMappingLeaveRoleAlone: without groupRoles, group
// membership shows in status but the role stays unmanaged: a hand-set site role stays.
func TestStackUserReconciler_groupsWithoutMappingLeaveRoleAlone(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{sim: sitesim.Config{AllowModeratorPromotion: true}})
	h.seed(sitesim.User{UserName: "kept@example.com", Role: sitesim.RoleModerator, Active: true})
	h.createUser("kept", nil)
	h.eventuallySynced("kept")
	sg := h.createGroup("g-x", "Admins")
	h.setMember("kept", sg, true, "req-x")
	u := h.eventually("kept", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u.Status.Groups).To(HaveLen(1))
	})
	g.Expect(u.Status.EffectiveRole).To(BeEmpty())
	g.Expect(h.siteUser(g, u).Role).To(Equal(sitesim.RoleModerator))
	g.Expect(entries(u, controllers.ActionRoleChange, scimv1.ResultApplied)).To(BeEmpty())
}
