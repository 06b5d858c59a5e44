package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	. "github.com/onsi/gomega"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

const stackURN = "urn:ietf:params:scim:schemas:extension:stackoverflow:2.0:User"

// roleMapping is one place Okta or Entra can carry the role, with how to set it in a
// document and the PATCH path that names it.
type roleMapping struct {
	set  func(doc map[string]any, role string)
	path string
}

func extRole(urn string) roleMapping {
	return roleMapping{
		set: func(d map[string]any, r string) {
			m, _ := d[urn].(map[string]any)
			if m == nil {
				m = map[string]any{}
				d[urn] = m
			}
			m["stackUserType"] = r
		},
		path: urn + ":stackUserType",
	}
}

var roleMappings = map[string]roleMapping{
	"top level":            {set: func(d map[string]any, r string) { d["stackUserType"] = r }, path: "stackUserType"},
	"core userType":        {set: func(d map[string]any, r string) { d["userType"] = r }, path: "userType"},
	"vendor extension":     extRole(stackURN),
	"enterprise extension": extRole(enterpriseURN),
	"custom URN":           extRole("urn:okta:acme_stack:1.0:User"),
}

// TestRole_roundTripsInEveryMapping: the role is answered in the form the IdP sent it,
// so Okta's GET-then-PUT with the role changed in that form changes it, and so does a
// PATCH of that form. Before, GET answered the role twice (userType and the vendor
// extension); the PUT carried both, the unchanged copy won, and the change was lost.
func TestRole_roundTripsInEveryMapping(t *testing.T) {
	t.Parallel()
	tn := newTenant(t)
	for name, m := range roleMappings {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			body := oktaUser(fmt.Sprintf("role-%s@example.com", randomToken()[:8]))
			m.set(body, "Moderator")
			id := tn.create(g, body)["id"].(string)

			// GET, then PUT it back with the role changed where the IdP keeps it.
			resp, got := tn.do("GET", "/Users/"+id, nil)
			g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
			m.set(got, "Admin")
			got["password"] = "x"
			resp, put := tn.do("PUT", "/Users/"+id, got)
			g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", put)
			g.Expect(*tn.user(g, id).Spec.Role).To(Equal(scimv1.RoleAdmin))
			// And once more: the answer carries the role in that form only.
			m.set(put, "Registered")
			resp, put = tn.do("PUT", "/Users/"+id, put)
			g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", put)
			g.Expect(*tn.user(g, id).Spec.Role).To(Equal(scimv1.RoleRegistered))
			want := map[string]any{}
			m.set(want, "Registered")
			for k, v := range want {
				g.Expect(put).To(HaveKeyWithValue(k, v))
			}
			for _, other := range []string{"userType", "stackUserType", stackURN} {
				if _, mine := want[other]; !mine {
					g.Expect(put).NotTo(HaveKey(other))
				}
			}

			// PATCH of the same form.
			resp, doc := tn.do("PATCH", "/Users/"+id, entraPatch(map[string]any{"op": "replace", "path": m.path, "value": "Moderator"}))
			g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", doc)
			g.Expect(*tn.user(g, id).Spec.Role).To(Equal(scimv1.RoleModerator))
		})
	}
}

// TestRole_okta_changedMappingWins: Okta mapped the role to the vendor extension, then
// the admin maps it to userType. The PUT carries the old extension copy (echoed from the
// GET) and the new userType: the new one wins, and is answered from then on.
func TestRole_okta_changedMappingWins(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	body := oktaUser("remap@example.com")
	body[stackURN] = map[string]any{"stackUserType": "Moderator"}
	id := tn.create(g, body)["id"].(string)
	_, got := tn.do("GET", "/Users/"+id, nil)
	got["userType"] = "Admin"
	resp, put := tn.do("PUT", "/Users/"+id, got)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", put)
	g.Expect(*tn.user(g, id).Spec.Role).To(Equal(scimv1.RoleAdmin))
	g.Expect(put["userType"]).To(Equal("Admin"))
	g.Expect(put).NotTo(HaveKey(stackURN))
}

// TestRole_clearing: a PUT that leaves the role out leaves it unmanaged (DESIGN.md:
// absent = not managed); an explicit clear (PATCH remove, a null or empty value) makes
// the user Registered, so an Admin whose stackUserType is cleared at the IdP is demoted.
func TestRole_clearing(t *testing.T) {
	t.Parallel()
	tn := newTenant(t)
	clears := map[string]func(g Gomega, id string) (*http.Response, map[string]any){
		"PATCH remove": func(_ Gomega, id string) (*http.Response, map[string]any) {
			return tn.do("PATCH", "/Users/"+id, entraPatch(map[string]any{"op": "remove", "path": stackURN + ":stackUserType"}))
		},
		"PATCH replace null": func(_ Gomega, id string) (*http.Response, map[string]any) {
			return tn.do("PATCH", "/Users/"+id, entraPatch(map[string]any{"op": "replace", "path": stackURN + ":stackUserType", "value": nil}))
		},
		"PATCH remove extension": func(_ Gomega, id string) (*http.Response, map[string]any) {
			return tn.do("PATCH", "/Users/"+id, entraPatch(map[string]any{"op": "remove", "path": stackURN}))
		},
		"PUT empty value": func(_ Gomega, id string) (*http.Response, map[string]any) {
			_, got := tn.do("GET", "/Users/"+id, nil)
			got[stackURN] = map[string]any{"stackUserType": ""}
			return tn.do("PUT", "/Users/"+id, got)
		},
	}
	for name, clear := range clears {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			body := oktaUser(fmt.Sprintf("clear-%s@example.com", randomToken()[:8]))
			body[stackURN] = map[string]any{"stackUserType": "Admin"}
			id := tn.create(g, body)["id"].(string)
			resp, doc := clear(g, id)
			g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", doc)
			g.Expect(*tn.user(g, id).Spec.Role).To(Equal(scimv1.RoleRegistered))
			g.Expect(doc[stackURN]).To(Equal(map[string]any{"stackUserType": "Registered"}))
		})
	}
	t.Run("PUT without the role", func(t *testing.T) {
		g := NewWithT(t)
		body := oktaUser("absent@example.com")
		body[stackURN] = map[string]any{"stackUserType": "Admin"}
		id := tn.create(g, body)["id"].(string)
		_, got := tn.do("GET", "/Users/"+id, nil)
		delete(got, stackURN)
		resp, doc := tn.do("PUT", "/Users/"+id, got)
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", doc)
		g.Expect(tn.user(g, id).Spec.Role).To(BeNil())
	})
}

// TestProfileAliases_jobTitleAndTopLevelDepartment: the vendor's Okta guide names the
// title jobTitle, and some set-ups send department top level. Both reach the spec (and
// so the site), by POST, by GET-then-PUT and by PATCH; before, they stayed in
// additionalAttributes.
func TestProfileAliases_jobTitleAndTopLevelDepartment(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	body := oktaUser("alias@example.com")
	body["jobTitle"] = "Analyst"
	body["department"] = "Ops"
	id := tn.create(g, body)["id"].(string)
	u := tn.user(g, id)
	g.Expect(u.Spec.Title).To(Equal("Analyst"))
	g.Expect(u.Spec.Department).To(Equal("Ops"))
	g.Expect(u.Spec.AdditionalAttributes).To(BeNil())

	_, got := tn.do("GET", "/Users/"+id, nil)
	got["jobTitle"] = "Lead Analyst"
	got["department"] = "R&D"
	resp, put := tn.do("PUT", "/Users/"+id, got)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", put)
	u = tn.user(g, id)
	g.Expect(u.Spec.Title).To(Equal("Lead Analyst"))
	g.Expect(u.Spec.Department).To(Equal("R&D"))
	g.Expect(put["title"]).To(Equal("Lead Analyst"))
	g.Expect(put[enterpriseURN]).To(HaveKeyWithValue("department", "R&D"))

	resp, doc := tn.do("PATCH", "/Users/"+id, entraPatch(
		map[string]any{"op": "replace", "path": "jobTitle", "value": "Head"},
		map[string]any{"op": "replace", "path": "department", "value": "Sales"}))
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", doc)
	u = tn.user(g, id)
	g.Expect(u.Spec.Title).To(Equal("Head"))
	g.Expect(u.Spec.Department).To(Equal("Sales"))
}

// TestPatch_primaryOnMissingValueIsNoTarget: Okta-style primary set through a filter that
// matches no e-mail answers 400 noTarget and changes nothing (it answered 200 and
// cleared the primary flag of the existing e-mail).
func TestPatch_primaryOnMissingValueIsNoTarget(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	body := oktaUser("primary@example.com")
	body["emails"] = []any{map[string]any{"value": "primary@example.com", "type": "home", "primary": true}}
	id := tn.create(g, body)["id"].(string)
	before := tn.user(g, id)
	resp, doc := tn.do("PATCH", "/Users/"+id, entraPatch(map[string]any{"op": "replace", "path": `emails[type eq "work"].primary`, "value": true}))
	expectError(g, resp, doc, http.StatusBadRequest, "noTarget")
	after := tn.user(g, id)
	g.Expect(after.ResourceVersion).To(Equal(before.ResourceVersion))
	g.Expect(after.Spec.Emails).To(Equal([]scimv1.MultiValuedAttribute{{Value: "primary@example.com", Type: "home", Primary: true}}))
}

// TestFilter_valueFiltersWithSeveralConditions: RFC 7644 value filters with several
// logical operators, parentheses and not(), and Entra's two-condition form, answer 200
// and find the user (they were 400 invalidFilter).
func TestFilter_valueFiltersWithSeveralConditions(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	body := oktaUser("vf@example.com")
	body["emails"] = []any{map[string]any{"value": "vf@example.com", "type": "work", "primary": true}}
	id := tn.create(g, body)["id"].(string)
	find := func(f string) []any {
		resp, b := tn.do("GET", "/Users?filter="+url.QueryEscape(f), nil)
		g.ExpectWithOffset(1, resp.StatusCode).To(Equal(http.StatusOK), "%s: %v", f, b)
		return b["Resources"].([]any)
	}
	for _, f := range []string{
		`emails[type eq "work" and primary eq true and value co "@"]`,
		`emails[(type eq "work" or type eq "home") and value co "@"]`,
		`emails[not (type eq "home") and value ew "example.com"]`,
		`emails[type eq "work" and primary eq true].value eq "vf@example.com"`,
	} {
		g.Expect(find(f)).To(ConsistOf(HaveKeyWithValue("id", id)), f)
	}
	g.Expect(find(`emails[type eq "work" and primary eq false].value eq "vf@example.com"`)).To(BeEmpty())
}

// TestList_readsOwnWritesAndPagesStably: right after a 2xx write, a list on the same
// replica counts it (the list waits for the informer to show the write); an import paging
// through the tenant after a burst of creates sees one total and every user once.
func TestList_readsOwnWritesAndPagesStably(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	total := func() float64 {
		resp, b := tn.do("GET", "/Users?count=0", nil)
		g.ExpectWithOffset(1, resp.StatusCode).To(Equal(http.StatusOK), "%v", b)
		return b["totalResults"].(float64)
	}
	for i := range 10 {
		tn.create(g, oktaUser(fmt.Sprintf("ryw-%d@example.com", i)))
		g.Expect(total()).To(BeEquivalentTo(i+1), "right after POST %d", i+1)
	}
	// A burst of creates from several clients at once, then an Okta import.
	const burst = 30
	errs := make(chan error, burst)
	for i := range burst {
		go func() {
			resp, b := tn.do("POST", "/Users", oktaUser(fmt.Sprintf("burst-%d@example.com", i)))
			if resp.StatusCode != http.StatusCreated {
				errs <- fmt.Errorf("POST %d: %d %v", i, resp.StatusCode, b)
				return
			}
			errs <- nil
		}()
	}
	for range burst {
		g.Expect(<-errs).NotTo(HaveOccurred())
	}
	seen := map[string]bool{}
	for start := 1; start <= 10+burst; start += 7 {
		resp, b := tn.do("GET", fmt.Sprintf("/Users?startIndex=%d&count=7", start), nil)
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
		g.Expect(b["totalResults"]).To(BeEquivalentTo(10+burst), "page at %d", start)
		for _, r := range b["Resources"].([]any) {
			id := r.(map[string]any)["id"].(string)
			g.Expect(seen).NotTo(HaveKey(id), "listed twice")
			seen[id] = true
		}
	}
	g.Expect(seen).To(HaveLen(10 + burst))
	// A delete is not counted by the next list either.
	var some string
	for id := range seen {
		some = id
		break
	}
	resp, _ := tn.do("DELETE", "/Users/"+some, nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusNoContent))
	g.Expect(total()).To(BeEquivalentTo(10 + burst - 1))
}
