package groups_test

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/groups"
)

func group(name, displayName string) *scimv1.StackGroup {
	return &scimv1.StackGroup{ObjectMeta: metav1.ObjectMeta{Name: name, UID: "uid-" + "name"},
		Spec: scimv1.StackGroupSpec{SettingsRef: scimv1.SettingsReference{Name: "t"}, DisplayName: displayName}}
}

func TestRole(t *testing.T) {
	admins, mods, other := group("g-a", "Stack Admins"), group("g-m", "Stack Moderators"), group("g-o", "Everyone")
	mapped := []scimv1.GroupRole{{Group: "stack admins", Role: scimv1.RoleAdmin}, {Group: "Stack Moderators", Role: scimv1.RoleModerator}}
	r := func(x scimv1.Role) *scimv1.Role { return &x }
	for name, tc := range map[string]struct {
		mapping  []scimv1.GroupRole
		own      *scimv1.Role
		in       []*scimv1.StackGroup
		want     scimv1.Role
		managed  bool
		fromText string
	}{
		"no mapping, no own role: unmanaged":            {nil, nil, []*scimv1.StackGroup{admins}, "", false, ""},
		"no mapping: own role only":                     {nil, r(scimv1.RoleModerator), []*scimv1.StackGroup{admins}, scimv1.RoleModerator, true, "role attribute"},
		"mapping, in no group, no own role: Registered": {mapped, nil, []*scimv1.StackGroup{other}, scimv1.RoleRegistered, true, "no mapped group"},
		"group above own role wins":                     {mapped, r(scimv1.RoleModerator), []*scimv1.StackGroup{admins}, scimv1.RoleAdmin, true, `group "Stack Admins"`},
		"own role above group wins":                     {mapped, r(scimv1.RoleAdmin), []*scimv1.StackGroup{mods}, scimv1.RoleAdmin, true, "role attribute"},
		"highest of two groups, name case ignored":      {mapped, nil, []*scimv1.StackGroup{mods, admins, other}, scimv1.RoleAdmin, true, `group "Stack Admins"`},
		"own Registered, mapped Moderator":              {mapped, r(scimv1.RoleRegistered), []*scimv1.StackGroup{mods}, scimv1.RoleModerator, true, `group "Stack Moderators"`},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			s := &scimv1.ScimSettings{Spec: scimv1.ScimSettingsSpec{GroupRoles: tc.mapping}}
			u := &scimv1.StackUser{Spec: scimv1.StackUserSpec{Role: tc.own}}
			role, managed, from := groups.Role(s, u, tc.in)
			g.Expect(role).To(Equal(tc.want))
			g.Expect(managed).To(Equal(tc.managed))
			g.Expect(from).To(ContainSubstring(tc.fromText))
		})
	}
}

func TestIsMember_needsTheGroupsUID(t *testing.T) {
	g := NewWithT(t)
	sg := group("g-a", "A")
	u := &scimv1.StackUser{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{sg.MemberLabel(): string(sg.UID)}}}
	g.Expect(groups.IsMember(u, sg)).To(BeTrue())
	u.Labels[sg.MemberLabel()] = "uid-of-a-deleted-group"
	g.Expect(groups.IsMember(u, sg)).To(BeFalse())
	g.Expect(len(groups.NameFor("tenant", "Some Group"))).To(BeNumerically("<=", 63), "fits a label key's name part")
	g.Expect(groups.NameFor("tenant", "Some Group")).To(Equal(groups.NameFor("tenant", "SOME group")))
}
