package controllers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"k8s.io/apimachinery/pkg/util/wait"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/controllers"
	"github.com/stackscim/stack-scim-operator/internal/audit"
	"github.com/stackscim/stack-scim-operator/internal/cachetrim"
	"github.com/stackscim/stack-scim-operator/internal/index"
	"github.com/stackscim/stack-scim-operator/internal/progress"
	"github.com/stackscim/stack-scim-operator/internal/site"
	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

// tenantName is the ScimSettings every harness creates.
const tenantName = "tenant"

// harnessOptions shape one test's site and tenant.
type harnessOptions struct {
	// sim configures the simulated site (the token is set by the harness).
	sim sitesim.Config
	// settings adjusts the ScimSettings before it is created.
	settings func(*scimv1.ScimSettings)
	// noSettings leaves the ScimSettings out.
	noSettings bool
	// settingsReconciler also runs the ScimSettings reconciler (status.plan, ChangesHeld).
	settingsReconciler bool
}

// userHarness is one test's world: a namespace, a simulated site over real HTTP, a tenant
// pointing at it, and a manager running the StackUser reconciler and the resync.
type userHarness struct {
	t         *testing.T
	ns        string
	sim       *sitesim.Sim
	siteURL   string
	siteToken string
	idpToken  string
	logs      *logBuffer
	// stopManager stops the running manager (and waits for it); restartManager starts
	// a fresh one, as a pod restart would.
	stopManager func()
	opts        harnessOptions
}

// restartManager stops the manager and starts a new one with empty memory.
func (h *userHarness) restartManager() {
	h.stopManager()
	h.stopManager = h.startManager()
}

// logBuffer collects the manager's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) write(prefix, args string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprintf(&b.buf, "%s %s\n", prefix, args)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newUserHarness(t *testing.T, o harnessOptions) *userHarness {
	t.Helper()
	ns := testEnv.Namespace(t)
	h := &userHarness{
		t:         t,
		ns:        ns,
		siteToken: "site-token-" + ns + "-7c4e",
		idpToken:  "idp-token-" + ns + "-93ab",
		logs:      &logBuffer{},
		opts:      o,
	}
	simCfg := o.sim
	simCfg.Token = h.siteToken
	h.sim = sitesim.New(simCfg)
	srv := httptest.NewServer(h.sim)
	t.Cleanup(srv.Close)
	h.siteURL = srv.URL + sitesim.BasePath

	ctx := context.Background()
	for name, tok := range map[string]string{"site-token": h.siteToken, "idp-token": h.idpToken} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: map[string]string{"token": tok}}
		if err := testEnv.Client.Create(ctx, s); err != nil {
			t.Fatalf("creating secret: %v", err)
		}
	}
	if !o.noSettings {
		h.createSettings(o.settings)
	}
	h.stopManager = h.startManager()
	t.Cleanup(func() {
		if t.Failed() {
			// What the reconcilers said is the first thing to read when a test fails.
			logs := h.logs.String()
			t.Logf("manager log (last 8 KiB):\n%s", logs[max(0, len(logs)-8<<10):])
		}
	})
	return h
}

func (h *userHarness) createSettings(mutate func(*scimv1.ScimSettings)) {
	h.t.Helper()
	s := &scimv1.ScimSettings{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: tenantName},
		Spec: scimv1.ScimSettingsSpec{
			BearerTokenSecretRef: scimv1.BearerTokenSecretReference{Name: "idp-token"},
			Site: scimv1.SiteSpec{
				URL:               h.siteURL,
				TokenSecretRef:    scimv1.SecretKeyReference{Name: "site-token"},
				Timeout:           &metav1.Duration{Duration: 2 * time.Second},
				RequestsPerSecond: 200,
				Burst:             200,
			},
			ResyncPeriod: &metav1.Duration{Duration: time.Hour},
		},
	}
	if mutate != nil {
		mutate(s)
	}
	if err := testEnv.Client.Create(context.Background(), s); err != nil {
		h.t.Fatalf("creating ScimSettings: %v", err)
	}
}

func (h *userHarness) startManager() (stop func()) {
	t := h.t
	// The cache trims objects as the deployed manager's does: StackUsers come without
	// their history, which the reconcilers learn from trails.
	trails := audit.NewTrails()
	meter := progress.NewMeter()
	mgr, err := ctrl.NewManager(testEnv.Config, ctrl.Options{
		Scheme:                 testEnv.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache: cache.Options{DefaultNamespaces: map[string]cache.Config{h.ns: {}},
			DefaultTransform: cachetrim.Transform(trails)},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		Logger:     funcr.New(h.logs.write, funcr.Options{Verbosity: 2}),
	})
	if err != nil {
		t.Fatalf("creating manager: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := index.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
		t.Fatalf("registering indexes: %v", err)
	}
	err = controllers.Setup(mgr, controllers.Options{
		MinBackoff:   100 * time.Millisecond,
		MaxBackoff:   time.Second,
		SignInWait:   time.Second,
		ResyncJitter: 0.05,
		Site:         site.Config{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, MaxRetries: 3},
		Trails:       trails,
		Progress:     meter,
	})
	if err != nil {
		t.Fatalf("setting up reconcilers: %v", err)
	}
	if h.opts.settingsReconciler {
		r := &controllers.ScimSettingsReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("scimsettings-test"),
			CountDelay: 100 * time.Millisecond, Progress: meter}
		if err := r.SetupWithManager(mgr); err != nil {
			t.Fatalf("setting up the ScimSettings reconciler: %v", err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("manager stopped with: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// createUser creates a StackUser as the SCIM server would: with its field manager and the
// request annotation. mutate adjusts the spec.
func (h *userHarness) createUser(name string, mutate func(*scimv1.StackUserSpec)) *scimv1.StackUser {
	return h.createUserAs(name, audit.SCIMFieldManager, mutate)
}

func (h *userHarness) createUserAs(name, fieldManager string, mutate func(*scimv1.StackUserSpec)) *scimv1.StackUser {
	return h.createAnnotatedUser(name, fieldManager, nil, mutate)
}

// createAnnotatedUser is createUserAs with extra annotations.
func (h *userHarness) createAnnotatedUser(name, fieldManager string, annotations map[string]string, mutate func(*scimv1.StackUserSpec)) *scimv1.StackUser {
	h.t.Helper()
	info, _ := json.Marshal(audit.RequestInfo{RequestID: "req-" + name, UserAgent: "Okta SCIM Client 1.0.0", Tenant: h.ns + "/" + tenantName})
	u := &scimv1.StackUser{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name,
			Labels:      map[string]string{scimv1.LabelSettings: tenantName},
			Annotations: map[string]string{audit.AnnotationLastSCIMRequest: string(info)}},
		Spec: scimv1.StackUserSpec{
			SettingsRef: scimv1.SettingsReference{Name: tenantName},
			UserName:    name + "@example.com",
			ExternalID:  "okta-" + name,
			DisplayName: "User " + name,
			Emails:      []scimv1.MultiValuedAttribute{{Value: name + "@example.com", Primary: true}},
		},
	}
	if mutate != nil {
		mutate(&u.Spec)
	}
	for k, v := range annotations {
		u.Annotations[k] = v
	}
	if err := testEnv.Client.Create(context.Background(), u, client.FieldOwner(fieldManager)); err != nil {
		h.t.Fatalf("creating StackUser: %v", err)
	}
	return u
}

// patientRetry outlasts the reconciler and the SCIM server writing the same object (the
// default gives up after 5 quick tries).
var patientRetry = wait.Backoff{Steps: 20, Duration: 10 * time.Millisecond, Factor: 1.5, Jitter: 0.5, Cap: time.Second}

// updateUser changes a StackUser's spec as fieldManager, retrying on conflict.
func (h *userHarness) updateUser(name, fieldManager string, mutate func(*scimv1.StackUser)) {
	h.t.Helper()
	err := retry.RetryOnConflict(patientRetry, func() error {
		u := &scimv1.StackUser{}
		if err := testEnv.Client.Get(context.Background(), types.NamespacedName{Namespace: h.ns, Name: name}, u); err != nil {
			return err
		}
		mutate(u)
		return testEnv.Client.Update(context.Background(), u, client.FieldOwner(fieldManager))
	})
	if err != nil {
		h.t.Fatalf("updating StackUser: %v", err)
	}
}

// updateSettings changes the tenant's spec, retrying on conflict.
func (h *userHarness) updateSettings(mutate func(*scimv1.ScimSettings)) {
	h.t.Helper()
	err := retry.RetryOnConflict(patientRetry, func() error {
		s := h.settings()
		mutate(s)
		return testEnv.Client.Update(context.Background(), s)
	})
	if err != nil {
		h.t.Fatalf("updating ScimSettings: %v", err)
	}
}

func (h *userHarness) settings() *scimv1.ScimSettings {
	s := &scimv1.ScimSettings{}
	if err := testEnv.Client.Get(context.Background(), types.NamespacedName{Namespace: h.ns, Name: tenantName}, s); err != nil {
		h.t.Fatalf("reading ScimSettings: %v", err)
	}
	return s
}

func (h *userHarness) user(g Gomega, name string) *scimv1.StackUser {
	u := &scimv1.StackUser{}
	g.Expect(testEnv.Client.Get(context.Background(), types.NamespacedName{Namespace: h.ns, Name: name}, u)).To(Succeed())
	return u
}

// eventually polls a StackUser until check passes.
func (h *userHarness) eventually(name string, check func(g Gomega, u *scimv1.StackUser)) *scimv1.StackUser {
	h.t.Helper()
	var last *scimv1.StackUser
	NewWithT(h.t).Eventually(func(g Gomega) {
		last = h.user(g, name)
		check(g, last)
	}).WithTimeout(45 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	return last
}

// eventuallySynced waits for Synced=True at the current generation and returns the user.
func (h *userHarness) eventuallySynced(name string) *scimv1.StackUser {
	h.t.Helper()
	return h.eventually(name, func(g Gomega, u *scimv1.StackUser) {
		c := meta.FindStatusCondition(u.Status.Conditions, scimv1.ConditionSynced)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		g.Expect(c.ObservedGeneration).To(Equal(u.Generation))
		g.Expect(u.Status.ObservedGeneration).To(Equal(u.Generation))
		g.Expect(u.Status.SiteID).NotTo(BeEmpty())
	})
}

// siteUser is the simulator's copy of a StackUser's site user.
func (h *userHarness) siteUser(g Gomega, u *scimv1.StackUser) sitesim.User {
	g.Expect(u.Status.SiteID).NotTo(BeEmpty())
	su, ok := h.sim.User(u.Status.SiteID)
	g.Expect(ok).To(BeTrue(), "site user %s exists", u.Status.SiteID)
	return su
}

// seed adds a site user as if it had signed in over SAML.
func (h *userHarness) seed(u sitesim.User) sitesim.User {
	if u.Role == "" {
		u.Role = sitesim.RoleRegistered
	}
	return h.sim.Seed(u)
}

// haveCondition matches a StackUser with condition typ at status and reason.
func haveCondition(typ string, status metav1.ConditionStatus, reason string) OmegaMatcher {
	return WithTransform(func(u *scimv1.StackUser) string {
		c := meta.FindStatusCondition(u.Status.Conditions, typ)
		if c == nil {
			return "<missing>"
		}
		return string(c.Status) + "/" + c.Reason
	}, Equal(string(status)+"/"+reason))
}

// entries returns the history entries with action and result.
func entries(u *scimv1.StackUser, action string, result scimv1.AuditResult) []scimv1.AuditEntry {
	var out []scimv1.AuditEntry
	for _, e := range u.Status.History {
		if e.Action == action && e.Result == result {
			out = append(out, e)
		}
	}
	return out
}

func role(r scimv1.Role) *scimv1.Role { return &r }
