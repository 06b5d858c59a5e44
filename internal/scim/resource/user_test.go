package resource

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/scim/scimerr"
)

func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("bad JSON: %v", err)
	}
	return m
}

func roundTrip(t testing.TB, v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, string(b))
}

const oktaUser = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "urn:okta:custom:1.0:User"],
	"userName": "Alice@Example.com",
	"name": {"givenName": "Alice", "familyName": "Smith"},
	"emails": [{"primary": true, "value": "alice@example.com", "type": "work"}, {"value": "", "type": "home"}],
	"displayName": "Alice Smith", "locale": "en-US", "externalId": "00u1", "groups": [], "password": "hunter2!",
	"active": true, "title": "Engineer", "x509Certificates": [{"value": "abc"}],
	"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D", "employeeNumber": "42", "manager": {"value": "u-boss"}, "badge": 7},
	"urn:okta:custom:1.0:User": {"stackUserType": "moderator", "favouriteColour": "blue"}
}`

func TestFromSCIMMapsEverything(t *testing.T) {
	g := NewWithT(t)
	spec, err := FromSCIM(decode(t, oktaUser), Options{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(spec.UserName).To(Equal("Alice@Example.com"))
	g.Expect(spec.Name).To(Equal(&scimv1.Name{GivenName: "Alice", FamilyName: "Smith"}))
	g.Expect(spec.Emails).To(Equal([]scimv1.MultiValuedAttribute{{Value: "alice@example.com", Type: "work", Primary: true}}))
	g.Expect(*spec.Active).To(BeTrue())
	g.Expect(*spec.Role).To(Equal(scimv1.RoleModerator))
	g.Expect(spec.Department).To(Equal("R&D"))
	g.Expect(spec.Title).To(Equal("Engineer"))
	g.Expect(spec.Enterprise.EmployeeNumber).To(Equal("42"))
	g.Expect(spec.Enterprise.Manager.Value).To(Equal("u-boss"))
	extra := decode(t, string(spec.AdditionalAttributes.Raw))
	g.Expect(extra).To(HaveKey("x509Certificates"))
	g.Expect(extra).NotTo(HaveKey("password"))
	g.Expect(extra).NotTo(HaveKey("groups"))
	g.Expect(extra["urn:okta:custom:1.0:User"]).To(Equal(map[string]any{"favouriteColour": "blue"}))
	g.Expect(extra["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]).To(Equal(map[string]any{"badge": json.Number("7")}))
}

func TestToSCIMRoundTrip(t *testing.T) {
	g := NewWithT(t)
	spec, err := FromSCIM(decode(t, oktaUser), Options{})
	g.Expect(err).NotTo(HaveOccurred())
	u := &scimv1.StackUser{ObjectMeta: metav1.ObjectMeta{Name: "u-1", Generation: 3}, Spec: spec}
	doc := roundTrip(t, ToSCIM(u, "https://x/Users/u-1"))
	g.Expect(doc).NotTo(HaveKey("password"))
	// The role comes back in the form it was sent in, and only there.
	g.Expect(doc).NotTo(HaveKey("userType"))
	g.Expect(doc).NotTo(HaveKey(SchemaStack))
	g.Expect(doc["urn:okta:custom:1.0:User"]).To(Equal(map[string]any{"stackUserType": "Moderator", "favouriteColour": "blue"}))
	g.Expect(doc["meta"]).To(HaveKeyWithValue("version", `W/"3"`))
	g.Expect(doc["schemas"]).To(ContainElements(SchemaUser, SchemaEnterprise, "urn:okta:custom:1.0:User"))
	// GET then PUT gives the same spec and the same document.
	again, err := FromSCIM(doc, Options{})
	g.Expect(err).NotTo(HaveOccurred())
	u2 := &scimv1.StackUser{ObjectMeta: u.ObjectMeta, Spec: again}
	g.Expect(roundTrip(t, ToSCIM(u2, "https://x/Users/u-1"))).To(Equal(doc))
}

func TestRoleSources(t *testing.T) {
	role := func(g Gomega, body string, opts Options) *scimv1.Role {
		spec, err := FromSCIM(decode(t, body), opts)
		g.Expect(err).NotTo(HaveOccurred(), body)
		return spec.Role
	}
	g := NewWithT(t)
	g.Expect(role(g, `{"userName":"a"}`, Options{})).To(BeNil())
	g.Expect(*role(g, `{"userName":"a","stackUserType":"Admin"}`, Options{})).To(Equal(scimv1.RoleAdmin))
	g.Expect(*role(g, `{"userName":"a","userType":"Registered"}`, Options{})).To(Equal(scimv1.RoleRegistered))
	g.Expect(*role(g, `{"userName":"a","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"stackUserType":"Admin"}}`, Options{})).To(Equal(scimv1.RoleAdmin))
	// Restricted schemas: other URNs and the top level do not count, the vendor URN does.
	opts := Options{RoleSchemas: []string{"urn:acme:1.0:User"}}
	g.Expect(role(g, `{"userName":"a","urn:other:1.0:User":{"stackUserType":"Admin"}}`, opts)).To(BeNil())
	g.Expect(role(g, `{"userName":"a","stackUserType":"Admin"}`, opts)).To(BeNil())
	g.Expect(*role(g, `{"userName":"a","urn:acme:1.0:User":{"stackUserType":"Admin"}}`, opts)).To(Equal(scimv1.RoleAdmin))
	g.Expect(*role(g, `{"userName":"a","`+SchemaStack+`":{"stackUserType":"Moderator"}}`, opts)).To(Equal(scimv1.RoleModerator))
	// stackUserType wins over userType.
	g.Expect(*role(g, `{"userName":"a","userType":"Registered","`+SchemaStack+`":{"stackUserType":"Admin"}}`, Options{})).To(Equal(scimv1.RoleAdmin))

	_, err := FromSCIM(decode(t, `{"userName":"a","stackUserType":"Boss"}`), Options{})
	se := scimerr.As(err)
	g.Expect(se).NotTo(BeNil())
	g.Expect(se.Status).To(Equal(http.StatusBadRequest))
	g.Expect(se.ScimType).To(Equal(scimerr.InvalidValue))
	g.Expect(se.Detail).To(ContainSubstring("Registered, Moderator or Admin"))
}

func TestFromSCIMQuirksAndErrors(t *testing.T) {
	g := NewWithT(t)
	spec, err := FromSCIM(decode(t, `{"UserName":"a","Active":"False","emails":[{"value":"x","primary":"True"},{"value":"y","primary":false}],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"Ops"}`), Options{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*spec.Active).To(BeFalse())
	g.Expect(spec.Emails[0].Primary).To(BeTrue())
	g.Expect(spec.Emails[1].Primary).To(BeFalse())
	g.Expect(spec.Department).To(Equal("Ops"))
	for _, body := range []string{`{}`, `{"userName":""}`, `{"userName":"a","active":"maybe"}`, `{"userName":["a"]}`, `{"userName":"a","name":"x"}`, `{"userName":"a","emails":7}`} {
		_, err := FromSCIM(decode(t, body), Options{})
		se := scimerr.As(err)
		g.Expect(se).NotTo(BeNil(), body)
		g.Expect(se.Status).To(Equal(http.StatusBadRequest), body)
	}
}

// TestFromSCIM_strictTypes: a value of the wrong JSON type is a 400 invalidValue, never
// coerced (userName 12345 used to be stored as "12345", an e-mail object wrapped in a
// list with its primary flag changed).
func TestFromSCIM_strictTypes(t *testing.T) {
	g := NewWithT(t)
	for _, body := range []string{
		`{"userName":12345}`,
		`{"userName":true}`,
		`{"userName":"a","displayName":7}`,
		`{"userName":"a","name":{"givenName":7}}`,
		`{"userName":"a","emails":{"value":"a@example.com"}}`,
		`{"userName":"a","emails":["a@example.com"]}`,
		`{"userName":"a","emails":[{"value":5}]}`,
		`{"userName":"a","emails":[{"value":"a@x","primary":true},{"value":"b@x","primary":true}]}`,
		`{"userName":"a","` + SchemaEnterprise + `":{"department":5}}`,
		`{"userName":"a","jobTitle":5}`,
		"{\"userName\":\"nul\\u0000@example.com\"}",
		"{\"userName\":\"a\\u0007\\u001b[31m@example.com\"}",
		`{"userName":"a","title":"two\nlines"}`,
	} {
		_, err := FromSCIM(decode(t, body), Options{})
		se := scimerr.As(err)
		g.Expect(se).NotTo(BeNil(), body)
		g.Expect(se.Status).To(Equal(http.StatusBadRequest), body)
		g.Expect(se.ScimType).To(Equal(scimerr.InvalidValue), body)
	}
	// Entra ID's string booleans stay accepted.
	spec, err := FromSCIM(decode(t, `{"userName":"a","active":"False","emails":[{"value":"a@x","primary":"True"}]}`), Options{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*spec.Active).To(BeFalse())
	g.Expect(spec.Emails[0].Primary).To(BeTrue())
}

func TestCheckSchemas(t *testing.T) {
	g := NewWithT(t)
	g.Expect(CheckSchemas(decode(t, `{"schemas":["`+SchemaUser+`"],"userName":"a"}`))).To(Succeed())
	g.Expect(CheckSchemas(decode(t, `{"schemas":["URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER","urn:x:1.0:User"],"userName":"a","urn:x:1.0:User":{"k":1}}`))).To(Succeed())
	for body, scimType := range map[string]string{
		`{"userName":"a"}`:                                                      scimerr.InvalidSyntax,
		`{"schemas":[],"userName":"a"}`:                                         scimerr.InvalidSyntax,
		`{"schemas":"` + SchemaUser + `","userName":"a"}`:                       scimerr.InvalidSyntax,
		`{"schemas":["` + SchemaGroup + `"],"userName":"a"}`:                    scimerr.InvalidSyntax,
		`{"schemas":["` + SchemaUser + `"],"` + SchemaEnterprise + `":"Sales"}`: scimerr.InvalidValue,
	} {
		se := scimerr.As(CheckSchemas(decode(t, body)))
		g.Expect(se).NotTo(BeNil(), body)
		g.Expect(se.Status).To(Equal(http.StatusBadRequest), body)
		g.Expect(se.ScimType).To(Equal(scimType), body)
	}
}

// TestProfileAliases: jobTitle (the vendor's Okta guide) is the title, a top-level
// department the enterprise department; neither lands in additionalAttributes.
func TestProfileAliases(t *testing.T) {
	g := NewWithT(t)
	spec, err := FromSCIM(decode(t, `{"userName":"a","jobTitle":"Analyst","department":"Ops"}`), Options{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(spec.Title).To(Equal("Analyst"))
	g.Expect(spec.Department).To(Equal("Ops"))
	g.Expect(spec.AdditionalAttributes).To(BeNil())
	u := &scimv1.StackUser{Spec: spec}
	doc := roundTrip(t, ToSCIM(u, ""))
	g.Expect(doc["title"]).To(Equal("Analyst"))
	g.Expect(doc[SchemaEnterprise]).To(Equal(map[string]any{"department": "Ops"}))

	// Okta's GET-then-PUT: the echoed title and department next to the changed aliases.
	body := decode(t, `{"userName":"a","title":"Analyst","jobTitle":"Lead","department":"R&D","`+SchemaEnterprise+`":{"department":"Ops"}}`)
	Options{}.Reconcile(doc, body, false)
	spec, err = FromSCIM(body, Options{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(spec.Title).To(Equal("Lead"))
	g.Expect(spec.Department).To(Equal("R&D"))
}

// TestRoleForms: each form a role can arrive in is remembered, and the role is answered
// in that form only, so the GET-then-PUT of a changed role changes it.
func TestRoleForms(t *testing.T) {
	forms := map[string]struct {
		body string
		form scimv1.RoleAttributeForm
		put  func(doc map[string]any, role string)
	}{
		"top level": {`"stackUserType":"Moderator"`, scimv1.RoleFormTopLevel,
			func(d map[string]any, r string) { d["stackUserType"] = r }},
		"userType": {`"userType":"Moderator"`, scimv1.RoleFormUserType,
			func(d map[string]any, r string) { d["userType"] = r }},
		"vendor extension": {`"` + SchemaStack + `":{"stackUserType":"Moderator"}`, SchemaStack,
			func(d map[string]any, r string) { d[SchemaStack].(map[string]any)["stackUserType"] = r }},
		"enterprise extension": {`"` + SchemaEnterprise + `":{"stackUserType":"Moderator","department":"Ops"}`, SchemaEnterprise,
			func(d map[string]any, r string) { d[SchemaEnterprise].(map[string]any)["stackUserType"] = r }},
		"custom URN": {`"urn:okta:acme:1.0:User":{"stackUserType":"Moderator"}`, "urn:okta:acme:1.0:User",
			func(d map[string]any, r string) { d["urn:okta:acme:1.0:User"].(map[string]any)["stackUserType"] = r }},
	}
	for name, c := range forms {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			spec, err := FromSCIM(decode(t, `{"userName":"a",`+c.body+`}`), Options{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(*spec.Role).To(Equal(scimv1.RoleModerator))
			g.Expect(spec.RoleAttribute).To(Equal(c.form))
			u := &scimv1.StackUser{Spec: spec}
			got := roundTrip(t, ToSCIM(u, ""))
			roles := 0
			for _, s := range (Options{}).roleSources(got) {
				roles++
				g.Expect(s.form).To(Equal(c.form))
			}
			g.Expect(roles).To(Equal(1), "%v", got)
			// GET, change the role where the IdP keeps it, PUT.
			put := roundTrip(t, got)
			c.put(put, "Admin")
			Options{}.Reconcile(got, put, false)
			spec, err = FromSCIM(put, Options{RoleForm: spec.RoleAttribute})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(*spec.Role).To(Equal(scimv1.RoleAdmin))
			g.Expect(spec.RoleAttribute).To(Equal(c.form))
		})
	}
}

func TestReconcile_role(t *testing.T) {
	g := NewWithT(t)
	// Okta's GET-then-PUT of a user whose role was last sent in the vendor extension, by
	// an Okta now mapping it to userType: the echoed copy loses, and the form moves.
	before := decode(t, `{"`+SchemaStack+`":{"stackUserType":"Moderator"}}`)
	after := decode(t, `{"userName":"a","userType":"Admin","`+SchemaStack+`":{"stackUserType":"Moderator"}}`)
	Options{}.Reconcile(before, after, false)
	spec, err := FromSCIM(after, Options{RoleForm: SchemaStack})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*spec.Role).To(Equal(scimv1.RoleAdmin))
	g.Expect(spec.RoleAttribute).To(Equal(scimv1.RoleFormUserType))

	// The same role newly sent in another form: that form is the IdP's now.
	after = decode(t, `{"userName":"a","userType":"Moderator","`+SchemaStack+`":{"stackUserType":"Moderator"}}`)
	Options{}.Reconcile(before, after, false)
	spec, err = FromSCIM(after, Options{RoleForm: SchemaStack})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(spec.RoleAttribute).To(Equal(scimv1.RoleFormUserType))
	// Two forms that agree, with nothing to compare against: the remembered one is kept.
	spec, err = FromSCIM(decode(t, `{"userName":"a","userType":"Moderator","`+SchemaStack+`":{"stackUserType":"Moderator"}}`), Options{RoleForm: SchemaStack})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(spec.RoleAttribute).To(Equal(scimv1.RoleAttributeForm(SchemaStack)))

	// A PUT without the role: not managed. A PATCH that removes it: cleared, Registered.
	after = decode(t, `{"userName":"a"}`)
	Options{}.Reconcile(before, after, false)
	spec, _ = FromSCIM(after, Options{})
	g.Expect(spec.Role).To(BeNil())
	after = decode(t, `{"userName":"a"}`)
	Options{}.Reconcile(before, after, true)
	spec, _ = FromSCIM(after, Options{})
	g.Expect(*spec.Role).To(Equal(scimv1.RoleRegistered))
	g.Expect(spec.RoleAttribute).To(Equal(scimv1.RoleAttributeForm(SchemaStack)))
	// An explicit null or empty value clears it too.
	for _, body := range []string{`{"userName":"a","userType":null}`, `{"userName":"a","userType":""}`, `{"userName":"a","` + SchemaStack + `":{"stackUserType":null}}`} {
		spec, err = FromSCIM(decode(t, body), Options{})
		g.Expect(err).NotTo(HaveOccurred(), body)
		g.Expect(*spec.Role).To(Equal(scimv1.RoleRegistered), body)
	}
}

func TestProject(t *testing.T) {
	g := NewWithT(t)
	doc := decode(t, `{"schemas":["s"],"id":"1","userName":"a","name":{"givenName":"g","familyName":"f"},
		"emails":[{"value":"x","type":"work"}],"`+SchemaEnterprise+`":{"department":"d","division":"v"}}`)
	g.Expect(Project(doc, []string{"userName", "name.givenName", SchemaEnterprise + ":department"}, nil)).To(Equal(decode(t,
		`{"schemas":["s"],"id":"1","userName":"a","name":{"givenName":"g"},"`+SchemaEnterprise+`":{"department":"d"}}`)))
	g.Expect(Project(doc, nil, []string{"emails", "name.familyName", "id", SchemaEnterprise})).To(Equal(decode(t,
		`{"schemas":["s"],"id":"1","userName":"a","name":{"givenName":"g"}}`)))
	g.Expect(Project(doc, []string{"emails.value"}, nil)).To(Equal(decode(t, `{"schemas":["s"],"id":"1","emails":[{"value":"x"}]}`)))
}
