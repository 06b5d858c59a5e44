// Package patch applies SCIM PATCH operations (RFC 7644 section 3.5.2) to a generic SCIM
// JSON document, as Okta and Entra ID send them: case-insensitive op names, path-less
// value maps with dotted and URN-qualified keys, filtered paths that create the element
// they do not find, and member removal by value. Application is atomic: the input is
// never modified; either every operation applies to a copy, or an error is returned.
package patch

import (
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/stackscim/stack-scim-operator/internal/scim/filter"
	"github.com/stackscim/stack-scim-operator/internal/scim/scimerr"
)

// SchemaPatchOp is the schema URN of a PATCH request body.
const SchemaPatchOp = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

// MaxOperations bounds the operations of one request.
const MaxOperations = 1000

// Operation is one PATCH operation.
type Operation struct {
	// Op is add, replace or remove, in any case.
	Op string
	// Path is the attribute path; empty for a path-less add or replace.
	Path string
	// Value is the operation's value as decoded JSON.
	Value any
	// HasValue tells a JSON null value from no value.
	HasValue bool
}

// Options tell the engine what it cannot infer from the document.
type Options struct {
	// Schemas are the schema URNs whose attributes live in an extension object, so a path
	// equal to one of them names the whole extension rather than URN:attribute.
	Schemas []string
}

// Decode reads the operations of a PATCH body (already decoded JSON). Keys are matched
// case-insensitively; an empty Operations list is valid and changes nothing.
func Decode(body map[string]any) ([]Operation, error) {
	raw, ok := filter.GetCI(body, "Operations")
	if !ok || raw == nil {
		return nil, scimerr.BadRequest(scimerr.InvalidSyntax, "the PATCH body has no \"Operations\" list")
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, scimerr.BadRequest(scimerr.InvalidSyntax, "\"Operations\" must be a list")
	}
	if len(list) > MaxOperations {
		return nil, scimerr.BadRequest(scimerr.TooMany, "a PATCH may carry at most %d operations", MaxOperations)
	}
	ops := make([]Operation, 0, len(list))
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, scimerr.BadRequest(scimerr.InvalidSyntax, "operation %d is not an object", i+1)
		}
		var op Operation
		if v, ok := filter.GetCI(m, "op"); ok {
			s, _ := v.(string)
			op.Op = s
		}
		switch strings.ToLower(op.Op) {
		case "add", "replace", "remove":
		default:
			return nil, scimerr.BadRequest(scimerr.InvalidSyntax, "operation %d has op %q; expected add, replace or remove", i+1, op.Op)
		}
		if v, ok := filter.GetCI(m, "path"); ok && v != nil {
			s, isString := v.(string)
			if !isString {
				return nil, scimerr.BadRequest(scimerr.InvalidPath, "operation %d: path must be a string", i+1)
			}
			op.Path = strings.TrimSpace(s)
		}
		op.Value, op.HasValue = filter.GetCI(m, "value")
		ops = append(ops, op)
	}
	return ops, nil
}

// Apply applies ops to a deep copy of doc and returns the copy.
func Apply(doc map[string]any, ops []Operation, opts Options) (map[string]any, error) {
	out, _ := DeepCopy(doc).(map[string]any)
	if out == nil {
		out = map[string]any{}
	}
	e := &engine{doc: out, opts: opts}
	for i, op := range ops {
		if err := e.apply(op); err != nil {
			if se := scimerr.As(err); se != nil {
				se.Detail = "operation " + strconv.Itoa(i+1) + " (" + strings.ToLower(op.Op) + pathText(op.Path) + "): " + se.Detail
				return nil, se
			}
			return nil, err
		}
	}
	return out, nil
}

func pathText(p string) string {
	if p == "" {
		return ""
	}
	if len(p) > 100 {
		p = p[:100] + "..."
	}
	return " " + p
}

// DeepCopy copies decoded JSON.
func DeepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, v := range x {
			m[k] = DeepCopy(v)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, v := range x {
			l[i] = DeepCopy(v)
		}
		return l
	}
	return v
}

type engine struct {
	doc  map[string]any
	opts Options
}

// target is a parsed attribute path.
type target struct {
	urn    string // extension URN; empty for core attributes
	attr   string // empty: the whole extension object named by urn
	sub    string
	filter filter.Expression
}

func (e *engine) apply(op Operation) error {
	kind := strings.ToLower(op.Op)
	if op.Path == "" {
		if kind == "remove" {
			return scimerr.BadRequest(scimerr.NoTarget, "remove needs a path")
		}
		m, ok := op.Value.(map[string]any)
		if !ok {
			return scimerr.BadRequest(scimerr.InvalidValue, "without a path the value must be an object of attributes")
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			_, isMap := m[k].(map[string]any)
			t, err := e.parsePath(k, false, isMap)
			if err != nil {
				return err
			}
			if t.attr == "" {
				// A whole extension object: apply each of its attributes.
				sub, ok := m[k].(map[string]any)
				if !ok {
					return scimerr.BadRequest(scimerr.InvalidValue, "the value of %q must be an object", k)
				}
				for _, sk := range slices.Sorted(maps.Keys(sub)) {
					st, err := e.parsePath(sk, false, false)
					if err != nil {
						return err
					}
					if st.urn != "" || st.attr == "" {
						return scimerr.BadRequest(scimerr.InvalidPath, "%q cannot be nested in %q", sk, k)
					}
					st.urn = t.urn
					if err := e.set(kind, st, sub[sk]); err != nil {
						return err
					}
				}
				continue
			}
			if err := e.set(kind, t, m[k]); err != nil {
				return err
			}
		}
		return nil
	}
	_, isMap := op.Value.(map[string]any)
	t, err := e.parsePath(op.Path, true, isMap)
	if err != nil {
		return err
	}
	if kind == "remove" {
		return e.remove(t, op.Value, op.HasValue)
	}
	if !op.HasValue {
		return scimerr.BadRequest(scimerr.InvalidValue, "%s needs a value", kind)
	}
	if t.attr == "" {
		m, ok := op.Value.(map[string]any)
		if !ok {
			if op.Value == nil && kind == "replace" {
				return e.remove(t, nil, false)
			}
			return scimerr.BadRequest(scimerr.InvalidValue, "the value for the extension %q must be an object", t.urn)
		}
		for _, sk := range slices.Sorted(maps.Keys(m)) {
			st, err := e.parsePath(sk, false, false)
			if err != nil {
				return err
			}
			if st.urn != "" || st.attr == "" {
				return scimerr.BadRequest(scimerr.InvalidPath, "%q cannot be nested in %q", sk, t.urn)
			}
			st.urn = t.urn
			if err := e.set(kind, st, m[sk]); err != nil {
				return err
			}
		}
		return nil
	}
	return e.set(kind, t, op.Value)
}

func (e *engine) isSchema(s string) bool {
	if _, ok := filter.KeyCI(e.doc, s); ok {
		return true
	}
	for _, u := range e.opts.Schemas {
		if strings.EqualFold(u, s) {
			return true
		}
	}
	if l, ok := e.doc["schemas"].([]any); ok {
		for _, u := range l {
			if str, ok := u.(string); ok && strings.EqualFold(str, s) {
				return true
			}
		}
	}
	return false
}

// parsePath parses `[urn:]attr[.sub]`, `[urn:]attr[filter][.sub]` or a bare extension URN.
//
// A URN path names a whole extension when it is a known schema, or when its value is an
// object and the URN without its last segment is not a known schema.
func (e *engine) parsePath(s string, allowFilter, valueIsMap bool) (target, error) {
	var t target
	s = strings.TrimSpace(s)
	if s == "" {
		return t, scimerr.BadRequest(scimerr.InvalidPath, "empty attribute path")
	}
	head, bracket, after := s, "", ""
	if i := strings.IndexByte(s, '['); i >= 0 {
		j := matchBracket(s, i)
		if j < 0 {
			return t, scimerr.BadRequest(scimerr.InvalidPath, "unbalanced brackets in path %q", s)
		}
		head, bracket, after = s[:i], s[i+1:j], s[j+1:]
		if !allowFilter {
			return t, scimerr.BadRequest(scimerr.InvalidPath, "a filter is not allowed in %q", s)
		}
	}
	attrPart := head
	if strings.HasPrefix(strings.ToLower(head), "urn:") {
		prefix := head[:strings.LastIndexByte(head, ':')]
		whole := e.isSchema(head) || (valueIsMap && !e.isSchema(prefix))
		if bracket == "" && after == "" && whole {
			if strings.EqualFold(head, filter.CoreUserSchema) {
				return t, scimerr.BadRequest(scimerr.InvalidPath, "path %q names the core schema, not an attribute", s)
			}
			t.urn = head
			return t, nil
		}
		i := strings.LastIndexByte(head, ':')
		t.urn, attrPart = head[:i], head[i+1:]
		if strings.EqualFold(t.urn, filter.CoreUserSchema) {
			t.urn = ""
		}
	}
	if bracket == "" {
		if i := strings.IndexByte(attrPart, '.'); i >= 0 {
			attrPart, t.sub = attrPart[:i], attrPart[i+1:]
			if !validName(t.sub) {
				return t, scimerr.BadRequest(scimerr.InvalidPath, "invalid sub-attribute in path %q", s)
			}
		}
	} else {
		f, err := filter.Parse(bracket)
		if err != nil {
			return t, scimerr.BadRequest(scimerr.InvalidPath, "invalid filter in path %q", s)
		}
		t.filter = f
		if after != "" {
			if after[0] != '.' || !validName(after[1:]) {
				return t, scimerr.BadRequest(scimerr.InvalidPath, "invalid text after the filter in path %q", s)
			}
			t.sub = after[1:]
		}
	}
	if !validName(attrPart) {
		return t, scimerr.BadRequest(scimerr.InvalidPath, "invalid attribute name in path %q", s)
	}
	t.attr = attrPart
	return t, nil
}

func validName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c == '-' || c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

func matchBracket(s string, open int) int {
	inString := false
	for i := open + 1; i < len(s); i++ {
		switch c := s[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case !inString && c == ']':
			return i
		}
	}
	return -1
}

// container returns the object holding the target's attribute, creating an extension
// object (and listing its URN in schemas) when create is set.
func (e *engine) container(t target, create bool) map[string]any {
	if t.urn == "" {
		return e.doc
	}
	if k, ok := filter.KeyCI(e.doc, t.urn); ok {
		if m, ok := e.doc[k].(map[string]any); ok {
			return m
		}
		if !create {
			return nil
		}
		m := map[string]any{}
		e.doc[k] = m
		return m
	}
	if !create {
		return nil
	}
	m := map[string]any{}
	e.doc[t.urn] = m
	schemas, _ := e.doc["schemas"].([]any)
	found := false
	for _, s := range schemas {
		if str, ok := s.(string); ok && strings.EqualFold(str, t.urn) {
			found = true
		}
	}
	if !found {
		if _, ok := e.doc["schemas"]; ok || schemas != nil {
			e.doc["schemas"] = append(schemas, t.urn)
		}
	}
	return m
}

func keyFor(m map[string]any, name string) string {
	if k, ok := filter.KeyCI(m, name); ok {
		return k
	}
	return name
}

// set performs add or replace: complex values merge, add appends to multi-valued
// attributes, replace overwrites them.
func (e *engine) set(kind string, t target, value any) error {
	if err := e.checkID(t, value); err != nil {
		return err
	}
	if value == nil {
		// Setting null unassigns the attribute (RFC 7643 section 2.5).
		return e.remove(t, nil, false)
	}
	c := e.container(t, true)
	key := keyFor(c, t.attr)
	existing := c[key]
	if t.filter != nil {
		return e.setFiltered(kind, c, key, existing, t, value)
	}
	if t.sub != "" {
		switch x := existing.(type) {
		case nil:
			c[key] = map[string]any{t.sub: DeepCopy(value)}
		case map[string]any:
			x[keyFor(x, t.sub)] = DeepCopy(value)
		case []any:
			if len(x) == 0 {
				c[key] = []any{map[string]any{t.sub: DeepCopy(value)}}
				return nil
			}
			touched := map[int]bool{}
			for i, el := range x {
				m, ok := el.(map[string]any)
				if !ok {
					return scimerr.BadRequest(scimerr.InvalidPath, "%q has simple values; it has no sub-attribute %q", t.attr, t.sub)
				}
				m[keyFor(m, t.sub)] = DeepCopy(value)
				touched[i] = true
			}
			enforcePrimary(x, touched)
		default:
			return scimerr.BadRequest(scimerr.InvalidPath, "%q is not a complex attribute; it has no sub-attribute %q", t.attr, t.sub)
		}
		return nil
	}
	switch x := existing.(type) {
	case map[string]any:
		if v, ok := value.(map[string]any); ok {
			// Complex attributes merge: sub-attributes not given stay unchanged.
			for _, k := range slices.Sorted(maps.Keys(v)) {
				if v[k] == nil {
					delete(x, keyFor(x, k))
					continue
				}
				x[keyFor(x, k)] = DeepCopy(v[k])
			}
			return nil
		}
	case []any:
		if kind == "add" {
			l := x
			touched := map[int]bool{}
			for _, v := range asList(value) {
				if idx := indexOf(l, v); idx >= 0 {
					touched[idx] = true
					continue
				}
				l = append(l, DeepCopy(v))
				touched[len(l)-1] = true
			}
			enforcePrimary(l, touched)
			c[key] = l
			return nil
		}
	}
	nv := DeepCopy(value)
	if l, ok := nv.([]any); ok {
		// Of several primaries in one replacement, the last wins.
		lastPrimary := -1
		for i, el := range l {
			if isPrimary(el) {
				lastPrimary = i
			}
		}
		if lastPrimary >= 0 {
			enforcePrimary(l, map[int]bool{lastPrimary: true})
		}
	}
	c[key] = nv
	return nil
}

func (e *engine) setFiltered(kind string, c map[string]any, key string, existing any, t target, value any) error {
	var list []any
	switch x := existing.(type) {
	case nil:
	case []any:
		list = x
	default:
		return scimerr.BadRequest(scimerr.InvalidPath, "%q is not multi-valued; a filter cannot select its values", t.attr)
	}
	touched := map[int]bool{}
	for i, el := range list {
		m, ok := el.(map[string]any)
		if !ok || !filter.Match(t.filter, m) {
			continue
		}
		touched[i] = true
		switch {
		case t.sub != "":
			m[keyFor(m, t.sub)] = DeepCopy(value)
		case kind == "replace":
			v, ok := value.(map[string]any)
			if !ok {
				return scimerr.BadRequest(scimerr.InvalidValue, "the value for %q must be an object", t.attr)
			}
			list[i] = DeepCopy(v)
		default:
			v, ok := value.(map[string]any)
			if !ok {
				return scimerr.BadRequest(scimerr.InvalidValue, "the value for %q must be an object", t.attr)
			}
			for _, k := range slices.Sorted(maps.Keys(v)) {
				m[keyFor(m, k)] = DeepCopy(v[k])
			}
		}
	}
	if len(touched) == 0 {
		// Nothing matched: create the element the filter describes (Entra adds
		// emails[type eq "work"].value to users without a work e-mail).
		eq, ok := filter.Equalities(t.filter)
		if !ok {
			return scimerr.BadRequest(scimerr.NoTarget, "no value of %q matches the filter, and the filter does not describe a new value", t.attr)
		}
		el := map[string]any{}
		for k, v := range eq {
			el[k] = v
		}
		if t.sub != "" {
			el[keyFor(el, t.sub)] = DeepCopy(value)
		} else {
			v, ok := value.(map[string]any)
			if !ok {
				return scimerr.BadRequest(scimerr.InvalidValue, "the value for %q must be an object", t.attr)
			}
			for k, x := range v {
				el[keyFor(el, k)] = DeepCopy(x)
			}
		}
		if v, _ := filter.GetCI(el, "value"); v == nil || v == "" {
			// Only an element with a value can be created: setting
			// emails[type eq "work"].primary on a user with no work e-mail has no target,
			// and must not make the existing e-mail lose its primary flag.
			return scimerr.BadRequest(scimerr.NoTarget, "no value of %q matches the filter, and the operation does not give the value of a new one", t.attr)
		}
		list = append(list, el)
		touched[len(list)-1] = true
	}
	enforcePrimary(list, touched)
	c[key] = list
	return nil
}

// checkID refuses to change or remove id, which the server assigns (RFC 7643 section
// 3.1: readOnly). Setting it to its own value is a no-op: Okta's group PATCHes repeat it.
func (e *engine) checkID(t target, value any) error {
	if t.urn != "" || t.filter != nil || !strings.EqualFold(t.attr, "id") {
		return nil
	}
	cur, _ := filter.GetCI(e.doc, "id")
	if t.sub == "" && value != nil && reflect.DeepEqual(cur, value) {
		return nil
	}
	return scimerr.BadRequest(scimerr.Mutability, "id is assigned by the server and cannot be changed (it is %v)", cur)
}

func (e *engine) remove(t target, value any, hasValue bool) error {
	if err := e.checkID(t, nil); err != nil {
		return err
	}
	c := e.container(t, false)
	if c == nil {
		return nil
	}
	if t.attr == "" {
		k, _ := filter.KeyCI(e.doc, t.urn)
		delete(e.doc, k)
		return nil
	}
	key, ok := filter.KeyCI(c, t.attr)
	if !ok {
		return nil
	}
	existing := c[key]
	switch {
	case t.filter != nil:
		list, ok := existing.([]any)
		if !ok {
			return scimerr.BadRequest(scimerr.InvalidPath, "%q is not multi-valued; a filter cannot select its values", t.attr)
		}
		kept := list[:0:0]
		for _, el := range list {
			m, isMap := el.(map[string]any)
			if isMap && filter.Match(t.filter, m) {
				if t.sub != "" {
					if sk, ok := filter.KeyCI(m, t.sub); ok {
						delete(m, sk)
					}
					kept = append(kept, m)
				}
				continue
			}
			kept = append(kept, el)
		}
		setOrDelete(c, key, kept)
	case t.sub != "":
		switch x := existing.(type) {
		case map[string]any:
			if sk, ok := filter.KeyCI(x, t.sub); ok {
				delete(x, sk)
			}
			if len(x) == 0 {
				delete(c, key)
			}
		case []any:
			for _, el := range x {
				if m, ok := el.(map[string]any); ok {
					if sk, ok := filter.KeyCI(m, t.sub); ok {
						delete(m, sk)
					}
				}
			}
		}
	case hasValue && value != nil:
		// Entra removes group members as {"op":"Remove","path":"members","value":[{"value":"id"}]}:
		// only the listed values go.
		list, ok := existing.([]any)
		if !ok {
			delete(c, key)
			return nil
		}
		kept := list[:0:0]
		for _, el := range list {
			if !matchesAny(el, asList(value)) {
				kept = append(kept, el)
			}
		}
		setOrDelete(c, key, kept)
	default:
		delete(c, key)
	}
	return nil
}

func setOrDelete(c map[string]any, key string, l []any) {
	if len(l) == 0 {
		delete(c, key)
		return
	}
	c[key] = l
}

func matchesAny(el any, values []any) bool {
	for _, v := range values {
		vm, vIsMap := v.(map[string]any)
		em, eIsMap := el.(map[string]any)
		if vIsMap && eIsMap {
			if vv, ok := filter.GetCI(vm, "value"); ok {
				if ev, ok := filter.GetCI(em, "value"); ok && reflect.DeepEqual(vv, ev) {
					return true
				}
				continue
			}
		}
		if reflect.DeepEqual(el, v) {
			return true
		}
	}
	return false
}

func indexOf(l []any, v any) int {
	for i, el := range l {
		if reflect.DeepEqual(el, v) {
			return i
		}
	}
	return -1
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

func isPrimary(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	p, _ := filter.GetCI(m, "primary")
	switch x := p.(type) {
	case bool:
		return x
	case string:
		return strings.EqualFold(x, "true")
	}
	return false
}

// enforcePrimary keeps at most one primary value (RFC 7643 section 2.4): when a touched
// element became primary, the others stop being primary.
func enforcePrimary(l []any, touched map[int]bool) {
	winner := -1
	for i := range l {
		if touched[i] && isPrimary(l[i]) {
			winner = i
		}
	}
	if winner < 0 {
		return
	}
	for i, el := range l {
		if i == winner || !isPrimary(el) {
			continue
		}
		m := el.(map[string]any)
		k, _ := filter.KeyCI(m, "primary")
		m[k] = false
	}
}
