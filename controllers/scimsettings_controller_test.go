package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/controllers"
	"github.com/stackscim/stack-scim-operator/internal/index"
)

const (
	idpToken  = "idp-secret-token-value"
	siteToken = "site-secret-token-value"
)

// settingsOptions tunes the reconciler a test runs.
type settingsOptions struct {
	externalURL     string
	maxProbeTimeout time.Duration
}

// startSettingsManager runs a manager with only the ScimSettingsReconciler, its cache
// scoped to the test's namespace so that parallel tests do not reconcile each other.
func startSettingsManager(t *testing.T, ns string, o settingsOptions) {
	t.Helper()
	mgr, err := ctrl.NewManager(testEnv.Config, ctrl.Options{
		Scheme:                 testEnv.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatalf("creating manager: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := index.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
		t.Fatalf("registering indexes: %v", err)
	}
	r := &controllers.ScimSettingsReconciler{
		Client:          mgr.GetClient(),
		ExternalURL:     o.externalURL,
		Recorder:        mgr.GetEventRecorder("scimsettings-test"),
		MaxProbeTimeout: o.maxProbeTimeout,
		CountDelay:      100 * time.Millisecond,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatalf("setting up reconciler: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager stopped with: %v", err)
		}
	})
}

// fakeSite is a minimal downstream site: GET /api/scim/v2/users with a bearer token.
type fakeSite struct {
	*httptest.Server
	mu       sync.Mutex
	mode     string // "ok", "error500", "html", "hang"
	requests []*http.Request
}

func newFakeSite(t *testing.T, mode string) *fakeSite {
	s := &fakeSite{mode: mode}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *fakeSite) url() string { return s.URL + "/api/scim/v2" }

func (s *fakeSite) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(context.Background()))
	mode := s.mode
	s.mu.Unlock()
	if r.URL.Path != "/api/scim/v2/users" {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+siteToken {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = fmt.Fprint(w, `{"ErrorMessage":"The SCIM token is invalid"}`)
		return
	}
	switch mode {
	case "error500":
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = fmt.Fprint(w, `{"ErrorMessage":"Something went wrong"}`)
	case "html":
		_, _ = fmt.Fprint(w, `<html><body>Log in</body></html>`)
	case "hang":
		<-r.Context().Done()
	default:
		w.Header().Set("Content-Type", "application/scim+json")
		_, _ = fmt.Fprint(w, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":3,"startIndex":1,"itemsPerPage":1,"Resources":[]}`)
	}
}

func (s *fakeSite) lastRequest() *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		return nil
	}
	return s.requests[len(s.requests)-1]
}

func createSecret(g Gomega, ns, name string, data map[string]string) {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data}
	g.Expect(testEnv.Client.Create(context.Background(), secret)).To(Succeed())
}

func newSettings(ns, name, siteURL string) *scimv1.ScimSettings {
	return &scimv1.ScimSettings{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: scimv1.ScimSettingsSpec{
			BearerTokenSecretRef: scimv1.BearerTokenSecretReference{Name: "scim-token"},
			Site: scimv1.SiteSpec{
				URL:            siteURL,
				TokenSecretRef: scimv1.SecretKeyReference{Name: "site-token"},
			},
		},
	}
}

// createTenant creates the two token Secrets and a ScimSettings pointing at siteURL.
func createTenant(g Gomega, ns, name, siteURL string) *scimv1.ScimSettings {
	createSecret(g, ns, "scim-token", map[string]string{"token": idpToken})
	createSecret(g, ns, "site-token", map[string]string{"token": siteToken})
	s := newSettings(ns, name, siteURL)
	g.Expect(testEnv.Client.Create(context.Background(), s)).To(Succeed())
	return s
}

func getSettings(g Gomega, ns, name string) *scimv1.ScimSettings {
	var s scimv1.ScimSettings
	g.Expect(testEnv.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &s)).To(Succeed())
	return &s
}

// condition returns the condition of type typ, or an empty one.
func condition(s *scimv1.ScimSettings, typ string) metav1.Condition {
	if c := meta.FindStatusCondition(s.Status.Conditions, typ); c != nil {
		return *c
	}
	return metav1.Condition{}
}

// eventuallyCondition waits until the condition has the given status and reason and the
// status reflects the current generation, and returns the ScimSettings then.
func eventuallyCondition(t *testing.T, ns, name, typ string, status metav1.ConditionStatus, reason string) *scimv1.ScimSettings {
	t.Helper()
	g := NewWithT(t)
	var s *scimv1.ScimSettings
	g.Eventually(func(g Gomega) {
		s = getSettings(g, ns, name)
		c := condition(s, typ)
		g.Expect(c.Status).To(Equal(status), "%s: %s", typ, c.Message)
		g.Expect(c.Reason).To(Equal(reason), "%s: %s", typ, c.Message)
		g.Expect(c.ObservedGeneration).To(Equal(s.Generation))
		g.Expect(s.Status.ObservedGeneration).To(Equal(s.Generation))
	}).WithTimeout(15 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	return s
}

func expectNoTokenIn(g Gomega, s *scimv1.ScimSettings) {
	raw, err := json.Marshal(s.Status)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(raw)).NotTo(ContainSubstring(idpToken))
	g.Expect(string(raw)).NotTo(ContainSubstring(siteToken))
}

func TestScimSettingsReconciler_credentialsProblemsAreReported(t *testing.T) {
	site := newFakeSite(t, "ok")
	tests := map[string]struct {
		secrets      map[string]map[string]string // Secret name -> data
		nextKey      string
		credReason   string
		wantInMsg    string
		siteReason   string
		readyReason  string
		credsAreTrue bool
	}{
		"bearer Secret missing": {
			secrets:    map[string]map[string]string{"site-token": {"token": siteToken}},
			credReason: "SecretNotFound", wantInMsg: `"scim-token"`,
			siteReason: "SiteAnswered", readyReason: "SecretNotFound",
		},
		"bearer key missing": {
			secrets: map[string]map[string]string{
				"scim-token": {"other": idpToken}, "site-token": {"token": siteToken},
			},
			credReason: "SecretKeyMissing", wantInMsg: `no key "token"`,
			siteReason: "SiteAnswered", readyReason: "SecretKeyMissing",
		},
		"bearer token empty": {
			secrets: map[string]map[string]string{
				"scim-token": {"token": " \n"}, "site-token": {"token": siteToken},
			},
			credReason: "TokenEmpty", wantInMsg: `"scim-token"`,
			siteReason: "SiteAnswered", readyReason: "TokenEmpty",
		},
		"site Secret missing": {
			secrets:    map[string]map[string]string{"scim-token": {"token": idpToken}},
			credReason: "SecretNotFound", wantInMsg: `site token: Secret "site-token" not found`,
			siteReason: "CredentialsInvalid", readyReason: "SecretNotFound",
		},
		"missing nextKey is noted, not fatal": {
			secrets: map[string]map[string]string{
				"scim-token": {"token": idpToken}, "site-token": {"token": siteToken},
			},
			nextKey:    "next",
			credReason: "TokensFound", wantInMsg: `no key "next"`, credsAreTrue: true,
			siteReason: "SiteAnswered", readyReason: "Available",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			ns := testEnv.Namespace(t)
			startSettingsManager(t, ns, settingsOptions{})
			for secret, data := range tc.secrets {
				createSecret(g, ns, secret, data)
			}
			s := newSettings(ns, "tenant", site.url())
			s.Spec.BearerTokenSecretRef.NextKey = tc.nextKey
			g.Expect(testEnv.Client.Create(context.Background(), s)).To(Succeed())

			credStatus := metav1.ConditionFalse
			readyStatus := metav1.ConditionFalse
			if tc.credsAreTrue {
				credStatus, readyStatus = metav1.ConditionTrue, metav1.ConditionTrue
			}
			got := eventuallyCondition(t, ns, "tenant", scimv1.ConditionCredentialsValid, credStatus, tc.credReason)
			g.Expect(condition(got, scimv1.ConditionCredentialsValid).Message).To(ContainSubstring(tc.wantInMsg))
			siteStatus := metav1.ConditionTrue
			if tc.siteReason == "CredentialsInvalid" {
				siteStatus = metav1.ConditionUnknown
			}
			eventuallyCondition(t, ns, "tenant", scimv1.ConditionSiteReachable, siteStatus, tc.siteReason)
			got = eventuallyCondition(t, ns, "tenant", scimv1.ConditionReady, readyStatus, tc.readyReason)
			expectNoTokenIn(g, got)
		})
	}
}

func TestScimSettingsReconciler_secretCreatedLaterMakesTenantReady(t *testing.T) {
	g := NewWithT(t)
	ns := testEnv.Namespace(t)
	site := newFakeSite(t, "ok")
	startSettingsManager(t, ns, settingsOptions{})
	createSecret(g, ns, "site-token", map[string]string{"token": siteToken})
	g.Expect(testEnv.Client.Create(context.Background(), newSettings(ns, "tenant", site.url()))).To(Succeed())
	eventuallyCondition(t, ns, "tenant", scimv1.ConditionCredentialsValid, metav1.ConditionFalse, "SecretNotFound")

	// The Secret watch (through the SettingsSecret index) must pick this up: nothing else
	// would requeue the tenant within the test's timeout.
	createSecret(g, ns, "scim-token", map[string]string{"token": idpToken})
	eventuallyCondition(t, ns, "tenant", scimv1.ConditionCredentialsValid, metav1.ConditionTrue, "TokensFound")
	eventuallyCondition(t, ns, "tenant", scimv1.ConditionReady, metav1.ConditionTrue, "Available")
}

func TestScimSettingsReconciler_siteProbeOutcomes(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL + "/api/scim/v2"
	closed.Close()
	tests := map[string]struct {
		mode      string // fake site behaviour; "" uses closedURL
		badToken  bool
		status    metav1.ConditionStatus
		reason    string
		wantInMsg string
	}{
		"site lists users":         {mode: "ok", status: metav1.ConditionTrue, reason: "SiteAnswered", wantInMsg: "3 users"},
		"site rejects token":       {mode: "ok", badToken: true, status: metav1.ConditionFalse, reason: "SiteUnauthorized", wantInMsg: "HTTP 401): The SCIM token is invalid"},
		"site fails":               {mode: "error500", status: metav1.ConditionFalse, reason: "SiteError", wantInMsg: "HTTP 500: Something went wrong"},
		"site answers with a page": {mode: "html", status: metav1.ConditionFalse, reason: "SiteError", wantInMsg: "not with a SCIM ListResponse"},
		"site hangs":               {mode: "hang", status: metav1.ConditionFalse, reason: "SiteUnreachable", wantInMsg: "no answer within 1s"},
		"nothing listens":          {status: metav1.ConditionFalse, reason: "SiteUnreachable", wantInMsg: "connection refused"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			ns := testEnv.Namespace(t)
			startSettingsManager(t, ns, settingsOptions{maxProbeTimeout: time.Second})
			url := closedURL
			var site *fakeSite
			if tc.mode != "" {
				site = newFakeSite(t, tc.mode)
				url = site.url()
			}
			token := siteToken
			if tc.badToken {
				token = "not-the-site-token"
			}
			createSecret(g, ns, "scim-token", map[string]string{"token": idpToken})
			createSecret(g, ns, "site-token", map[string]string{"token": token})
			g.Expect(testEnv.Client.Create(context.Background(), newSettings(ns, "tenant", url))).To(Succeed())

			got := eventuallyCondition(t, ns, "tenant", scimv1.ConditionSiteReachable, tc.status, tc.reason)
			g.Expect(condition(got, scimv1.ConditionSiteReachable).Message).To(ContainSubstring(tc.wantInMsg))
			g.Expect(condition(got, scimv1.ConditionSiteReachable).Message).NotTo(ContainSubstring(token))
			wantReady := "Available"
			if tc.status != metav1.ConditionTrue {
				wantReady = tc.reason
			}
			eventuallyCondition(t, ns, "tenant", scimv1.ConditionReady, tc.status, wantReady)
			if site != nil {
				req := site.lastRequest()
				g.Expect(req).NotTo(BeNil())
				g.Expect(req.Method).To(Equal(http.MethodGet))
				g.Expect(req.URL.Query()).To(Equal(neturl.Values{"startIndex": {"1"}, "count": {"1"}}))
				g.Expect(req.Header.Get("Authorization")).To(Equal("Bearer " + token))
			}
		})
	}
}

func TestScimSettingsReconciler_siteTokenRotationIsRetestedAtOnce(t *testing.T) {
	g := NewWithT(t)
	ns := testEnv.Namespace(t)
	site := newFakeSite(t, "ok")
	startSettingsManager(t, ns, settingsOptions{})
	createSecret(g, ns, "scim-token", map[string]string{"token": idpToken})
	createSecret(g, ns, "site-token", map[string]string{"token": "old-token"})
	g.Expect(testEnv.Client.Create(context.Background(), newSettings(ns, "tenant", site.url()))).To(Succeed())
	eventuallyCondition(t, ns, "tenant", scimv1.ConditionSiteReachable, metav1.ConditionFalse, "SiteUnauthorized")

	var secret corev1.Secret
	g.Expect(testEnv.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "site-token"}, &secret)).To(Succeed())
	secret.Data["token"] = []byte(siteToken)
	g.Expect(testEnv.Client.Update(context.Background(), &secret)).To(Succeed())
	// The probe backoff after a failure is 10s; a changed token must not wait for it.
	start := time.Now()
	eventuallyCondition(t, ns, "tenant", scimv1.ConditionSiteReachable, metav1.ConditionTrue, "SiteAnswered")
	g.Expect(time.Since(start)).To(BeNumerically("<", 8*time.Second))
	eventuallyCondition(t, ns, "tenant", scimv1.ConditionReady, metav1.ConditionTrue, "Available")
}

func TestScimSettingsReconciler_publishesEndpointAndFollowsSpec(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := testEnv.Namespace(t)
	site := newFakeSite(t, "ok")
	startSettingsManager(t, ns, settingsOptions{externalURL: "https://scim.example.com/"})
	createTenant(g, ns, "tenant", site.url())

	got := eventuallyCondition(t, ns, "tenant", scimv1.ConditionReady, metav1.ConditionTrue, "Available")
	g.Expect(got.Status.BasePath).To(Equal("/scim/v2/" + ns + "/tenant"))
	g.Expect(got.Status.URL).To(Equal("https://scim.example.com/scim/v2/" + ns + "/tenant"))
	g.Expect(got.Status.Users).NotTo(BeNil())
	g.Expect(*got.Status.Users).To(Equal(scimv1.UserCounts{}))

	// Switching the tenant off is reported with the new generation.
	patch := client.MergeFrom(got.DeepCopy())
	got.Spec.Enabled = ptr.To(false)
	got.Spec.BasePath = "/scim/v2/acme"
	g.Expect(testEnv.Client.Patch(ctx, got, patch)).To(Succeed())
	got = eventuallyCondition(t, ns, "tenant", scimv1.ConditionReady, metav1.ConditionFalse, "Disabled")
	g.Expect(got.Status.ObservedGeneration).To(BeNumerically(">=", 2))
	g.Expect(got.Status.BasePath).To(Equal("/scim/v2/acme"))
	g.Expect(got.Status.URL).To(Equal("https://scim.example.com/scim/v2/acme"))
	// The other checks keep running while the tenant is off.
	g.Expect(condition(got, scimv1.ConditionCredentialsValid).Status).To(Equal(metav1.ConditionTrue))
	g.Expect(condition(got, scimv1.ConditionSiteReachable).Status).To(Equal(metav1.ConditionTrue))
}

func TestScimSettingsReconciler_countsUsersAndKeepsOthersStatus(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := testEnv.Namespace(t)
	site := newFakeSite(t, "ok")
	startSettingsManager(t, ns, settingsOptions{})
	createTenant(g, ns, "tenant", site.url())
	eventuallyCondition(t, ns, "tenant", scimv1.ConditionReady, metav1.ConditionTrue, "Available")

	// Fields owned by the StackUser reconciler and the SCIM server must survive our writes.
	resync := metav1.NewTime(time.Now().Truncate(time.Second))
	othersStatus := map[string]any{"status": map[string]any{
		"users":          map[string]any{"siteOnly": 7},
		"lastResyncTime": resync,
		"lastRequest":    map[string]any{"time": resync, "userAgent": "Okta SCIM Client 1.0.0", "operation": "GET /Users"},
	}}
	raw, err := json.Marshal(othersStatus)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(testEnv.Client.Status().Patch(ctx, newSettings(ns, "tenant", ""), client.RawPatch(types.MergePatchType, raw))).To(Succeed())

	role := func(r scimv1.Role) *scimv1.Role { return &r }
	users := []struct {
		name   string
		tenant string
		active bool
		role   *scimv1.Role
	}{
		{"ann", "tenant", true, role(scimv1.RoleAdmin)},
		{"bob", "tenant", false, role(scimv1.RoleAdmin)},
		{"cat", "tenant", true, role(scimv1.RoleModerator)},
		{"dan", "tenant", true, role(scimv1.RoleRegistered)},
		{"eve", "tenant", true, nil},
		{"fay", "other-tenant", true, role(scimv1.RoleAdmin)},
	}
	for _, u := range users {
		g.Expect(testEnv.Client.Create(ctx, &scimv1.StackUser{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: u.name},
			Spec: scimv1.StackUserSpec{
				SettingsRef: scimv1.SettingsReference{Name: u.tenant},
				UserName:    u.name + "@example.com",
				Active:      ptr.To(u.active),
				Role:        u.role,
			},
		})).To(Succeed())
	}
	expectCounts := func(want scimv1.UserCounts) {
		t.Helper()
		g.Eventually(func(g Gomega) {
			s := getSettings(g, ns, "tenant")
			g.Expect(s.Status.Users).NotTo(BeNil())
			g.Expect(*s.Status.Users).To(Equal(want))
			g.Expect(s.Status.LastResyncTime).NotTo(BeNil())
			g.Expect(s.Status.LastResyncTime.Equal(&resync)).To(BeTrue())
			g.Expect(s.Status.LastRequest).NotTo(BeNil())
			g.Expect(s.Status.LastRequest.UserAgent).To(Equal("Okta SCIM Client 1.0.0"))
		}).WithTimeout(15 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	}
	expectCounts(scimv1.UserCounts{Total: 5, Active: 4, Registered: 1, Moderators: 1, Admins: 2, UnmanagedRole: 1, SiteOnly: 7})

	// A role change and a deletion are counted too.
	var dan scimv1.StackUser
	g.Expect(testEnv.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "dan"}, &dan)).To(Succeed())
	dan.Spec.Role = role(scimv1.RoleModerator)
	g.Expect(testEnv.Client.Update(ctx, &dan)).To(Succeed())
	g.Expect(testEnv.Client.Delete(ctx, &scimv1.StackUser{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bob"}})).To(Succeed())
	expectCounts(scimv1.UserCounts{Total: 4, Active: 4, Moderators: 2, Admins: 1, UnmanagedRole: 1, SiteOnly: 7})
}

func TestScimSettingsReconciler_basePathConflictGoesToTheNewerTenant(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := testEnv.Namespace(t)
	site := newFakeSite(t, "ok")
	startSettingsManager(t, ns, settingsOptions{})
	createSecret(g, ns, "scim-token", map[string]string{"token": idpToken})
	createSecret(g, ns, "site-token", map[string]string{"token": siteToken})

	first := newSettings(ns, "zz-first", site.url())
	first.Spec.BasePath = "/scim/v2/shared"
	g.Expect(testEnv.Client.Create(ctx, first)).To(Succeed())
	older := eventuallyCondition(t, ns, "zz-first", scimv1.ConditionReady, metav1.ConditionTrue, "Available")
	// creationTimestamp has a resolution of one second: wait for the next second so the
	// order is unambiguous. The older one's name sorts last, so a name-only tie-break
	// would pick the wrong one.
	g.Eventually(func() bool { return time.Now().Truncate(time.Second).After(older.CreationTimestamp.Time) }).
		WithTimeout(3 * time.Second).WithPolling(50 * time.Millisecond).Should(BeTrue())
	second := newSettings(ns, "aa-second", site.url())
	second.Spec.BasePath = "/scim/v2/shared"
	g.Expect(testEnv.Client.Create(ctx, second)).To(Succeed())

	got := eventuallyCondition(t, ns, "aa-second", scimv1.ConditionReady, metav1.ConditionFalse, "BasePathConflict")
	g.Expect(condition(got, scimv1.ConditionReady).Message).To(ContainSubstring(ns + "/zz-first"))
	g.Consistently(func(g Gomega) {
		g.Expect(condition(getSettings(g, ns, "zz-first"), scimv1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
	}).WithTimeout(time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())

	// When the older tenant goes away, the newer one takes the path over.
	g.Expect(testEnv.Client.Delete(ctx, first)).To(Succeed())
	eventuallyCondition(t, ns, "aa-second", scimv1.ConditionReady, metav1.ConditionTrue, "Available")
}

func TestScimSettingsReconciler_sameCreationSecondTieBreaksByName(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := testEnv.Namespace(t)
	site := newFakeSite(t, "ok")
	startSettingsManager(t, ns, settingsOptions{})
	createSecret(g, ns, "scim-token", map[string]string{"token": idpToken})
	createSecret(g, ns, "site-token", map[string]string{"token": siteToken})
	for _, name := range []string{"b-tenant", "a-tenant"} {
		s := newSettings(ns, name, site.url())
		s.Spec.BasePath = "/scim/v2/tie"
		g.Expect(testEnv.Client.Create(ctx, s)).To(Succeed())
	}
	a := getSettings(g, ns, "a-tenant")
	b := getSettings(g, ns, "b-tenant")
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		t.Skip("the two tenants were created in different seconds; the tie-break is not exercised")
	}
	eventuallyCondition(t, ns, "a-tenant", scimv1.ConditionReady, metav1.ConditionTrue, "Available")
	got := eventuallyCondition(t, ns, "b-tenant", scimv1.ConditionReady, metav1.ConditionFalse, "BasePathConflict")
	g.Expect(strings.Contains(condition(got, scimv1.ConditionReady).Message, ns+"/a-tenant")).To(BeTrue())
}
