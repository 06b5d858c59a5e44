package patch

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/stackscim/stack-scim-operator/internal/scim/scimerr"
)

const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

func decodeJSON(t testing.TB, s string) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	return m
}

func baseDoc(t testing.TB) map[string]any {
	return decodeJSON(t, `{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "`+enterprise+`"],
		"id": "u-1", "userName": "alice", "active": true,
		"name": {"givenName": "Alice", "familyName": "Smith"},
		"emails": [{"value": "a@work", "type": "work", "primary": true}, {"value": "a@home", "type": "home", "primary": false}],
		"`+enterprise+`": {"department": "R&D"}
	}`)
}

func apply(t *testing.T, ops string) (map[string]any, error) {
	t.Helper()
	parsed, err := Decode(decodeJSON(t, `{"schemas":["`+SchemaPatchOp+`"],"Operations":`+ops+`}`))
	if err != nil {
		return nil, err
	}
	return Apply(baseDoc(t), parsed, Options{Schemas: []string{enterprise}})
}

func TestApply(t *testing.T) {
	cases := []struct {
		name, ops string
		check     func(g Gomega, d map[string]any)
	}{
		{"okta path-less deactivate", `[{"op":"replace","value":{"active":false}}]`, func(g Gomega, d map[string]any) {
			g.Expect(d["active"]).To(Equal(false))
		}},
		{"entra capitalised op and string boolean", `[{"op":"Replace","path":"active","value":"False"}]`, func(g Gomega, d map[string]any) {
			g.Expect(d["active"]).To(Equal("False"))
		}},
		{"dotted and URN keys in path-less replace", `[{"op":"Replace","value":{"name.givenName":"Al","` + enterprise + `:department":"Ops","displayName":"Al S"}}]`, func(g Gomega, d map[string]any) {
			g.Expect(d["name"]).To(Equal(map[string]any{"givenName": "Al", "familyName": "Smith"}))
			g.Expect(d[enterprise]).To(Equal(map[string]any{"department": "Ops"}))
			g.Expect(d["displayName"]).To(Equal("Al S"))
		}},
		{"complex replace merges", `[{"op":"replace","path":"name","value":{"givenName":"B"}}]`, func(g Gomega, d map[string]any) {
			g.Expect(d["name"]).To(Equal(map[string]any{"givenName": "B", "familyName": "Smith"}))
		}},
		{"filtered replace", `[{"op":"replace","path":"emails[type eq \"work\"].value","value":"new@work"}]`, func(g Gomega, d map[string]any) {
			g.Expect(d["emails"].([]any)[0].(map[string]any)["value"]).To(Equal("new@work"))
			g.Expect(d["emails"].([]any)).To(HaveLen(2))
		}},
		{"filtered add creates the element", `[{"op":"Add","path":"emails[type eq \"other\"].value","value":"o@x"}]`, func(g Gomega, d map[string]any) {
			g.Expect(d["emails"].([]any)).To(ContainElement(map[string]any{"type": "other", "value": "o@x"}))
		}},
		{"filtered add on missing attribute", `[{"op":"add","path":"phoneNumbers[type eq \"work\"].value","value":"123"}]`, func(g Gomega, d map[string]any) {
			g.Expect(d["phoneNumbers"]).To(Equal([]any{map[string]any{"type": "work", "value": "123"}}))
		}},
		{"extension path", `[{"op":"replace","path":"` + enterprise + `:department","value":"Sales"}]`, func(g Gomega, d map[string]any) {
			g.Expect(d[enterprise].(map[string]any)["department"]).To(Equal("Sales"))
		}},
		{"whole extension path", `[{"op":"add","path":"urn:example:ext:1.0:User","value":{"stackUserType":"Admin"}}]`, func(g Gomega, d map[string]any) {
			g.Expect(d["urn:example:ext:1.0:User"]).To(Equal(map[string]any{"stackUserType": "Admin"}))
		}},
		{"new extension attribute is created and listed", `[{"op":"add","path":"urn:example:ext:1.0:User:stackUserType","value":"Moderator"}]`, func(g Gomega, d map[string]any) {
			g.Expect(d["urn:example:ext:1.0:User"]).To(Equal(map[string]any{"stackUserType": "Moderator"}))
			g.Expect(d["schemas"]).To(ContainElement("urn:example:ext:1.0:User"))
		}},
		{"core URN prefix", `[{"op":"replace","path":"urn:ietf:params:scim:schemas:core:2.0:User:userName","value":"bob"}]`, func(g Gomega, d map[string]any) {
			g.Expect(d["userName"]).To(Equal("bob"))
		}},
		{"add appends to multi-valued", `[{"op":"add","path":"emails","value":[{"value":"n@x","type":"other","primary":true}]}]`, func(g Gomega, d map[string]any) {
			l := d["emails"].([]any)
			g.Expect(l).To(HaveLen(3))
			g.Expect(l[0].(map[string]any)["primary"]).To(Equal(false)) // one primary only
		}},
		{"replace multi-valued", `[{"op":"replace","path":"emails","value":[{"value":"only@x"}]}]`, func(g Gomega, d map[string]any) {
			g.Expect(d["emails"]).To(Equal([]any{map[string]any{"value": "only@x"}}))
		}},
		{"remove filtered", `[{"op":"remove","path":"emails[type eq \"home\"]"}]`, func(g Gomega, d map[string]any) {
			g.Expect(d["emails"].([]any)).To(HaveLen(1))
		}},
		{"remove sub-attribute", `[{"op":"remove","path":"name.familyName"}]`, func(g Gomega, d map[string]any) {
			g.Expect(d["name"]).To(Equal(map[string]any{"givenName": "Alice"}))
		}},
		{"remove by value (Entra members)", `[{"op":"Remove","path":"emails","value":[{"value":"a@home"}]}]`, func(g Gomega, d map[string]any) {
			g.Expect(d["emails"].([]any)).To(HaveLen(1))
		}},
		{"remove missing is a no-op", `[{"op":"remove","path":"title"}]`, func(g Gomega, d map[string]any) {
			g.Expect(d).To(HaveKey("userName"))
		}},
		{"several ops on one attribute", `[{"op":"Add","path":"title","value":"A"},{"op":"Replace","path":"title","value":"B"},{"op":"Remove","path":"title"},{"op":"Add","path":"title","value":"C"}]`, func(g Gomega, d map[string]any) {
			g.Expect(d["title"]).To(Equal("C"))
		}},
		{"empty operations", `[]`, func(g Gomega, d map[string]any) {
			g.Expect(d).To(Equal(baseDoc(t)))
		}},
		{"case-insensitive attribute names", `[{"op":"replace","path":"Name.GivenName","value":"X"},{"op":"replace","value":{"ACTIVE":false}}]`, func(g Gomega, d map[string]any) {
			g.Expect(d["name"].(map[string]any)["givenName"]).To(Equal("X"))
			g.Expect(d["active"]).To(Equal(false))
		}},
		{"null value unassigns", `[{"op":"replace","path":"name.givenName","value":null}]`, func(g Gomega, d map[string]any) {
			g.Expect(d["name"]).To(Equal(map[string]any{"familyName": "Smith"}))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			d, err := apply(t, c.ops)
			g.Expect(err).NotTo(HaveOccurred())
			c.check(g, d)
		})
	}
}

func TestApplyErrors(t *testing.T) {
	cases := map[string]string{
		`[{"op":"remove"}]`:                                  scimerr.NoTarget,
		`[{"op":"replace","value":"x"}]`:                     scimerr.InvalidValue,
		`[{"op":"frobnicate","path":"title","value":"x"}]`:   scimerr.InvalidSyntax,
		`[{"op":"add","path":"emails[type eq","value":"x"}]`: scimerr.InvalidPath,
		`[{"op":"add","path":"bad name","value":"x"}]`:       scimerr.InvalidPath,
		`[{"op":"add","path":"title"}]`:                      scimerr.InvalidValue,
		`[{"op":"replace","path":"emails[type ne \"work\" and type ne \"home\"].value","value":"x"}]`: scimerr.NoTarget,
		`[{"op":"add","path":"userName.x","value":"x"}]`:                                              scimerr.InvalidPath,
		`{"op":"add"}`: scimerr.InvalidSyntax,
	}
	for ops, want := range cases {
		_, err := apply(t, ops)
		se := scimerr.As(err)
		if se == nil || se.Status != http.StatusBadRequest || se.ScimType != want {
			t.Errorf("%s: got %v, want 400 %s", ops, err, want)
		}
	}
}

func TestApplyIsAtomic(t *testing.T) {
	g := NewWithT(t)
	doc := baseDoc(t)
	ops, err := Decode(decodeJSON(t, `{"Operations":[{"op":"replace","path":"active","value":false},{"op":"remove"}]}`))
	g.Expect(err).NotTo(HaveOccurred())
	_, err = Apply(doc, ops, Options{})
	g.Expect(err).To(HaveOccurred())
	g.Expect(doc).To(Equal(baseDoc(t)))
}

// FuzzApply throws arbitrary PATCH bodies at the engine: it must never panic, must
// answer bad input with a 4xx SCIM error, and must never modify its input.
func FuzzApply(f *testing.F) {
	for _, s := range []string{
		`{"Operations":[{"op":"replace","value":{"active":false}}]}`,
		`{"Operations":[{"op":"Replace","path":"active","value":"False"}]}`,
		`{"Operations":[{"op":"Add","path":"emails[type eq \"work\"].value","value":"x@y"}]}`,
		`{"Operations":[{"op":"Replace","value":{"name.givenName":"A","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"B"}}]}`,
		`{"Operations":[{"op":"Remove","path":"members","value":[{"value":"id"}]}]}`,
		`{"Operations":[{"op":"remove","path":"emails[type eq \"home\"].value"}]}`,
		`{"Operations":[{"op":"add","path":"urn:x:y:z","value":{"a":{"b":[1,2,{"c":null}]}}}]}`,
		`{"Operations":[]}`, `{"Operations":[{"op":"remove"}]}`, `{"Operations":[{"op":"add","path":"a[b eq \"]\"].c","value":1}]}`,
		`{"Operations":[{"op":"replace","path":"emails","value":[{"value":"a","primary":"True"},{"value":"b","primary":true}]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		d := json.NewDecoder(bytes.NewReader(body))
		d.UseNumber()
		var m map[string]any
		if d.Decode(&m) != nil || m == nil {
			return
		}
		ops, err := Decode(m)
		if err != nil {
			if se := scimerr.As(err); se == nil || se.Status != http.StatusBadRequest {
				t.Fatalf("Decode: %v", err)
			}
			return
		}
		doc := baseDoc(t)
		out, err := Apply(doc, ops, Options{Schemas: []string{enterprise}})
		if !equalJSON(doc, baseDoc(t)) {
			t.Fatalf("input modified")
		}
		if err != nil {
			if se := scimerr.As(err); se == nil || se.Status != http.StatusBadRequest {
				t.Fatalf("Apply: %v", err)
			}
			return
		}
		if _, err := json.Marshal(out); err != nil {
			t.Fatalf("result does not marshal: %v", err)
		}
	})
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// TestApply_primaryWithoutTarget: setting primary through a filter that matches no value
// has no target (RFC 7644 section 3.5.2.3): 400 noTarget, and the existing primary
// e-mail keeps its flag. It used to answer 200, create a value-less element that the
// mapping dropped, and clear the primary of the work e-mail.
func TestApply_primaryWithoutTarget(t *testing.T) {
	g := NewWithT(t)
	for _, ops := range []string{
		`[{"op":"add","path":"emails[type eq \"other\"].primary","value":true}]`,
		`[{"op":"replace","path":"emails[type eq \"other\"].primary","value":true}]`,
		`[{"op":"add","path":"emails[type eq \"other\"]","value":{"primary":true}}]`,
	} {
		_, err := apply(t, ops)
		se := scimerr.As(err)
		g.Expect(se).NotTo(BeNil(), ops)
		g.Expect(se.ScimType).To(Equal(scimerr.NoTarget), ops)
	}
	// A primary that really lands on a value moves the flag.
	d, err := apply(t, `[{"op":"replace","path":"emails[type eq \"home\"].primary","value":true}]`)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(d["emails"]).To(Equal([]any{
		map[string]any{"value": "a@work", "type": "work", "primary": false},
		map[string]any{"value": "a@home", "type": "home", "primary": true},
	}))
	// Entra's add through a filter still creates the element when it gives the value.
	d, err = apply(t, `[{"op":"Add","path":"emails[type eq \"other\"].value","value":"a@other"}]`)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(d["emails"]).To(HaveLen(3))
	// A value filter with several operators and parentheses selects inside a path.
	d, err = apply(t, `[{"op":"replace","path":"emails[(type eq \"work\" or type eq \"x\") and primary eq true].value","value":"b@work"}]`)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(d["emails"].([]any)[0]).To(HaveKeyWithValue("value", "b@work"))
}

// TestApply_idIsReadOnly: replacing or removing id is 400 mutability; repeating its own
// value (Okta's group PATCHes do) is fine.
func TestApply_idIsReadOnly(t *testing.T) {
	g := NewWithT(t)
	for _, ops := range []string{
		`[{"op":"replace","path":"id","value":"other"}]`,
		`[{"op":"replace","value":{"id":"other"}}]`,
		`[{"op":"remove","path":"id"}]`,
		`[{"op":"add","path":"id","value":"other"}]`,
	} {
		_, err := apply(t, ops)
		se := scimerr.As(err)
		g.Expect(se).NotTo(BeNil(), ops)
		g.Expect(se.Status).To(Equal(http.StatusBadRequest), ops)
		g.Expect(se.ScimType).To(Equal(scimerr.Mutability), ops)
	}
	_, err := apply(t, `[{"op":"replace","value":{"id":"u-1","displayName":"x"}}]`)
	g.Expect(err).NotTo(HaveOccurred())
}
