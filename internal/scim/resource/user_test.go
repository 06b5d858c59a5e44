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
	g.Expect(doc["userType"]).To(Equal("Moderator"))
	g.Expect(doc[SchemaStack]).To(Equal(map[string]any{"stackUserType": "Moderator"}))
	g.Expect(doc["meta"]).To(HaveKeyWithValue("version", `W/"3"`))
	g.Expect(doc["schemas"]).To(ContainElements(SchemaUser, SchemaEnterprise, SchemaStack, "urn:okta:custom:1.0:User"))
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
	spec, err := FromSCIM(decode(t, `{"UserName":"a","Active":"False","emails":[{"value":"x","primary":"True"},{"value":"y","primary":true}],
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

func TestReconcileRole(t *testing.T) {
	g := NewWithT(t)
	before := decode(t, `{"userType":"Moderator","`+SchemaStack+`":{"stackUserType":"Moderator"}}`)
	after := decode(t, `{"userType":"Admin","`+SchemaStack+`":{"stackUserType":"Moderator"}}`)
	ReconcileRole(before, after)
	g.Expect(after[SchemaStack]).To(Equal(map[string]any{"stackUserType": "Admin"}))

	after = decode(t, `{"`+SchemaStack+`":{"stackUserType":"Moderator"}}`)
	ReconcileRole(before, after)
	g.Expect(after).NotTo(HaveKey(SchemaStack))

	after = decode(t, `{"userType":"Moderator","`+SchemaStack+`":{"stackUserType":"Registered"}}`)
	ReconcileRole(before, after)
	g.Expect(after["userType"]).To(Equal("Registered"))
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
