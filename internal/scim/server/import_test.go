package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
	"github.com/stackscim/stack-scim-operator/internal/scim/server"
	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

const (
	schemaOperator   = "urn:ietf:params:scim:schemas:extension:stackscim:2.0:User"
	schemaEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
)

// siteTenant is a tenant whose site is a simulator with accounts already on it.
type siteTenant struct {
	*tenant
	sim *sitesim.Sim
	// down makes the site answer 503 to everything.
	down atomic.Bool
}

func newSiteTenant(t *testing.T, seed func(*sitesim.Sim)) *siteTenant {
	t.Helper()
	st := &siteTenant{sim: sitesim.New(sitesim.Config{})}
	if seed != nil {
		seed(st.sim)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st.down.Load() {
			http.Error(w, `{"ErrorMessage":"maintenance"}`, http.StatusServiceUnavailable)
			return
		}
		st.sim.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	st.tenant = newTenant(t, func(s *scimv1.ScimSettings) { s.Spec.Site.URL = srv.URL + sitesim.BasePath })
	return st
}

// list GETs a list and returns its resources.
func (tn *tenant) list(g Gomega, query string) (map[string]any, []map[string]any) {
	resp, body := tn.do("GET", "/Users"+query, nil)
	g.ExpectWithOffset(1, resp.StatusCode).To(Equal(http.StatusOK), "%v", body)
	var out []map[string]any
	for _, r := range body["Resources"].([]any) {
		out = append(out, r.(map[string]any))
	}
	return body, out
}

func userNamesOf(docs []map[string]any) []string {
	var out []string
	for _, d := range docs {
		out = append(out, d["userName"].(string))
	}
	return out
}

func unmanaged(doc map[string]any) bool {
	ext, ok := doc[schemaOperator].(map[string]any)
	return ok && ext["managed"] == false
}

// siteWrites counts the requests that could change the site.
func siteWrites(sim *sitesim.Sim) int64 {
	r := sim.Requests()
	return r[sitesim.CountCreateUser] + r[sitesim.CountPatchUser] + r[sitesim.CountPutUser] + r[sitesim.CountDeleteUser]
}

// siteID is the site id of the account with the userName.
func siteID(sim *sitesim.Sim, userName string) string {
	for _, u := range sim.Users() {
		if u.UserName == userName {
			return u.ID
		}
	}
	return ""
}

func seedThree(sim *sitesim.Sim) {
	sim.SeedExamples(2) // seed1@example.com, seed2@example.com
	sim.Seed(sitesim.User{UserName: "Mod.Erator@Example.com", ExternalID: "old-idp-3", DisplayName: "Mo Derator",
		GivenName: "Mo", FamilyName: "Derator", Email: "mod@example.com", Active: false, Role: sitesim.RoleModerator,
		Title: "Ops", Department: "IT"})
}

func TestImport_listShowsSiteAccountsAsUnmanagedAfterStackUsers(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	st := newSiteTenant(t, seedThree)
	managed := st.create(g, oktaUser("provisioned@example.com"))

	body, docs := st.list(g, "?startIndex=1&count=100")
	g.Expect(body["totalResults"]).To(Equal(4.0))
	g.Expect(body["itemsPerPage"]).To(Equal(4.0))
	g.Expect(userNamesOf(docs)).To(Equal([]string{"provisioned@example.com", "seed1@example.com", "seed2@example.com", "Mod.Erator@Example.com"}),
		"StackUsers first, then site accounts in site id order")
	g.Expect(docs[0]["id"]).To(Equal(managed["id"]))
	g.Expect(unmanaged(docs[0])).To(BeFalse())
	g.Expect(docs[0]).NotTo(HaveKey(schemaOperator))

	mod := docs[3]
	id := server.NameFor("acme", "Mod.Erator@Example.com")
	g.Expect(mod).To(HaveKeyWithValue("id", id), "the id the StackUser gets when linked")
	g.Expect(mod["schemas"]).To(ConsistOf("urn:ietf:params:scim:schemas:core:2.0:User", schemaEnterprise, schemaOperator))
	g.Expect(mod[schemaOperator]).To(Equal(map[string]any{"managed": false, "siteId": siteID(st.sim, "Mod.Erator@Example.com")}))
	g.Expect(mod).To(HaveKeyWithValue("externalId", "old-idp-3"))
	g.Expect(mod).To(HaveKeyWithValue("displayName", "Mo Derator"))
	g.Expect(mod).To(HaveKeyWithValue("active", false))
	g.Expect(mod).To(HaveKeyWithValue("userType", "Moderator"))
	g.Expect(mod).To(HaveKeyWithValue("title", "Ops"))
	g.Expect(mod).To(HaveKeyWithValue("name", map[string]any{"givenName": "Mo", "familyName": "Derator"}))
	g.Expect(mod).To(HaveKeyWithValue("emails", []any{map[string]any{"value": "mod@example.com", "type": "work", "primary": true}}))
	g.Expect(mod).To(HaveKeyWithValue(schemaEnterprise, map[string]any{"department": "IT"}))
	g.Expect(mod["meta"]).To(HaveKeyWithValue("resourceType", "User"))
	g.Expect(mod["meta"]).To(HaveKeyWithValue("location", st.base+"/Users/"+id))
	g.Expect(unmanaged(docs[1])).To(BeTrue())
	g.Expect(docs[1]).NotTo(HaveKey("userType"), "Registered is shown as the site shows it: absent")

	// Paging runs across both: positions 2-3 are the first two site accounts.
	body, docs = st.list(g, "?startIndex=2&count=2")
	g.Expect(body["totalResults"]).To(Equal(4.0))
	g.Expect(body["startIndex"]).To(Equal(2.0))
	g.Expect(body["itemsPerPage"]).To(Equal(2.0))
	g.Expect(userNamesOf(docs)).To(Equal([]string{"seed1@example.com", "seed2@example.com"}))
	_, docs = st.list(g, "?startIndex=4&count=100")
	g.Expect(userNamesOf(docs)).To(Equal([]string{"Mod.Erator@Example.com"}))
	body, docs = st.list(g, "?count=0")
	g.Expect(body["totalResults"]).To(Equal(4.0))
	g.Expect(docs).To(BeEmpty())
	body, docs = st.list(g, "?startIndex=9")
	g.Expect(body["totalResults"]).To(Equal(4.0))
	g.Expect(docs).To(BeEmpty())

	// attributes and excludedAttributes apply as to StackUsers.
	_, docs = st.list(g, "?startIndex=4&attributes=userName")
	g.Expect(docs[0]).To(HaveKey("id"))
	g.Expect(docs[0]).To(HaveKey("userName"))
	g.Expect(docs[0]).NotTo(HaveKey("emails"))
	g.Expect(docs[0]).NotTo(HaveKey("title"))
	_, docs = st.list(g, "?startIndex=4&excludedAttributes=emails,title")
	g.Expect(docs[0]).NotTo(HaveKey("emails"))
	g.Expect(docs[0]).NotTo(HaveKey("title"))
	g.Expect(docs[0]).To(HaveKey("displayName"))
	g.Expect(unmanaged(docs[0])).To(BeTrue())

	g.Expect(siteWrites(st.sim)).To(BeZero(), "the SCIM server never writes to the site")
}

// Okta's "SCIM 2.0 SPEC Test" needs one user to exist: on a tenant with no StackUser yet,
// a site account is that user.
func TestImport_oktaSpecTestFindsASiteAccount(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	st := newSiteTenant(t, func(sim *sitesim.Sim) { sim.SeedExamples(3) })

	body, docs := st.list(g, "?count=1&startIndex=1")
	g.Expect(body["totalResults"]).To(Equal(3.0))
	g.Expect(docs).To(HaveLen(1))
	first := docs[0]
	for _, k := range []string{"id", "name", "userName", "active", "emails"} {
		g.Expect(first).To(HaveKey(k))
	}
	id, userName := first["id"].(string), first["userName"].(string)

	resp, got := st.do("GET", "/Users/"+id, nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(got["userName"]).To(Equal(userName))
	g.Expect(resp.Header.Get("ETag")).To(Equal(got["meta"].(map[string]any)["version"]))
	g.Expect(unmanaged(got)).To(BeTrue())

	for _, f := range []string{
		`userName eq "` + userName + `"`,
		`userName eq "` + strings.ToUpper(userName) + `"`,
		`externalId eq "seed-1"`,
		`emails[type eq "work"].value eq "seed1@example.com"`,
		`emails.value eq "seed1@example.com"`,
		`id eq "` + id + `"`,
		`userName sw "seed1" and active eq true`,
	} {
		body, docs := st.list(g, "?filter="+url.QueryEscape(f)+"&startIndex=1&count=100")
		g.Expect(body["totalResults"]).To(Equal(1.0), f)
		g.Expect(docs[0]["id"]).To(Equal(id), f)
	}
	body, _ = st.list(g, "?filter="+url.QueryEscape(`userName eq "nobody@example.com"`))
	g.Expect(body["totalResults"]).To(Equal(0.0))
	body, _ = st.list(g, "?filter="+url.QueryEscape(`userName sw "seed"`)+"&count=2")
	g.Expect(body["totalResults"]).To(Equal(3.0))
	g.Expect(body["itemsPerPage"]).To(Equal(2.0))

	resp, body = st.do("GET", "/Users/u-0123456789abcdef0123", nil)
	expectError(g, resp, body, http.StatusNotFound, "")
}

func TestImport_putLinksTheAccountKeepingItsValues(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	st := newSiteTenant(t, seedThree)
	id := server.NameFor("acme", "Mod.Erator@Example.com")

	// Okta: GET, then PUT back what it read with its mapped values.
	_, doc := st.do("GET", "/Users/"+id, nil)
	doc["externalId"] = "00uOkta3"
	doc["title"] = "Head of Ops"
	resp, put := st.do("PUT", "/Users/"+id, doc)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", put)
	g.Expect(put["id"]).To(Equal(id), "the id stays the same once linked")
	g.Expect(put).NotTo(HaveKey(schemaOperator), "managed now")
	g.Expect(put["meta"]).To(HaveKeyWithValue("version", `W/"1"`))

	u := st.user(g, id)
	g.Expect(u.Spec.UserName).To(Equal("Mod.Erator@Example.com"))
	g.Expect(u.Spec.ExternalID).To(Equal("00uOkta3"))
	g.Expect(u.Spec.Title).To(Equal("Head of Ops"))
	g.Expect(u.Spec.DisplayName).To(Equal("Mo Derator"))
	g.Expect(u.Spec.Department).To(Equal("IT"))
	g.Expect(*u.Spec.Active).To(BeFalse(), "the account's activation is kept")
	g.Expect(u.Spec.Role).To(HaveValue(Equal(scimv1.RoleModerator)), "and its role")
	g.Expect(u.Spec.Emails).To(ConsistOf(HaveField("Value", "mod@example.com")))
	g.Expect(u.Spec.AdditionalAttributes).To(BeNil(), "the unmanaged marker is never stored")
	g.Expect(u.Finalizers).To(ContainElement(scimv1.Finalizer))
	g.Expect(u.Annotations).To(HaveKey(audit.AnnotationPendingAudit))

	// Listed once, as a StackUser.
	body, docs := st.list(g, "")
	g.Expect(body["totalResults"]).To(Equal(3.0))
	g.Expect(userNamesOf(docs)).To(Equal([]string{"Mod.Erator@Example.com", "seed1@example.com", "seed2@example.com"}))
	g.Expect(unmanaged(docs[0])).To(BeFalse())
	g.Expect(siteWrites(st.sim)).To(BeZero(), "the site is changed by the reconciler, never by the SCIM server")
}

func TestImport_patchLinksWithTheSiteValuesAndTheChange(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	st := newSiteTenant(t, func(sim *sitesim.Sim) { sim.SeedExamples(1) })
	id := server.NameFor("acme", "seed1@example.com")
	resp, body := st.do("PATCH", "/Users/"+id, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"externalId": "00uOkta1"}}},
	})
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", body)
	u := st.user(g, id)
	g.Expect(u.Spec.ExternalID).To(Equal("00uOkta1"))
	g.Expect(u.Spec.DisplayName).To(Equal("Seed User 1"))
	g.Expect(*u.Spec.Active).To(BeTrue())
	g.Expect(u.Spec.Role).To(BeNil(), "a Registered account's role stays unmanaged")
}

func TestImport_linkMayNotRenameTheAccount(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	st := newSiteTenant(t, func(sim *sitesim.Sim) { sim.SeedExamples(1) })
	id := server.NameFor("acme", "seed1@example.com")
	_, doc := st.do("GET", "/Users/"+id, nil)
	doc["userName"] = "someone.else@example.com"
	resp, body := st.do("PUT", "/Users/"+id, doc)
	expectError(g, resp, body, http.StatusBadRequest, "mutability")
	g.Expect(body["detail"]).To(ContainSubstring("seed1@example.com"))
	var u scimv1.StackUser
	g.Expect(env.Client.Get(context.Background(), keyOf(st.ns, id), &u)).NotTo(Succeed(), "nothing created")

	// A case change is not a rename: the site matches userNames case-insensitively.
	doc["userName"] = "SEED1@example.com"
	resp, body = st.do("PUT", "/Users/"+id, doc)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", body)
}

func TestImport_postOfAnUnmanagedUserNameCreatesTheSameID(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	st := newSiteTenant(t, func(sim *sitesim.Sim) { sim.SeedExamples(2) })
	doc := st.create(g, oktaUser("Seed2@Example.com"))
	g.Expect(doc["id"]).To(Equal(server.NameFor("acme", "seed2@example.com")))
	body, docs := st.list(g, "")
	g.Expect(body["totalResults"]).To(Equal(2.0))
	g.Expect(userNamesOf(docs)).To(Equal([]string{"Seed2@Example.com", "seed1@example.com"}))
	resp, body := st.do("POST", "/Users", oktaUser("seed1@example.com"))
	g.Expect(resp.StatusCode).To(Equal(http.StatusCreated), "%v", body)
	body, _ = st.list(g, "")
	g.Expect(body["totalResults"]).To(Equal(2.0))
}

func TestImport_deleteOfAnUnmanagedAccountChangesNothing(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	st := newSiteTenant(t, func(sim *sitesim.Sim) { sim.SeedExamples(1) })
	id := server.NameFor("acme", "seed1@example.com")
	resp, body := st.do("DELETE", "/Users/"+id, nil)
	expectError(g, resp, body, http.StatusNotFound, "")
	g.Expect(body["detail"]).To(ContainSubstring("does not manage"))
	resp, _ = st.do("GET", "/Users/"+id, nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "still an unmanaged account")
	g.Expect(siteWrites(st.sim)).To(BeZero())
	u, _ := st.sim.User(siteID(st.sim, "seed1@example.com"))
	g.Expect(u.Active).To(BeTrue())
}

func TestImport_groupMembersMustBeLinkedFirst(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	st := newSiteTenant(t, func(sim *sitesim.Sim) { sim.SeedExamples(1) })
	id := server.NameFor("acme", "seed1@example.com")
	resp, body := st.do("POST", "/Groups", map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Engineering",
		"members":     []any{map[string]any{"value": id}},
	})
	expectError(g, resp, body, http.StatusBadRequest, "invalidValue")
	g.Expect(body["detail"]).To(And(ContainSubstring(id), ContainSubstring("does not manage")))
	var list scimv1.StackUserList
	g.Expect(env.Client.List(context.Background(), &list)).To(Succeed())
	for _, u := range list.Items {
		g.Expect(u.Namespace).NotTo(Equal(st.ns), "no StackUser created by a group request")
	}
}

func TestImport_siteDownServesStackUsersAlone(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	st := newSiteTenant(t, func(sim *sitesim.Sim) { sim.SeedExamples(2) })
	st.create(g, oktaUser("provisioned@example.com"))
	st.down.Store(true)
	// The snapshot read before the outage may still be served for a while; a tenant
	// whose site was never read shows its StackUsers alone at once.
	fresh := newSiteTenant(t, func(sim *sitesim.Sim) { sim.SeedExamples(2) })
	fresh.down.Store(true)
	fresh.create(g, oktaUser("provisioned@example.com"))
	start := time.Now()
	body, docs := fresh.list(g, "?startIndex=1&count=100")
	g.Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
	g.Expect(body["totalResults"]).To(Equal(1.0))
	g.Expect(userNamesOf(docs)).To(Equal([]string{"provisioned@example.com"}))
	resp, _ := fresh.do("GET", "/Users/"+server.NameFor("acme", "seed1@example.com"), nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusNotFound))

	// Back up: the accounts appear.
	fresh.down.Store(false)
	g.Eventually(func(g Gomega) {
		body, _ := fresh.list(g, "")
		g.Expect(body["totalResults"]).To(Equal(3.0))
	}).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	body, _ = st.list(g, "")
	g.Expect(body["totalResults"]).To(BeNumerically(">=", 1.0))
}

// An account described by a StackUser (by site id, userName or externalId) is never
// listed twice, and a new site account shows up.
func TestImport_accountsDescribedByAStackUserDisappear(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	st := newSiteTenant(t, func(sim *sitesim.Sim) { sim.SeedExamples(3) })
	body, _ := st.list(g, "")
	g.Expect(body["totalResults"]).To(Equal(3.0))
	ctx := context.Background()

	// Linked by the reconciler under another userName (status.siteId).
	u := &scimv1.StackUser{
		ObjectMeta: metav1.ObjectMeta{Namespace: st.ns, Name: "renamed"},
		Spec:       scimv1.StackUserSpec{SettingsRef: scimv1.SettingsReference{Name: "acme"}, UserName: "renamed@example.com"},
	}
	g.Expect(env.Client.Create(ctx, u)).To(Succeed())
	u.Status.SiteID = siteID(st.sim, "seed1@example.com")
	g.Expect(env.Client.Status().Update(ctx, u)).To(Succeed())
	// Not linked yet, but with the account's externalId.
	g.Expect(env.Client.Create(ctx, &scimv1.StackUser{
		ObjectMeta: metav1.ObjectMeta{Namespace: st.ns, Name: "by-external-id"},
		Spec:       scimv1.StackUserSpec{SettingsRef: scimv1.SettingsReference{Name: "acme"}, UserName: "other@example.com", ExternalID: "seed-2"},
	})).To(Succeed())
	// With the account's userName, in another case.
	g.Expect(env.Client.Create(ctx, &scimv1.StackUser{
		ObjectMeta: metav1.ObjectMeta{Namespace: st.ns, Name: "by-user-name"},
		Spec:       scimv1.StackUserSpec{SettingsRef: scimv1.SettingsReference{Name: "acme"}, UserName: "SEED3@example.com"},
	})).To(Succeed())
	st.sim.Seed(sitesim.User{UserName: "newcomer@example.com", Active: true})

	g.Eventually(func(g Gomega) {
		body, docs := st.list(g, "?count=100")
		g.Expect(userNamesOf(docs)).To(ConsistOf("renamed@example.com", "other@example.com", "SEED3@example.com", "newcomer@example.com"))
		g.Expect(body["totalResults"]).To(Equal(4.0))
		for _, d := range docs {
			g.Expect(unmanaged(d)).To(Equal(d["userName"] == "newcomer@example.com"))
		}
	}).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	resp, _ := st.do("GET", "/Users/"+server.NameFor("acme", "seed2@example.com"), nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
}

func TestImport_discoveryDescribesTheMarker(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	_, rt := tn.do("GET", "/ResourceTypes/User", nil)
	g.Expect(rt["schemaExtensions"]).To(ContainElement(Equal(map[string]any{"schema": schemaOperator, "required": false})))
	resp, schema := tn.do("GET", "/Schemas/"+schemaOperator, nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	attrs := map[string]map[string]any{}
	for _, a := range schema["attributes"].([]any) {
		m := a.(map[string]any)
		attrs[m["name"].(string)] = m
	}
	g.Expect(attrs["managed"]).To(And(HaveKeyWithValue("type", "boolean"), HaveKeyWithValue("mutability", "readOnly")))
	g.Expect(attrs["siteId"]).To(HaveKeyWithValue("mutability", "readOnly"))
}

// A StackUser renamed since holds the name an account's userName hashes to: the account
// is shown under an id of its own, found by every path, and links under it.
func TestImport_takenIDFallsBackToOneOfItsOwn(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	st := newSiteTenant(t, func(sim *sitesim.Sim) { sim.SeedExamples(1) })
	taken := server.NameFor("acme", "seed1@example.com")
	g.Expect(env.Client.Create(context.Background(), &scimv1.StackUser{
		ObjectMeta: metav1.ObjectMeta{Namespace: st.ns, Name: taken},
		Spec:       scimv1.StackUserSpec{SettingsRef: scimv1.SettingsReference{Name: "acme"}, UserName: "renamed@example.com"},
	})).To(Succeed())

	var id string
	g.Eventually(func(g Gomega) {
		body, docs := st.list(g, "")
		g.Expect(body["totalResults"]).To(Equal(2.0))
		g.Expect(userNamesOf(docs)).To(Equal([]string{"renamed@example.com", "seed1@example.com"}))
		id, _ = docs[1]["id"].(string)
	}).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	g.Expect(id).To(HavePrefix("u-"))
	g.Expect(id).NotTo(Equal(taken))

	_, docs := st.list(g, "?filter="+url.QueryEscape(`userName eq "seed1@example.com"`))
	g.Expect(docs).To(HaveLen(1))
	g.Expect(docs[0]["id"]).To(Equal(id))
	resp, doc := st.do("GET", "/Users/"+id, nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(unmanaged(doc)).To(BeTrue())
	resp, got := st.do("GET", "/Users/"+taken, nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(got["userName"]).To(Equal("renamed@example.com"))

	resp, put := st.do("PUT", "/Users/"+id, doc)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", put)
	g.Expect(st.user(g, id).Spec.UserName).To(Equal("seed1@example.com"))
}

// A stale If-Match on an unmanaged account fails as on a StackUser.
func TestImport_ifMatchOnAnUnmanagedAccount(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	st := newSiteTenant(t, func(sim *sitesim.Sim) { sim.SeedExamples(1) })
	id := server.NameFor("acme", "seed1@example.com")
	resp, doc := st.do("GET", "/Users/"+id, nil)
	etag := resp.Header.Get("ETag")
	g.Expect(etag).To(HavePrefix(`W/"site-`))
	resp, body := st.do("PUT", "/Users/"+id, doc, "If-Match", `W/"1"`)
	expectError(g, resp, body, http.StatusPreconditionFailed, "")
	resp, body = st.do("PUT", "/Users/"+id, doc, "If-Match", etag)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", body)
}

// Entra links an account it matched by userName with its own PATCH dialect, and several
// requests racing to link one account all succeed on the one StackUser.
func TestImport_entraPatchAndRacingLinks(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	st := newSiteTenant(t, func(sim *sitesim.Sim) { sim.SeedExamples(2) })

	id := server.NameFor("acme", "seed1@example.com")
	resp, body := st.do("PATCH", "/Users/"+id, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "Replace", "path": "active", "value": "False"}},
	})
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", body)
	g.Expect(*st.user(g, id).Spec.Active).To(BeFalse())

	id2 := server.NameFor("acme", "seed2@example.com")
	titles := []string{"A", "B", "C", "D", "E", "F"}
	codes := make(chan int, len(titles))
	for _, title := range titles {
		go func() {
			resp, _ := st.do("PATCH", "/Users/"+id2, map[string]any{
				"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
				"Operations": []any{map[string]any{"op": "replace", "path": "title", "value": title}},
			})
			codes <- resp.StatusCode
		}()
	}
	for range titles {
		g.Expect(<-codes).To(Equal(http.StatusOK))
	}
	u := st.user(g, id2)
	g.Expect(titles).To(ContainElement(u.Spec.Title))
	g.Expect(u.Spec.DisplayName).To(Equal("Seed User 2"))
	body, docs := st.list(g, "")
	g.Expect(body["totalResults"]).To(Equal(2.0))
	for _, d := range docs {
		g.Expect(unmanaged(d)).To(BeFalse())
	}
}
