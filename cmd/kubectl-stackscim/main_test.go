package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/plan"
	"github.com/stackscim/stack-scim-operator/internal/testenv"
)

var (
	env *testenv.Env
	// kubeconfig is a kubeconfig file for an administrator of env.
	kubeconfig string
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Run(m, func(e *testenv.Env) {
		env = e
		b, err := e.KubeConfig()
		if err != nil {
			panic(err)
		}
		dir, err := os.MkdirTemp("", "kubectl-stackscim-test")
		if err != nil {
			panic(err)
		}
		kubeconfig = filepath.Join(dir, "kubeconfig")
		if err := os.WriteFile(kubeconfig, b, 0o600); err != nil {
			panic(err)
		}
	}))
}

// cli runs the command as kubectl would, and returns its exit status and output.
func cli(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// tenant creates a ScimSettings "okta" in a fresh namespace with its status as the operator
// writes it (reconciled at its generation), and deletes it with its users when the test
// ends: envtest has no namespace controller, and tests that list every namespace must not
// see the tenants of earlier tests.
func tenant(t *testing.T, mode scimv1.Mode, status func(*scimv1.ScimSettingsStatus)) *scimv1.ScimSettings {
	t.Helper()
	ctx := context.Background()
	tn := env.Tenant(t, testenv.TenantOptions{Name: "okta", SiteURL: "https://stack.example.com/api/scim/v2",
		Mutate: func(s *scimv1.ScimSettings) { s.Spec.Mode = mode }})
	s := tn.Settings
	s.Status.ObservedGeneration = s.Generation
	if status != nil {
		status(&s.Status)
	}
	if err := env.Client.Status().Update(ctx, s); err != nil {
		t.Fatalf("writing ScimSettings status: %v", err)
	}
	t.Cleanup(func() {
		var users scimv1.StackUserList
		_ = env.Client.List(ctx, &users, client.InNamespace(s.Namespace))
		for i := range users.Items {
			u := &users.Items[i]
			if len(u.Finalizers) > 0 {
				u.Finalizers = nil
				_ = env.Client.Update(ctx, u)
			}
			_ = env.Client.Delete(ctx, u)
		}
		_ = env.Client.Delete(ctx, s)
	})
	return s
}

// stackUser creates a StackUser of s and writes its status: evaluated at its generation
// with the given planned changes, unless status says otherwise.
func stackUser(t *testing.T, s *scimv1.ScimSettings, name, userName string, status func(*scimv1.StackUser), changes ...scimv1.PlannedChange) *scimv1.StackUser {
	t.Helper()
	u := &scimv1.StackUser{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: name},
		Spec:       scimv1.StackUserSpec{SettingsRef: scimv1.SettingsReference{Name: s.Name}, UserName: userName},
	}
	if err := env.Client.Create(context.Background(), u); err != nil {
		t.Fatalf("creating StackUser %s: %v", name, err)
	}
	u.Status.ObservedGeneration = u.Generation
	u.Status.PlannedChanges = changes
	if len(changes) > 0 {
		reason := scimv1.ReasonObserveOnly
		if s.Spec.Mode != scimv1.ModeObserve {
			reason = scimv1.ReasonChangeHeld
		}
		u.Status.Conditions = []metav1.Condition{{Type: scimv1.ConditionSynced, Status: metav1.ConditionFalse, Reason: reason,
			Message: "planned", ObservedGeneration: u.Generation, LastTransitionTime: metav1.Now()}}
	}
	if status != nil {
		status(u)
	}
	if err := env.Client.Status().Update(context.Background(), u); err != nil {
		t.Fatalf("writing StackUser %s status: %v", name, err)
	}
	return u
}

// An Observe tenant with planned changes, a held demotion, an offboarding waiting and
// site accounts no StackUser describes: exit 2, and the lines a reviewer reads.
func TestPlan_changesExit2AndPrintThePlan(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s := tenant(t, scimv1.ModeObserve, func(st *scimv1.ScimSettingsStatus) {
		st.Users = &scimv1.UserCounts{Total: 5, Active: 5, SiteOnly: 1}
		st.SiteOnlyUsers = []scimv1.SiteAccountSample{{ID: "17", UserName: "frank@example.com", Active: true}}
	})
	stackUser(t, s, "bob", "bob@example.com", nil, scimv1.PlannedChange{Action: scimv1.PlanUpdate, Field: "title", Old: "Engineer", New: "Senior Engineer"})
	stackUser(t, s, "alice", "alice@example.com", nil, scimv1.PlannedChange{Action: scimv1.PlanLink, New: "1001"})
	heldSince := metav1.NewTime(time.Date(2026, 11, 29, 9, 12, 0, 0, time.UTC))
	stackUser(t, s, "erin", "erin@example.com", func(u *scimv1.StackUser) {
		u.Status.HeldSince = &heldSince
		u.Status.Conditions[0].Reason = scimv1.ReasonChangeHeld
	}, scimv1.PlannedChange{Action: scimv1.PlanDemote, Field: "role", Old: "Admin", New: "Registered"})
	stackUser(t, s, "zed", "zed@example.com", nil)
	// Deleted, its deactivation planned: the finalizer keeps it, and the deletion bumps
	// its generation past the one its plan was made at.
	carol := &scimv1.StackUser{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: "carol", Finalizers: []string{scimv1.Finalizer}},
		Spec:       scimv1.StackUserSpec{SettingsRef: scimv1.SettingsReference{Name: s.Name}, UserName: "carol@example.com"},
	}
	g.Expect(env.Client.Create(ctx, carol)).To(Succeed())
	carol.Status.ObservedGeneration = carol.Generation
	carol.Status.PlannedChanges = []scimv1.PlannedChange{{Action: scimv1.PlanDeactivate, Field: "active", Old: "true", New: "false"}}
	g.Expect(env.Client.Status().Update(ctx, carol)).To(Succeed())
	g.Expect(env.Client.Delete(ctx, carol)).To(Succeed())

	code, out, errOut := cli("plan", "--kubeconfig", kubeconfig, "-n", s.Namespace, "okta")
	g.Expect(errOut).To(BeEmpty())
	g.Expect(out).To(Equal("Tenant " + s.Namespace + `/okta  (mode Observe, site https://stack.example.com/api/scim/v2)
  ~ link        alice@example.com  → site account 1001
  ~ update      bob@example.com    title: "Engineer" → "Senior Engineer"
  - deactivate  carol@example.com  (StackUser deleted: offboarding)
  ↓ demote      erin@example.com   Admin → Registered  (held by the brake since 2026-11-29T09:12:00Z)
Plan: 1 to link, 0 to create, 1 to update, 0 to activate, 1 to deactivate, 0 to promote, 1 to demote, 0 to delete; 1 held.
1 site account no StackUser describes (left unchanged): frank@example.com (id 17).
`))
	g.Expect(code).To(Equal(exitChanges))

	// The same plan for scripts; without NAME, every tenant of the namespace.
	code, out, errOut = cli("plan", "--kubeconfig", kubeconfig, "--namespace", s.Namespace, "-o", "json")
	g.Expect(errOut).To(BeEmpty())
	g.Expect(code).To(Equal(exitChanges))
	var p plan.Plan
	g.Expect(json.Unmarshal([]byte(out), &p)).To(Succeed())
	g.Expect(p.Tenants).To(HaveLen(1))
	g.Expect(p.Tenants[0].Counts).To(Equal(plan.Counts{Users: 4, Link: 1, Update: 1, Deactivate: 1, Demote: 1, Held: 1}))
	erin := p.Tenants[0].Changes[3]
	g.Expect(erin.HeldSince).NotTo(BeNil())
	g.Expect(erin.HeldSince.Time).To(BeTemporally("==", heldSince.Time))
	erin.HeldSince = nil
	g.Expect(erin).To(Equal(plan.Change{UserName: "erin@example.com", StackUser: "erin", Action: scimv1.PlanDemote,
		Field: "role", Old: "Admin", New: "Registered", Held: true}))
}

func TestPlan_noChangesExit0(t *testing.T) {
	g := NewWithT(t)
	s := tenant(t, scimv1.ModeEnforce, nil)
	stackUser(t, s, "alice", "alice@example.com", nil)
	code, out, errOut := cli("plan", "--kubeconfig", kubeconfig, "-n", s.Namespace)
	g.Expect(errOut).To(BeEmpty())
	g.Expect(out).To(Equal("Tenant " + s.Namespace + `/okta  (mode Enforce, site https://stack.example.com/api/scim/v2)
  No changes.
Plan: 0 to link, 0 to create, 0 to update, 0 to activate, 0 to deactivate, 0 to promote, 0 to demote, 0 to delete; 0 held.
`))
	g.Expect(code).To(Equal(exitNoChanges))
}

func TestPlan_errorsExit1WithAMessage(t *testing.T) {
	s := tenant(t, scimv1.ModeObserve, nil)
	empty := env.Namespace(t)
	unreachable := filepath.Join(t.TempDir(), "kubeconfig")
	writeKubeconfig(t, unreachable, func(c *clientcmdapi.Config) {
		for _, cl := range c.Clusters {
			cl.Server = "https://127.0.0.1:1"
		}
	})
	cases := map[string]struct {
		args    []string
		wantErr string
	}{
		"tenant not found":        {[]string{"plan", "--kubeconfig", kubeconfig, "-n", s.Namespace, "nope"}, "error: ScimSettings " + s.Namespace + "/nope not found\n"},
		"no tenant in namespace":  {[]string{"plan", "--kubeconfig", kubeconfig, "-n", empty}, "error: no ScimSettings (tenant) in namespace " + empty + "\n"},
		"API unreachable":         {[]string{"plan", "--kubeconfig", unreachable, "-n", s.Namespace}, "cannot reach the Kubernetes API at https://127.0.0.1:1"},
		"no such kubeconfig":      {[]string{"plan", "--kubeconfig", filepath.Join(t.TempDir(), "missing")}, "error: loading kubeconfig:"},
		"no such context":         {[]string{"plan", "--kubeconfig", kubeconfig, "--context", "elsewhere"}, `context "elsewhere" does not exist`},
		"unknown output":          {[]string{"plan", "--kubeconfig", kubeconfig, "-o", "yaml"}, "error: --output must be text or json, not \"yaml\"\n"},
		"name across namespaces":  {[]string{"plan", "--kubeconfig", kubeconfig, "-A", "okta"}, "error: a ScimSettings cannot be named across all namespaces"},
		"two names":               {[]string{"plan", "--kubeconfig", kubeconfig, "a", "b"}, "error: plan takes at most one ScimSettings name"},
		"unknown flag":            {[]string{"plan", "--frobnicate"}, "error: unknown flag: --frobnicate\n"},
		"unknown command":         {[]string{"apply"}, `error: unknown command "apply"`},
		"no command prints usage": {nil, "Usage:\n  kubectl stackscim plan"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			code, out, errOut := cli(tc.args...)
			g.Expect(code).To(Equal(exitError))
			g.Expect(out).To(BeEmpty())
			g.Expect(errOut).To(ContainSubstring(tc.wantErr))
		})
	}
}

// A user changed since the operator last evaluated it: the plan is incomplete (exit 1)
// and says who; --wait polls until the operator has evaluated it.
func TestPlan_notYetEvaluatedIsIncompleteUntilWaitSeesItEvaluated(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s := tenant(t, scimv1.ModeObserve, nil)
	stackUser(t, s, "alice", "alice@example.com", nil, scimv1.PlannedChange{Action: scimv1.PlanLink, New: "1001"})
	dave := stackUser(t, s, "dave", "dave@example.com", func(u *scimv1.StackUser) { u.Status.ObservedGeneration = 0 })

	code, out, errOut := cli("plan", "--kubeconfig", kubeconfig, "-n", s.Namespace)
	g.Expect(code).To(Equal(exitError))
	g.Expect(out).To(ContainSubstring("  ~ link        alice@example.com  → site account 1001\n"))
	g.Expect(out).To(HaveSuffix("Plan incomplete: 1 StackUser not yet evaluated since their last change: dave@example.com.\n"))
	g.Expect(errOut).To(Equal("error: plan incomplete (is the operator running? Retry, or pass --wait 2m): " +
		s.Namespace + "/okta: 1 StackUser not yet evaluated since their last change: dave@example.com\n"))

	// A short wait that runs out still reports the plan incomplete.
	code, _, errOut = cli("plan", "--kubeconfig", kubeconfig, "-n", s.Namespace, "--wait", "1s")
	g.Expect(code).To(Equal(exitError))
	g.Expect(errOut).To(ContainSubstring("still so after waiting 1s"))

	// The operator evaluates dave while the CLI waits.
	stderr := &signalWriter{word: "waiting up to 1m0s", seen: make(chan struct{})}
	var stdout bytes.Buffer
	done := make(chan int)
	go func() {
		done <- run([]string{"plan", "--kubeconfig", kubeconfig, "-n", s.Namespace, "--wait", "1m"}, &stdout, stderr)
	}()
	select {
	case <-stderr.seen:
	case code := <-done:
		t.Fatalf("returned %d before waiting; stderr: %s", code, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("no waiting message within 30s")
	}
	dave.Status.ObservedGeneration = dave.Generation
	dave.Status.PlannedChanges = []scimv1.PlannedChange{{Action: scimv1.PlanCreate, New: "dave@example.com"}}
	g.Expect(env.Client.Status().Update(ctx, dave)).To(Succeed())
	select {
	case code = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("--wait did not see the user evaluated within 30s")
	}
	g.Expect(code).To(Equal(exitChanges), "stderr: %s", stderr.String())
	g.Expect(stdout.String()).To(ContainSubstring("  + create      dave@example.com\n"))
	g.Expect(stdout.String()).NotTo(ContainSubstring("incomplete"))
}

// KUBECONFIG is honoured as kubectl honours it, --context picks a context, the context's
// namespace is the default, and -A plans every namespace's tenants in order.
func TestPlan_kubeconfigContextsAndAllNamespaces(t *testing.T) {
	g := NewWithT(t)
	a := tenant(t, scimv1.ModeObserve, nil)
	stackUser(t, a, "alice", "alice@example.com", nil, scimv1.PlannedChange{Action: scimv1.PlanCreate})
	b := tenant(t, scimv1.ModeEnforce, nil)
	stackUser(t, b, "bob", "bob@example.com", nil)

	path := filepath.Join(t.TempDir(), "config")
	writeKubeconfig(t, path, func(c *clientcmdapi.Config) {
		good := c.Contexts[c.CurrentContext].DeepCopy()
		good.Namespace = b.Namespace
		c.Contexts["team-b"] = good
		c.Clusters["nowhere"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
		c.Contexts["broken"] = &clientcmdapi.Context{Cluster: "nowhere", AuthInfo: good.AuthInfo}
		c.CurrentContext = "broken"
	})
	t.Setenv("KUBECONFIG", path)

	code, _, errOut := cli("plan", "-n", a.Namespace)
	g.Expect(code).To(Equal(exitError))
	g.Expect(errOut).To(ContainSubstring("cannot reach the Kubernetes API at https://127.0.0.1:1"))

	code, out, errOut := cli("plan", "--context", "team-b")
	g.Expect(errOut).To(BeEmpty())
	g.Expect(code).To(Equal(exitNoChanges))
	g.Expect(out).To(HavePrefix("Tenant " + b.Namespace + "/okta  (mode Enforce,"))
	g.Expect(out).To(ContainSubstring("No changes."))

	code, out, errOut = cli("plan", "--context", "team-b", "-A")
	g.Expect(errOut).To(BeEmpty())
	g.Expect(code).To(Equal(exitChanges))
	// Other tests' tenants share the API server: each block must be there, whole.
	g.Expect(out).To(ContainSubstring("Tenant " + a.Namespace + `/okta  (mode Observe, site https://stack.example.com/api/scim/v2)
  + create      alice@example.com
Plan: 0 to link, 1 to create, 0 to update, 0 to activate, 0 to deactivate, 0 to promote, 0 to demote, 0 to delete; 0 held.
`))
	g.Expect(out).To(ContainSubstring("Tenant " + b.Namespace + `/okta  (mode Enforce, site https://stack.example.com/api/scim/v2)
  No changes.
Plan: 0 to link, 0 to create, 0 to update, 0 to activate, 0 to deactivate, 0 to promote, 0 to demote, 0 to delete; 0 held.
`))
}

func TestVersionAndHelp(t *testing.T) {
	g := NewWithT(t)
	code, out, errOut := cli("version")
	g.Expect(code).To(Equal(exitNoChanges))
	g.Expect(errOut).To(BeEmpty())
	g.Expect(out).To(HavePrefix("kubectl-stackscim: stack-scim-operator dev (commit unknown"))

	for _, args := range [][]string{{"--help"}, {"plan", "--help"}, {"plan", "-h"}} {
		code, out, errOut = cli(args...)
		g.Expect(code).To(Equal(exitNoChanges), "%v", args)
		g.Expect(errOut).To(BeEmpty(), "%v", args)
		g.Expect(out).To(ContainSubstring("Exit status: 0 no changes, 2 changes planned or held, 1 error"), "%v", args)
		g.Expect(out).To(ContainSubstring("-A, --all-namespaces"), "%v", args)
	}
}

// writeKubeconfig writes env's kubeconfig, changed by edit, to path.
func writeKubeconfig(t *testing.T, path string, edit func(*clientcmdapi.Config)) {
	t.Helper()
	c, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	edit(c)
	if err := clientcmd.WriteToFile(*c, path); err != nil {
		t.Fatal(err)
	}
}

// signalWriter collects output and closes seen once it contains word.
type signalWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	word string
	seen chan struct{}
	once sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.word) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
