package faults_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

// badCase is one malformed or hostile request of the corpus. Requests are written
// byte-exact over TCP, so paths, header values and bodies reach the server as given.
type badCase struct {
	method string
	// path is appended to the tenant's base path; "{id}" is the existing user's id. A
	// path starting with "//" is taken from the host root instead.
	path string
	body string
	// auth replaces the Authorization header: nil sends "Bearer <token>", an empty list
	// none, several values several headers. "{token}" is the tenant's token.
	auth []string
	// headers are extra "Name: value" lines; a Content-Type here replaces the default.
	headers []string
	// chunked sends the body without Content-Length.
	chunked bool
	// want is the exact status.
	want int
	// transport marks answers given by net/http before the SCIM handler runs (malformed
	// HTTP): their body is net/http's plain text, not a SCIM error.
	transport bool
	// scimType, when set, is the scimType the error must carry.
	scimType string
}

const (
	schemaUser  = "urn:ietf:params:scim:schemas:core:2.0:User"
	schemaPatch = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

func patchJSON(ops string) string {
	return `{"schemas":["` + schemaPatch + `"],"Operations":[` + ops + `]}`
}

// noopPatch sets title to the value it already has: valid, and writes nothing.
var noopPatch = patchJSON(`{"op":"replace","path":"title","value":"Corpus"}`)

var corpusUserSeq atomic.Int64

// userJSON is a POST body with a userName no other case uses, so that one case that is
// wrongly accepted cannot make another fail for the wrong reason (409).
func userJSON(extra string) string {
	return fmt.Sprintf(`{"schemas":["%s"],"userName":"corpus-new-%d@example.com"%s}`, schemaUser, corpusUserSeq.Add(1), extra)
}

// badInputCorpus is every case, by name. 2xx answers are for inputs that are in fact
// valid; each of those writes nothing (they read, or change nothing).
func badInputCorpus() map[string]badCase {
	nested := func(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }
	orClauses := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteString(" or ")
			}
			fmt.Fprintf(&b, `id eq "%d"`, i)
		}
		return b.String()
	}
	q := url.QueryEscape
	c := map[string]badCase{
		// Broken and truncated JSON.
		"json/truncated":              {method: "POST", path: "/Users", body: `{"userName": "x",`, want: 400},
		"json/open-brace":             {method: "POST", path: "/Users", body: `{`, want: 400},
		"json/empty-body":             {method: "POST", path: "/Users", body: ``, want: 400},
		"json/whitespace-body":        {method: "POST", path: "/Users", body: " \r\n\t ", want: 400},
		"json/null":                   {method: "POST", path: "/Users", body: `null`, want: 400},
		"json/array":                  {method: "POST", path: "/Users", body: `[{"userName":"a@example.com"}]`, want: 400},
		"json/string":                 {method: "POST", path: "/Users", body: `"userName"`, want: 400},
		"json/number":                 {method: "POST", path: "/Users", body: `12`, want: 400},
		"json/trailing-garbage":       {method: "POST", path: "/Users", body: userJSON(``) + `x`, want: 400},
		"json/two-objects":            {method: "POST", path: "/Users", body: userJSON(``) + userJSON(``), want: 400},
		"json/single-quotes":          {method: "POST", path: "/Users", body: `{'userName':'a@example.com'}`, want: 400},
		"json/trailing-comma":         {method: "POST", path: "/Users", body: `{"userName":"a@example.com",}`, want: 400},
		"json/bom":                    {method: "POST", path: "/Users", body: "\xef\xbb\xbf" + userJSON(``), want: 400},
		"json/raw-nul-in-string":      {method: "POST", path: "/Users", body: "{\"userName\":\"a\x00b@example.com\"}", want: 400},
		"json/raw-newline-in-string":  {method: "POST", path: "/Users", body: "{\"userName\":\"a\nb@example.com\"}", want: 400},
		"json/bad-escape":             {method: "POST", path: "/Users", body: `{"userName":"a\qb@example.com"}`, want: 400},
		"json/lone-surrogate-escape":  {method: "POST", path: "/Users", body: `{"userName":"\ud800@example.com","title":"\udfff"}`, want: 400, scimType: "invalidSyntax"},
		"json/deep-nesting-100k":      {method: "POST", path: "/Users", body: `{"userName":"deep@example.com","x":` + nested(100000) + `}`, want: 400},
		"json/deep-objects-20k":       {method: "POST", path: "/Users", body: `{"userName":"deep@example.com","x":` + strings.Repeat(`{"a":`, 20000) + `1` + strings.Repeat(`}`, 20000) + `}`, want: 400},
		"json/huge-number":            {method: "POST", path: "/Users", body: userJSON(`,"active":1e999999999`), want: 400},
		"json/duplicate-keys":         {method: "POST", path: "/Users", body: `{"schemas":["` + schemaUser + `"],"userName":"a@example.com","userName":777001}`, want: 400, scimType: "invalidValue"},
		"json/truncated-patch":        {method: "PATCH", path: "/Users/{id}", body: noopPatch[:len(noopPatch)-3], want: 400},
		"json/deep-nesting-patch-val": {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"add","path":"title","value":` + nested(50000) + `}`), want: 400},

		// Wrong types, attribute by attribute.
		"type/userName-number":         {method: "POST", path: "/Users", body: `{"schemas":["` + schemaUser + `"],"userName":777002}`, want: 400, scimType: "invalidValue"},
		"type/userName-array":          {method: "POST", path: "/Users", body: `{"userName":["a@example.com"]}`, want: 400},
		"type/userName-object":         {method: "POST", path: "/Users", body: `{"userName":{"value":"a@example.com"}}`, want: 400},
		"type/userName-null":           {method: "POST", path: "/Users", body: `{"userName":null}`, want: 400},
		"type/userName-bool":           {method: "POST", path: "/Users", body: `{"schemas":["` + schemaUser + `"],"userName":true}`, want: 400, scimType: "invalidValue"},
		"type/userName-empty":          {method: "POST", path: "/Users", body: `{"userName":""}`, want: 400},
		"type/userName-blank":          {method: "POST", path: "/Users", body: `{"userName":"   "}`, want: 400},
		"type/active-maybe":            {method: "POST", path: "/Users", body: userJSON(`,"active":"maybe"`), want: 400},
		"type/active-number":           {method: "POST", path: "/Users", body: userJSON(`,"active":1`), want: 400},
		"type/active-object":           {method: "POST", path: "/Users", body: userJSON(`,"active":{}`), want: 400},
		"type/emails-object":           {method: "POST", path: "/Users", body: userJSON(`,"emails":{"value":"a@example.com"}`), want: 400, scimType: "invalidValue"},
		"type/emails-string":           {method: "POST", path: "/Users", body: userJSON(`,"emails":"a@example.com"`), want: 400},
		"type/emails-numbers":          {method: "POST", path: "/Users", body: userJSON(`,"emails":[1,2]`), want: 400},
		"type/emails-value-number":     {method: "POST", path: "/Users", body: userJSON(`,"emails":[{"value":5}]`), want: 400, scimType: "invalidValue"},
		"type/emails-primary-string":   {method: "POST", path: "/Users", body: userJSON(`,"emails":[{"value":"a@example.com","primary":"yes"}]`), want: 400},
		"type/name-string":             {method: "POST", path: "/Users", body: userJSON(`,"name":"Ada Lovelace"`), want: 400},
		"type/name-array":              {method: "POST", path: "/Users", body: userJSON(`,"name":["Ada"]`), want: 400},
		"type/name-given-number":       {method: "POST", path: "/Users", body: userJSON(`,"name":{"givenName":7}`), want: 400, scimType: "invalidValue"},
		"type/displayName-number":      {method: "POST", path: "/Users", body: userJSON(`,"displayName":7`), want: 400, scimType: "invalidValue"},
		"type/title-array":             {method: "POST", path: "/Users", body: userJSON(`,"title":["a"]`), want: 400},
		"type/externalId-object":       {method: "POST", path: "/Users", body: userJSON(`,"externalId":{}`), want: 400},
		"type/phoneNumbers-string":     {method: "POST", path: "/Users", body: userJSON(`,"phoneNumbers":"555"`), want: 400},
		"type/userType-number":         {method: "POST", path: "/Users", body: userJSON(`,"userType":3`), want: 400},
		"type/userType-unknown":        {method: "POST", path: "/Users", body: userJSON(`,"userType":"Overlord"`), want: 400},
		"type/stackUserType-array":     {method: "POST", path: "/Users", body: userJSON(`,"urn:ietf:params:scim:schemas:extension:stackoverflow:2.0:User":{"stackUserType":["Admin"]}`), want: 400},
		"type/enterprise-string":       {method: "POST", path: "/Users", body: userJSON(`,"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":"Sales"`), want: 400, scimType: "invalidValue"},
		"type/department-number":       {method: "POST", path: "/Users", body: userJSON(`,"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":5}`), want: 400, scimType: "invalidValue"},
		"type/locale-object":           {method: "POST", path: "/Users", body: userJSON(`,"locale":{"lang":"en"}`), want: 400},
		"type/put-userName-number":     {method: "PUT", path: "/Users/{id}", body: `{"schemas":["` + schemaUser + `"],"userName":777003}`, want: 400, scimType: "invalidValue"},
		"type/put-active-maybe":        {method: "PUT", path: "/Users/{id}", body: `{"userName":"corpus@example.com","active":"maybe"}`, want: 400},
		"type/patch-active-maybe":      {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"replace","path":"active","value":"maybe"}`), want: 400},
		"type/patch-userName-number":   {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"replace","path":"userName","value":777004}`), want: 400, scimType: "invalidValue"},
		"type/patch-emails-object":     {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"replace","path":"emails","value":{"value":"a@example.com"}}`), want: 400, scimType: "invalidValue"},
		"type/patch-name-string":       {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"replace","path":"name","value":"Ada"}`), want: 400},
		"type/patch-pathless-not-map":  {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"replace","value":"x"}`), want: 400},
		"type/patch-pathless-bad-type": {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"replace","value":{"active":"maybe"}}`), want: 400},

		// Sizes.
		"size/body-over-1MiB":            {method: "POST", path: "/Users", body: userJSON(`,"title":"` + strings.Repeat("x", 1<<20) + `"`), want: 413},
		"size/body-over-1MiB-chunked":    {method: "POST", path: "/Users", body: userJSON(`,"title":"` + strings.Repeat("x", 1<<20) + `"`), chunked: true, want: 413},
		"size/patch-over-1MiB":           {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"replace","path":"title","value":"` + strings.Repeat("y", 1<<20) + `"}`), want: 413},
		"size/userName-300":              {method: "POST", path: "/Users", body: `{"userName":"` + strings.Repeat("a", 300) + `"}`, want: 400},
		"size/userName-500k":             {method: "POST", path: "/Users", body: `{"userName":"` + strings.Repeat("a", 500000) + `"}`, want: 400},
		"size/title-100k":                {method: "POST", path: "/Users", body: userJSON(`,"title":"` + strings.Repeat("t", 100000) + `"`), want: 400},
		"size/too-many-emails":           {method: "POST", path: "/Users", body: userJSON(`,"emails":[` + strings.TrimSuffix(strings.Repeat(`{"value":"e@example.com"},`, 5000), ",") + `]`), want: 400},
		"size/content-length-lies-short": {method: "POST", path: "/Users", body: userJSON(``), headers: []string{"Content-Length: 5"}, want: 400},

		// Encodings: invalid UTF-8 and NUL in bodies and URLs.
		"utf8/userName-invalid":       {method: "POST", path: "/Users", body: "{\"userName\":\"\xff\xfe@example.com\"}", want: 400, scimType: "invalidSyntax"},
		"utf8/title-invalid":          {method: "POST", path: "/Users", body: userJSON(",\"title\":\"\xc3\x28\""), want: 400, scimType: "invalidSyntax"},
		"utf8/escaped-nul-userName":   {method: "POST", path: "/Users", body: `{"schemas":["` + schemaUser + `"],"userName":"nul\u0000@example.com"}`, want: 400, scimType: "invalidValue"},
		"utf8/control-chars-userName": {method: "POST", path: "/Users", body: `{"schemas":["` + schemaUser + `"],"userName":"a\u0007\u001b[31m@example.com"}`, want: 400, scimType: "invalidValue"},
		"utf8/url-id-invalid":         {method: "GET", path: "/Users/%FF%FE", want: 404},
		"utf8/url-id-nul":             {method: "GET", path: "/Users/%00", want: 404},
		"utf8/url-raw-invalid-bytes":  {method: "GET", path: "/Users/\xff\xfe", want: 404},
		"utf8/filter-invalid":         {method: "GET", path: "/Users?filter=" + q("userName eq \"\xff\xfe\""), want: 200},
		"utf8/filter-nul":             {method: "GET", path: "/Users?filter=" + q("userName eq \"a\x00b\""), want: 400},
		"utf8/bad-percent-encoding":   {method: "GET", path: "/Users?filter=%ZZ", want: 200},

		// Hostile filters.
		"filter/deep-parens-20k":       {method: "GET", path: "/Users?filter=" + strings.Repeat("(", 20000) + q(`userName eq "a"`) + strings.Repeat(")", 20000), want: 400},
		"filter/unbalanced-parens":     {method: "GET", path: "/Users?filter=" + q(`((userName eq "a")`), want: 400},
		"filter/or-clauses-2500":       {method: "GET", path: "/Users?filter=" + q(orClauses(2500)), want: 400}, // over the 8 KiB filter cap
		"filter/or-clauses-500":        {method: "GET", path: "/Users?filter=" + q(orClauses(500)), want: 400},  // a flat or-chain counts as nesting (cap 64)
		"filter/or-clauses-60":         {method: "GET", path: "/Users?filter=" + q(orClauses(60)), want: 200},
		"filter/unterminated-string":   {method: "GET", path: "/Users?filter=" + q(`userName eq "abc`), want: 400},
		"filter/unknown-operator":      {method: "GET", path: "/Users?filter=" + q(`userName zz "a"`), want: 400},
		"filter/missing-value":         {method: "GET", path: "/Users?filter=" + q(`userName eq`), want: 400},
		"filter/dangling-and":          {method: "GET", path: "/Users?filter=" + q(`userName eq "a" and`), want: 400},
		"filter/not-without-parens":    {method: "GET", path: "/Users?filter=" + q(`not userName eq "a"`), want: 400},
		"filter/huge-number":           {method: "GET", path: "/Users?filter=" + q(`meta.lastModified gt 1e99999999999`), want: 200},
		"filter/long-digits":           {method: "GET", path: "/Users?filter=" + q(`title eq `+strings.Repeat("9", 5000)), want: 200},
		"filter/regex-like":            {method: "GET", path: "/Users?filter=" + q(`userName co ".*(a+)+$[^]\\d{1,99999}"`), want: 200},
		"filter/unclosed-bracket":      {method: "GET", path: "/Users?filter=" + q(`emails[type eq "work"`), want: 400},
		"filter/nested-brackets":       {method: "GET", path: "/Users?filter=" + q(`emails[type[value eq "a"] eq "b"]`), want: 400},
		"filter/empty-brackets":        {method: "GET", path: "/Users?filter=" + q(`emails[]`), want: 400},
		"filter/only-operators":        {method: "GET", path: "/Users?filter=" + q(`and or not`), want: 400},
		"filter/sql-injection":         {method: "GET", path: "/Users?filter=" + q(`userName eq "a" OR 1=1; DROP TABLE users; --`), want: 400},
		"filter/quote-injection":       {method: "GET", path: "/Users?filter=" + q(`userName eq "a\" or userName pr or \""`), want: 200},
		"filter/attr-path-deep":        {method: "GET", path: "/Users?filter=" + q(strings.Repeat("a.", 2000)+`b eq "x"`), want: 400},
		"filter/urn-only":              {method: "GET", path: "/Users?filter=" + q(`urn:ietf:params:scim:schemas:core:2.0:User: eq "x"`), want: 400},
		"filter/startIndex-not-number": {method: "GET", path: "/Users?startIndex=1e3", want: 400},
		"filter/count-overflow":        {method: "GET", path: "/Users?count=99999999999999999999999", want: 400},
		"filter/count-negative":        {method: "GET", path: "/Users?count=-5&startIndex=-9", want: 200},
		"filter/attributes-garbage":    {method: "GET", path: "/Users/{id}?attributes=" + q("[,..,\x00,urn:,emails[") + "&excludedAttributes=" + q(",,,:"), want: 200},

		// Hostile PATCH paths and operations.
		"patch/path-open-bracket":     {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"add","path":"emails[","value":"x"}`), want: 400},
		"patch/path-deep-dots":        {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"add","path":"a.b.c.d.e","value":"x"}`), want: 400},
		"patch/path-urn-colon":        {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"replace","path":"urn:ietf:params:scim:schemas:core:2.0:User:","value":"x"}`), want: 400},
		"patch/path-urn-bare":         {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"replace","path":"urn:","value":"x"}`), want: 400},
		"patch/path-filter-injection": {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"replace","path":"emails[value eq \"x\"] or 1 eq 1].value","value":"x"}`), want: 400},
		"patch/path-bad-filter":       {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"replace","path":"emails[type zz \"work\"].value","value":"x"}`), want: 400},
		"patch/path-empty-segment":    {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"replace","path":"name..givenName","value":"x"}`), want: 400},
		"patch/path-very-long":        {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"replace","path":"` + strings.Repeat("p", 100000) + `","value":"x"}`), want: 400},
		"patch/path-number":           {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"replace","path":5,"value":"x"}`), want: 400},
		"patch/path-id-readonly":      {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"replace","path":"id","value":"other"}`), want: 400, scimType: "mutability"},
		"schema/none":                 {method: "POST", path: "/Users", body: `{"userName":"no-schemas@example.com"}`, want: 400, scimType: "invalidSyntax"},
		"schema/no-core-user":         {method: "POST", path: "/Users", body: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"userName":"no-core@example.com"}`, want: 400, scimType: "invalidSyntax"},
		"schema/put-no-core-user":     {method: "PUT", path: "/Users/{id}", body: `{"schemas":["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"userName":"corpus@example.com"}`, want: 400, scimType: "invalidSyntax"},
		"patch/remove-no-path":        {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"remove"}`), want: 400},
		"patch/op-unknown":            {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"move","path":"title","value":"x"}`), want: 400},
		"patch/op-empty":              {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"","path":"title","value":"x"}`), want: 400},
		"patch/op-missing":            {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"path":"title","value":"x"}`), want: 400},
		"patch/op-number":             {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":1,"path":"title","value":"x"}`), want: 400},
		"patch/op-huge":               {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"` + strings.Repeat("replace", 20000) + `","path":"title","value":"x"}`), want: 400},
		"patch/op-not-object":         {method: "PATCH", path: "/Users/{id}", body: patchJSON(`"replace"`), want: 400},
		"patch/operations-object":     {method: "PATCH", path: "/Users/{id}", body: `{"schemas":["` + schemaPatch + `"],"Operations":{"op":"replace","path":"title","value":"x"}}`, want: 400},
		"patch/operations-string":     {method: "PATCH", path: "/Users/{id}", body: `{"schemas":["` + schemaPatch + `"],"Operations":"replace"}`, want: 400},
		"patch/operations-null":       {method: "PATCH", path: "/Users/{id}", body: `{"schemas":["` + schemaPatch + `"],"Operations":null}`, want: 400},
		"patch/operations-missing":    {method: "PATCH", path: "/Users/{id}", body: `{"schemas":["` + schemaPatch + `"]}`, want: 400},
		"patch/many-ops-one-bad":      {method: "PATCH", path: "/Users/{id}", body: patchJSON(strings.Repeat(`{"op":"replace","path":"title","value":"changed"},`, 500) + `{"op":"remove"}`), want: 400},
		"patch/add-too-many-phones":   {method: "PATCH", path: "/Users/{id}", body: patchJSON(`{"op":"add","path":"phoneNumbers","value":[` + strings.TrimSuffix(strings.Repeat(`{"value":"555"},`, 100), ",") + `]}`), want: 400},
		"patch/noop-valid":            {method: "PATCH", path: "/Users/{id}", body: noopPatch, want: 200},
		"patch/operations-empty":      {method: "PATCH", path: "/Users/{id}", body: patchJSON(``), want: 200},
		"patch/unknown-user":          {method: "PATCH", path: "/Users/no-such-user", body: noopPatch, want: 404},

		// Methods.
		"method/DELETE-collection":   {method: "DELETE", path: "/Users", want: 405},
		"method/PUT-collection":      {method: "PUT", path: "/Users", body: userJSON(``), want: 405},
		"method/PATCH-collection":    {method: "PATCH", path: "/Users", body: noopPatch, want: 405},
		"method/POST-user":           {method: "POST", path: "/Users/{id}", body: userJSON(``), want: 405},
		"method/OPTIONS-users":       {method: "OPTIONS", path: "/Users", want: 405},
		"method/TRACE-users":         {method: "TRACE", path: "/Users", want: 405},
		"method/unknown":             {method: "FROB", path: "/Users", want: 405},
		"method/lowercase-get":       {method: "get", path: "/Users", want: 405},
		"method/PATCH-discovery":     {method: "PATCH", path: "/ServiceProviderConfig", body: noopPatch, want: 405},
		"method/DELETE-schemas":      {method: "DELETE", path: "/Schemas", want: 405},
		"method/override-header":     {method: "GET", path: "/Users/{id}", headers: []string{"X-HTTP-Method-Override: DELETE"}, want: 200},
		"method/DELETE-If-Match-bad": {method: "DELETE", path: "/Users/{id}", headers: []string{`If-Match: W/"0"`}, want: 412},

		// Path traversal and odd paths.
		"path/dotdot-to-groups":      {method: "GET", path: "/Users/../Groups", want: 404},
		"path/dotdot-encoded":        {method: "GET", path: "/Users/%2e%2e", want: 404},
		"path/dotdot-encoded-groups": {method: "GET", path: "/Users/%2e%2e%2fGroups", want: 404},
		"path/encoded-slash-id":      {method: "GET", path: "/Users/abc%2fdef", want: 404},
		"path/delete-encoded-slash":  {method: "DELETE", path: "/Users/{id}%2f..", want: 404},
		"path/double-slash":          {method: "GET", path: "/Users//{id}", want: 404},
		"path/id-then-more":          {method: "GET", path: "/Users/{id}/extra", want: 404},
		"path/id-very-long":          {method: "GET", path: "/Users/" + strings.Repeat("a", 20000), want: 404},
		"path/id-uppercase":          {method: "GET", path: "/Users/U-NOT-THERE", want: 404},
		"path/root-traversal":        {method: "GET", path: "//../../../etc/passwd", want: 404},
		"path/other-tenant-dotdot":   {method: "GET", path: "/../../other/acme/Users", want: 404},
		"path/unknown-resource":      {method: "GET", path: "/Widgets", want: 404},
		"path/bulk":                  {method: "POST", path: "/Bulk", body: `{"Operations":[]}`, want: 501},
		"path/me":                    {method: "GET", path: "/Me", want: 501},

		// Authentication variants (GET /Users unless said).
		"auth/none":                  {method: "GET", path: "/Users", auth: []string{}, want: 401},
		"auth/empty-bearer":          {method: "GET", path: "/Users", auth: []string{"Bearer "}, want: 401},
		"auth/bearer-alone":          {method: "GET", path: "/Users", auth: []string{"Bearer"}, want: 401},
		"auth/empty-header":          {method: "GET", path: "/Users", auth: []string{""}, want: 401},
		"auth/basic-garbage":         {method: "GET", path: "/Users", auth: []string{"Basic dXNlcjpwYXNz"}, want: 401},
		"auth/basic-with-token":      {method: "GET", path: "/Users", auth: []string{"Basic {basic}"}, want: 401},
		"auth/token-wrong":           {method: "GET", path: "/Users", auth: []string{"Bearer wrong-token"}, want: 401},
		"auth/token-prefix":          {method: "GET", path: "/Users", auth: []string{"Bearer {token}x"}, want: 401},
		"auth/token-inner-space":     {method: "GET", path: "/Users", auth: []string{"Bearer {token} {token}"}, want: 401},
		"auth/token-very-long":       {method: "GET", path: "/Users", auth: []string{"Bearer " + strings.Repeat("t", 60000)}, want: 401},
		"auth/token-over-header-cap": {method: "GET", path: "/Users", auth: []string{"Bearer " + strings.Repeat("t", 80000)}, want: 431, transport: true},
		"auth/token-nul":             {method: "GET", path: "/Users", auth: []string{"Bearer {token}\x00"}, want: 400, transport: true},
		"auth/duplicate-wrong-first": {method: "GET", path: "/Users", auth: []string{"Bearer wrong-token", "Bearer {token}"}, want: 401},
		// Two Authorization headers are refused whatever their order: which one is meant
		// is a guess (a proxy and a client each adding one).
		"auth/duplicate-valid-first": {method: "GET", path: "/Users", auth: []string{"Bearer {token}", "Bearer wrong-token"}, want: 401},
		"auth/write-without-token":   {method: "PATCH", path: "/Users/{id}", auth: []string{}, body: patchJSON(`{"op":"replace","path":"title","value":"unauthorised"}`), want: 401},
		"auth/delete-wrong-token":    {method: "DELETE", path: "/Users/{id}", auth: []string{"Bearer wrong-token"}, want: 401},
		"auth/post-wrong-token":      {method: "POST", path: "/Users", auth: []string{"Bearer wrong-token"}, body: userJSON(``), want: 401},
		// Valid: extra whitespace around the token and a lower-case scheme are HTTP noise.
		"auth/token-padded":     {method: "GET", path: "/Users", auth: []string{"Bearer    {token}   "}, want: 200},
		"auth/scheme-lowercase": {method: "GET", path: "/Users", auth: []string{"bearer {token}"}, want: 200},
		"auth/bare-token":       {method: "GET", path: "/Users", auth: []string{"{token}"}, want: 200},

		// Content types: the server accepts any, and judges the body (Okta sends both
		// application/json and application/scim+json; RFC 7644 asks servers to accept both).
		"ctype/text-plain-valid":     {method: "PATCH", path: "/Users/{id}", body: noopPatch, headers: []string{"Content-Type: text/plain"}, want: 200},
		"ctype/none-valid":           {method: "PATCH", path: "/Users/{id}", body: noopPatch, headers: []string{"Content-Type:"}, want: 200},
		"ctype/text-plain-broken":    {method: "PATCH", path: "/Users/{id}", body: `title=x`, headers: []string{"Content-Type: text/plain"}, want: 400},
		"ctype/xml":                  {method: "POST", path: "/Users", body: `<User><userName>a</userName></User>`, headers: []string{"Content-Type: application/xml"}, want: 400},
		"ctype/form":                 {method: "POST", path: "/Users", body: `userName=a%40example.com`, headers: []string{"Content-Type: application/x-www-form-urlencoded"}, want: 400},
		"ctype/gzip-body-undeclared": {method: "POST", path: "/Users", body: "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", headers: []string{"Content-Encoding: gzip"}, want: 400},

		// If-Match garbage on a PATCH that would otherwise change nothing.
		"ifmatch/garbage":        {method: "PATCH", path: "/Users/{id}", body: noopPatch, headers: []string{"If-Match: garbage"}, want: 412},
		"ifmatch/unterminated":   {method: "PATCH", path: "/Users/{id}", body: noopPatch, headers: []string{`If-Match: W/"`}, want: 412},
		"ifmatch/quote":          {method: "PATCH", path: "/Users/{id}", body: noopPatch, headers: []string{`If-Match: "`}, want: 412},
		"ifmatch/commas":         {method: "PATCH", path: "/Users/{id}", body: noopPatch, headers: []string{`If-Match: ,,,,`}, want: 412},
		"ifmatch/negative":       {method: "PATCH", path: "/Users/{id}", body: noopPatch, headers: []string{`If-Match: W/"-1"`}, want: 412},
		"ifmatch/huge-number":    {method: "PATCH", path: "/Users/{id}", body: noopPatch, headers: []string{`If-Match: W/"99999999999999999999999999"`}, want: 412},
		"ifmatch/very-long":      {method: "PATCH", path: "/Users/{id}", body: noopPatch, headers: []string{"If-Match: " + strings.Repeat(`W/"x", `, 5000)}, want: 412},
		"ifmatch/put-garbage":    {method: "PUT", path: "/Users/{id}", body: `{"schemas":["` + schemaUser + `"],"userName":"corpus@example.com","title":"Corpus"}`, headers: []string{"If-Match: garbage"}, want: 412},
		"ifmatch/star-valid":     {method: "PATCH", path: "/Users/{id}", body: noopPatch, headers: []string{"If-Match: *"}, want: 200},
		"ifmatch/wrong-resource": {method: "PATCH", path: "/Users/{id}", body: noopPatch, headers: []string{`If-Match: W/"1"`, `If-None-Match: *`}, want: 200},

		// Malformed HTTP, answered by net/http itself.
		"http/bad-chunked": {method: "POST", path: "/Users", headers: []string{"Transfer-Encoding: chunked"}, want: 400, chunked: true},
	}
	return c
}

// sendRaw writes one request byte-exact and reads the answer.
func (tn *tenant) sendRaw(c badCase, id string) response {
	addr := strings.TrimPrefix(tn.w.scimURL, "http://")
	path := strings.ReplaceAll(c.path, "{id}", id)
	if rest, ok := strings.CutPrefix(path, "//"); ok {
		path = "/" + rest
	} else {
		path = tn.path + path
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: faults-corpus\r\nConnection: close\r\n", c.method, path, addr)
	auth := c.auth
	if auth == nil {
		auth = []string{"Bearer {token}"}
	}
	basic := base64.StdEncoding.EncodeToString([]byte(":" + tn.token))
	for _, a := range auth {
		a = strings.ReplaceAll(strings.ReplaceAll(a, "{token}", tn.token), "{basic}", basic)
		fmt.Fprintf(&b, "Authorization: %s\r\n", a)
	}
	hasCT, hasCL := false, false
	for _, h := range c.headers {
		name, _, _ := strings.Cut(h, ":")
		hasCT = hasCT || strings.EqualFold(name, "Content-Type")
		hasCL = hasCL || strings.EqualFold(name, "Content-Length") || strings.EqualFold(name, "Transfer-Encoding")
		if strings.TrimSpace(h) == "Content-Type:" {
			continue // "no Content-Type"
		}
		fmt.Fprintf(&b, "%s\r\n", h)
	}
	if !hasCT && c.body != "" {
		b.WriteString("Content-Type: application/scim+json; charset=utf-8\r\n")
	}
	switch {
	case c.chunked && !hasCL:
		b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		for rest := c.body; rest != ""; {
			n := min(len(rest), 64<<10)
			fmt.Fprintf(&b, "%x\r\n%s\r\n", n, rest[:n])
			rest = rest[n:]
		}
		b.WriteString("0\r\n\r\n")
	case c.chunked: // a broken chunked body
		b.WriteString("\r\nzz\r\nnot a chunk\r\n")
	case hasCL:
		b.WriteString("\r\n" + c.body)
	case c.body != "" || c.method == "POST" || c.method == "PUT" || c.method == "PATCH":
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(c.body), c.body)
	default:
		b.WriteString("\r\n")
	}

	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return response{err: err}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	// Write while reading: the server may answer (413) before it has read everything.
	go func() {
		_, _ = conn.Write(b.Bytes())
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite() // a body shorter than its Content-Length ends here
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: c.method})
	if err != nil {
		return response{err: err}
	}
	defer resp.Body.Close()
	return decodeResponse(resp.StatusCode, resp.Header, io.LimitReader(resp.Body, 1<<20))
}

// TestFaults_badInputCorpusAnswers4xxAndWritesNothing sends every request of the corpus
// and checks each answer: the exact status, a SCIM error body on 4xx (schemas, status as
// a string, a readable detail), never a 5xx (but for the 501 of /Bulk and /Me); the
// server answers normally after each, and no StackUser of the tenant was created or
// changed by the whole corpus. Wrong types, invalid UTF-8, control characters, a body
// without the core User schema and a change of id are refused with their scimType (they
// used to be coerced and stored).
func TestFaults_badInputCorpusAnswers4xxAndWritesNothing(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t, tenantOptions{
		sim: sitesim.Config{CreateUsers: true},
		settings: func(s *scimv1.ScimSettings) {
			s.Spec.AllowModeratorPromotion = true
		},
	})
	body := oktaUser("corpus@example.com")
	body["title"] = "Corpus"
	id := tn.create(g, body)

	// Wait until the reconciler is done with the user, so that any later write is the
	// corpus's doing.
	versions := func(g Gomega) map[string]string {
		out := map[string]string{}
		for _, u := range tn.stackUsers(g) {
			out[u.Name] = u.ResourceVersion
		}
		return out
	}
	g.Eventually(func(g Gomega) {
		g.Expect(synced(tn.stackUser(g, id))).To(BeEmpty())
	}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	before := versions(g)
	g.Consistently(func(g Gomega) map[string]string { return versions(g) }).
		WithTimeout(time.Second).WithPolling(100 * time.Millisecond).Should(Equal(before))

	corpus := badInputCorpus()
	check := func(t *testing.T, name string, c badCase, id string) {
		g := NewWithT(t)
		start := time.Now()
		r := tn.sendRaw(c, id)
		if os.Getenv("FAULTS_CORPUS_DUMP") != "" {
			d, _ := r.doc["detail"].(string)
			fmt.Printf("CASE %-40s want %d got %d %.160q\n", name, c.want, r.status, d)
		}
		g.Expect(r.err).NotTo(HaveOccurred())
		g.Expect(time.Since(start)).To(BeNumerically("<", 10*time.Second), "answered in time")
		if c.want != http.StatusNotImplemented {
			g.Expect(r.status).To(BeNumerically("<", 500), "%s", r)
		}
		g.Expect(r.status).To(Equal(c.want), "%s", r)
		if r.status >= 400 && !c.transport {
			g.Expect(scimErrorProblem(r)).To(BeEmpty(), "%s", r)
		}
		if c.scimType != "" {
			g.Expect(r.doc).To(HaveKeyWithValue("scimType", c.scimType), "%s", r)
		}
		// Still answering.
		g.Expect(tn.send(request{method: "GET", path: "/ServiceProviderConfig"}).status).To(Equal(http.StatusOK))
	}
	for name, c := range corpus {
		t.Run(name, func(t *testing.T) { check(t, name, c, id) })
	}
	g.Expect(versions(g)).To(Equal(before), "the corpus created or changed StackUsers")
	r := tn.send(request{method: "GET", path: "/Users/" + id})
	g.Expect(r.status).To(Equal(http.StatusOK), "%s", r)
	g.Expect(r.doc["title"]).To(Equal("Corpus"))

}
