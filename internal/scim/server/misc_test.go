package server_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/scim/server"
)

func TestDiscovery(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	resp, spc := tn.do("GET", "/ServiceProviderConfig", nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(spc["patch"]).To(HaveKeyWithValue("supported", true))
	g.Expect(spc["bulk"]).To(HaveKeyWithValue("supported", false))
	g.Expect(spc["filter"]).To(HaveKeyWithValue("maxResults", 1000.0))
	g.Expect(spc["etag"]).To(HaveKeyWithValue("supported", true))

	_, rts := tn.do("GET", "/ResourceTypes", nil)
	g.Expect(rts["totalResults"]).To(Equal(2.0))
	_, rt := tn.do("GET", "/ResourceTypes/User", nil)
	g.Expect(rt["schemaExtensions"]).To(ContainElement(HaveKeyWithValue("schema", "urn:ietf:params:scim:schemas:extension:stackoverflow:2.0:User")))
	g.Expect(rt["meta"]).To(HaveKeyWithValue("location", tn.base+"/ResourceTypes/User"))

	_, schemas := tn.do("GET", "/Schemas", nil)
	names := func(schema map[string]any) []any {
		var out []any
		for _, a := range schema["attributes"].([]any) {
			out = append(out, a.(map[string]any)["name"])
		}
		return out
	}
	byID := map[string]map[string]any{}
	for _, s := range schemas["Resources"].([]any) {
		m := s.(map[string]any)
		byID[m["id"].(string)] = m
	}
	g.Expect(names(byID["urn:ietf:params:scim:schemas:core:2.0:User"])).To(ContainElements("userName", "title", "userType", "emails", "active"))
	g.Expect(names(byID["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"])).To(ContainElement("department"))
	g.Expect(names(byID["urn:ietf:params:scim:schemas:extension:stackoverflow:2.0:User"])).To(ContainElement("stackUserType"))
	resp, one := tn.do("GET", "/Schemas/urn:ietf:params:scim:schemas:extension:stackoverflow:2.0:User", nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(one["name"]).To(Equal("StackUser"))
	resp, body := tn.do("GET", "/Schemas/urn:nope", nil)
	expectError(g, resp, body, http.StatusNotFound, "")
}

func TestLocationAndGzip(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	resp, doc := tn.do("POST", "/Users", oktaUser("loc@example.com"), "X-Forwarded-Proto", "https", "X-Forwarded-Host", "scim.example.com")
	g.Expect(resp.StatusCode).To(Equal(http.StatusCreated))
	want := "https://scim.example.com" + tn.path + "/Users/" + doc["id"].(string)
	g.Expect(resp.Header.Get("Location")).To(Equal(want))
	g.Expect(doc["meta"]).To(HaveKeyWithValue("location", want))

	// gzip when asked for and worth it (the transport must not negotiate it itself to see
	// the header): a page of users is, a single user is not.
	for i := range 3 {
		resp, _ := tn.do("POST", "/Users", oktaUser(fmt.Sprintf("gz%d@example.com", i)))
		g.Expect(resp.StatusCode).To(Equal(http.StatusCreated))
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	get := func(path string, gz bool) *http.Response {
		req, _ := http.NewRequest("GET", tn.base+path, nil)
		req.Header.Set("Authorization", "Bearer "+tn.token)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		r, err := (&http.Client{Transport: tr}).Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		return r
	}
	// Lists come from the cache, which may not show the last POST yet.
	g.Eventually(func(g Gomega) {
		r := get("/Users", true)
		defer r.Body.Close()
		g.Expect(r.Header.Get("Content-Encoding")).To(Equal("gzip"))
		zr, err := gzip.NewReader(r.Body)
		g.Expect(err).NotTo(HaveOccurred())
		page, _ := io.ReadAll(zr)
		g.Expect(string(page)).To(ContainSubstring("gz2@example.com"))
	}).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	one := get("/Users/"+doc["id"].(string), true)
	one.Body.Close()
	g.Expect(one.Header.Get("Content-Encoding")).To(BeEmpty(), "one user is not worth compressing")
	req, _ := http.NewRequest("GET", tn.base+"/Users", nil)
	req.Header.Set("Authorization", "Bearer "+tn.token)
	req.Header.Del("Accept-Encoding")
	r2, err := (&http.Client{Transport: tr}).Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	b, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	g.Expect(r2.Header.Get("Content-Encoding")).To(BeEmpty())
	g.Expect(string(b)).To(ContainSubstring("ListResponse"))
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	tn.do("GET", "/Users", nil)
	families, err := metrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	found := map[string]*dto.MetricFamily{}
	for _, f := range families {
		found[f.GetName()] = f
	}
	g.Expect(found).To(HaveKey("stackscim_scim_requests_total"))
	g.Expect(found).To(HaveKey("stackscim_scim_request_duration_seconds"))
	matched := false
	for _, m := range found["stackscim_scim_requests_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["tenant"] == tn.ns+"/acme" && labels["operation"] == "GET /Users" && labels["code"] == "200" {
			matched = true
		}
	}
	g.Expect(matched).To(BeTrue())
}

// ownServer runs a second Server with custom options on the shared manager's cache.
func ownServer(t *testing.T, opts server.Options, start bool) *httptest.Server {
	t.Helper()
	startServer(t)
	opts.Client = mgr.GetClient()
	opts.APIReader = mgr.GetAPIReader()
	opts.Cache = mgr.GetCache()
	opts.Log = mgr.GetLogger()
	s := server.New(opts)
	if start {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go func() { _ = s.Start(ctx) }()
		NewWithT(t).Eventually(s.Ready).Should(BeTrue())
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return hs
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	hs := ownServer(t, server.Options{RateLimit: 0.5, RateBurst: 3}, true)
	codes := []int{}
	var retryAfter string
	for i := 0; i < 5; i++ {
		req, _ := http.NewRequest("GET", hs.URL+tn.path+"/Users", nil)
		req.Header.Set("Authorization", "Bearer "+tn.token)
		resp, err := http.DefaultClient.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests {
			retryAfter = resp.Header.Get("Retry-After")
		}
	}
	g.Expect(codes).To(Equal([]int{200, 200, 200, 429, 429}))
	g.Expect(retryAfter).NotTo(BeEmpty())
}

// An unauthenticated flood at a tenant's base path must not spend the tenant's budget:
// the real IdP keeps getting 200 while the flooding client gets 401, then 429.
func TestRateLimit_unauthenticatedFloodDoesNotThrottleTheIdP(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	hs := ownServer(t, server.Options{RateLimit: 0.5, RateBurst: 10, AuthFailureRate: 0.5, AuthFailureBurst: 5}, true)
	send := func(token, from string) *http.Response {
		req, _ := http.NewRequest("GET", hs.URL+tn.path+"/Users", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-Forwarded-For", from)
		resp, err := http.DefaultClient.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	var flood []int
	for range 20 {
		flood = append(flood, send("wrong", "203.0.113.9").StatusCode)
	}
	g.Expect(flood[:5]).To(HaveEach(http.StatusUnauthorized))
	g.Expect(flood[5:]).To(HaveEach(http.StatusTooManyRequests))
	// The IdP, from another address, still has its whole budget.
	for range 3 {
		g.Expect(send(tn.token, "198.51.100.7").StatusCode).To(Equal(http.StatusOK))
	}
	// A valid token is never refused for the failures of its source.
	g.Expect(send(tn.token, "203.0.113.9").StatusCode).To(Equal(http.StatusOK))
}

func TestNotReadyUntilCachesSync(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	hs := ownServer(t, server.Options{}, false)
	resp, err := http.Get(hs.URL + "/scim/v2/x/y/Users")
	g.Expect(err).NotTo(HaveOccurred())
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusServiceUnavailable))
	g.Expect(resp.Header.Get("Retry-After")).NotTo(BeEmpty())
	g.Expect(string(b)).To(ContainSubstring(`"status":"503"`))
}

func TestBadInputNeverFails(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	id := tn.create(g, oktaUser("bad@example.com"))["id"].(string)
	bodies := []string{
		``, `null`, `"x"`, `{"userName":null}`, `{"userName":{"a":1}}`, `{"userName":"ok@x","emails":[1,2]}`,
		`{"userName":"ok2@x","emails":[{"value":{"x":1}}]}`, `{"userName":"ok3@x","name":[]}`,
		`{"userName":"ok4@x","urn:x:y":"z"}`, `{"userName":"ok5@x","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":7}}`,
		`{"Operations":[{"op":"add","path":"emails[type eq \"work\"]","value":7}]}`, `{"Operations":[{"op":"add","path":"name.givenName.x","value":1}]}`,
		`{"Operations":[{"op":"replace","path":"emails","value":"notalist"}]}`, `{"Operations":[{"op":"replace","path":"name","value":"str"}]}`,
		`{"Operations":[{"op":"add","value":{"urn:ietf:params:scim:schemas:core:2.0:User":{"x":1}}}]}`,
		strings.Repeat("[", 10000),
	}
	for _, b := range bodies {
		for _, m := range []string{"POST /Users", "PUT /Users/" + id, "PATCH /Users/" + id} {
			method, path, _ := strings.Cut(m, " ")
			resp, body := tn.do(method, path, b)
			g.Expect(resp.StatusCode).To(BeNumerically("<", 500), "%s %s: %v", m, b, body)
		}
	}
	for _, f := range []string{"userName eq \"\\", "emails[", "a eq 1 and", `title eq "x" or (`, strings.Repeat("(", 5000)} {
		req, _ := http.NewRequest("GET", tn.base+"/Users", nil)
		q := req.URL.Query()
		q.Set("filter", f)
		req.URL.RawQuery = q.Encode()
		req.Header.Set("Authorization", "Bearer "+tn.token)
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusBadRequest), f)
	}
}

// Two StackUsers with one userName made with kubectl: a SCIM filter returns only the
// older one, which owns the userName, never both.
func TestListUsers_duplicateUserNameListsTheOwnerOnly(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	ctx := context.Background()
	for _, name := range []string{"older", "younger"} {
		g.Expect(env.Client.Create(ctx, &scimv1.StackUser{
			ObjectMeta: metav1.ObjectMeta{Namespace: tn.ns, Name: name},
			Spec:       scimv1.StackUserSpec{SettingsRef: scimv1.SettingsReference{Name: tn.name}, UserName: "Twin@example.com"},
		})).To(Succeed())
	}
	for _, f := range []string{`userName eq "twin@example.com"`, `userName sw "twin"`} {
		g.Eventually(func(g Gomega) {
			req, _ := http.NewRequest("GET", tn.base+"/Users", nil)
			q := req.URL.Query()
			q.Set("filter", f)
			req.URL.RawQuery = q.Encode()
			req.Header.Set("Authorization", "Bearer "+tn.token)
			resp, err := httpClient.Do(req)
			g.Expect(err).NotTo(HaveOccurred())
			defer resp.Body.Close()
			var body struct {
				TotalResults int              `json:"totalResults"`
				Resources    []map[string]any `json:"Resources"`
			}
			g.Expect(json.NewDecoder(resp.Body).Decode(&body)).To(Succeed())
			g.Expect(body.TotalResults).To(Equal(1), f)
			g.Expect(body.Resources).To(ConsistOf(HaveKeyWithValue("id", "older")))
		}).WithTimeout(15 * time.Second).Should(Succeed())
	}
}
