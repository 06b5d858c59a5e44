// Package filter parses SCIM filters (RFC 7644 section 3.4.2.2) as identity providers
// really send them and evaluates them against SCIM JSON documents.
//
// Parsing is this package's own (parse.go), into github.com/scim2/filter-parser/v2's
// expression types, with Entra ID's non-RFC forms accepted. Evaluation works on the generic document the server returns (a
// map[string]any), so a filter sees exactly the attributes a GET shows.
package filter

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	scimfilter "github.com/scim2/filter-parser/v2"

	"github.com/stackscim/stack-scim-operator/internal/scim/scimerr"
)

// Expression is a parsed filter.
type Expression = scimfilter.Expression

// MaxLength bounds a filter's text; longer filters are rejected before parsing.
const MaxLength = 8 << 10

// CoreUserSchema is the core User schema URN; attribute paths may carry it as a prefix.
const CoreUserSchema = "urn:ietf:params:scim:schemas:core:2.0:User"

// Parse normalises and parses a filter. Every failure is a 400 invalidFilter SCIM error.
func Parse(s string) (expr Expression, err error) {
	if len(s) > MaxLength {
		return nil, scimerr.BadRequest(scimerr.InvalidFilter, "the filter is longer than %d characters", MaxLength)
	}
	if strings.TrimSpace(s) == "" {
		return nil, scimerr.BadRequest(scimerr.InvalidFilter, "the filter is empty")
	}
	if e := simpleEq(s); e != nil {
		return e, nil
	}
	return parse(s)
}

// parse runs the parser; it never panics, whatever the input (a fuzz test holds it so).
func parse(s string) (Expression, error) {
	return parseFilter(s)
}

// simpleEq parses the filter identity providers send most, `attr eq "value"` with a
// plain attribute name and a string without escapes, straight into the expression the
// parser would build (a fuzz test holds them equal), at the cost of a string scan: it is
// the lookup made once per provisioned user. Anything else returns nil and goes to the
// parser.
func simpleEq(s string) Expression {
	name, rest, ok := strings.Cut(strings.Trim(s, " "), " ")
	if !ok || name == "" {
		return nil
	}
	for i, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return nil
		}
	}
	op, val, ok := strings.Cut(rest, " ")
	if !ok || !strings.EqualFold(op, "eq") || len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"' {
		return nil
	}
	val = val[1 : len(val)-1]
	for i := 0; i < len(val); i++ {
		// Quotes, escapes and control characters are the parser's business.
		if c := val[i]; c == '"' || c == '\\' || c < 0x20 || c == 0x7f {
			return nil
		}
	}
	if !utf8.ValidString(val) {
		return nil
	}
	return &scimfilter.AttributeExpression{AttributePath: scimfilter.AttributePath{AttributeName: name}, Operator: scimfilter.EQ, CompareValue: val}
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// Lookup finds an equality on an indexed attribute (userName, externalId or id, no
// sub-attribute) that every match must satisfy, so the caller can fetch candidates from
// an index instead of scanning. The candidates must still be checked with Match.
func Lookup(e Expression) (attr, value string, ok bool) {
	switch x := e.(type) {
	case *scimfilter.AttributeExpression:
		if x.Operator != scimfilter.EQ || x.AttributePath.SubAttribute != nil {
			return "", "", false
		}
		if uri := x.AttributePath.URI(); uri != "" && !strings.EqualFold(uri, CoreUserSchema) {
			return "", "", false
		}
		v, isString := x.CompareValue.(string)
		if !isString {
			if x.CompareValue == nil {
				return "", "", false
			}
			v = fmt.Sprint(x.CompareValue)
		}
		for _, a := range []string{"userName", "externalId", "id"} {
			if strings.EqualFold(x.AttributePath.AttributeName, a) {
				return a, v, true
			}
		}
	case *scimfilter.LogicalExpression:
		if x.Operator == scimfilter.AND {
			if a, v, ok := Lookup(x.Left); ok {
				return a, v, true
			}
			return Lookup(x.Right)
		}
	}
	return "", "", false
}

// Equalities returns the attribute → value pairs a filter pins with `eq` joined by `and`
// (for example `type eq "work"`), so that a PATCH `add` through a filtered path can create
// the element it did not find. ok is false for any other filter.
func Equalities(e Expression) (map[string]any, bool) {
	out := map[string]any{}
	var walk func(Expression) bool
	walk = func(e Expression) bool {
		switch x := e.(type) {
		case *scimfilter.AttributeExpression:
			if x.Operator != scimfilter.EQ || x.AttributePath.SubAttribute != nil || x.AttributePath.URIPrefix != nil || x.CompareValue == nil {
				return false
			}
			out[x.AttributePath.AttributeName] = x.CompareValue
			return true
		case *scimfilter.LogicalExpression:
			return x.Operator == scimfilter.AND && walk(x.Left) && walk(x.Right)
		}
		return false
	}
	if !walk(e) {
		return nil, false
	}
	return out, true
}

// Match reports whether a SCIM document satisfies the filter. Attribute names are matched
// case-insensitively; string values too, except for the case-exact id and externalId.
func Match(e Expression, doc map[string]any) bool {
	return match(e, doc, true)
}

func match(e Expression, doc map[string]any, top bool) bool {
	switch x := e.(type) {
	case *scimfilter.LogicalExpression:
		if x.Operator == scimfilter.AND {
			return match(x.Left, doc, top) && match(x.Right, doc, top)
		}
		return match(x.Left, doc, top) || match(x.Right, doc, top)
	case *scimfilter.NotExpression:
		return !match(x.Expression, doc, top)
	case *scimfilter.ValuePath:
		v, found := resolveAttr(doc, x.AttributePath, top)
		if !found {
			return false
		}
		for _, el := range asList(v) {
			if m, ok := el.(map[string]any); ok && match(x.ValueFilter, m, false) {
				return true
			}
		}
		return false
	case *scimfilter.AttributeExpression:
		return matchAttr(x, doc, top)
	}
	return false
}

func matchAttr(x *scimfilter.AttributeExpression, doc map[string]any, top bool) bool {
	v, found := resolveAttr(doc, x.AttributePath, top)
	var values []any
	if found {
		sub := x.AttributePath.SubAttribute
		for _, el := range asList(v) {
			m, isMap := el.(map[string]any)
			switch {
			case sub != nil && isMap:
				if sv, ok := GetCI(m, *sub); ok {
					values = append(values, asList(sv)...)
				}
			case sub != nil:
			case isMap:
				// A complex value without a sub-attribute compares its "value".
				if sv, ok := GetCI(m, "value"); ok {
					values = append(values, sv)
				}
			default:
				values = append(values, el)
			}
		}
	}
	values = nonEmpty(values)
	caseExact := top && x.AttributePath.SubAttribute == nil &&
		(strings.EqualFold(x.AttributePath.AttributeName, "id") || strings.EqualFold(x.AttributePath.AttributeName, "externalId"))
	switch x.Operator {
	case scimfilter.PR:
		return len(values) > 0
	case scimfilter.NE:
		if x.CompareValue == nil {
			return len(values) > 0
		}
		if len(values) == 0 {
			return true // an unassigned attribute equals no value
		}
		// As every operator on a multi-valued attribute (RFC 7644 section 3.4.2.2): a
		// match when any value meets it.
		for _, v := range values {
			if compare(v, scimfilter.NE, x.CompareValue, caseExact) {
				return true
			}
		}
		return false
	}
	if x.CompareValue == nil {
		return x.Operator == scimfilter.EQ && len(values) == 0
	}
	for _, v := range values {
		if compare(v, x.Operator, x.CompareValue, caseExact) {
			return true
		}
	}
	return false
}

func nonEmpty(vs []any) []any {
	out := vs[:0]
	for _, v := range vs {
		switch x := v.(type) {
		case nil:
			continue
		case string:
			if x == "" {
				continue
			}
		case map[string]any:
			if len(x) == 0 {
				continue
			}
		}
		out = append(out, v)
	}
	return out
}

// resolveAttr finds the attribute an attribute path names: under an extension URN when
// it has one, else at the top level, else (top level only) in any extension object, so
// `department eq "x"` finds the enterprise extension's department.
func resolveAttr(doc map[string]any, p scimfilter.AttributePath, top bool) (any, bool) {
	base := doc
	if uri := p.URI(); uri != "" && !strings.EqualFold(uri, CoreUserSchema) {
		ext, ok := GetCI(doc, uri)
		if !ok {
			return nil, false
		}
		m, ok := ext.(map[string]any)
		if !ok {
			return nil, false
		}
		base = m
	}
	if v, ok := GetCI(base, p.AttributeName); ok {
		return v, true
	}
	if top && p.URI() == "" {
		for _, k := range slices.Sorted(maps.Keys(doc)) {
			if !strings.HasPrefix(strings.ToLower(k), "urn:") {
				continue
			}
			if m, ok := doc[k].(map[string]any); ok {
				if v, ok := GetCI(m, p.AttributeName); ok {
					return v, true
				}
			}
		}
	}
	return nil, false
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

func compare(v any, op scimfilter.CompareOperator, want any, caseExact bool) bool {
	switch a := v.(type) {
	case bool:
		var b bool
		switch w := want.(type) {
		case bool:
			b = w
		case string:
			pb, err := strconv.ParseBool(strings.ToLower(w))
			if err != nil {
				return false
			}
			b = pb
		default:
			return false
		}
		switch op {
		case scimfilter.EQ:
			return a == b
		case scimfilter.NE:
			return a != b
		}
		return false
	case json.Number, float64, int, int64:
		af, ok := toFloat(a)
		wf, ok2 := toFloat(want)
		if !ok || !ok2 {
			return compareStrings(fmt.Sprint(a), op, fmt.Sprint(want), true)
		}
		return compareOrdered(cmpFloat(af, wf), op)
	case string:
		var w string
		switch x := want.(type) {
		case string:
			w = x
		case bool:
			w = strconv.FormatBool(x)
		default:
			w = fmt.Sprint(x)
		}
		return compareStrings(a, op, w, caseExact)
	}
	return false
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil && !math.IsNaN(f)
	}
	return 0, false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compareStrings(a string, op scimfilter.CompareOperator, b string, caseExact bool) bool {
	// dateTime values compare as instants: "06:02:43+01:00" is "05:02:43Z". (Before
	// folding case, which would turn the "T" and "Z" into letters time.Parse refuses.)
	if op != scimfilter.CO && op != scimfilter.SW && op != scimfilter.EW {
		if ta, err := time.Parse(time.RFC3339Nano, a); err == nil {
			if tb, err := time.Parse(time.RFC3339Nano, b); err == nil {
				return compareOrdered(ta.Compare(tb), op)
			}
		}
	}
	if !caseExact {
		a, b = strings.ToLower(a), strings.ToLower(b)
	}
	switch op {
	case scimfilter.EQ:
		return a == b
	case scimfilter.NE:
		return a != b
	case scimfilter.CO:
		return strings.Contains(a, b)
	case scimfilter.SW:
		return strings.HasPrefix(a, b)
	case scimfilter.EW:
		return strings.HasSuffix(a, b)
	}
	return compareOrdered(strings.Compare(a, b), op)
}

func compareOrdered(c int, op scimfilter.CompareOperator) bool {
	switch op {
	case scimfilter.EQ:
		return c == 0
	case scimfilter.NE:
		return c != 0
	case scimfilter.GT:
		return c > 0
	case scimfilter.GE:
		return c >= 0
	case scimfilter.LT:
		return c < 0
	case scimfilter.LE:
		return c <= 0
	}
	return false
}
