package resource

import (
	"fmt"
	"hash/fnv"

	"github.com/stackscim/stack-scim-operator/internal/sitedir"
)

// AccountToSCIM renders a site account that no StackUser describes (an unmanaged
// account) as a SCIM User, the way a managed user with the same values reads: core
// attributes, the role in core userType when it is not Registered (as the site itself
// shows it), title and the enterprise department. The SchemaOperator extension marks it
// "managed": false and names its site id, so an admin reviewing an import sees what it is.
//
// The site keeps no e-mail type; its address is shown as the "work" address, which is
// what every site account's address is and what Entra's emails[type eq "work"] filter
// asks for. meta carries no created/lastModified: the site's times are not read.
func AccountToSCIM(a *sitedir.Account, id, location string) map[string]any {
	doc := map[string]any{
		"schemas":  []any{SchemaUser},
		"id":       id,
		"userName": a.UserName,
		"active":   a.Active,
	}
	putString(doc, "externalId", a.ExternalID)
	putString(doc, "displayName", a.DisplayName)
	putString(doc, "title", a.Title)
	if a.GivenName != "" || a.FamilyName != "" {
		n := map[string]any{}
		putString(n, "givenName", a.GivenName)
		putString(n, "familyName", a.FamilyName)
		doc["name"] = n
	}
	if a.Email != "" {
		doc["emails"] = []any{map[string]any{"value": a.Email, "type": "work", "primary": true}}
	}
	if a.Role != "" && a.Role != "Registered" {
		doc["userType"] = a.Role
	}
	schemas := []any{SchemaUser}
	if a.Department != "" {
		doc[SchemaEnterprise] = map[string]any{"department": a.Department}
		schemas = append(schemas, SchemaEnterprise)
	}
	doc[SchemaOperator] = map[string]any{"managed": false, "siteId": a.ID}
	doc["schemas"] = append(schemas, SchemaOperator)
	doc["meta"] = map[string]any{
		"resourceType": "User",
		"location":     location,
		"version":      AccountVersion(a),
	}
	return doc
}

// AccountVersion is an unmanaged account's ETag: a weak tag of the values shown, so an
// If-Match taken from an older read of the account fails with 412.
func AccountVersion(a *sitedir.Account) string {
	h := fnv.New64a()
	for _, v := range []string{a.ID, a.ExternalID, a.UserName, a.DisplayName, a.GivenName, a.FamilyName,
		a.Email, fmt.Sprint(a.Active), a.Role, a.Title, a.Department} {
		_, _ = h.Write([]byte(v))
		_, _ = h.Write([]byte{0})
	}
	return fmt.Sprintf(`W/"site-%x"`, h.Sum64())
}
