package faults_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/controllers"
	"github.com/stackscim/stack-scim-operator/internal/manager"
	"github.com/stackscim/stack-scim-operator/internal/scimtest"
	"github.com/stackscim/stack-scim-operator/internal/site"
	"github.com/stackscim/stack-scim-operator/internal/sitesim"
	"github.com/stackscim/stack-scim-operator/internal/testenv"
)

// The control plane and the manager are shared by every test of the package: controller
// names are registered process-wide, so manager.New can run only once per process. Each
// test gets its own namespace, tenant and simulated site.
//
// They start on first use rather than in TestMain, so that `go test -run='^$' -fuzz=...`
// (hack/fuzz.sh), whose target needs no control plane, does not boot one; each process
// boots at most once, and TestMain stops what was started.
var (
	worldOnce sync.Once
	theWorld  *world
	worldErr  error
)

// world is the running system under test.
type world struct {
	env *testenv.Env
	// client is an uncached client whose requests time out, so that a control plane in
	// trouble fails a test instead of hanging it.
	client client.Client
	// scimURL is the real SCIM listener, http://127.0.0.1:port.
	scimURL string
	stop    func()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if theWorld != nil {
		stopped := make(chan struct{})
		go func() { theWorld.stop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(60 * time.Second):
			fmt.Fprintln(os.Stderr, "faults: the control plane did not stop within 60s")
		}
	}
	os.Exit(code)
}

// reconcilerOptions make the operator retry fast: the tests inject failures on purpose
// and want convergence in seconds, not minutes.
var reconcilerOptions = controllers.Options{
	MinBackoff:              50 * time.Millisecond,
	MaxBackoff:              time.Second,
	SignInWait:              2 * time.Second,
	ResyncJitter:            0.05,
	MaxConcurrentReconciles: 32,
	Site:                    site.Config{MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, MaxRetries: 3},
}

func startWorld(t testing.TB) *world {
	t.Helper()
	worldOnce.Do(func() { theWorld, worldErr = boot() })
	if worldErr != nil {
		t.Fatalf("starting the control plane and manager: %v", worldErr)
	}
	return theWorld
}

func boot() (*world, error) {
	if os.Getenv("FAULTS_TEST_LOG") != "" {
		ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	} else {
		ctrl.SetLogger(logr.Discard())
	}
	env, err := testenv.Start()
	if err != nil {
		return nil, err
	}
	addr := make(chan net.Addr, 1)
	mgr, err := manager.New(env.Config, manager.Options{
		SCIMAddr:      "127.0.0.1:0",
		SCIMListening: func(a net.Addr) { addr <- a },
		Metrics:       metricsserver.Options{BindAddress: "0"},
		ProbeAddr:     "0",
		// The token-rotation load would hit the per-tenant limit; the limiter has tests
		// of its own.
		SCIMRateLimit: -1,
		Reconcilers:   reconcilerOptions,
	})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	cc := rest.CopyConfig(env.Config)
	cc.Timeout = 30 * time.Second
	c, err := client.New(cc, client.Options{Scheme: env.Scheme})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	w := &world{env: env, client: c}
	w.stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				fmt.Fprintln(os.Stderr, "faults: the manager stopped with:", err)
			}
		case <-time.After(20 * time.Second):
		}
		_ = env.Stop()
	}
	select {
	case a := <-addr:
		w.scimURL = "http://" + a.String()
	case err := <-done:
		w.stop()
		return nil, fmt.Errorf("manager stopped: %w", err)
	case <-time.After(90 * time.Second):
		w.stop()
		return nil, fmt.Errorf("the SCIM listener did not start")
	}
	return w, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tenantOptions shape one test's tenant and site.
type tenantOptions struct {
	sim sitesim.Config
	// wrapSite wraps the simulator's handler (extra fault injection).
	wrapSite func(http.Handler) http.Handler
	// settings adjusts the ScimSettings before it is created.
	settings func(*scimv1.ScimSettings)
}

// tenant is one ScimSettings with its token Secrets and simulated site, in a namespace
// of its own.
type tenant struct {
	t     testing.TB
	w     *world
	ns    string
	name  string
	token string // IdP bearer token
	path  string // SCIM base path
	base  string // absolute SCIM base URL
	sim   *sitesim.Sim
}

const (
	idpSecret  = "idp-token"
	siteSecret = "site-token"
)

func newTenant(t testing.TB, o tenantOptions) *tenant {
	t.Helper()
	w := startWorld(t)
	g := NewWithT(t)
	ctx := context.Background()
	ns := w.env.Namespace(t)
	tn := &tenant{t: t, w: w, ns: ns, name: "acme", token: "idp-" + randomHex(16)}
	siteToken := "site-" + randomHex(16)
	cfg := o.sim
	cfg.Token = siteToken
	tn.sim = sitesim.New(cfg)
	var h http.Handler = tn.sim
	if o.wrapSite != nil {
		h = o.wrapSite(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	for name, tok := range map[string]string{idpSecret: tn.token, siteSecret: siteToken} {
		g.Expect(w.client.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Data:       map[string][]byte{"token": []byte(tok)},
		})).To(Succeed())
	}
	s := &scimv1.ScimSettings{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tn.name},
		Spec: scimv1.ScimSettingsSpec{
			BearerTokenSecretRef: scimv1.BearerTokenSecretReference{Name: idpSecret, Key: "token"},
			Site: scimv1.SiteSpec{
				URL:               srv.URL + sitesim.BasePath,
				TokenSecretRef:    scimv1.SecretKeyReference{Name: siteSecret, Key: "token"},
				Timeout:           &metav1.Duration{Duration: 5 * time.Second},
				RequestsPerSecond: 500,
				Burst:             500,
			},
			ResyncPeriod: &metav1.Duration{Duration: time.Hour},
		},
	}
	if o.settings != nil {
		o.settings(s)
	}
	g.Expect(w.client.Create(ctx, s)).To(Succeed())
	tn.path = s.EffectiveBasePath()
	tn.base = w.scimURL + tn.path
	// Runs before the site closes: the tenant goes first, so the finalizers release the
	// users without calling the site, and nothing keeps retrying after the test.
	t.Cleanup(func() {
		c := w.client
		_ = c.Delete(ctx, s)
		_ = c.DeleteAllOf(ctx, &scimv1.StackUser{}, client.InNamespace(ns))
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			var l scimv1.StackUserList
			if err := c.List(ctx, &l, client.InNamespace(ns)); err != nil || len(l.Items) == 0 {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	g.Eventually(func() int {
		r := tn.send(request{method: "GET", path: "/ServiceProviderConfig"})
		return r.status
	}).WithTimeout(30 * time.Second).WithPolling(50 * time.Millisecond).Should(Equal(http.StatusOK))
	return tn
}

// request is one SCIM request to a tenant.
type request struct {
	method string
	path   string // relative to the tenant base; starting with "//" means from the host root
	body   any    // nil, string, []byte, or a value marshalled to JSON
	token  string // "" uses the tenant's token
	// headers are name/value pairs; an empty value removes the header.
	headers []string
}

// response is an answer, decoded.
type response struct {
	status int
	header http.Header
	raw    []byte
	doc    map[string]any // nil when the body is empty or not a JSON object
	err    error          // transport error
}

func (r response) String() string {
	if r.err != nil {
		return "transport error: " + r.err.Error()
	}
	b := r.raw
	if len(b) > 600 {
		b = append(b[:600:600], "..."...)
	}
	return fmt.Sprintf("%d %s", r.status, b)
}

var httpClient = &http.Client{
	Timeout:   60 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
}

func (r request) build(base string, token string) (*http.Request, error) {
	target := base + r.path
	if rest, ok := strings.CutPrefix(r.path, "//"); ok {
		u := base[:strings.Index(base[len("http://"):], "/")+len("http://")]
		target = u + "/" + rest
	}
	if r.token != "" {
		token = r.token
	}
	return scimtest.NewRequest(r.method, target, token, "faults-test", r.body, r.headers...)
}

// send is safe to call from any goroutine: it reports failures in the response.
func (tn *tenant) send(r request) response {
	req, err := r.build(tn.base, tn.token)
	if err != nil {
		return response{err: err}
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return response{err: err}
	}
	defer resp.Body.Close()
	return decodeResponse(resp.StatusCode, resp.Header, resp.Body)
}

func decodeResponse(status int, h http.Header, body io.Reader) response {
	out := response{status: status, header: h}
	data, err := scimtest.ReadBody(h, body)
	if err != nil {
		out.err = err
		return out
	}
	out.raw = data
	if len(bytes.TrimSpace(data)) > 0 {
		var doc map[string]any
		if json.Unmarshal(data, &doc) == nil {
			out.doc = doc
		}
	}
	return out
}

// scimErrorProblem says what is wrong with r as a SCIM error answer ("" when nothing),
// including a detail that is not readable text.
func scimErrorProblem(r response) string { return errorShapeProblem(r, true) }

// errorShapeProblem is scimErrorProblem; readable false skips the check of the detail's
// characters (the fuzz target: details quote the request, see the package report).
func errorShapeProblem(r response, readable bool) string {
	if r.err != nil {
		return r.err.Error()
	}
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/scim+json") {
		return fmt.Sprintf("Content-Type %q is not application/scim+json", r.header.Get("Content-Type"))
	}
	if r.doc == nil {
		return "the body is not a JSON object"
	}
	schemas, _ := r.doc["schemas"].([]any)
	found := false
	for _, s := range schemas {
		found = found || s == "urn:ietf:params:scim:api:messages:2.0:Error"
	}
	if !found {
		return "schemas does not name urn:ietf:params:scim:api:messages:2.0:Error"
	}
	if st, ok := r.doc["status"].(string); !ok || st != fmt.Sprint(r.status) {
		return fmt.Sprintf("status %v is not the string %q", r.doc["status"], fmt.Sprint(r.status))
	}
	d, _ := r.doc["detail"].(string)
	if strings.TrimSpace(d) == "" {
		return "detail is empty"
	}
	if readable && !printable(d) {
		return fmt.Sprintf("detail %q is not readable text", d)
	}
	return ""
}

// printable reports whether s is valid UTF-8 without control characters, so an Okta
// admin can read it.
func printable(s string) bool {
	for _, c := range s {
		if c == 0xFFFD || (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// oktaUser is a POST body as Okta sends it.
func oktaUser(userName string) map[string]any {
	return map[string]any{
		"schemas":     []any{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName":    userName,
		"name":        map[string]any{"givenName": "Test", "familyName": "User"},
		"emails":      []any{map[string]any{"primary": true, "value": userName, "type": "work"}},
		"displayName": "Test User",
		"locale":      "en-US",
		"externalId":  "00u" + randomHex(6),
		"groups":      []any{},
		"password":    "S3cret!" + randomHex(8),
		"active":      true,
	}
}

func patchBody(ops ...map[string]any) map[string]any {
	l := make([]any, 0, len(ops))
	for _, o := range ops {
		l = append(l, o)
	}
	return map[string]any{"schemas": []any{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": l}
}

// create POSTs a user and returns its id.
func (tn *tenant) create(g Gomega, body map[string]any) string {
	r := tn.send(request{method: "POST", path: "/Users", body: body})
	g.ExpectWithOffset(1, r.status).To(Equal(http.StatusCreated), "%s", r)
	id, _ := r.doc["id"].(string)
	g.ExpectWithOffset(1, id).NotTo(BeEmpty())
	return id
}

func (tn *tenant) stackUser(g Gomega, id string) *scimv1.StackUser {
	u := &scimv1.StackUser{}
	g.ExpectWithOffset(1, tn.w.client.Get(context.Background(), types.NamespacedName{Namespace: tn.ns, Name: id}, u)).To(Succeed())
	return u
}

func (tn *tenant) stackUsers(g Gomega) []scimv1.StackUser {
	var l scimv1.StackUserList
	g.ExpectWithOffset(1, tn.w.client.List(context.Background(), &l, client.InNamespace(tn.ns))).To(Succeed())
	return l.Items
}

// synced reports why u is not Synced at its current generation ("" when it is).
func synced(u *scimv1.StackUser) string {
	c := meta.FindStatusCondition(u.Status.Conditions, scimv1.ConditionSynced)
	switch {
	case c == nil:
		return "no Synced condition"
	case c.Status != metav1.ConditionTrue:
		return "Synced " + string(c.Status) + "/" + c.Reason + ": " + c.Message
	case c.ObservedGeneration != u.Generation || u.Status.ObservedGeneration != u.Generation:
		return fmt.Sprintf("Synced for generation %d, now %d", c.ObservedGeneration, u.Generation)
	case u.Status.SiteID == "":
		return "no site id"
	}
	return ""
}
