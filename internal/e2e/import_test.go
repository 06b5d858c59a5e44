package e2e_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

const operatorExt = "urn:ietf:params:scim:schemas:extension:stackscim:2.0:User"

// TestE2E_importLinksExistingAccounts: a site with three accounts before any provisioning.
// Okta's spec-test reads find one, an import lists all three as unmanaged, and linking two
// of them (a GET-then-PUT, and a POST of the same userName) makes StackUsers that the
// reconciler links to the very same site accounts: three accounts in the end, no
// duplicate, and the third never touched.
func TestE2E_importLinksExistingAccounts(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	site := startSite(t, "-seed-users=3")
	st := tenant(t, ns, site, nil)
	op := startOperator(t, ns)
	okta := newSCIMClient(op, st)
	before := map[string]sitesim.User{}
	for _, n := range []string{"seed1@example.com", "seed2@example.com", "seed3@example.com"} {
		u := site.user(n)
		g.Expect(u).NotTo(BeNil())
		before[n] = *u
	}

	// Okta's SCIM spec test: list one, read it by id, find it by userName.
	var list map[string]any
	g.Eventually(func(g Gomega) {
		code, body := okta.do(http.MethodGet, "/Users?count=1&startIndex=1", nil)
		g.Expect(code).To(Equal(http.StatusOK))
		g.Expect(body["totalResults"]).To(BeEquivalentTo(3))
		list = body
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
	first := list["Resources"].([]any)[0].(map[string]any)
	id, userName := first["id"].(string), first["userName"].(string)
	g.Expect(first[operatorExt]).To(HaveKeyWithValue("managed", false))
	code, got := okta.do(http.MethodGet, "/Users/"+id, nil)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(got["userName"]).To(Equal(userName))
	code, list = okta.do(http.MethodGet, "/Users?filter="+url.QueryEscape(`userName eq "`+userName+`"`)+"&startIndex=1&count=100", nil)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(list["totalResults"]).To(BeEquivalentTo(1))

	// Link seed1 the way Okta updates a matched user: GET, then PUT it back with its values.
	code, doc := okta.do(http.MethodGet, "/Users?filter="+url.QueryEscape(`userName eq "seed1@example.com"`), nil)
	g.Expect(code).To(Equal(http.StatusOK))
	seed1 := doc["Resources"].([]any)[0].(map[string]any)
	seed1ID := seed1["id"].(string)
	seed1["externalId"] = "00uOkta1"
	seed1["title"] = "Engineer"
	code, put := okta.do(http.MethodPut, "/Users/"+seed1ID, seed1)
	g.Expect(code).To(Equal(http.StatusOK), "%v", put)
	g.Expect(put).NotTo(HaveKey(operatorExt))

	// Link seed2 by a POST of its userName, as Okta does when its lookup missed it.
	code, created := okta.do(http.MethodPost, "/Users", map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "seed2@example.com",
		"externalId": "00uOkta2", "active": true, "name": map[string]any{"givenName": "Seed", "familyName": "Two"},
	})
	g.Expect(code).To(Equal(http.StatusCreated), "%v", created)

	// The reconciler links both to their existing accounts and updates them there.
	g.Eventually(func(g Gomega) {
		u := site.user("seed1@example.com")
		g.Expect(u).NotTo(BeNil())
		g.Expect(u.ID).To(Equal(before["seed1@example.com"].ID), "the same account, not a second one")
		g.Expect(u.ExternalID).To(Equal("00uOkta1"))
		g.Expect(u.Title).To(Equal("Engineer"))
		g.Expect(u.DisplayName).To(Equal("Seed User 1"), "values the PUT carried over")
		u2 := site.user("seed2@example.com")
		g.Expect(u2).NotTo(BeNil())
		g.Expect(u2.ID).To(Equal(before["seed2@example.com"].ID))
		g.Expect(u2.ExternalID).To(Equal("00uOkta2"))
		g.Expect(stackUser(ns, seed1ID)).To(HaveField("Status.SiteID", before["seed1@example.com"].ID))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
	state, err := site.state()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(state.Users).To(HaveLen(3), "no account created")
	g.Expect(state.Requests[sitesim.CountCreateUser]).To(BeZero())
	g.Expect(*site.user("seed3@example.com")).To(Equal(before["seed3@example.com"]), "the unmanaged account is never changed")

	// The import now shows two StackUsers and the one account still unmanaged.
	code, list = okta.do(http.MethodGet, "/Users?startIndex=1&count=100", nil)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(list["totalResults"]).To(BeEquivalentTo(3))
	var unmanaged []any
	for _, r := range list["Resources"].([]any) {
		if _, ok := r.(map[string]any)[operatorExt]; ok {
			unmanaged = append(unmanaged, r.(map[string]any)["userName"])
		}
	}
	g.Expect(unmanaged).To(Equal([]any{"seed3@example.com"}))
}

// TestE2E_siteAccountsCanBeHidden: with --scim-list-site-accounts=false the SCIM server
// lists StackUsers only, and an unmanaged id is unknown.
func TestE2E_siteAccountsCanBeHidden(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	site := startSite(t, "-seed-users=2")
	st := tenant(t, ns, site, nil)
	op := startOperator(t, ns, "--scim-list-site-accounts=false")
	okta := newSCIMClient(op, st)
	g.Eventually(func() int { code, _ := okta.do(http.MethodGet, "/Users?startIndex=1&count=100", nil); return code },
		60*time.Second, 200*time.Millisecond).Should(Equal(http.StatusOK))
	code, list := okta.do(http.MethodGet, "/Users?startIndex=1&count=100", nil)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(list["totalResults"]).To(BeEquivalentTo(0))
	code, list = okta.do(http.MethodGet, "/Users?filter="+url.QueryEscape(`userName eq "seed1@example.com"`), nil)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(list["totalResults"]).To(BeEquivalentTo(0))
}
