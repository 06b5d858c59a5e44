package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	. "github.com/onsi/gomega"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
	"github.com/stackscim/stack-scim-operator/internal/scim/server"
)

func TestOktaTestAPICredentials(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	resp, body := tn.do("GET", "/Users?startIndex=1&count=2", nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(resp.Header.Get("Content-Type")).To(HavePrefix("application/scim+json"))
	g.Expect(body).To(HaveKeyWithValue("schemas", []any{"urn:ietf:params:scim:api:messages:2.0:ListResponse"}))
	g.Expect(body).To(HaveKeyWithValue("totalResults", 0.0))
	g.Expect(body).To(HaveKeyWithValue("startIndex", 1.0))
	g.Expect(body).To(HaveKeyWithValue("itemsPerPage", 0.0))
	g.Expect(body).To(HaveKeyWithValue("Resources", []any{}))

	resp, body = tn.do("GET", "/Groups?startIndex=1&count=100", nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(body).To(HaveKeyWithValue("totalResults", 0.0))
	g.Expect(body).To(HaveKeyWithValue("Resources", []any{}))
}

func TestOktaCreateFlow(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	userName := "Alice.Smith@Example.com"
	lookup := "/Users?filter=" + url.QueryEscape(`userName eq "`+userName+`"`) + "&startIndex=1&count=100"

	resp, body := tn.do("GET", lookup, nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(body["totalResults"]).To(Equal(0.0))

	// Okta's spec test POSTs with application/json.
	resp, doc := tn.do("POST", "/Users", oktaUser(userName), "Content-Type", "application/json")
	g.Expect(resp.StatusCode).To(Equal(http.StatusCreated), "%v", doc)
	id := doc["id"].(string)
	postRequestID := resp.Header.Get("X-Request-Id")
	g.Expect(postRequestID).NotTo(BeEmpty())
	g.Expect(id).To(Equal(server.NameFor("acme", userName)))
	g.Expect(resp.Header.Get("Location")).To(Equal(tn.base + "/Users/" + id))
	g.Expect(resp.Header.Get("ETag")).To(Equal(`W/"1"`))
	g.Expect(doc).NotTo(HaveKey("password"))
	g.Expect(doc).To(HaveKeyWithValue("userName", userName))
	g.Expect(doc).To(HaveKeyWithValue("active", true))
	g.Expect(doc["emails"]).To(HaveLen(1))
	g.Expect(doc["name"]).To(HaveKeyWithValue("givenName", "Test"))
	meta := doc["meta"].(map[string]any)
	g.Expect(meta).To(HaveKeyWithValue("resourceType", "User"))
	g.Expect(meta).To(HaveKeyWithValue("location", tn.base+"/Users/"+id))
	g.Expect(meta).To(HaveKeyWithValue("version", `W/"1"`))
	g.Expect(meta).To(HaveKey("created"))
	g.Expect(meta).To(HaveKey("lastModified"))

	// Readable by id at once.
	resp, got := tn.do("GET", "/Users/"+id, nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(got["userName"]).To(Equal(userName))

	// The StackUser carries the tenant, the request and the audit entry.
	u := tn.user(g, id)
	g.Expect(u.Labels).To(HaveKeyWithValue(scimv1.LabelSettings, "acme"))
	g.Expect(u.Spec.SettingsRef.Name).To(Equal("acme"))
	g.Expect(u.Annotations).To(HaveKey(audit.AnnotationLastModified))
	var info audit.RequestInfo
	g.Expect(json.Unmarshal([]byte(u.Annotations[audit.AnnotationLastSCIMRequest]), &info)).To(Succeed())
	g.Expect(info.UserAgent).To(Equal("Okta SCIM Client 1.0.0"))
	g.Expect(info.RequestID).To(Equal(postRequestID))
	g.Expect(h0(u).Actor.RequestID).To(Equal(postRequestID))
	// The entry waits on the object for the reconciler to move it into status.history.
	g.Expect(audit.Pending(u)).To(HaveLen(1))
	h := audit.Pending(u)[0]
	g.Expect(h.Action).To(Equal("Create"))
	g.Expect(h.Result).To(Equal(scimv1.ResultApplied))
	g.Expect(h.Actor.Kind).To(Equal(scimv1.ActorIdentityProvider))
	g.Expect(h.Actor.Name).To(Equal(tn.ns + "/acme"))
	for _, c := range h.Changes {
		g.Expect(c.Field).NotTo(ContainSubstring("password"))
	}
	if u.Spec.AdditionalAttributes != nil {
		g.Expect(string(u.Spec.AdditionalAttributes.Raw)).NotTo(ContainSubstring("S3cret"))
	}

	// Lookup now finds it, also in another case.
	g.Eventually(func() any {
		_, b := tn.do("GET", lookup, nil)
		return b["totalResults"]
	}).Should(Equal(1.0))
	_, body = tn.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "ALICE.SMITH@EXAMPLE.COM"`), nil)
	g.Expect(body["totalResults"]).To(Equal(1.0))
	g.Expect(body["Resources"].([]any)[0]).To(HaveKeyWithValue("id", id))

	// Duplicates are 409 uniqueness, whatever the case.
	resp, body = tn.do("POST", "/Users", oktaUser(userName))
	expectError(g, resp, body, http.StatusConflict, "uniqueness")
	resp, body = tn.do("POST", "/Users", oktaUser("alice.smith@example.COM"))
	expectError(g, resp, body, http.StatusConflict, "uniqueness")
	// An unknown userName filter is 200 with zero results.
	resp, body = tn.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "nobody@example.com"`), nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(body["totalResults"]).To(Equal(0.0))
}

func TestOktaGetThenPutRoundTrip(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	body := oktaUser("rt@example.com")
	body["title"] = "Engineer"
	body["userType"] = "Moderator"
	body["x509Certificates"] = []any{map[string]any{"value": "MIIB"}}
	body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = map[string]any{"department": "R&D", "costCenter": "42", "badge": 7}
	body["urn:okta:acme:1.0:User"] = map[string]any{"favouriteColour": "blue", "nested": map[string]any{"a": []any{1, "b", true}}}
	created := tn.create(g, body)
	id := created["id"].(string)

	resp, got := tn.do("GET", "/Users/"+id, nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(got).To(Equal(created))
	g.Expect(got["userType"]).To(Equal("Moderator"))
	g.Expect(got).NotTo(HaveKey("urn:ietf:params:scim:schemas:extension:stackoverflow:2.0:User")) // answered in the form sent only
	g.Expect(got["urn:okta:acme:1.0:User"]).To(HaveKeyWithValue("favouriteColour", "blue"))
	g.Expect(got["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]).To(HaveKeyWithValue("badge", 7.0))
	before := tn.user(g, id)

	// Okta PUTs back what it got, plus groups and a password.
	got["groups"] = []any{}
	got["password"] = "whatever"
	resp, put := tn.do("PUT", "/Users/"+id, got)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", put)
	delete(got, "groups")
	delete(got, "password")
	g.Expect(put).To(Equal(got))
	after := tn.user(g, id)
	g.Expect(after.Generation).To(Equal(before.Generation))
	g.Expect(after.ResourceVersion).To(Equal(before.ResourceVersion))

	// A real change bumps the version and is audited as Replace.
	got["title"] = "Staff Engineer"
	resp, put = tn.do("PUT", "/Users/"+id, got, "If-Match", resp.Header.Get("ETag"))
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", put)
	g.Expect(put["title"]).To(Equal("Staff Engineer"))
	g.Expect(put["meta"]).To(HaveKeyWithValue("version", `W/"2"`))
	u := tn.user(g, id)
	g.Expect(audit.Pending(u)[0].Action).To(Equal("Replace"))
	g.Expect(audit.Pending(u)[0].Changes).To(ContainElement(scimv1.FieldChange{Field: "title", Old: "Engineer", New: "Staff Engineer"}))

	// PUT without any role attribute: the role becomes unmanaged.
	delete(got, "userType")
	resp, put = tn.do("PUT", "/Users/"+id, got)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", put)
	g.Expect(put).NotTo(HaveKey("userType"))
	g.Expect(tn.user(g, id).Spec.Role).To(BeNil())
}

func TestOktaDeactivateReactivate(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	id := tn.create(g, oktaUser("deact@example.com"))["id"].(string)

	patch := map[string]any{
		"schemas":    []any{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"active": false}}},
	}
	resp, doc := tn.do("PATCH", "/Users/"+id, patch)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", doc)
	g.Expect(doc["active"]).To(Equal(false))
	_, doc = tn.do("GET", "/Users/"+id, nil)
	g.Expect(doc["active"]).To(Equal(false))
	u := tn.user(g, id)
	g.Expect(*u.Spec.Active).To(BeFalse())
	g.Expect(audit.Pending(u)[0].Action).To(Equal("Patch"))
	g.Expect(audit.Pending(u)[0].Changes).To(ContainElement(scimv1.FieldChange{Field: "active", Old: "true", New: "false"}))

	// The lookup finds the inactive user; reactivation by PATCH reads back active:true.
	g.Eventually(func() any {
		_, b := tn.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "deact@example.com"`), nil)
		if b["totalResults"] != 1.0 {
			return nil
		}
		return b["Resources"].([]any)[0].(map[string]any)["active"]
	}).Should(Equal(false))
	patch["Operations"] = []any{map[string]any{"op": "replace", "value": map[string]any{"active": true}}}
	resp, doc = tn.do("PATCH", "/Users/"+id, patch)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(doc["active"]).To(Equal(true))
	_, doc = tn.do("GET", "/Users/"+id, nil)
	g.Expect(doc["active"]).To(Equal(true))

	// Custom apps deactivate and reactivate with a full PUT.
	doc["active"] = false
	resp, doc = tn.do("PUT", "/Users/"+id, doc)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(doc["active"]).To(Equal(false))
	doc["active"] = true
	_, doc = tn.do("PUT", "/Users/"+id, doc)
	g.Expect(doc["active"]).To(Equal(true))
	_, doc = tn.do("GET", "/Users/"+id, nil)
	g.Expect(doc["active"]).To(Equal(true))
}

func TestOktaImportPaging(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	const n = 23
	for i := 0; i < n; i++ {
		tn.create(g, oktaUser(fmt.Sprintf("import-%02d@example.com", i)))
	}
	g.Eventually(func() any {
		_, b := tn.do("GET", "/Users?count=0", nil)
		return b["totalResults"]
	}).Should(Equal(float64(n)))
	_, b := tn.do("GET", "/Users?count=0", nil)
	g.Expect(b["Resources"]).To(BeEmpty())
	g.Expect(b["itemsPerPage"]).To(Equal(0.0))

	pages := func() []string {
		var ids []string
		for start := 1; start <= n; start += 10 {
			resp, body := tn.do("GET", fmt.Sprintf("/Users?startIndex=%d&count=10", start), nil)
			g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
			g.Expect(body["startIndex"]).To(Equal(float64(start)))
			g.Expect(body["totalResults"]).To(Equal(float64(n)))
			res := body["Resources"].([]any)
			g.Expect(body["itemsPerPage"]).To(Equal(float64(len(res))))
			g.Expect(len(res)).To(Equal(min(10, n-start+1)))
			for _, r := range res {
				ids = append(ids, r.(map[string]any)["id"].(string))
			}
		}
		return ids
	}
	first := pages()
	g.Expect(first).To(HaveLen(n))
	seen := map[string]bool{}
	for _, id := range first {
		g.Expect(seen).NotTo(HaveKey(id))
		seen[id] = true
	}
	g.Expect(pages()).To(Equal(first))

	// Beyond the end: empty page; startIndex < 1 counts as 1; count is capped.
	_, b = tn.do("GET", "/Users?startIndex=100&count=10", nil)
	g.Expect(b["Resources"]).To(BeEmpty())
	g.Expect(b["totalResults"]).To(Equal(float64(n)))
	_, b = tn.do("GET", "/Users?startIndex=-5&count=1", nil)
	g.Expect(b["startIndex"]).To(Equal(1.0))
	g.Expect(b["Resources"].([]any)[0].(map[string]any)["id"]).To(Equal(first[0]))
	_, b = tn.do("GET", "/Users?count=100000", nil)
	g.Expect(b["itemsPerPage"]).To(Equal(float64(n)))

	// Okta's spec test: count=1 returns a user with id, name, userName, active, emails.
	_, b = tn.do("GET", "/Users?count=1", nil)
	g.Expect(b["Resources"].([]any)[0]).To(And(HaveKey("id"), HaveKey("name"), HaveKey("userName"), HaveKey("active"), HaveKey("emails")))

	// attributes / excludedAttributes.
	_, b = tn.do("GET", "/Users?count=1&attributes=userName,name.givenName", nil)
	r := b["Resources"].([]any)[0].(map[string]any)
	g.Expect(r).To(HaveKey("id"))
	g.Expect(r).To(HaveKey("userName"))
	g.Expect(r).NotTo(HaveKey("emails"))
	g.Expect(r["name"]).To(Equal(map[string]any{"givenName": "Test"}))
	_, b = tn.do("GET", "/Users/"+first[0]+"?excludedAttributes=emails,meta", nil)
	g.Expect(b).NotTo(HaveKey("emails"))
	g.Expect(b).NotTo(HaveKey("meta"))
	g.Expect(b).To(HaveKey("userName"))
}

// h0 is the newest audit entry the SCIM server left on the user.
func h0(u *scimv1.StackUser) scimv1.AuditEntry {
	if p := audit.Pending(u); len(p) > 0 {
		return p[0]
	}
	return scimv1.AuditEntry{}
}
