package resource

import (
	"maps"
	"reflect"
	"slices"
	"strings"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/scim/filter"
)

// Some values reach the server under several names: the role (core userType, top-level
// stackUserType, stackUserType in any extension), the title (core title, and jobTitle as
// the vendor's Okta guide names it) and the department (enterprise extension, and top
// level). A GET answers each in one form only, but Okta's GET-then-PUT sends the whole
// resource back with the value the IdP maps added in its own form, so a body can carry
// an echoed old copy next to the new one. Reconcile picks, per value, the form that
// changed.

// source is one place a document carries an aliased value.
type source struct {
	key       string // identity across documents, e.g. "usertype" or "urn:...:stackusertype"
	form      scimv1.RoleAttributeForm
	value     any
	container map[string]any
	attrKey   string
	ext       string // the extension key holding container; empty at the top level
}

func find(l []source, key string) (source, bool) {
	for _, s := range l {
		if s.key == key {
			return s, true
		}
	}
	return source{}, false
}

// roleSources lists the role attributes of a document that count as the role under o,
// in order of precedence: the vendor extension, other extensions, top level, userType.
func (o Options) roleSources(doc map[string]any) []source {
	var out []source
	for _, k := range slices.Sorted(maps.Keys(doc)) {
		m, ok := doc[k].(map[string]any)
		if !ok || !strings.HasPrefix(strings.ToLower(k), "urn:") || !o.roleSchemaAllowed(k) {
			continue
		}
		if ak, ok := filter.KeyCI(m, RoleAttribute); ok {
			s := source{key: strings.ToLower(k + ":" + RoleAttribute), form: scimv1.RoleAttributeForm(k),
				value: m[ak], container: m, attrKey: ak, ext: k}
			if strings.EqualFold(k, SchemaStack) {
				out = append([]source{s}, out...)
			} else {
				out = append(out, s)
			}
		}
	}
	var names []scimv1.RoleAttributeForm
	if len(o.RoleSchemas) == 0 {
		names = append(names, scimv1.RoleFormTopLevel)
	}
	for _, name := range append(names, scimv1.RoleFormUserType) {
		if ak, ok := filter.KeyCI(doc, string(name)); ok {
			out = append(out, source{key: strings.ToLower(string(name)), form: name, value: doc[ak], container: doc, attrKey: ak})
		}
	}
	return out
}

// topLevelSources lists the aliases of a value kept at the top level, plus (with ext) the
// same attribute inside that extension.
func topLevelSources(doc map[string]any, ext string, names ...string) []source {
	var out []source
	for _, n := range names {
		if ak, ok := filter.KeyCI(doc, n); ok {
			out = append(out, source{key: strings.ToLower(n), value: doc[ak], container: doc, attrKey: ak})
		}
	}
	if ext == "" {
		return out
	}
	if ek, ok := filter.KeyCI(doc, ext); ok {
		if m, ok := doc[ek].(map[string]any); ok {
			if ak, ok := filter.KeyCI(m, names[0]); ok {
				out = append(out, source{key: strings.ToLower(ext + ":" + names[0]), value: m[ak], container: m, attrKey: ak, ext: ek})
			}
		}
	}
	return out
}

// changed returns the first source of after whose value differs from before's copy;
// with removals, a source before had that after lacks counts as changed to null.
func changed(before, after []source, removals bool) (source, bool) {
	for _, s := range after {
		if b, ok := find(before, s.key); !ok || !reflect.DeepEqual(b.value, s.value) {
			return s, true
		}
	}
	if removals {
		for _, s := range before {
			if _, ok := find(after, s.key); !ok && s.value != nil {
				s.value = nil
				return s, true
			}
		}
	}
	return source{}, false
}

// Reconcile makes the aliased values of after (a PUT body, or a document a PATCH
// produced from before, the server's own rendering) say what the client changed:
//   - the role: every other role attribute is dropped, so the changed one alone decides
//     the role and its form. With patch set, removing the role attribute clears it
//     explicitly: it comes back as null (FromSCIM reads that as Registered); in a PUT
//     an absent role means "not managed".
//   - title and department: the changed alias is copied over the others.
func (o Options) Reconcile(before, after map[string]any, patch bool) {
	if w, ok := changed(o.roleSources(before), o.roleSources(after), patch); ok {
		for _, s := range o.roleSources(after) {
			if s.key == w.key {
				continue
			}
			delete(s.container, s.attrKey)
			if s.ext != "" && len(s.container) == 0 {
				delete(after, s.ext)
			}
		}
		if w.value == nil {
			setSource(after, w)
		}
	}
	for _, names := range [][]string{{"title", "jobTitle"}, {"department"}} {
		ext := ""
		if names[0] == "department" {
			ext = SchemaEnterprise
		}
		b, a := topLevelSources(before, ext, names...), topLevelSources(after, ext, names...)
		if w, ok := changed(b, a, false); ok {
			for _, s := range a {
				s.container[s.attrKey] = w.value
			}
		}
	}
}

// setSource puts a source's value back into doc, recreating its extension object.
func setSource(doc map[string]any, s source) {
	if s.ext == "" {
		doc[s.attrKey] = s.value
		return
	}
	m, ok := doc[s.ext].(map[string]any)
	if !ok {
		m = map[string]any{}
		doc[s.ext] = m
	}
	m[s.attrKey] = s.value
}

// putRole renders the role in the form the client last sent it.
func putRole(doc map[string]any, form scimv1.RoleAttributeForm, role string) {
	switch {
	case form == scimv1.RoleFormUserType || form == scimv1.RoleFormTopLevel:
		doc[string(form)] = role
	case strings.HasPrefix(strings.ToLower(string(form)), "urn:"):
		putExt(doc, string(form), role)
	default:
		putExt(doc, SchemaStack, role)
	}
}

// putExt sets stackUserType in an extension object, next to its other attributes (the
// enterprise extension's department, say).
func putExt(doc map[string]any, urn, role string) {
	k := urn
	if found, ok := filter.KeyCI(doc, urn); ok {
		k = found
	}
	m, ok := doc[k].(map[string]any)
	if !ok {
		m = map[string]any{}
		doc[k] = m
	}
	m[RoleAttribute] = role
}
