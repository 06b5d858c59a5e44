package filter

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/stackscim/stack-scim-operator/internal/scim/scimerr"
)

// TestParse_identityProviderForms: what Okta and Entra send parses into the expression
// its RFC 7644 spelling does.
func TestParse_identityProviderForms(t *testing.T) {
	g := NewWithT(t)
	cases := map[string]string{
		`externalId eq abc-123`:                                   `externalId eq "abc-123"`,
		`externalId eq 12345678901234567890`:                      `externalId eq "12345678901234567890"`,
		`active eq True`:                                          `active eq true`,
		`userName Eq "A" AND active eq FALSE`:                     `userName eq "A" and active eq false`,
		`emails[type eq "work"].value eq "x@y"`:                   `emails[type eq "work" and value eq "x@y"]`,
		`emails[type eq work].value eq x@y.com`:                   `emails[type eq "work" and value eq "x@y.com"]`,
		`emails[type eq "work"].value pr`:                         `emails[type eq "work" and value pr]`,
		`emails[type eq "a" or type eq "b"].value eq "x"`:         `emails[(type eq "a" or type eq "b") and value eq "x"]`,
		`emails[type eq "work" and primary eq true].value eq "x"`: `emails[(type eq "work" and primary eq true) and value eq "x"]`,
		`userName eq "a\"b"`:                                      `userName eq "a\"b"`,
		`title eq <script>`:                                       `title eq "<script>"`,
	}
	for in, rfc := range cases {
		got, err := Parse(in)
		g.Expect(err).NotTo(HaveOccurred(), in)
		want, err := Parse(rfc)
		g.Expect(err).NotTo(HaveOccurred(), rfc)
		g.Expect(got).To(Equal(want), in)
	}
}

// TestParse_valueFiltersAsRFC7644Allows: several logical operators, parentheses and
// not() inside brackets (the third-party parser refused all of them with invalidFilter).
func TestParse_valueFiltersAsRFC7644Allows(t *testing.T) {
	g := NewWithT(t)
	d := doc(t)
	cases := map[string]bool{
		`emails[type eq "work" and primary eq true and value co "@"]`:              true,
		`emails[type eq "work" and primary eq false and value co "@"]`:             false,
		`emails[(type eq "work" or type eq "home") and value co "@"]`:              true,
		`emails[(type eq "other" or type eq "x") and value co "@"]`:                false,
		`emails[not (type eq "work") and value ew "home.example"]`:                 true,
		`emails[not(type eq "work" or type eq "home")]`:                            false,
		`emails[type eq "work" and primary eq true].value eq "alice@work.example"`: true,
		`emails[type eq "work" and primary eq true].value eq "alice@home.example"`: false,
		`userName sw "alice" and (emails[type eq "home"] or title pr)`:             true,
	}
	for f, want := range cases {
		e, err := Parse(f)
		g.Expect(err).NotTo(HaveOccurred(), f)
		g.Expect(Match(e, d)).To(Equal(want), f)
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"", "userName eq", "((", `userName zz "x"`, `emails[type eq "work"`, "userName eq \"x\" and", string(make([]byte, MaxLength+1)),
		`emails[type eq "work"]]`, `emails[x[y eq "1"]]`, `(userName eq "a"`, `emails[type eq "a"].value`, `not userName eq "a"`, `1abc eq "x"`, `userName eq "x" or`} {
		_, err := Parse(in)
		se := scimerr.As(err)
		if se == nil || se.Status != http.StatusBadRequest || se.ScimType != scimerr.InvalidFilter {
			t.Errorf("Parse(%q) = %v; want 400 invalidFilter", in, err)
		}
	}
}

func doc(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	err := json.Unmarshal([]byte(`{
		"id": "u-abc", "n": 10, "userName": "Alice@Example.com", "externalId": "00uA1", "active": true,
		"name": {"givenName": "Alice", "familyName": "Smith"},
		"emails": [{"value": "alice@work.example", "type": "work", "primary": true}, {"value": "alice@home.example", "type": "home"}],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"},
		"meta": {"created": "2024-01-02T03:04:05Z", "lastModified": "2024-02-02T03:04:05Z"}
	}`), &m)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMatch(t *testing.T) {
	g := NewWithT(t)
	d := doc(t)
	cases := map[string]bool{
		`userName eq "alice@example.com"`:                      true,
		`USERNAME eq "ALICE@EXAMPLE.COM"`:                      true,
		`userName eq "bob"`:                                    false,
		`externalId eq 00uA1`:                                  true,
		`externalId eq "00ua1"`:                                false, // case-exact
		`id eq "u-abc"`:                                        true,
		`emails[type eq "work"].value eq "alice@work.example"`: true,
		`emails[type eq "home"].value eq "alice@work.example"`: false,
		`emails[type eq "work" and primary eq true]`:           true,
		`emails.value co "home"`:                               true,
		`emails co "home.example"`:                             true,
		`name.givenName sw "al" and name.familyName ew "ith"`:  true,
		`not (active eq true)`:                                 false,
		`active eq "true"`:                                     true,
		`title pr`:                                             false,
		`userName pr`:                                          true,
		`department eq "r&d"`:                                  true,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "R&D"`: true,
		`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "alice@example.com"`:     true,
		`meta.lastModified gt "2024-01-31T00:00:00Z"`:                                    true,
		`meta.created lt "2024-01-01T00:00:00+01:00"`:                                    false,
		`userName ne "bob" or title eq "x"`:                                              true,
		`n gt 5`:                                                                         true,
		`n eq 10.0`:                                                                      true,
		`n lt 9`:                                                                         false,
		`title eq null`:                                                                  true,
		// ne on a multi-valued attribute: some value is not "alice@work.example".
		`emails.value ne "alice@work.example"`:  true,
		`emails[value ne "alice@work.example"]`: true,
		`emails.type ne "work"`:                 true,
		`title ne "x"`:                          true,
		// Date comparisons compare instants, whatever the offset.
		`meta.created eq "2024-01-02T04:04:05+01:00"`: true,
		`meta.created ge "2024-01-02T04:04:05+01:00"`: true,
		`meta.created gt "2024-01-02T04:04:05+01:00"`: false,
		`meta.created le "2024-01-02T03:04:05.000Z"`:  true,
		`meta.created ne "2024-01-02T04:04:05+01:00"`: false,
	}
	for f, want := range cases {
		e, err := Parse(f)
		g.Expect(err).NotTo(HaveOccurred(), f)
		g.Expect(Match(e, d)).To(Equal(want), f)
	}
}

func TestLookupAndEqualities(t *testing.T) {
	g := NewWithT(t)
	e, _ := Parse(`userName eq "A" and active eq true`)
	a, v, ok := Lookup(e)
	g.Expect([]any{a, v, ok}).To(Equal([]any{"userName", "A", true}))
	e, _ = Parse(`active eq true and externalId eq abc`)
	a, v, ok = Lookup(e)
	g.Expect([]any{a, v, ok}).To(Equal([]any{"externalId", "abc", true}))
	e, _ = Parse(`userName eq "a" or userName eq "b"`)
	_, _, ok = Lookup(e)
	g.Expect(ok).To(BeFalse())
	e, _ = Parse(`type eq "work" and primary eq true`)
	eq, ok := Equalities(e)
	g.Expect(ok).To(BeTrue())
	g.Expect(eq).To(Equal(map[string]any{"type": "work", "primary": true}))
	e, _ = Parse(`type ne "work"`)
	_, ok = Equalities(e)
	g.Expect(ok).To(BeFalse())
}

// TestSimpleEq_buildsWhatTheParserBuilds: the common `attr eq "value"` skips the parser
// and gets the same expression; anything else is left to the parser.
func TestSimpleEq_buildsWhatTheParserBuilds(t *testing.T) {
	g := NewWithT(t)
	for _, s := range []string{`userName eq "ada@example.com"`, `USERNAME EQ "Ada"`, `externalId eq "00u1abc"`, ` userName eq "x" `, `userName eq ""`, `displayName eq "Zoë Ünal"`} {
		fast := simpleEq(s)
		g.Expect(fast).NotTo(BeNil(), s)
		slow, err := parse(s)
		g.Expect(err).NotTo(HaveOccurred(), s)
		g.Expect(fast).To(Equal(slow), s)
	}
	for _, s := range []string{`userName eq "a\"b"`, `userName eq "a\u0041"`, `name.givenName eq "x"`, `userName sw "a"`,
		`externalId eq abc`, `userName eq "x" and active eq true`, `emails[type eq "work"].value eq "x"`, "userName eq \"a\tb\"",
		`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"`, "\u00a0userName eq \"x\"", "userName eq \"x\"\u2003"} {
		g.Expect(simpleEq(s)).To(BeNil(), s)
	}
}

// FuzzParse checks that no input makes the normaliser or parser panic, that every
// failure is a 400 invalidFilter, and that parsed filters evaluate without panicking.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`userName eq "x"`, `externalId eq abc`, `emails[type eq "work"].value eq "x"`, `emails[type eq work].value eq x`,
		`active eq True`, `not (userName sw "a") and title pr`, `emails[type eq "a" or type eq "b"].value pr`, `emails[(type eq "a" or not(primary eq true)) and value co "@"]`,
		`meta.lastModified gt "2011-05-13T04:42:34Z"`, `x eq 1.5e3`, `userName eq "a\"b"`, `]].x eq`, `[[`, `"`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x"`, `emails[value co "@"]`,
		`USERNAME EQ "A"`, `userName eq ""`, `userName  eq "x"`, `a1 eq "ü"`,
	} {
		f.Add(s)
	}
	var d map[string]any
	_ = json.Unmarshal([]byte(`{"userName":"a","emails":[{"value":"x","type":"work"}],"active":true,"name":{"givenName":"g"},"n":1}`), &d)
	f.Fuzz(func(t *testing.T, s string) {
		if fast := simpleEq(s); fast != nil {
			slow, err := parse(s)
			if err != nil || !reflect.DeepEqual(fast, slow) {
				t.Fatalf("simpleEq(%q) = %#v, the parser says %#v, %v", s, fast, slow, err)
			}
		}
		e, err := Parse(s)
		if err != nil {
			se := scimerr.As(err)
			if se == nil || se.Status != http.StatusBadRequest || se.ScimType != scimerr.InvalidFilter {
				t.Fatalf("Parse(%q): %v", s, err)
			}
			return
		}
		_ = Match(e, d)
		_, _, _ = Lookup(e)
		_, _ = Equalities(e)
	})
}
