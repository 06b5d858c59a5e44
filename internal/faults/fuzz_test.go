package faults_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/groups"
	"github.com/stackscim/stack-scim-operator/internal/index"
	"github.com/stackscim/stack-scim-operator/internal/scheme"
	"github.com/stackscim/stack-scim-operator/internal/scim/server"
)

// The fuzz target runs the SCIM server's handler on controller-runtime's fake client
// (with the server's field indexes and status subresources) instead of a control plane:
// it starts in milliseconds, in every fuzz worker, with no child processes. What the fake
// does not check (CRD validation) only makes more requests reach the handlers' success
// paths. The tenant lives as long as the process; writes that succeed are undone after
// each input, so nothing accumulates.
const (
	fuzzTenantName = "fuzz"
	fuzzNamespace  = "fuzz"
	fuzzSeedUser   = "fuzz-seed@example.com"
	fuzzToken      = "idp-fuzz-0123456789abcdef"
)

// fuzzSeedID is the seed user's id: the server names users by tenant and userName.
var fuzzSeedID = server.NameFor(fuzzTenantName, fuzzSeedUser)

type fuzzWorld struct {
	c       client.Client
	handler *server.Server
	path    string               // tenant base path
	seed    scimv1.StackUserSpec // the seed user's spec, restored after writes
}

var (
	fuzzOnce  sync.Once
	fuzzState *fuzzWorld
	fuzzErr   error
)

func startFuzzTenant(t *testing.T) *fuzzWorld {
	t.Helper()
	fuzzOnce.Do(func() { fuzzState, fuzzErr = newFuzzTenant() })
	if fuzzErr != nil {
		t.Fatalf("setting up the fuzz tenant: %v", fuzzErr)
	}
	return fuzzState
}

// indexRecorder passes index.Setup's indexes on to the fake client builder.
type indexRecorder struct{ b *fake.ClientBuilder }

func (r indexRecorder) IndexField(_ context.Context, obj client.Object, field string, fn client.IndexerFunc) error {
	r.b.WithIndex(obj, field, fn)
	return nil
}

func newFuzzTenant() (*fuzzWorld, error) {
	b := fake.NewClientBuilder().WithScheme(scheme.New()).
		WithStatusSubresource(&scimv1.StackUser{}, &scimv1.ScimSettings{})
	if err := index.Setup(context.Background(), indexRecorder{b}); err != nil {
		return nil, err
	}
	s := &scimv1.ScimSettings{
		ObjectMeta: metav1.ObjectMeta{Namespace: fuzzNamespace, Name: fuzzTenantName},
		Spec: scimv1.ScimSettingsSpec{
			BearerTokenSecretRef: scimv1.BearerTokenSecretReference{Name: idpSecret, Key: "token"},
			Site:                 scimv1.SiteSpec{URL: "https://site.example/api/scim/v2", TokenSecretRef: scimv1.SecretKeyReference{Name: siteSecret}},
		},
	}
	b.WithObjects(s, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: fuzzNamespace, Name: idpSecret},
		Data: map[string][]byte{"token": []byte(fuzzToken)}})
	c := b.Build()
	h := server.New(server.Options{Client: c, APIReader: c, Log: logr.Discard(), RateLimit: -1})
	go func() { _ = h.Start(context.Background()) }()
	fw := &fuzzWorld{c: c, handler: h, path: s.EffectiveBasePath()}
	deadline := time.Now().Add(10 * time.Second)
	for fw.serve("GET", "/ServiceProviderConfig", nil, "Bearer "+fuzzToken, "").Code != http.StatusOK {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the fuzz tenant is not served")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := fw.createSeed(); err != nil {
		return nil, err
	}
	return fw, nil
}

func (fw *fuzzWorld) createSeed() error {
	body := fmt.Sprintf(`{"schemas":["`+schemaUser+`"],"userName":%q,"displayName":"Fuzz Seed","title":"Seed","emails":[{"value":%q,"primary":true}],"phoneNumbers":[{"value":"555","type":"work"}]}`,
		fuzzSeedUser, fuzzSeedUser)
	if rec := fw.serve("POST", "/Users", []byte(body), "Bearer "+fuzzToken, "application/scim+json"); rec.Code != http.StatusCreated {
		return fmt.Errorf("creating the seed user: %d %s", rec.Code, rec.Body)
	}
	var u scimv1.StackUser
	if err := fw.c.Get(context.Background(), types.NamespacedName{Namespace: fuzzNamespace, Name: fuzzSeedID}, &u); err != nil {
		return err
	}
	fw.seed = u.Spec
	return nil
}

// serve sends one request through the in-process SCIM handler.
func (fw *fuzzWorld) serve(method, path string, body []byte, auth, contentType string) *httptest.ResponseRecorder {
	target := fw.path + path
	if rest, ok := strings.CutPrefix(path, "//"); ok {
		target = "/" + rest
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		u = &url.URL{Path: target}
	}
	req := &http.Request{
		Method:        method,
		URL:           u,
		RequestURI:    target,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{},
		Body:          http.NoBody,
		Host:          "scim.example.com",
		RemoteAddr:    "192.0.2.1:1234",
		ContentLength: int64(len(body)),
	}
	if len(body) > 0 {
		req.Body = httpNopCloser{bytes.NewReader(body)}
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("User-Agent", "faults-fuzz")
	rec := httptest.NewRecorder()
	fw.handler.ServeHTTP(rec, req.WithContext(context.Background()))
	return rec
}

type httpNopCloser struct{ *bytes.Reader }

func (httpNopCloser) Close() error { return nil }

// reset undoes what a successful write did: users other than the seed go, the seed gets
// its spec back (or is created again).
func (fw *fuzzWorld) reset(t *testing.T) {
	ctx := context.Background()
	var l scimv1.StackUserList
	if err := fw.c.List(ctx, &l, client.InNamespace(fuzzNamespace)); err != nil {
		t.Fatalf("listing fuzz users: %v", err)
	}
	seedOK := false
	for i := range l.Items {
		u := &l.Items[i]
		if u.Name == fuzzSeedID {
			seedOK = true
			if !server.SpecEqual(&u.Spec, &fw.seed) {
				u.Spec = *fw.seed.DeepCopy()
				if err := fw.c.Update(ctx, u); err != nil {
					t.Fatalf("restoring the seed user: %v", err)
				}
			}
			continue
		}
		if err := fw.c.Delete(ctx, u); err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("deleting %s: %v", u.Name, err)
		}
	}
	var gl scimv1.StackGroupList
	if err := fw.c.List(ctx, &gl, client.InNamespace(fuzzNamespace)); err != nil {
		t.Fatalf("listing fuzz groups: %v", err)
	}
	for i := range gl.Items {
		sg := &gl.Items[i]
		if sg.Spec.DisplayName == "Fuzz Group" && sg.DeletionTimestamp == nil {
			continue // the seed group the PATCH seeds need
		}
		sg.Finalizers = nil
		if err := fw.c.Update(ctx, sg); err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("releasing group %s: %v", sg.Name, err)
		}
		if err := fw.c.Delete(ctx, sg); err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("deleting group %s: %v", sg.Name, err)
		}
	}
	if !seedOK {
		if err := fw.createSeed(); err != nil {
			t.Fatalf("creating the seed user again: %v", err)
		}
	}
}

// validMethod reports whether m is an HTTP token, as net/http requires of a method.
func validMethod(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for _, c := range m {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, c) {
			return false
		}
	}
	return true
}

// headerValue drops what net/http would refuse in a header value before any handler ran.
func headerValue(v string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 || r == 0x7f {
			return -1
		}
		return r
	}, v)
}

// FuzzSCIMRequest sends arbitrary method, path, body and headers through the SCIM
// server's http.Handler (server.New, the code the listener serves; on a fake client). The server must never answer 5xx (501 for /Bulk and /Me aside), must answer
// every 4xx with a SCIM error body, and must answer within seconds. Writes that succeed
// are undone after each input. Seeds are the bad-input corpus plus valid requests.
func FuzzSCIMRequest(f *testing.F) {
	type seed struct {
		method, path string
		body         []byte
		auth, ctype  string
	}
	seeds := []seed{
		{"GET", "/Users?startIndex=1&count=2", nil, "Bearer {token}", ""},
		{"GET", `/Users?filter=userName%20eq%20%22fuzz-seed@example.com%22`, nil, "Bearer {token}", ""},
		{"GET", "/Users/{id}?attributes=userName,emails", nil, "{token}", ""},
		{"PATCH", "/Users/{id}", []byte(patchJSON(`{"op":"Replace","path":"active","value":"False"}`)), "Bearer {token}", "application/scim+json"},
		{"PATCH", "/Users/{id}", []byte(patchJSON(`{"op":"add","path":"emails[type eq \"work\"].value","value":"w@example.com"}`)), "Bearer {token}", "application/json"},
		{"PUT", "/Users/{id}", []byte(`{"schemas":["` + schemaUser + `"],"userName":"fuzz-seed@example.com","active":true,"title":"Put"}`), "Bearer {token}", "application/scim+json"},
		{"POST", "/Users", []byte(`{"schemas":["` + schemaUser + `"],"userName":"fuzz-new@example.com","name":{"givenName":"F","familyName":"N"},"userType":"Moderator"}`), "Bearer {token}", "application/scim+json"},
		{"DELETE", "/Users/{id}", nil, "Bearer {token}", ""},
		{"GET", "/Groups?excludedAttributes=members", nil, "Bearer {token}", ""},
		{"POST", "/Groups", []byte(`{"displayName":"Fuzz Group","members":[{"value":"` + fuzzSeedID + `"}]}`), "Bearer {token}", "application/scim+json"},
		{"PATCH", "/Groups/" + groups.NameFor(fuzzTenantName, "Fuzz Group"), []byte(patchJSON(`{"op":"Remove","path":"members","value":[{"value":"` + fuzzSeedID + `"}]}`)), "Bearer {token}", "application/scim+json"},
		{"PATCH", "/Groups/" + groups.NameFor(fuzzTenantName, "Fuzz Group"), []byte(patchJSON(`{"op":"remove","path":"members[value eq \"` + fuzzSeedID + `\"]"}`)), "Bearer {token}", "application/scim+json"},
		{"GET", "/Schemas", nil, "Bearer {token}", ""},
	}
	corpus := badInputCorpus()
	names := make([]string, 0, len(corpus))
	for name := range corpus {
		names = append(names, name)
	}
	sort.Strings(names)
	// A few cases of each category: enough to reach every handler, few enough that the
	// baseline run of a 10 s fuzzing session leaves time to mutate.
	perCategory := map[string]int{}
	for _, name := range names {
		c := corpus[name]
		if len(c.body) > 8<<10 || len(c.path) > 8<<10 || c.transport || c.chunked {
			continue
		}
		category, _, _ := strings.Cut(name, "/")
		if perCategory[category]++; perCategory[category] > 3 {
			continue
		}
		auth := "Bearer {token}"
		if c.auth != nil {
			auth = strings.Join(c.auth, "")
		}
		ctype := "application/scim+json"
		for _, h := range c.headers {
			if v, ok := strings.CutPrefix(h, "Content-Type:"); ok {
				ctype = strings.TrimSpace(v)
			}
		}
		seeds = append(seeds, seed{c.method, c.path, []byte(c.body), auth, ctype})
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.body, s.auth, s.ctype)
	}

	f.Fuzz(func(t *testing.T, method, path string, body []byte, auth, ctype string) {
		fw := startFuzzTenant(t)
		if !validMethod(method) {
			method = "GET"
		}
		path = strings.ReplaceAll(path, "{id}", fuzzSeedID)
		auth = headerValue(strings.ReplaceAll(auth, "{token}", fuzzToken))
		ctype = headerValue(ctype)
		start := time.Now()
		rec := fw.serve(method, path, body, auth, ctype)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s %q took %s", method, path, d)
		}
		r := decodeResponse(rec.Code, rec.Header(), rec.Body)
		if rec.Code >= 500 && rec.Code != http.StatusNotImplemented {
			t.Fatalf("%s %q answered %s", method, path, r)
		}
		if rec.Code >= 400 {
			if p := errorShapeProblem(r, false); p != "" {
				t.Fatalf("%s %q answered %s: %s", method, path, r, p)
			}
		}
		if rec.Code < 300 && method != "GET" {
			fw.reset(t)
		}
	})
}
