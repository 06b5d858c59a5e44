package resource

import (
	"testing"

	. "github.com/onsi/gomega"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/sitedir"
)

// What an unmanaged account shows is what its StackUser gets when a client sends the
// document back (Okta's GET-then-PUT): every value, the role in userType form, and not the
// unmanaged marker.
func TestAccountToSCIM_sentBackBecomesTheSameUser(t *testing.T) {
	g := NewWithT(t)
	a := &sitedir.Account{ID: "100003", ExternalID: "old-idp", UserName: "Mo@Example.com", DisplayName: "Mo D",
		GivenName: "Mo", FamilyName: "D", Email: "mo@example.com", Active: false, Role: "Admin", Title: "Ops", Department: "IT"}
	doc := roundTrip(t, AccountToSCIM(a, "u-1", "https://scim/Users/u-1"))
	g.Expect(doc[SchemaOperator]).To(Equal(map[string]any{"managed": false, "siteId": "100003"}))
	spec, err := FromSCIM(doc, Options{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(spec.UserName).To(Equal("Mo@Example.com"))
	g.Expect(spec.ExternalID).To(Equal("old-idp"))
	g.Expect(spec.DisplayName).To(Equal("Mo D"))
	g.Expect(spec.Name).To(Equal(&scimv1.Name{GivenName: "Mo", FamilyName: "D"}))
	g.Expect(spec.Emails).To(Equal([]scimv1.MultiValuedAttribute{{Value: "mo@example.com", Type: "work", Primary: true}}))
	g.Expect(*spec.Active).To(BeFalse())
	g.Expect(spec.Role).To(HaveValue(Equal(scimv1.RoleAdmin)))
	g.Expect(spec.RoleAttribute).To(Equal(scimv1.RoleFormUserType))
	g.Expect(spec.Title).To(Equal("Ops"))
	g.Expect(spec.Department).To(Equal("IT"))
	g.Expect(spec.AdditionalAttributes).To(BeNil(), "the marker is read-only: never stored")

	// A Registered account shows no role: the IdP does not manage it until it sends one.
	a.Role = "Registered"
	spec, err = FromSCIM(roundTrip(t, AccountToSCIM(a, "u-1", "")), Options{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(spec.Role).To(BeNil())

	// The version follows the values.
	v := AccountVersion(a)
	a.Title = "Head of Ops"
	g.Expect(AccountVersion(a)).NotTo(Equal(v))
}

// The marker in any spelling a client may echo (nested, or Entra's URN-prefixed key) is
// dropped, whatever its value.
func TestFromSCIM_dropsTheOperatorExtension(t *testing.T) {
	g := NewWithT(t)
	for _, body := range []string{
		`{"schemas":["` + SchemaUser + `","` + SchemaOperator + `"],"userName":"a","` + SchemaOperator + `":{"managed":true,"siteId":"1"}}`,
		`{"schemas":["` + SchemaUser + `"],"userName":"a","` + SchemaOperator + `:managed":false}`,
	} {
		doc := decode(t, body)
		g.Expect(CheckSchemas(doc)).To(Succeed())
		spec, err := FromSCIM(doc, Options{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(spec.AdditionalAttributes).To(BeNil(), body)
	}
}
