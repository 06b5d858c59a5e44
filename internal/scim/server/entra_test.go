package server_test

import (
	"net/http"
	"net/url"
	"testing"

	. "github.com/onsi/gomega"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

const enterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

func entraPatch(ops ...map[string]any) map[string]any {
	l := make([]any, len(ops))
	for i, o := range ops {
		l[i] = o
	}
	return map[string]any{"schemas": []any{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": l}
}

func TestEntraQuirks(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	// Entra POSTs string booleans and its own externalId.
	resp, doc := tn.do("POST", "/Users", map[string]any{
		"schemas":    []any{"urn:ietf:params:scim:schemas:core:2.0:User", enterpriseURN},
		"externalId": "5b1c-entra", "userName": "bob@contoso.com", "active": "True",
		"displayName": "Bob", "name": map[string]any{"givenName": "Bob", "familyName": "Jones"},
		enterpriseURN: map[string]any{"department": "Sales"},
	}, "User-Agent", "Microsoft.Identity.ProvisioningService")
	g.Expect(resp.StatusCode).To(Equal(http.StatusCreated), "%v", doc)
	g.Expect(doc["active"]).To(Equal(true))
	id := doc["id"].(string)

	// Unquoted externalId filter and the case-insensitive userName filter find it.
	find := func(f string) []any {
		resp, b := tn.do("GET", "/Users?filter="+url.QueryEscape(f), nil)
		g.ExpectWithOffset(1, resp.StatusCode).To(Equal(http.StatusOK), "%v", b)
		return b["Resources"].([]any)
	}
	g.Eventually(func() []any { return find(`externalId eq 5b1c-entra`) }).Should(HaveLen(1))
	g.Expect(find(`userName eq "BOB@contoso.com"`)).To(HaveLen(1))
	g.Expect(find(`externalId eq 5B1C-ENTRA`)).To(BeEmpty()) // externalId is case-exact

	// String boolean with a capitalised op.
	resp, doc = tn.do("PATCH", "/Users/"+id, entraPatch(map[string]any{"op": "Replace", "path": "active", "value": "False"}))
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", doc)
	g.Expect(doc["active"]).To(Equal(false))

	// Path-less replace with dotted and URN-qualified keys (aadOptscim062020).
	resp, doc = tn.do("PATCH", "/Users/"+id, entraPatch(map[string]any{"op": "Replace", "value": map[string]any{
		"name.givenName": "Robert", enterpriseURN + ":department": "Marketing", "active": true,
	}}))
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", doc)
	g.Expect(doc["name"]).To(Equal(map[string]any{"givenName": "Robert", "familyName": "Jones"}))
	g.Expect(doc[enterpriseURN]).To(HaveKeyWithValue("department", "Marketing"))
	g.Expect(doc["active"]).To(Equal(true))
	g.Expect(tn.user(g, id).Spec.Department).To(Equal("Marketing"))

	// add through emails[type eq "work"].value creates the element; then the non-RFC filter finds it.
	resp, doc = tn.do("PATCH", "/Users/"+id, entraPatch(map[string]any{"op": "Add", "path": `emails[type eq "work"].value`, "value": "bob@contoso.com"}))
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", doc)
	g.Expect(doc["emails"]).To(Equal([]any{map[string]any{"type": "work", "value": "bob@contoso.com", "primary": false}}))
	g.Eventually(func() []any { return find(`emails[type eq "work"].value eq "bob@contoso.com"`) }).Should(HaveLen(1))
	g.Expect(find(`emails[type eq "home"].value eq "bob@contoso.com"`)).To(BeEmpty())

	// Several ops on one attribute in one PATCH, and an empty Operations list.
	resp, doc = tn.do("PATCH", "/Users/"+id, entraPatch(
		map[string]any{"op": "Add", "path": "title", "value": "A"},
		map[string]any{"op": "Replace", "path": "title", "value": "B"},
		map[string]any{"op": "Remove", "path": "title"},
		map[string]any{"op": "Add", "path": "title", "value": "Manager"},
	))
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", doc)
	g.Expect(doc["title"]).To(Equal("Manager"))
	resp, doc = tn.do("PATCH", "/Users/"+id, entraPatch())
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", doc)
	g.Expect(doc["title"]).To(Equal("Manager"))

	// Role through core userType, then through the vendor extension (the role is then
	// answered there); removing it clears it explicitly: Registered.
	resp, doc = tn.do("PATCH", "/Users/"+id, entraPatch(map[string]any{"op": "Replace", "path": "userType", "value": "Moderator"}))
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", doc)
	g.Expect(doc["userType"]).To(Equal("Moderator"))
	g.Expect(*tn.user(g, id).Spec.Role).To(Equal(scimv1.RoleModerator))
	resp, doc = tn.do("PATCH", "/Users/"+id, entraPatch(map[string]any{"op": "replace",
		"path": "urn:ietf:params:scim:schemas:extension:stackoverflow:2.0:User:stackUserType", "value": "Admin"}))
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", doc)
	g.Expect(doc).NotTo(HaveKey("userType"))
	g.Expect(doc["urn:ietf:params:scim:schemas:extension:stackoverflow:2.0:User"]).To(Equal(map[string]any{"stackUserType": "Admin"}))
	g.Expect(*tn.user(g, id).Spec.Role).To(Equal(scimv1.RoleAdmin))
	resp, doc = tn.do("PATCH", "/Users/"+id, entraPatch(map[string]any{"op": "Remove", "path": "urn:ietf:params:scim:schemas:extension:stackoverflow:2.0:User:stackUserType"}))
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", doc)
	g.Expect(*tn.user(g, id).Spec.Role).To(Equal(scimv1.RoleRegistered))

	// Member removal from a group that does not exist answers 404 with a SCIM error.
	resp, body := tn.do("PATCH", "/Groups/g1", entraPatch(map[string]any{"op": "Remove", "path": "members", "value": []any{map[string]any{"value": id}}}))
	expectError(g, resp, body, http.StatusNotFound, "")
	resp, body = tn.do("GET", "/Groups?excludedAttributes=members&filter="+url.QueryEscape(`displayName eq "x"`), nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(body["totalResults"]).To(Equal(0.0))

	// Hard delete, then everything about the user is 404, twice.
	resp, _ = tn.do("DELETE", "/Users/"+id, nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusNoContent))
	resp, body = tn.do("GET", "/Users/"+id, nil)
	expectError(g, resp, body, http.StatusNotFound, "")
	resp, body = tn.do("DELETE", "/Users/"+id, nil)
	expectError(g, resp, body, http.StatusNotFound, "")
	resp, body = tn.do("PATCH", "/Users/"+id, entraPatch())
	expectError(g, resp, body, http.StatusNotFound, "")
}

func TestRoleAttributeSchemas(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t, func(s *scimv1.ScimSettings) { s.Spec.RoleAttributeSchemas = []string{"urn:okta:acme:1.0:User"} })
	body := oktaUser("roles@example.com")
	body["urn:other:1.0:User"] = map[string]any{"stackUserType": "Admin"}
	doc := tn.create(g, body)
	id := doc["id"].(string)
	g.Expect(tn.user(g, id).Spec.Role).To(BeNil())
	g.Expect(doc["urn:other:1.0:User"]).To(Equal(map[string]any{"stackUserType": "Admin"})) // kept, not a role

	body["urn:okta:acme:1.0:User"] = map[string]any{"stackUserType": "moderator"}
	resp, doc := tn.do("PUT", "/Users/"+id, body)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", doc)
	g.Expect(*tn.user(g, id).Spec.Role).To(Equal(scimv1.RoleModerator))
	g.Expect(doc["urn:okta:acme:1.0:User"]).To(Equal(map[string]any{"stackUserType": "Moderator"}))

	body["urn:okta:acme:1.0:User"] = map[string]any{"stackUserType": "Overlord"}
	resp, doc = tn.do("PUT", "/Users/"+id, body)
	expectError(g, resp, doc, http.StatusBadRequest, "invalidValue")
	g.Expect(doc["detail"]).To(ContainSubstring("Overlord"))
}
