// Package resource maps StackUsers to SCIM User resources (RFC 7643) and back, and
// describes the server's schemas for discovery.
//
// The role is answered in the attribute form the IdP last sent it in (spec.roleAttribute:
// core `userType`, top-level `stackUserType`, or `stackUserType` under an extension, by
// default the vendor extension SchemaStack); attributes the StackUser has no field for are kept verbatim in
// spec.additionalAttributes so that Okta's GET-then-PUT round trip changes nothing.
package resource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
	"github.com/stackscim/stack-scim-operator/internal/scim/filter"
	"github.com/stackscim/stack-scim-operator/internal/scim/scimerr"
)

// Schema URNs.
const (
	SchemaUser                  = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaGroup                 = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaEnterprise            = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	SchemaListResponse          = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	SchemaServiceProviderConfig = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	SchemaResourceType          = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	SchemaSchema                = "urn:ietf:params:scim:schemas:core:2.0:Schema"
	// SchemaStack is this server's vendor extension: it carries `stackUserType`, the
	// user's Stack Internal Enterprise role. Responses always put the role here (and in
	// core userType); requests may send it here, top level, or under any extension.
	SchemaStack = "urn:ietf:params:scim:schemas:extension:stackoverflow:2.0:User"
	// SchemaOperator is this server's read-only extension describing how the operator
	// holds a user: "managed": false marks a site account no StackUser describes, shown
	// so an identity provider's import can match and link it (see account.go). Requests
	// may echo it back; it is never stored.
	SchemaOperator = "urn:ietf:params:scim:schemas:extension:stackscim:2.0:User"
)

// RoleAttribute is the name of the role attribute.
const RoleAttribute = "stackUserType"

// KnownSchemas are the schema URNs the server defines.
var KnownSchemas = []string{SchemaUser, SchemaEnterprise, SchemaStack, SchemaOperator}

// ToSCIM renders a StackUser as a SCIM User document. location is the absolute URL of the
// resource (meta.location).
func ToSCIM(u *scimv1.StackUser, location string) map[string]any {
	s := &u.Spec
	doc := map[string]any{
		"id":       u.Name,
		"userName": s.UserName,
		"active":   s.Active == nil || *s.Active,
	}
	putString(doc, "externalId", s.ExternalID)
	putString(doc, "displayName", s.DisplayName)
	putString(doc, "nickName", s.NickName)
	putString(doc, "profileUrl", s.ProfileURL)
	putString(doc, "title", s.Title)
	putString(doc, "preferredLanguage", s.PreferredLanguage)
	putString(doc, "locale", s.Locale)
	putString(doc, "timezone", s.Timezone)
	if n := s.Name; n != nil {
		m := map[string]any{}
		putString(m, "formatted", n.Formatted)
		putString(m, "familyName", n.FamilyName)
		putString(m, "givenName", n.GivenName)
		putString(m, "middleName", n.MiddleName)
		putString(m, "honorificPrefix", n.HonorificPrefix)
		putString(m, "honorificSuffix", n.HonorificSuffix)
		if len(m) > 0 {
			doc["name"] = m
		}
	}
	if l := multiToSCIM(s.Emails); l != nil {
		doc["emails"] = l
	}
	if l := multiToSCIM(s.PhoneNumbers); l != nil {
		doc["phoneNumbers"] = l
	}
	ent := map[string]any{}
	putString(ent, "department", s.Department)
	if e := s.Enterprise; e != nil {
		putString(ent, "employeeNumber", e.EmployeeNumber)
		putString(ent, "costCenter", e.CostCenter)
		putString(ent, "organization", e.Organization)
		putString(ent, "division", e.Division)
		if m := e.Manager; m != nil && (m.Value != "" || m.DisplayName != "") {
			mm := map[string]any{}
			putString(mm, "value", m.Value)
			putString(mm, "displayName", m.DisplayName)
			ent["manager"] = mm
		}
	}
	if len(ent) > 0 {
		doc[SchemaEnterprise] = ent
	}
	if s.Role != nil {
		putRole(doc, s.RoleAttribute, string(*s.Role))
	}
	// Attributes without a field come back as they were stored.
	for k, v := range additional(s.AdditionalAttributes) {
		existing, ok := doc[k]
		if !ok {
			doc[k] = v
			continue
		}
		em, ok1 := existing.(map[string]any)
		vm, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			for sk, sv := range vm {
				if _, taken := em[sk]; !taken {
					em[sk] = sv
				}
			}
		}
	}
	schemas := []any{SchemaUser}
	var exts []string
	for k, v := range doc {
		if _, isMap := v.(map[string]any); isMap && strings.HasPrefix(strings.ToLower(k), "urn:") {
			exts = append(exts, k)
		}
	}
	sort.Slice(exts, func(i, j int) bool {
		return schemaRank(exts[i]) < schemaRank(exts[j]) || (schemaRank(exts[i]) == schemaRank(exts[j]) && exts[i] < exts[j])
	})
	for _, e := range exts {
		schemas = append(schemas, e)
	}
	doc["schemas"] = schemas
	created := u.CreationTimestamp.UTC()
	lastModified := created.Format(time.RFC3339)
	if lm := u.Annotations[audit.AnnotationLastModified]; lm != "" {
		lastModified = lm
	}
	doc["meta"] = map[string]any{
		"resourceType": "User",
		"created":      created.Format(time.RFC3339),
		"lastModified": lastModified,
		"location":     location,
		"version":      Version(u),
	}
	return doc
}

func schemaRank(s string) int {
	switch s {
	case SchemaEnterprise:
		return 0
	case SchemaStack:
		return 1
	case SchemaOperator:
		return 3
	}
	return 2
}

// Version is the resource's ETag: a weak tag of the spec generation, which changes on
// every spec write and only then.
func Version(u *scimv1.StackUser) string {
	return fmt.Sprintf(`W/"%d"`, u.Generation)
}

func putString(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

func multiToSCIM(vs []scimv1.MultiValuedAttribute) []any {
	if len(vs) == 0 {
		return nil
	}
	out := make([]any, 0, len(vs))
	for _, v := range vs {
		m := map[string]any{"value": v.Value}
		putString(m, "type", v.Type)
		putString(m, "display", v.Display)
		m["primary"] = v.Primary
		out = append(out, m)
	}
	return out
}

func additional(j *apiextensionsv1.JSON) map[string]any {
	if j == nil || len(j.Raw) == 0 {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(j.Raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil
	}
	return m
}

// Options configure FromSCIM.
type Options struct {
	// RoleSchemas restricts the extension URNs whose stackUserType counts as the role
	// (ScimSettings spec.roleAttributeSchemas). Empty: any extension and the top level.
	// SchemaStack and core userType always count.
	RoleSchemas []string
	// RoleForm is the form the role was last sent in; when a document carries the role
	// in several forms that agree, this one is kept.
	RoleForm scimv1.RoleAttributeForm
}

func (o Options) roleSchemaAllowed(urn string) bool {
	if len(o.RoleSchemas) == 0 || strings.EqualFold(urn, SchemaStack) {
		return true
	}
	for _, s := range o.RoleSchemas {
		if strings.EqualFold(s, urn) {
			return true
		}
	}
	return false
}

// ignored are attributes a client may send that are never stored: read-only ones the
// server assigns, and password (accepted, never stored or returned).
var ignored = map[string]bool{"schemas": true, "id": true, "meta": true, "groups": true, "password": true,
	strings.ToLower(SchemaOperator): true}

// stringAttribute is a core attribute stored as a plain string in the spec.
type stringAttribute struct {
	name  string // as SCIM spells it, for error details
	field func(*scimv1.StackUserSpec) *string
}

// stringAttributes are keyed by lower-cased name: SCIM attribute names match
// case-insensitively.
var stringAttributes = map[string]stringAttribute{
	"username":          {"userName", func(s *scimv1.StackUserSpec) *string { return &s.UserName }},
	"externalid":        {"externalId", func(s *scimv1.StackUserSpec) *string { return &s.ExternalID }},
	"displayname":       {"displayName", func(s *scimv1.StackUserSpec) *string { return &s.DisplayName }},
	"nickname":          {"nickName", func(s *scimv1.StackUserSpec) *string { return &s.NickName }},
	"profileurl":        {"profileUrl", func(s *scimv1.StackUserSpec) *string { return &s.ProfileURL }},
	"title":             {"title", func(s *scimv1.StackUserSpec) *string { return &s.Title }},
	"preferredlanguage": {"preferredLanguage", func(s *scimv1.StackUserSpec) *string { return &s.PreferredLanguage }},
	"locale":            {"locale", func(s *scimv1.StackUserSpec) *string { return &s.Locale }},
	"timezone":          {"timezone", func(s *scimv1.StackUserSpec) *string { return &s.Timezone }},
}

// CheckSchemas rejects a POST or PUT body whose schemas do not list the core User schema
// (RFC 7643 section 3: schemas is required), and extension objects that are not objects.
func CheckSchemas(doc map[string]any) error {
	raw, _ := filter.GetCI(doc, "schemas")
	list, ok := raw.([]any)
	if !ok {
		return scimerr.BadRequest(scimerr.InvalidSyntax, "the body needs \"schemas\": a list that names %s", SchemaUser)
	}
	var listed []string
	for _, v := range list {
		str, ok := v.(string)
		if !ok {
			return scimerr.BadRequest(scimerr.InvalidSyntax, "\"schemas\" must be a list of schema URNs")
		}
		listed = append(listed, str)
	}
	if !slices.ContainsFunc(listed, func(x string) bool { return strings.EqualFold(x, SchemaUser) }) {
		return scimerr.BadRequest(scimerr.InvalidSyntax, "\"schemas\" must name %s", SchemaUser)
	}
	for k, v := range doc {
		if _, isMap := v.(map[string]any); isMap || v == nil {
			continue
		}
		known := slices.ContainsFunc(append(listed, KnownSchemas...), func(x string) bool { return strings.EqualFold(x, k) })
		if known {
			return scimerr.BadRequest(scimerr.InvalidValue, "the extension %q must be an object of attributes", truncate(k, 200))
		}
	}
	return nil
}

// FromSCIM reads a SCIM User document into a StackUserSpec (settingsRef is left empty).
// Attribute names match case-insensitively; anything unknown is kept in
// additionalAttributes. Values must have their schema's type (RFC 7643): a string is a
// JSON string without control characters, a multi-valued attribute a list of objects.
// The one leniency is Entra ID's string booleans ("True"). Errors are 400 SCIM errors.
func FromSCIM(doc map[string]any, opts Options) (scimv1.StackUserSpec, error) {
	var spec scimv1.StackUserSpec
	doc = nestURNKeys(doc)
	extra := map[string]any{}
	var jobTitle, topDepartment string
	var hasEntDepartment bool
	var err error
	str := func(name string, v any) string {
		if err != nil {
			return ""
		}
		var s string
		s, err = asString(name, v)
		return s
	}
	for _, k := range slices.Sorted(maps.Keys(doc)) {
		v := doc[k]
		lk := strings.ToLower(k)
		if ignored[lk] {
			continue
		}
		if a, ok := stringAttributes[lk]; ok {
			*a.field(&spec) = str(a.name, v)
			continue
		}
		switch lk {
		case "usertype":
			// A role source: read by pickRole.
		case "stackusertype":
			if len(opts.RoleSchemas) > 0 {
				extra[k] = v
			}
		case "jobtitle":
			// The vendor's Okta guide names the title attribute jobTitle.
			jobTitle = str("jobTitle", v)
		case "department":
			// Some Okta set-ups send the enterprise department at the top level.
			topDepartment = str("department", v)
		case "active":
			if err == nil {
				var b *bool
				b, err = asBool("active", v)
				spec.Active = b
			}
		case "name":
			if err == nil {
				spec.Name, err = nameFrom(v)
			}
		case "emails":
			if err == nil {
				spec.Emails, err = multiFrom("emails", v)
			}
		case "phonenumbers":
			if err == nil {
				spec.PhoneNumbers, err = multiFrom("phoneNumbers", v)
			}
		default:
			m, isMap := v.(map[string]any)
			if !strings.HasPrefix(lk, "urn:") || !isMap {
				extra[k] = v
				continue
			}
			rest := map[string]any{}
			for _, sk := range slices.Sorted(maps.Keys(m)) {
				sv := m[sk]
				if strings.EqualFold(sk, RoleAttribute) && opts.roleSchemaAllowed(k) {
					continue // a role source
				}
				if strings.EqualFold(k, SchemaEnterprise) && err == nil {
					if strings.EqualFold(sk, "department") {
						hasEntDepartment = true
					}
					if handled, e := enterpriseFrom(&spec, sk, sv); handled || e != nil {
						err = e
						continue
					}
				}
				rest[sk] = sv
			}
			if len(rest) > 0 {
				extra[k] = rest
			}
		}
		if err != nil {
			return spec, err
		}
	}
	if spec.Title == "" {
		spec.Title = jobTitle
	}
	if !hasEntDepartment || spec.Department == "" {
		if topDepartment != "" {
			spec.Department = topDepartment
		}
	}
	if strings.TrimSpace(spec.UserName) == "" {
		return spec, scimerr.BadRequest(scimerr.InvalidValue, "userName is required")
	}
	role, form, err := pickRole(opts.roleSources(doc), opts.RoleForm)
	if err != nil {
		return spec, err
	}
	spec.Role, spec.RoleAttribute = role, form
	if spec.Active == nil {
		t := true
		spec.Active = &t
	}
	if len(extra) > 0 {
		raw, jerr := json.Marshal(extra)
		if jerr != nil {
			return spec, scimerr.BadRequest(scimerr.InvalidValue, "unsupported attribute values: %v", jerr)
		}
		spec.AdditionalAttributes = &apiextensionsv1.JSON{Raw: raw}
	}
	return spec, nil
}

// nestURNKeys turns top-level keys such as
// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department" into the nested
// form, so both spellings map the same way.
func nestURNKeys(doc map[string]any) map[string]any {
	var moved bool
	for k, v := range doc {
		if _, isMap := v.(map[string]any); isMap || !strings.HasPrefix(strings.ToLower(k), "urn:") {
			continue
		}
		if i := strings.LastIndexByte(k, ':'); i > 0 && i < len(k)-1 {
			moved = true
		}
	}
	if !moved {
		return doc
	}
	out := make(map[string]any, len(doc))
	for k, v := range doc {
		out[k] = v
	}
	for _, k := range slices.Sorted(maps.Keys(doc)) {
		v := doc[k]
		if _, isMap := v.(map[string]any); isMap || !strings.HasPrefix(strings.ToLower(k), "urn:") {
			continue
		}
		i := strings.LastIndexByte(k, ':')
		if i <= 0 || i == len(k)-1 {
			continue
		}
		urn, attr := k[:i], k[i+1:]
		delete(out, k)
		if strings.EqualFold(urn, SchemaUser) {
			if _, exists := filter.KeyCI(out, attr); !exists {
				out[attr] = v
			}
			continue
		}
		ek, ok := filter.KeyCI(out, urn)
		if !ok {
			ek = urn
			out[ek] = map[string]any{}
		}
		m, isMap := out[ek].(map[string]any)
		if !isMap {
			continue
		}
		cp := make(map[string]any, len(m)+1)
		for mk, mv := range m {
			cp[mk] = mv
		}
		cp[attr] = v
		out[ek] = cp
	}
	return out
}

// pickRole decides the role from its sources (in precedence order) and the form it
// came in. No source: the role is not managed (nil). Sources that are all null or empty:
// the IdP cleared the role explicitly, which makes the user Registered. Otherwise the
// source in the preferred form wins if it has a value, else the first with a value.
func pickRole(sources []source, prefer scimv1.RoleAttributeForm) (*scimv1.Role, scimv1.RoleAttributeForm, error) {
	if len(sources) == 0 {
		return nil, "", nil
	}
	var valued []source
	for _, c := range sources {
		switch x := c.value.(type) {
		case nil:
		case string:
			if strings.TrimSpace(x) != "" {
				valued = append(valued, c)
			}
		default:
			return nil, "", scimerr.BadRequest(scimerr.InvalidValue, "%s must be a string: one of Registered, Moderator or Admin", describe(c))
		}
	}
	chosen := sources[0]
	if len(valued) > 0 {
		chosen = valued[0]
	}
	for _, c := range sources {
		if strings.EqualFold(string(c.form), string(prefer)) && (len(valued) == 0 || slices.ContainsFunc(valued, func(v source) bool { return v.key == c.key })) {
			chosen = c
		}
	}
	for _, c := range valued {
		if _, err := ParseRole(strings.TrimSpace(c.value.(string))); err != nil {
			return nil, "", scimerr.BadRequest(scimerr.InvalidValue, "%s %q is not a Stack Internal role: use Registered, Moderator or Admin", describe(c), truncate(c.value.(string), 64))
		}
	}
	if len(valued) == 0 {
		r := scimv1.RoleRegistered
		return &r, chosen.form, nil
	}
	r, _ := ParseRole(strings.TrimSpace(chosen.value.(string)))
	return &r, chosen.form, nil
}

// describe names a role source for error details.
func describe(s source) string {
	if s.ext != "" {
		return s.ext + ":" + RoleAttribute
	}
	return string(s.form)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// ParseRole matches a role name case-insensitively.
func ParseRole(s string) (scimv1.Role, error) {
	for _, r := range scimv1.Roles {
		if strings.EqualFold(string(r), s) {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q", s)
}

func enterpriseFrom(spec *scimv1.StackUserSpec, k string, v any) (bool, error) {
	ent := func() *scimv1.EnterpriseAttributes {
		if spec.Enterprise == nil {
			spec.Enterprise = &scimv1.EnterpriseAttributes{}
		}
		return spec.Enterprise
	}
	var err error
	switch strings.ToLower(k) {
	case "department":
		spec.Department, err = asString("department", v)
	case "employeenumber":
		var s string
		if s, err = asString("employeeNumber", v); s != "" {
			ent().EmployeeNumber = s
		}
	case "costcenter":
		var s string
		if s, err = asString("costCenter", v); s != "" {
			ent().CostCenter = s
		}
	case "organization":
		var s string
		if s, err = asString("organization", v); s != "" {
			ent().Organization = s
		}
	case "division":
		var s string
		if s, err = asString("division", v); s != "" {
			ent().Division = s
		}
	case "manager":
		var m *scimv1.Manager
		switch x := v.(type) {
		case nil:
		case string:
			if x != "" {
				m = &scimv1.Manager{Value: x}
			}
		case map[string]any:
			mv, _ := filter.GetCI(x, "value")
			md, _ := filter.GetCI(x, "displayName")
			var val, disp string
			if val, err = asString("manager.value", mv); err == nil {
				disp, err = asString("manager.displayName", md)
			}
			if val != "" || disp != "" {
				m = &scimv1.Manager{Value: val, DisplayName: disp}
			}
		default:
			err = scimerr.BadRequest(scimerr.InvalidValue, "manager must be an object with value and displayName")
		}
		if m != nil {
			ent().Manager = m
		}
	default:
		return false, nil
	}
	return true, err
}

// asString reads a string attribute: a JSON string (or null, for unset). Numbers and
// booleans are refused, not coerced (RFC 7643 section 2.3.1), and so are control
// characters: a NUL or an escape sequence in a userName would reach the site and its
// SAML sign-in.
func asString(name string, v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		if i := strings.IndexFunc(x, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
			return "", scimerr.BadRequest(scimerr.InvalidValue, "%s must not contain control characters (found U+%04X)", name, x[i])
		}
		return x, nil
	}
	return "", scimerr.BadRequest(scimerr.InvalidValue, "%s must be a string, not %s", name, jsonType(v))
}

func jsonType(v any) string {
	switch v.(type) {
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return "this value"
}

// asBool accepts JSON booleans and, as a deliberate leniency, Entra ID's string booleans
// ("True", "false"): Entra sends them unless the tenant has the aadOptscim062020 flag.
func asBool(name string, v any) (*bool, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case bool:
		return &x, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true":
			t := true
			return &t, nil
		case "false":
			f := false
			return &f, nil
		}
	}
	return nil, scimerr.BadRequest(scimerr.InvalidValue, "%s must be true or false", name)
}

func nameFrom(v any) (*scimv1.Name, error) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, scimerr.BadRequest(scimerr.InvalidValue, "name must be an object with givenName, familyName, ...")
	}
	var n scimv1.Name
	fields := []struct {
		key string
		dst *string
	}{
		{"formatted", &n.Formatted}, {"familyName", &n.FamilyName}, {"givenName", &n.GivenName},
		{"middleName", &n.MiddleName}, {"honorificPrefix", &n.HonorificPrefix}, {"honorificSuffix", &n.HonorificSuffix},
	}
	for _, f := range fields {
		fv, _ := filter.GetCI(m, f.key)
		s, err := asString("name."+f.key, fv)
		if err != nil {
			return nil, err
		}
		*f.dst = s
	}
	if n == (scimv1.Name{}) {
		return nil, nil
	}
	return &n, nil
}

func multiFrom(name string, v any) ([]scimv1.MultiValuedAttribute, error) {
	var list []any
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []any:
		list = x
	default:
		return nil, scimerr.BadRequest(scimerr.InvalidValue, "%s must be a list of objects with value, type and primary, not %s", name, jsonType(v))
	}
	var out []scimv1.MultiValuedAttribute
	seenPrimary := false
	for _, el := range list {
		var a scimv1.MultiValuedAttribute
		switch x := el.(type) {
		case map[string]any:
			var err error
			get := func(k string) any { v, _ := filter.GetCI(x, k); return v }
			if a.Value, err = asString(name+".value", get("value")); err != nil {
				return nil, err
			}
			if a.Type, err = asString(name+".type", get("type")); err != nil {
				return nil, err
			}
			if a.Display, err = asString(name+".display", get("display")); err != nil {
				return nil, err
			}
			p, err := asBool(name+".primary", get("primary"))
			if err != nil {
				return nil, err
			}
			a.Primary = p != nil && *p
		case nil:
			continue
		default:
			return nil, scimerr.BadRequest(scimerr.InvalidValue, "%s must be a list of objects with value, type and primary", name)
		}
		if a.Value == "" {
			// Okta sends empty secondary e-mails; they carry nothing.
			continue
		}
		if a.Primary {
			if seenPrimary {
				return nil, scimerr.BadRequest(scimerr.InvalidValue, "at most one of %s may be primary (RFC 7643 section 2.4)", name)
			}
			seenPrimary = true
		}
		out = append(out, a)
	}
	return out, nil
}
