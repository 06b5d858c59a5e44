package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/index"
	"github.com/stackscim/stack-scim-operator/internal/listener"
	"github.com/stackscim/stack-scim-operator/internal/scim/server"
	"github.com/stackscim/stack-scim-operator/internal/scimtest"
	"github.com/stackscim/stack-scim-operator/internal/site"
	"github.com/stackscim/stack-scim-operator/internal/sitedir"
	"github.com/stackscim/stack-scim-operator/internal/testenv"
)

var (
	env *testenv.Env

	startOnce sync.Once
	serverURL string
	mgr       ctrl.Manager
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Run(m, func(e *testenv.Env) { env = e }))
}

// startServer runs one manager with the SCIM server on 127.0.0.1:0 for the whole package;
// each test gets its own namespace and tenant.
func startServer(t *testing.T) string {
	t.Helper()
	startOnce.Do(func() {
		if os.Getenv("SCIM_TEST_LOG") != "" {
			ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
		}
		var err error
		mgr, err = ctrl.NewManager(env.Config, ctrl.Options{
			Scheme:                 env.Scheme,
			Metrics:                metricsserver.Options{BindAddress: "0"},
			HealthProbeBindAddress: "0",
		})
		if err != nil {
			t.Fatalf("manager: %v", err)
		}
		if err := index.Setup(context.Background(), mgr.GetFieldIndexer()); err != nil {
			t.Fatalf("indexes: %v", err)
		}
		addr := make(chan net.Addr, 1)
		// Site accounts are listed for every tenant: most tenants here name a site that
		// does not exist (https://site.example), so every test also proves that an
		// unreachable site leaves the SCIM answers alone. Short timings let the import
		// tests see the site change within seconds.
		opts := server.Options{
			StatusInterval: time.Second,
			Sites:          &site.Clients{Defaults: site.Config{MaxRetries: -1, Timeout: 5 * time.Second}},
			SiteAccounts:   sitedir.Options{TTL: 300 * time.Millisecond, RetryAfter: 300 * time.Millisecond, Wait: 5 * time.Second},
		}
		if _, _, err := server.AddToManager(mgr, opts,
			listener.Options{Addr: "127.0.0.1:0"}, func(a net.Addr) { addr <- a }); err != nil {
			t.Fatalf("adding SCIM server: %v", err)
		}
		go func() {
			if err := mgr.Start(context.Background()); err != nil {
				panic(err)
			}
		}()
		select {
		case a := <-addr:
			serverURL = "http://" + a.String()
		case <-time.After(60 * time.Second):
			t.Fatalf("SCIM listener did not start")
		}
	})
	if serverURL == "" {
		t.Fatal("SCIM server not running")
	}
	return serverURL
}

// tenant is one ScimSettings with its token Secret, in a namespace of its own.
type tenant struct {
	t        *testing.T
	ns, name string
	token    string
	base     string // absolute base URL
	path     string // base path
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newTenant(t *testing.T, mutate ...func(*scimv1.ScimSettings)) *tenant {
	t.Helper()
	url := startServer(t)
	token := randomToken()
	// The shared fixture; the token Secret ends in a newline, as --from-file makes it.
	fx := env.Tenant(t, testenv.TenantOptions{BearerToken: token + "\n", Mutate: func(s *scimv1.ScimSettings) {
		for _, m := range mutate {
			m(s)
		}
	}})
	tn := &tenant{t: t, ns: fx.Namespace, name: fx.Settings.Name, token: token}
	tn.path = fx.Settings.EffectiveBasePath()
	tn.base = url + tn.path
	// The server sees the tenant (and its Secret) once its cache has them.
	NewWithT(t).Eventually(func() int {
		resp, _ := tn.do("GET", "/ServiceProviderConfig", nil)
		return resp.StatusCode
	}, 20*time.Second, 50*time.Millisecond).Should(Equal(http.StatusOK))
	return tn
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// do sends a request with the tenant's token (unless an Authorization header is given)
// and decodes the JSON answer.
func (tn *tenant) do(method, path string, body any, headers ...string) (*http.Response, map[string]any) {
	tn.t.Helper()
	req, err := scimtest.NewRequest(method, tn.base+path, tn.token, "Okta SCIM Client 1.0.0", body, headers...)
	if err != nil {
		tn.t.Fatalf("request: %v", err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		tn.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := scimtest.ReadBody(resp.Header, resp.Body)
	if err != nil {
		tn.t.Fatalf("reading body: %v", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return resp, nil
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		tn.t.Fatalf("%s %s answered %d with non-JSON %q", method, path, resp.StatusCode, data)
	}
	return resp, out
}

// expectError checks a SCIM error response.
func expectError(g Gomega, resp *http.Response, body map[string]any, status int, scimType string) {
	g.ExpectWithOffset(1, resp.StatusCode).To(Equal(status), "body: %v", body)
	g.ExpectWithOffset(1, resp.Header.Get("Content-Type")).To(HavePrefix("application/scim+json"))
	g.ExpectWithOffset(1, body).To(HaveKeyWithValue("schemas", []any{"urn:ietf:params:scim:api:messages:2.0:Error"}))
	g.ExpectWithOffset(1, body).To(HaveKeyWithValue("status", itoa(status)))
	g.ExpectWithOffset(1, body["detail"]).NotTo(BeEmpty())
	if scimType != "" {
		g.ExpectWithOffset(1, body).To(HaveKeyWithValue("scimType", scimType))
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func oktaUser(userName string) map[string]any {
	return map[string]any{
		"schemas":     []any{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName":    userName,
		"name":        map[string]any{"givenName": "Test", "familyName": "User"},
		"emails":      []any{map[string]any{"primary": true, "value": userName, "type": "work"}},
		"displayName": "Test User",
		"locale":      "en-US",
		"externalId":  "00u" + randomToken()[:8],
		"groups":      []any{},
		"password":    "S3cret!" + randomToken(),
		"active":      true,
	}
}

// create POSTs a user and returns its document.
func (tn *tenant) create(g Gomega, body map[string]any) map[string]any {
	resp, doc := tn.do("POST", "/Users", body)
	g.ExpectWithOffset(1, resp.StatusCode).To(Equal(http.StatusCreated), "body: %v", doc)
	return doc
}

func (tn *tenant) user(g Gomega, id string) *scimv1.StackUser {
	var u scimv1.StackUser
	g.ExpectWithOffset(1, env.Client.Get(context.Background(), keyOf(tn.ns, id), &u)).To(Succeed())
	return &u
}

func keyOf(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}
