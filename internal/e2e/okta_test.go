package e2e_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

const stackExt = "urn:ietf:params:scim:schemas:extension:stackoverflow:2.0:User"

// TestE2E_oktaLifecycle plays what Okta does over the life of one user against the real
// manager binary and the site simulator, and checks the site and the audit trail.
func TestE2E_oktaLifecycle(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	site := startSite(t, "-allow-moderator-promotion=true", "-allow-admin-promotion=true")
	st := tenant(t, ns, site, nil) // promotion switches off in ScimSettings
	op := startOperator(t, ns)
	okta := newSCIMClient(op, st)
	const userName = "grace.hopper@example.com"

	// "Test API Credentials".
	g.Eventually(func() int { code, _ := okta.do(http.MethodGet, "/Users?startIndex=1&count=2", nil); return code },
		60*time.Second, 200*time.Millisecond).Should(Equal(http.StatusOK))
	code, groups := okta.do(http.MethodGet, "/Groups?startIndex=1&count=100", nil)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(groups["Resources"]).To(BeEmpty())

	// Lookup, then create.
	code, list := okta.do(http.MethodGet, `/Users?filter=userName%20eq%20%22`+userName+`%22&startIndex=1&count=100`, nil)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(list["totalResults"]).To(BeEquivalentTo(0))
	code, created := okta.do(http.MethodPost, "/Users", map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:User", stackExt},
		"userName":    userName,
		"name":        map[string]any{"givenName": "Grace", "familyName": "Hopper"},
		"emails":      []any{map[string]any{"primary": true, "value": userName, "type": "work"}},
		"displayName": "Grace Hopper",
		"externalId":  "00u1okta",
		"password":    "Not-Stored-1!",
		"active":      true,
		stackExt:      map[string]any{"stackUserType": "Registered"},
	})
	g.Expect(code).To(Equal(http.StatusCreated), "%v", created)
	id, _ := created["id"].(string)
	g.Expect(id).NotTo(BeEmpty())
	g.Expect(created).NotTo(HaveKey("password"))

	g.Eventually(func() *sitesim.User { return site.user(userName) }, 60*time.Second, 200*time.Millisecond).Should(
		And(Not(BeNil()), HaveField("Active", true), HaveField("ExternalID", "00u1okta"), HaveField("GivenName", "Grace")))

	// GET then PUT the whole object back with a new title and department.
	code, got := okta.do(http.MethodGet, "/Users/"+id, nil)
	g.Expect(code).To(Equal(http.StatusOK))
	got["title"] = "Rear Admiral"
	got["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = map[string]any{"department": "Navy"}
	code, put := okta.do(http.MethodPut, "/Users/"+id, got)
	g.Expect(code).To(Equal(http.StatusOK), "%v", put)
	g.Eventually(func() *sitesim.User { return site.user(userName) }, 60*time.Second, 200*time.Millisecond).Should(
		And(HaveField("Title", "Rear Admiral"), HaveField("Department", "Navy"), HaveField("Active", true)))

	// Deactivate the way catalog apps do: path-less replace with a map.
	code, _ = okta.do(http.MethodPatch, "/Users/"+id, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"active": false}}},
	})
	g.Expect(code).To(BeElementOf(http.StatusOK, http.StatusNoContent))
	g.Eventually(func() *sitesim.User { return site.user(userName) }, 60*time.Second, 200*time.Millisecond).Should(HaveField("Active", false))

	// Reactivate: lookup finds the inactive user, then active:true; it must read back active.
	code, list = okta.do(http.MethodGet, `/Users?filter=userName%20eq%20%22`+userName+`%22`, nil)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(list["totalResults"]).To(BeEquivalentTo(1))
	code, re := okta.do(http.MethodPatch, "/Users/"+id, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"active": true}}},
	})
	g.Expect(code).To(BeElementOf(http.StatusOK, http.StatusNoContent))
	if code == http.StatusOK {
		g.Expect(re["active"]).To(BeTrue())
	}
	g.Eventually(func() *sitesim.User { return site.user(userName) }, 60*time.Second, 200*time.Millisecond).Should(HaveField("Active", true))

	// Promote to Admin while the tenant's admin switch is off: blocked, site untouched.
	code, _ = okta.do(http.MethodPatch, "/Users/"+id, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "path": stackExt + ":stackUserType", "value": "Admin"}},
	})
	g.Expect(code).To(BeElementOf(http.StatusOK, http.StatusNoContent))
	g.Eventually(func() string {
		u := stackUser(ns, id)
		if u == nil {
			return ""
		}
		for _, c := range u.Status.Conditions {
			if c.Type == scimv1.ConditionRoleChangeBlocked && c.Status == "True" {
				return c.Reason
			}
		}
		return ""
	}, 60*time.Second, 200*time.Millisecond).Should(Equal("PromotionNotAllowed"))
	g.Expect(site.user(userName).Role).To(Equal(sitesim.RoleRegistered))

	// The site admin turns admin promotion on (kubectl patch: no resourceVersion, so the
	// operator's own status writes cannot make it conflict): the blocked change is applied.
	cur := &scimv1.ScimSettings{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(st), cur)).To(Succeed())
	base := cur.DeepCopy()
	cur.Spec.AllowAdminPromotion = true
	g.Expect(env.Client.Patch(context.Background(), cur, client.MergeFrom(base))).To(Succeed())
	g.Eventually(func() string { return site.user(userName).Role }, 60*time.Second, 200*time.Millisecond).Should(Equal(sitesim.RoleAdmin))

	// One site user, and a history that explains every step.
	state, err := site.state()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(state.Users).To(HaveLen(1), "no duplicate site users")
	u := stackUser(ns, id)
	g.Expect(u).NotTo(BeNil())
	byResult := map[scimv1.AuditResult]int{}
	var roleEntries []scimv1.AuditEntry
	for _, e := range u.Status.History {
		byResult[e.Result]++
		for _, c := range e.Changes {
			if c.Field == "role" {
				roleEntries = append(roleEntries, e)
			}
		}
	}
	g.Expect(byResult[scimv1.ResultBlocked]).To(BeNumerically(">=", 1), "the blocked promotion is on record")
	g.Expect(roleEntries).To(ContainElement(And(
		HaveField("Result", scimv1.ResultApplied),
		HaveField("Changes", ContainElement(HaveField("New", "Admin"))),
	)), "who made the user an admin, and when, is on record")
	g.Expect(u.Status.History).To(ContainElement(And(
		HaveField("Action", "Create"), HaveField("Message", ContainSubstring("created site user")),
		HaveField("Actor.Kind", scimv1.ActorIdentityProvider), HaveField("Actor.UserAgent", "Okta SCIM Client 1.0.0"),
	)), "the site-side create is attributed to Okta's request (managedFields survive the cache trim)")
	for _, e := range u.Status.History {
		for _, c := range e.Changes {
			g.Expect(c.Old+c.New).NotTo(ContainSubstring("Not-Stored-1!"), "no password in the history")
		}
	}
}
