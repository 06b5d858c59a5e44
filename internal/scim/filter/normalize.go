package filter

import (
	"bytes"
	"encoding/json"
	"strings"
)

// token is one lexical piece of a filter, with the whitespace that preceded it so the
// normalised text keeps the client's spacing.
type token struct {
	ws   string
	text string
	kind tokenKind
}

type tokenKind int

const (
	tokWord tokenKind = iota
	tokString
	tokPunct
)

var compareOps = map[string]bool{
	"eq": true, "ne": true, "co": true, "sw": true, "ew": true,
	"gt": true, "lt": true, "ge": true, "le": true, "pr": true,
}

func isCompareOp(t token) bool { return t.kind == tokWord && compareOps[strings.ToLower(t.text)] }

func tokenize(s string) []token {
	var out []token
	i := 0
	for i < len(s) {
		start := i
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
		ws := s[start:i]
		if i >= len(s) {
			if ws != "" {
				out = append(out, token{ws: ws, kind: tokPunct})
			}
			break
		}
		switch c := s[i]; {
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				j = len(s) - 1
			}
			out = append(out, token{ws: ws, text: s[i : j+1], kind: tokString})
			i = j + 1
		case c == '(' || c == ')' || c == '[' || c == ']':
			out = append(out, token{ws: ws, text: s[i : i+1], kind: tokPunct})
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r\"()[]", rune(s[j])) {
				j++
			}
			out = append(out, token{ws: ws, text: s[i:j], kind: tokWord})
			i = j
		}
	}
	return out
}

// quoteValue turns a compare value into a SCIM literal: quoted strings stay, true, false
// and null are lower-cased, and any other bare word (Entra's `externalId eq abc`) is
// quoted. Bare numbers are quoted too: the parser would turn 12345678901234567890 into a
// rounded float, and Match compares numeric strings with numbers numerically anyway.
func quoteValue(t token) token {
	if t.kind != tokWord {
		return t
	}
	switch l := strings.ToLower(t.text); l {
	case "true", "false", "null":
		t.text = l
		return t
	}
	t.text = quote(t.text)
	t.kind = tokString
	return t
}

func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// Normalize rewrites what identity providers send into the RFC 7644 filter grammar the
// parser accepts: bare compare values are quoted (Entra sends `externalId eq abc`),
// boolean literals are lower-cased, and Entra's non-RFC `emails[type eq "work"].value eq "x"`
// becomes the equivalent `emails[(type eq "work") and value eq "x"]`. Text that is already
// valid passes through unchanged.
func Normalize(s string) string {
	toks := tokenize(s)
	out := make([]token, 0, len(toks)+8)
	var open []int // indexes in out of unmatched '['
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.kind == tokPunct && t.text == "[":
			open = append(open, len(out))
			out = append(out, t)
		case t.kind == tokPunct && t.text == "]":
			// attr[filter].sub op value  →  attr[(filter) and sub op value]
			if len(open) > 0 && i+2 < len(toks) && toks[i+1].kind == tokWord && toks[i+1].ws == "" &&
				strings.HasPrefix(toks[i+1].text, ".") && len(toks[i+1].text) > 1 && isCompareOp(toks[i+2]) {
				lb := open[len(open)-1]
				open = open[:len(open)-1]
				cond := []token{
					{ws: " ", text: "and", kind: tokWord},
					{ws: " ", text: toks[i+1].text[1:], kind: tokWord},
					{ws: " ", text: strings.ToLower(toks[i+2].text), kind: tokWord},
				}
				i += 2
				if !strings.EqualFold(toks[i].text, "pr") && i+1 < len(toks) && toks[i+1].text != "" {
					v := quoteValue(toks[i+1])
					v.ws = " "
					cond = append(cond, v)
					i++
				}
				// The parser takes no parentheses inside brackets, so (A or B) and C is
				// distributed into A and C or B and C, which binds the same way.
				inner := append([]token(nil), out[lb+1:]...)
				out = out[:lb+1]
				for j, part := range splitOr(inner) {
					if j > 0 {
						out = append(out, token{ws: " ", text: "or", kind: tokWord})
					}
					out = append(out, part...)
					out = append(out, cond...)
				}
				out = append(out, token{text: "]", kind: tokPunct})
				continue
			}
			if len(open) > 0 {
				open = open[:len(open)-1]
			}
			out = append(out, t)
		case isCompareOp(t) && len(out) > 0 && out[len(out)-1].kind == tokWord:
			t.text = strings.ToLower(t.text)
			out = append(out, t)
			if t.text != "pr" && i+1 < len(toks) && toks[i+1].text != "" {
				out = append(out, quoteValue(toks[i+1]))
				i++
			}
		case t.kind == tokWord && (strings.EqualFold(t.text, "and") || strings.EqualFold(t.text, "or") || strings.EqualFold(t.text, "not")):
			t.text = strings.ToLower(t.text)
			out = append(out, t)
		default:
			out = append(out, t)
		}
	}
	var b strings.Builder
	for _, t := range out {
		b.WriteString(t.ws)
		b.WriteString(t.text)
	}
	return strings.TrimSpace(b.String())
}

// splitOr splits tokens at top-level `or` words.
func splitOr(toks []token) [][]token {
	var parts [][]token
	depth, start := 0, 0
	for i, t := range toks {
		switch {
		case t.kind == tokPunct && (t.text == "(" || t.text == "["):
			depth++
		case t.kind == tokPunct && (t.text == ")" || t.text == "]"):
			depth--
		case depth == 0 && t.kind == tokWord && strings.EqualFold(t.text, "or"):
			parts = append(parts, toks[start:i])
			start = i + 1
		}
	}
	return append(parts, toks[start:])
}
