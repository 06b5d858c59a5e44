package filter

import (
	"encoding/json"
	"strings"
	"unicode/utf8"

	scimfilter "github.com/scim2/filter-parser/v2"

	"github.com/stackscim/stack-scim-operator/internal/scim/scimerr"
)

var compareOps = map[string]bool{
	"eq": true, "ne": true, "co": true, "sw": true, "ew": true,
	"gt": true, "lt": true, "ge": true, "le": true, "pr": true,
}

// maxDepth bounds the logical operators, parentheses and not() of a filter together: the
// tree a chain of 500 `or` builds is as deep as 500 parentheses to evaluate.
const maxDepth = 64

// parser is a recursive-descent parser of the RFC 7644 section 3.4.2.2 filter grammar,
// building github.com/scim2/filter-parser's expression types. That library rejects value
// filters with more than one logical operator, parentheses or not() inside brackets; RFC
// 7644 allows them, and so does this parser.
//
// Deliberate leniencies, for what identity providers really send:
//   - Entra ID: unquoted compare values (`externalId eq abc`) are strings; bare numbers
//     are read as strings too (Match compares numeric strings with numbers numerically),
//     so 12345678901234567890 is not rounded through a float.
//   - Entra ID: `emails[type eq "work"].value eq "x"` means
//     `emails[(type eq "work") and value eq "x"]`.
//   - Operators, `and`/`or`/`not` and true/false/null match case-insensitively (RFC 7644
//     says so for operators; Entra capitalises literals: `active eq True`).
type parser struct {
	s     string
	i     int
	depth int
}

func (p *parser) fail(format string, args ...any) error {
	return scimerr.BadRequest(scimerr.InvalidFilter, "the filter %q is not a valid SCIM filter (RFC 7644 section 3.4.2.2): "+format,
		append([]any{truncate(p.s)}, args...)...)
}

func (p *parser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *parser) eof() bool { p.skipSpace(); return p.i >= len(p.s) }

func (p *parser) peekByte() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// word returns the next run of characters up to a space, quote, parenthesis or bracket,
// without consuming it.
func (p *parser) word() string {
	p.skipSpace()
	j := p.i
	for j < len(p.s) && !strings.ContainsRune(" \t\n\r\"()[]", rune(p.s[j])) {
		j++
	}
	return p.s[p.i:j]
}

// keyword consumes kw (case-insensitively) when it is the next word.
func (p *parser) keyword(kw string) bool {
	if w := p.word(); strings.EqualFold(w, kw) {
		p.i += len(w)
		return true
	}
	return false
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return scimerr.BadRequest(scimerr.InvalidFilter, "the filter is nested too deeply (at most %d levels)", maxDepth)
	}
	return nil
}

// parseFilter parses a whole filter.
func parseFilter(s string) (Expression, error) {
	if !utf8.ValidString(s) {
		// Invalid bytes cannot match any stored (valid UTF-8) value, but are no filter.
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	p := &parser{s: s}
	e, err := p.or(false)
	if err != nil {
		return nil, err
	}
	if !p.eof() {
		return nil, p.fail("unexpected %q", truncate(p.s[p.i:]))
	}
	return e, nil
}

// or parses `and-expression *("or" and-expression)`; inValue says it is inside brackets.
func (p *parser) or(inValue bool) (Expression, error) {
	left, err := p.and(inValue)
	if err != nil {
		return nil, err
	}
	for p.keyword("or") {
		if err := p.enter(); err != nil {
			return nil, err
		}
		right, err := p.and(inValue)
		if err != nil {
			return nil, err
		}
		left = &scimfilter.LogicalExpression{Left: left, Right: right, Operator: scimfilter.OR}
	}
	return left, nil
}

func (p *parser) and(inValue bool) (Expression, error) {
	left, err := p.unary(inValue)
	if err != nil {
		return nil, err
	}
	for p.keyword("and") {
		if err := p.enter(); err != nil {
			return nil, err
		}
		right, err := p.unary(inValue)
		if err != nil {
			return nil, err
		}
		left = &scimfilter.LogicalExpression{Left: left, Right: right, Operator: scimfilter.AND}
	}
	return left, nil
}

// unary parses `not (filter)`, `(filter)` or an attribute expression.
func (p *parser) unary(inValue bool) (Expression, error) {
	p.skipSpace()
	save := p.i
	if p.keyword("not") {
		p.skipSpace()
		if p.peekByte() == '(' {
			if err := p.enter(); err != nil {
				return nil, err
			}
			e, err := p.group(inValue)
			if err != nil {
				return nil, err
			}
			return &scimfilter.NotExpression{Expression: e}, nil
		}
		p.i = save // an attribute named "not"
	}
	if p.peekByte() == '(' {
		if err := p.enter(); err != nil {
			return nil, err
		}
		return p.group(inValue)
	}
	return p.attrExpr(inValue)
}

// group parses `( filter )`.
func (p *parser) group(inValue bool) (Expression, error) {
	p.i++ // (
	e, err := p.or(inValue)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.peekByte() != ')' {
		return nil, p.fail("a parenthesis is not closed")
	}
	p.i++
	return e, nil
}

// attrExpr parses `attrPath pr`, `attrPath op value`, `attrPath[valFilter]` and Entra's
// `attrPath[valFilter].sub op value`.
func (p *parser) attrExpr(inValue bool) (Expression, error) {
	w := p.word()
	if w == "" {
		return nil, p.fail("an attribute name is missing at %q", truncate(p.s[p.i:]))
	}
	p.i += len(w)
	if p.peekByte() == '[' {
		if inValue {
			return nil, p.fail("a value filter cannot hold another value filter")
		}
		path, err := p.attrPath(w)
		if err != nil {
			return nil, err
		}
		if path.SubAttribute != nil {
			return nil, p.fail("%q: a value filter follows an attribute, not a sub-attribute", w)
		}
		p.i++ // [
		vf, err := p.or(true)
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.peekByte() != ']' {
			return nil, p.fail("a bracket is not closed")
		}
		p.i++
		vp := &scimfilter.ValuePath{AttributePath: path, ValueFilter: vf}
		if p.peekByte() != '.' {
			return vp, nil
		}
		// Entra ID: emails[type eq "work"].value eq "x".
		sub := p.word()
		p.i += len(sub)
		subPath, err := p.attrPath(strings.TrimPrefix(sub, "."))
		if err != nil || subPath.SubAttribute != nil || subPath.URIPrefix != nil {
			return nil, p.fail("%q is not a sub-attribute", sub)
		}
		cond, err := p.comparison(subPath)
		if err != nil {
			return nil, err
		}
		vp.ValueFilter = &scimfilter.LogicalExpression{Left: vf, Right: cond, Operator: scimfilter.AND}
		return vp, nil
	}
	path, err := p.attrPath(w)
	if err != nil {
		return nil, err
	}
	return p.comparison(path)
}

// comparison parses `pr` or `op value` after an attribute path.
func (p *parser) comparison(path scimfilter.AttributePath) (Expression, error) {
	op := strings.ToLower(p.word())
	if !compareOps[op] {
		if op == "" {
			return nil, p.fail("%q needs an operator", truncate(path.String()))
		}
		return nil, p.fail("unknown comparison operator %q", truncate(op))
	}
	p.i += len(op)
	e := &scimfilter.AttributeExpression{AttributePath: path, Operator: scimfilter.CompareOperator(op)}
	if op == "pr" {
		return e, nil
	}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	e.CompareValue = v
	return e, nil
}

// value parses a compare value: a JSON string, true, false, null, or (leniency) a bare
// word taken as a string.
func (p *parser) value() (any, error) {
	p.skipSpace()
	if p.peekByte() == '"' {
		j := p.i + 1
		for j < len(p.s) && p.s[j] != '"' {
			if p.s[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(p.s) {
			return nil, p.fail("a string is not closed")
		}
		raw := p.s[p.i : j+1]
		p.i = j + 1
		var s string
		if err := json.Unmarshal([]byte(raw), &s); err != nil {
			return nil, p.fail("a string is not valid JSON (control characters must be escaped)")
		}
		return s, nil
	}
	w := p.word()
	if w == "" {
		return nil, p.fail("a compare value is missing")
	}
	p.i += len(w)
	switch strings.ToLower(w) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "null":
		return nil, nil
	}
	return w, nil
}

// attrPath parses `[URI:]attrName[.subAttr]`.
func (p *parser) attrPath(s string) (scimfilter.AttributePath, error) {
	var path scimfilter.AttributePath
	rest := s
	if strings.HasPrefix(strings.ToLower(s), "urn:") {
		i := strings.LastIndexByte(s, ':')
		uri := s[:i]
		path.URIPrefix = &uri
		rest = s[i+1:]
	}
	name, sub, hasSub := strings.Cut(rest, ".")
	if !attrName(name) || (hasSub && !attrName(sub)) {
		return path, p.fail("%q is not an attribute path", truncate(s))
	}
	path.AttributeName = name
	if hasSub {
		path.SubAttribute = &sub
	}
	return path, nil
}

// attrName checks ATTRNAME = ALPHA *(nameChar) (RFC 7643 section 2.1), plus "$ref".
func attrName(s string) bool {
	if s == "$ref" {
		return true
	}
	if s == "" || len(s) > 256 {
		return false
	}
	for i, c := range s {
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !alpha && (i == 0 || !(c == '-' || c == '_' || c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}
