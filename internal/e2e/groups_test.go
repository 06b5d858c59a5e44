package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

// TestE2E_groupRoles: with groupRoles mapping "Stack Admins" to Admin, a member Okta
// pushes into the group stays Registered on the site while allowAdminPromotion is off
// (the change is recorded as blocked), becomes Admin when the switch is turned on, and
// goes back to Registered when Entra-style removal takes it out: no request for the user
// in between, and the audit entries name the group and the request.
func TestE2E_groupRoles(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	site := startSite(t, "-allow-moderator-promotion=true", "-allow-admin-promotion=true")
	st := tenant(t, ns, site, func(s *scimv1.ScimSettings) {
		s.Spec.GroupRoles = []scimv1.GroupRole{{Group: "Stack Admins", Role: scimv1.RoleAdmin}}
	})
	op := startOperator(t, ns)
	idp := newSCIMClient(op, st)
	g.Eventually(func() int { code, _ := idp.do(http.MethodGet, "/Groups?startIndex=1&count=100", nil); return code },
		60*time.Second, 200*time.Millisecond).Should(Equal(http.StatusOK))

	ids := map[string]string{}
	for _, name := range []string{"ada", "alan"} {
		userName := name + "@example.com"
		code, doc := idp.do(http.MethodPost, "/Users", map[string]any{
			"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": userName,
			"name": map[string]any{"givenName": name, "familyName": "Test"}, "active": true,
			"emails": []any{map[string]any{"primary": true, "value": userName, "type": "work"}},
		})
		g.Expect(code).To(Equal(http.StatusCreated), "%v", doc)
		ids[name] = doc["id"].(string)
		g.Eventually(func() *sitesim.User { return site.user(userName) }, 60*time.Second, 200*time.Millisecond).
			Should(And(Not(BeNil()), HaveField("Role", sitesim.RoleRegistered)))
	}

	code, grp := idp.do(http.MethodPost, "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "Stack Admins", "members": []any{}})
	g.Expect(code).To(Equal(http.StatusCreated), "%v", grp)
	gid := grp["id"].(string)
	code, body := idp.do(http.MethodPatch, "/Groups/"+gid, map[string]any{
		"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{
			map[string]any{"op": "replace", "value": map[string]any{"id": gid, "displayName": "Stack Admins"}},
			map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": ids["ada"], "display": "ada"}}},
		},
	})
	g.Expect(code).To(Equal(http.StatusNoContent), "%v", body)

	// Switch off: recorded as blocked, the site keeps Registered.
	g.Eventually(func(g Gomega) {
		u := stackUser(ns, ids["ada"])
		g.Expect(u).NotTo(BeNil())
		g.Expect(u.Status.Groups).To(ConsistOf(scimv1.GroupMembership{Name: gid, DisplayName: "Stack Admins"}))
		g.Expect(meta.IsStatusConditionTrue(u.Status.Conditions, scimv1.ConditionRoleChangeBlocked)).To(BeTrue())
		g.Expect(blockedBy(u)).To(ContainSubstring(`group "Stack Admins"`))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
	g.Consistently(func() string { return site.user("ada@example.com").Role }, 2*time.Second, 200*time.Millisecond).Should(Equal(sitesim.RoleRegistered))

	// Switch on: the blocked change is applied with no IdP request.
	patch := client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"allowAdminPromotion":true}}`))
	g.Expect(env.Client.Patch(context.Background(), st, patch)).To(Succeed())
	g.Eventually(func() string { return site.user("ada@example.com").Role }, 60*time.Second, 200*time.Millisecond).Should(Equal(sitesim.RoleAdmin))
	g.Expect(site.user("alan@example.com").Role).To(Equal(sitesim.RoleRegistered))

	// Entra removes the member: back to Registered, attributed to the request.
	code, body = idp.do(http.MethodPatch, "/Groups/"+gid, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "Remove", "path": "members", "value": []any{map[string]any{"value": ids["ada"]}}}},
	})
	g.Expect(code).To(Equal(http.StatusNoContent), "%v", body)
	g.Eventually(func() string { return site.user("ada@example.com").Role }, 60*time.Second, 200*time.Millisecond).Should(Equal(sitesim.RoleRegistered))
	g.Eventually(func(g Gomega) {
		u := stackUser(ns, ids["ada"])
		var demoted *scimv1.AuditEntry
		for i, e := range u.Status.History {
			if e.Action == "RoleChange" && e.Result == scimv1.ResultApplied && len(e.Changes) == 1 && e.Changes[0].New == "Registered" {
				demoted = &u.Status.History[i]
				break
			}
		}
		g.Expect(demoted).NotTo(BeNil(), fmt.Sprintf("%+v", u.Status.History))
		g.Expect(demoted.Actor.Kind).To(Equal(scimv1.ActorIdentityProvider))
		g.Expect(demoted.Actor.RequestID).NotTo(BeEmpty())
		var left bool
		for _, e := range u.Status.History {
			left = left || (e.Action == "GroupLeave" && e.Actor.RequestID == demoted.Actor.RequestID)
		}
		g.Expect(left).To(BeTrue(), "the membership entry and the role change name the same request")
		g.Expect(u.Status.Groups).To(BeEmpty())
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
}

func blockedBy(u *scimv1.StackUser) string {
	if c := meta.FindStatusCondition(u.Status.Conditions, scimv1.ConditionRoleChangeBlocked); c != nil {
		return c.Message
	}
	return ""
}
