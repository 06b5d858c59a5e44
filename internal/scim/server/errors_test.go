package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

func TestRFCErrors(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	id := tn.create(g, oktaUser("err@example.com"))["id"].(string)

	resp, body := tn.do("GET", "/Users?filter="+url.QueryEscape(`userName eq`), nil)
	expectError(g, resp, body, http.StatusBadRequest, "invalidFilter")
	resp, body = tn.do("GET", "/Users?filter="+url.QueryEscape(`((userName`), nil)
	expectError(g, resp, body, http.StatusBadRequest, "invalidFilter")
	resp, body = tn.do("GET", "/Users?startIndex=abc", nil)
	expectError(g, resp, body, http.StatusBadRequest, "invalidValue")

	// Unknown ids, UUID-like or not, are 404 with a SCIM body.
	for _, unknown := range []string{"010101", "3b3e6a4c-9b1e-4c2e-9a3e-0a7e9c1d2f3a", "Not.A.Valid.Name", "x%20y"} {
		resp, body = tn.do("GET", "/Users/"+unknown, nil)
		expectError(g, resp, body, http.StatusNotFound, "")
	}

	// If-Match mismatch is 412; a matching one passes.
	resp, body = tn.do("PATCH", "/Users/"+id, entraPatch(map[string]any{"op": "replace", "path": "title", "value": "x"}), "If-Match", `W/"99"`)
	expectError(g, resp, body, http.StatusPreconditionFailed, "")
	resp, body = tn.do("PATCH", "/Users/"+id, entraPatch(map[string]any{"op": "replace", "path": "title", "value": "x"}), "If-Match", `W/"1"`)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", body)
	resp, body = tn.do("DELETE", "/Users/"+id, nil, "If-Match", `W/"1"`)
	expectError(g, resp, body, http.StatusPreconditionFailed, "")

	// Body too large, malformed JSON, wrong JSON shape.
	big := `{"userName":"big@example.com","title":"` + strings.Repeat("x", 2<<20) + `"}`
	resp, body = tn.do("POST", "/Users", big)
	expectError(g, resp, body, http.StatusRequestEntityTooLarge, "")
	resp, body = tn.do("POST", "/Users", `{"userName": "x",`)
	expectError(g, resp, body, http.StatusBadRequest, "invalidSyntax")
	resp, body = tn.do("POST", "/Users", `["userName"]`)
	expectError(g, resp, body, http.StatusBadRequest, "invalidSyntax")
	resp, body = tn.do("PATCH", "/Users/"+id, `{"Operations": {}}`)
	expectError(g, resp, body, http.StatusBadRequest, "invalidSyntax")
	resp, body = tn.do("POST", "/Users", `{"name":{"givenName":"no schemas"}}`)
	expectError(g, resp, body, http.StatusBadRequest, "invalidSyntax")
	resp, body = tn.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"name":{"givenName":"no userName"}}`)
	expectError(g, resp, body, http.StatusBadRequest, "invalidValue")
	// Values the CRD rejects come back as readable 400s, not 500s.
	resp, body = tn.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+strings.Repeat("a", 300)+`"}`)
	expectError(g, resp, body, http.StatusBadRequest, "invalidValue")
	g.Expect(body["detail"]).To(ContainSubstring("userName"))

	// PATCH errors: remove without path, bad op, bad path; nothing is applied.
	resp, body = tn.do("PATCH", "/Users/"+id, entraPatch(
		map[string]any{"op": "replace", "path": "title", "value": "should not stick"},
		map[string]any{"op": "remove"},
	))
	expectError(g, resp, body, http.StatusBadRequest, "noTarget")
	_, body = tn.do("GET", "/Users/"+id, nil)
	g.Expect(body["title"]).To(Equal("x"))
	resp, body = tn.do("PATCH", "/Users/"+id, entraPatch(map[string]any{"op": "move", "path": "title", "value": "x"}))
	expectError(g, resp, body, http.StatusBadRequest, "invalidSyntax")
	resp, body = tn.do("PATCH", "/Users/"+id, entraPatch(map[string]any{"op": "add", "path": "emails[type eq", "value": "x"}))
	expectError(g, resp, body, http.StatusBadRequest, "invalidPath")
	resp, body = tn.do("PATCH", "/Users/"+id, entraPatch(map[string]any{"op": "replace", "path": "active", "value": "perhaps"}))
	expectError(g, resp, body, http.StatusBadRequest, "invalidValue")

	// Renaming onto another user's userName is 409.
	other := tn.create(g, oktaUser("other@example.com"))["id"].(string)
	g.Eventually(func() int {
		resp, _ := tn.do("PATCH", "/Users/"+other, entraPatch(map[string]any{"op": "replace", "path": "userName", "value": "ERR@example.com"}))
		return resp.StatusCode
	}).Should(Equal(http.StatusConflict))

	// Unsupported endpoints and methods.
	for _, p := range []string{"/Bulk", "/Me", "/me"} {
		resp, body = tn.do("GET", p, nil)
		expectError(g, resp, body, http.StatusNotImplemented, "")
	}
	resp, body = tn.do("POST", "/Bulk", `{}`)
	expectError(g, resp, body, http.StatusNotImplemented, "")
	resp, body = tn.do("DELETE", "/Users", nil)
	expectError(g, resp, body, http.StatusMethodNotAllowed, "")
	resp, body = tn.do("POST", "/Groups", `{"displayName":""}`)
	expectError(g, resp, body, http.StatusBadRequest, "invalidValue")

	// Unknown tenant.
	resp2, err := http.Get(startServer(t) + "/scim/v2/nope/nothing/Users")
	g.Expect(err).NotTo(HaveOccurred())
	resp2.Body.Close()
	g.Expect(resp2.StatusCode).To(Equal(http.StatusNotFound))
}

func TestResourceNamesCaseInsensitive(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	for _, p := range []string{"/users", "/USERS?count=1", "/groups", "/serviceproviderconfig", "/resourcetypes", "/schemas"} {
		resp, body := tn.do("GET", p, nil)
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%s: %v", p, body)
	}
}
