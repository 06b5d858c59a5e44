package manifests_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Run(m, func(e *testenv.Env) { env = e }))
}

var (
	root      = testenv.RepoRoot()
	chartDir  = filepath.Join(root, "charts", "stack-scim-operator")
	crdBases  = filepath.Join(root, "config", "crd", "bases")
	roleYAML  = filepath.Join(root, "config", "rbac", "role.yaml")
	chartRole = filepath.Join(chartDir, "files", "manager-role.yaml")
)

// tool finds a pinned binary. `make test` exports its path (HELM, KUBECTL): then a
// missing binary fails the test. Run by hand, the path comes from hack/versions.sh and a
// missing binary skips, naming the make target that builds it.
func tool(t *testing.T, name string) string {
	t.Helper()
	if p := os.Getenv(name); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s is not there: build it with `make helm` / `make controlplane`: %v", name, p, err)
		}
		return p
	}
	out, err := exec.Command(filepath.Join(root, "hack", "versions.sh"), "print").Output()
	if err != nil {
		t.Fatalf("hack/versions.sh print: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if p, ok := strings.CutPrefix(line, name+"="); ok {
			if _, err := os.Stat(p); err != nil {
				t.Skipf("%s not built at %s; `make test` builds it", name, p)
			}
			return p
		}
	}
	t.Fatalf("hack/versions.sh print has no %s", name)
	return ""
}

// run runs a command in the repository root and returns its stdout; stderr goes into the
// error.
func run(bin string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, errors.New(strings.TrimSpace(stderr.String()) + ": " + err.Error())
	}
	return stdout.Bytes(), nil
}

// decode splits a multi-document YAML stream into objects, dropping empty documents.
func decode(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatalf("decoding rendered YAML: %v", err)
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
}

// rendered is the output of one render, with typed access to the objects under test.
type rendered []*unstructured.Unstructured

func (r rendered) find(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range r {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// one converts the single object of a kind into a typed object.
func one[T any](g Gomega, r rendered, kind string) *T {
	objs := r.find(kind)
	g.ExpectWithOffset(1, objs).To(HaveLen(1), "want exactly one %s", kind)
	return as[T](g, objs[0])
}

// as converts one rendered object into a typed object.
func as[T any](g Gomega, o *unstructured.Unstructured) *T {
	var typed T
	g.ExpectWithOffset(1, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &typed)).To(Succeed())
	return &typed
}

var nsCounter atomic.Int64

// newNamespaceName is a fresh namespace name; dryRun creates the namespace.
func newNamespaceName() string {
	return fmt.Sprintf("m%d-%d", time.Now().UnixNano()%1_000_000, nsCounter.Add(1))
}

// ensureNamespace creates a namespace that enforces the "restricted" Pod Security
// Standard, so that the API server warns about any workload that would not run there.
func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
	}}}
	err := env.Client.Create(context.Background(), ns)
	if apierrors.IsAlreadyExists(err) {
		return
	}
	if err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), ns) })
}

// warnings collects the API server's warnings (deprecated APIs, Pod Security violations).
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.list
	w.list = nil
	return out
}

// dryRun sends every object to the API server as a strict server-side dry-run: create, or
// update when it exists already (the CRDs testenv installed, namespaces). Namespaces are
// created for real first, since nothing can be dry-run into a missing namespace. Any
// warning fails the object too: a workload that breaks the restricted Pod Security
// Standard, or a deprecated API, only warns.
func dryRun(t *testing.T, objs rendered) {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	warned := &warnings{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = warned
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	g.Expect(err).NotTo(HaveOccurred())
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			ensureNamespace(t, o.GetName())
		}
		if ns := o.GetNamespace(); ns != "" {
			ensureNamespace(t, ns)
		}
	}
	for _, o := range objs {
		obj := o.DeepCopy()
		what := obj.GetKind() + " " + obj.GetNamespace() + "/" + obj.GetName()
		err := c.Create(ctx, obj, client.DryRunAll, client.FieldValidation("Strict"))
		if apierrors.IsAlreadyExists(err) {
			existing := &unstructured.Unstructured{}
			existing.SetGroupVersionKind(obj.GroupVersionKind())
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(obj), existing)).To(Succeed(), what)
			obj.SetResourceVersion(existing.GetResourceVersion())
			err = c.Update(ctx, obj, client.DryRunAll, client.FieldValidation("Strict"))
		}
		g.Expect(err).NotTo(HaveOccurred(), what)
		g.Expect(warned.take()).To(BeEmpty(), "API server warnings for %s", what)
	}
}

// installServiceMonitorCRD installs a minimal ServiceMonitor CRD (see testdata) so the
// chart's ServiceMonitor can be dry-run; its spec is not checked beyond the envelope.
func installServiceMonitorCRD(t *testing.T) {
	t.Helper()
	installCRD(t, "servicemonitor-crd.yaml")
	installCRD(t, "prometheusrule-crd.yaml")
}

func installCRD(t *testing.T, file string) {
	t.Helper()
	g := NewWithT(t)
	data, err := os.ReadFile(filepath.Join("testdata", file))
	g.Expect(err).NotTo(HaveOccurred())
	var crd apiextensionsv1.CustomResourceDefinition
	g.Expect(yaml.UnmarshalStrict(data, &crd)).To(Succeed())
	ctx := context.Background()
	if err := env.Client.Create(ctx, &crd); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("installing the CRD in %s: %v", file, err)
	}
	g.Eventually(func(g Gomega) {
		var got apiextensionsv1.CustomResourceDefinition
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(&crd), &got)).To(Succeed())
		established := slices.ContainsFunc(got.Status.Conditions, func(c apiextensionsv1.CustomResourceDefinitionCondition) bool {
			return c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue
		})
		g.Expect(established).To(BeTrue())
	}).WithTimeout(10 * time.Second).Should(Succeed())
}

func TestChart_copiesOfGeneratedFilesAreCurrent(t *testing.T) {
	g := NewWithT(t)
	want, err := filepath.Glob(filepath.Join(crdBases, "*.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	got, err := filepath.Glob(filepath.Join(chartDir, "crds", "*.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	base := func(paths []string) []string {
		out := make([]string, len(paths))
		for i, p := range paths {
			out[i] = filepath.Base(p)
		}
		return out
	}
	g.Expect(base(got)).To(Equal(base(want)), "chart CRDs differ from config/crd/bases: run `make chart-crds`")
	pairs := map[string]string{roleYAML: chartRole}
	for _, p := range want {
		pairs[p] = filepath.Join(chartDir, "crds", filepath.Base(p))
	}
	for src, dst := range pairs {
		a, err := os.ReadFile(src)
		g.Expect(err).NotTo(HaveOccurred())
		b, err := os.ReadFile(dst)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(b)).To(Equal(string(a)), "%s differs from %s: run `make chart-crds`", dst, src)
	}
}

// generatedRules are the manager's rules as controller-gen wrote them.
func generatedRules(g Gomega) []rbacv1.PolicyRule {
	data, err := os.ReadFile(roleYAML)
	g.Expect(err).NotTo(HaveOccurred())
	var role rbacv1.ClusterRole
	g.Expect(yaml.Unmarshal(data, &role)).To(Succeed())
	g.Expect(role.Rules).NotTo(BeEmpty())
	return role.Rules
}

func args(d *appsv1.Deployment) []string { return d.Spec.Template.Spec.Containers[0].Args }

// named converts the single object of a kind whose name ends in suffix.
func named[T any](g Gomega, r rendered, kind, suffix string) *T {
	var match []*unstructured.Unstructured
	for _, o := range r.find(kind) {
		if strings.HasSuffix(o.GetName(), suffix) {
			match = append(match, o)
		}
	}
	g.ExpectWithOffset(1, match).To(HaveLen(1), "want exactly one %s named *%s", kind, suffix)
	return as[T](g, match[0])
}

// expectShipped checks the release plumbing of a default install: graceful rollouts,
// metrics behind authentication, aggregated roles for the CRDs.
func expectShipped(g Gomega, r rendered) {
	d := one[appsv1.Deployment](g, r, "Deployment")
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	g.Expect(c.Lifecycle).NotTo(BeNil())
	g.Expect(c.Lifecycle.PreStop.Sleep).NotTo(BeNil(), "a preStop delay the kubelet runs (the image has no shell)")
	preStop := c.Lifecycle.PreStop.Sleep.Seconds
	g.Expect(preStop).To(BeNumerically(">", 0))
	g.Expect(c.Args).To(ContainElement("--shutdown-drain-timeout=60s"))
	g.Expect(pod.TerminationGracePeriodSeconds).To(HaveValue(BeNumerically(">=", preStop+60+15)),
		"the grace period covers the preStop delay, the SCIM drain and the manager's stop")
	g.Expect(c.Args).To(ContainElement("--metrics-secure=true"))
	g.Expect(c.Image).To(HaveSuffix(":"+chartAppVersion(g)), "the chart's default image is the one `make image` tags")
	named[rbacv1.ClusterRole](g, r, "ClusterRole", "-metrics-reader")
	auth := named[rbacv1.ClusterRole](g, r, "ClusterRole", "-metrics-auth")
	g.Expect(auth.Rules).To(ConsistOf(
		HaveField("Resources", ConsistOf("tokenreviews")), HaveField("Resources", ConsistOf("subjectaccessreviews"))))
	viewer := named[rbacv1.ClusterRole](g, r, "ClusterRole", "-viewer")
	g.Expect(viewer.Labels).To(HaveKeyWithValue("rbac.authorization.k8s.io/aggregate-to-view", "true"))
	for _, rule := range viewer.Rules {
		g.Expect(rule.Verbs).To(ConsistOf("get", "list", "watch"))
	}
	editor := named[rbacv1.ClusterRole](g, r, "ClusterRole", "-editor")
	g.Expect(editor.Labels).To(HaveKeyWithValue("rbac.authorization.k8s.io/aggregate-to-edit", "true"))
	g.Expect(editor.Labels).NotTo(HaveKey("rbac.authorization.k8s.io/aggregate-to-view"))
	g.Expect(r.find("PrometheusRule")).To(BeEmpty(), "monitoring objects are opt-in")
	g.Expect(r.find("ConfigMap")).To(BeEmpty())
}

func chartAppVersion(g Gomega) string {
	data, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	g.Expect(yaml.Unmarshal(data, &chart)).To(Succeed())
	return chart.AppVersion
}

// stackscimMetric matches a metric name in an alert or a dashboard query.
var stackscimMetric = regexp.MustCompile(`stackscim_[a-z_]+`)

// expectMonitoring checks the PrometheusRule and the Grafana dashboard: the alerts that
// matter are there, and every stackscim_ series they query is one the code defines (a
// renamed metric would leave an alert that never fires).
func expectMonitoring(g Gomega, r rendered) {
	rules := r.find("PrometheusRule")
	g.Expect(rules).To(HaveLen(1))
	groups, _, _ := unstructured.NestedSlice(rules[0].Object, "spec", "groups")
	g.Expect(groups).NotTo(BeEmpty())
	var alerts, exprs []string
	for _, grp := range groups {
		for _, rule := range grp.(map[string]any)["rules"].([]any) {
			m := rule.(map[string]any)
			alerts = append(alerts, m["alert"].(string))
			exprs = append(exprs, fmt.Sprint(m["expr"]))
		}
	}
	g.Expect(alerts).To(ContainElements("StackScimTenantNotReady", "StackScimUnauthorizedSpike", "StackScimSiteThrottled",
		"StackScimSiteErrors", "StackScimDrift", "StackScimRoleChangesBlocked", "StackScimBacklogGrowing",
		"StackScimChangesHeld"))
	dash := one[corev1.ConfigMap](g, r, "ConfigMap")
	g.Expect(dash.Namespace).To(Equal("monitoring"))
	g.Expect(dash.Labels).To(HaveKeyWithValue("grafana_dashboard", "1"))
	g.Expect(dash.Data).To(HaveKey("stack-scim-operator.json"))
	var board map[string]any
	g.Expect(json.Unmarshal([]byte(dash.Data["stack-scim-operator.json"]), &board)).To(Succeed())
	exprs = append(exprs, dash.Data["stack-scim-operator.json"])

	defined := definedMetrics(g)
	for _, e := range exprs {
		for _, name := range stackscimMetric.FindAllString(e, -1) {
			name = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")
			g.Expect(defined).To(HaveKey(name), "%s is queried but no code defines it", name)
		}
	}
}

// definedMetrics are the stackscim_ metric names in the Go sources (metric options and
// descriptors name them as string literals).
func definedMetrics(g Gomega) map[string]bool {
	out := map[string]bool{}
	lit := regexp.MustCompile(`"(stackscim_[a-z_]+)"`)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "bin" || d.Name() == ".git" || d.Name() == "hack") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range lit.FindAllStringSubmatch(string(src), -1) {
			out[m[1]] = true
		}
		return nil
	})
	g.Expect(err).NotTo(HaveOccurred())
	return out
}

// expectHardenedManager checks what every rendering of the manager must have.
func expectHardenedManager(g Gomega, d *appsv1.Deployment) {
	pod := d.Spec.Template.Spec
	g.Expect(pod.SecurityContext.RunAsNonRoot).To(HaveValue(BeTrue()))
	g.Expect(pod.SecurityContext.SeccompProfile.Type).To(Equal(corev1.SeccompProfileTypeRuntimeDefault))
	g.Expect(pod.Containers).To(HaveLen(1))
	c := pod.Containers[0]
	g.Expect(c.SecurityContext.ReadOnlyRootFilesystem).To(HaveValue(BeTrue()))
	g.Expect(c.SecurityContext.AllowPrivilegeEscalation).To(HaveValue(BeFalse()))
	g.Expect(c.SecurityContext.Capabilities.Drop).To(ConsistOf(corev1.Capability("ALL")))
	g.Expect(c.LivenessProbe.HTTPGet.Path).To(Equal("/healthz"))
	g.Expect(c.ReadinessProbe.HTTPGet.Path).To(Equal("/readyz"))
	g.Expect(c.Ports).To(ContainElement(And(
		HaveField("Name", "probes"), HaveField("ContainerPort", int32(8081)))))
	g.Expect(c.Args).To(ContainElement("--health-probe-bind-address=:8081"))
	g.Expect(c.Resources.Requests).NotTo(BeEmpty())
	g.Expect(c.Resources.Limits).NotTo(BeEmpty())
}

func TestChart_rendersValidObjects(t *testing.T) {
	helm := tool(t, "HELM")
	installServiceMonitorCRD(t)
	tests := map[string]struct {
		values string // file in testdata; "" renders the defaults
		check  func(g Gomega, ns string, r rendered)
	}{
		"defaults": {
			check: func(g Gomega, ns string, r rendered) {
				d := one[appsv1.Deployment](g, r, "Deployment")
				expectHardenedManager(g, d)
				g.Expect(d.Spec.Replicas).To(HaveValue(Equal(int32(2))))
				g.Expect(args(d)).To(ContainElement("--leader-elect"))
				g.Expect(strings.Join(args(d), " ")).NotTo(ContainSubstring("--scim-external-url"))
				svc := one[corev1.Service](g, r, "Service")
				g.Expect(svc.Spec.Ports).To(ConsistOf(HaveField("Name", "scim"), HaveField("Name", "metrics")))
				cr := named[rbacv1.ClusterRole](g, r, "ClusterRole", "-manager")
				g.Expect(cr.Rules).To(Equal(generatedRules(g)))
				expectShipped(g, r)
				g.Expect(r.find("Role")).To(HaveLen(1), "leader election Role")
				g.Expect(r.find("PodDisruptionBudget")).To(HaveLen(1))
				g.Expect(r.find("CustomResourceDefinition")).To(HaveLen(3), "StackUser, StackGroup and ScimSettings")
				for _, kind := range []string{"Ingress", "ServiceMonitor", "NetworkPolicy", "ScimSettings", "Secret"} {
					g.Expect(r.find(kind)).To(BeEmpty(), kind)
				}
			},
		},
		"ingress, TLS, ServiceMonitor, NetworkPolicy and a tenant": {
			values: "values-full.yaml",
			check: func(g Gomega, ns string, r rendered) {
				d := one[appsv1.Deployment](g, r, "Deployment")
				expectHardenedManager(g, d)
				g.Expect(args(d)).To(ContainElements(
					"--scim-external-url=https://scim.example.com",
					"--scim-tls-cert-file=/etc/scim-tls/tls.crt",
					"--watch-namespace=tenants",
					"--zap-log-level=debug"))
				ing := one[networkingv1.Ingress](g, r, "Ingress")
				g.Expect(ing.Spec.IngressClassName).To(HaveValue(Equal("nginx")))
				g.Expect(ing.Spec.TLS).To(ConsistOf(HaveField("SecretName", "scim-example-tls")))
				g.Expect(ing.Annotations).To(HaveKeyWithValue("cert-manager.io/cluster-issuer", "letsencrypt"))
				g.Expect(ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port.Name).To(Equal("scim"))
				g.Expect(r.find("ServiceMonitor")).To(HaveLen(1))
				np := one[networkingv1.NetworkPolicy](g, r, "NetworkPolicy")
				g.Expect(np.Spec.PolicyTypes).To(ConsistOf(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress))
				s := one[scimv1.ScimSettings](g, r, "ScimSettings")
				g.Expect(s.Namespace).To(Equal(ns))
				g.Expect(s.Spec.BasePath).To(Equal("/scim/v2/acme"))
				g.Expect(s.Spec.AllowModeratorPromotion).To(BeTrue())
				g.Expect(s.Spec.BearerTokenSecretRef).To(Equal(scimv1.BearerTokenSecretReference{
					Name: "acme-scim-token", Key: "token", NextKey: "next"}))
				g.Expect(s.Spec.Site.URL).To(Equal("https://stack.example.com/api/scim/v2"))
				g.Expect(s.Spec.Site.Timeout.Duration).To(Equal(10 * time.Second))
				g.Expect(s.Spec.Site.RequestsPerSecond).To(Equal(int32(5)))
				g.Expect(r.find("Secret")).To(HaveLen(2))
				// One watched namespace: the manager's rules are a Role there, so it cannot
				// read Secrets anywhere else.
				// The ClusterRoles it does render (metrics authentication, the aggregated
				// viewer and editor) grant nothing on Secrets.
				for _, o := range r.find("ClusterRole") {
					for _, rule := range as[rbacv1.ClusterRole](g, o).Rules {
						g.Expect(rule.Resources).NotTo(ContainElement(BeElementOf("secrets", "*")), o.GetName())
					}
				}
				expectMonitoring(g, r)
				var manager *rbacv1.Role
				for _, o := range r.find("Role") {
					role := as[rbacv1.Role](g, o)
					if strings.HasSuffix(role.Name, "-manager") {
						manager = role
					}
				}
				g.Expect(manager).NotTo(BeNil())
				g.Expect(manager.Namespace).To(Equal("tenants"))
				g.Expect(manager.Rules).To(Equal(generatedRules(g)))
				binding := false
				for _, o := range r.find("RoleBinding") {
					rb := as[rbacv1.RoleBinding](g, o)
					if rb.Namespace == "tenants" && rb.RoleRef.Kind == "Role" && rb.RoleRef.Name == manager.Name {
						binding = true
					}
				}
				g.Expect(binding).To(BeTrue(), "a RoleBinding in the watched namespace")
			},
		},
		"several watched namespaces": {
			values: "values-multi.yaml",
			check: func(g Gomega, ns string, r rendered) {
				d := one[appsv1.Deployment](g, r, "Deployment")
				g.Expect(args(d)).To(ContainElement("--watch-namespace=tenants-a,tenants-b"))
				// The ClusterRoles it renders (metrics authentication, the aggregated viewer
				// and editor) grant nothing on Secrets: no cluster-wide read of Secrets.
				for _, o := range r.find("ClusterRole") {
					for _, rule := range as[rbacv1.ClusterRole](g, o).Rules {
						g.Expect(rule.Resources).NotTo(ContainElement(BeElementOf("secrets", "*")), o.GetName())
					}
				}
				roles := map[string]bool{}
				for _, o := range r.find("Role") {
					role := as[rbacv1.Role](g, o)
					if strings.HasSuffix(role.Name, "-manager") {
						g.Expect(role.Rules).To(Equal(generatedRules(g)))
						roles[role.Namespace] = true
					}
				}
				g.Expect(roles).To(Equal(map[string]bool{"tenants-a": true, "tenants-b": true}))
				bound := map[string]bool{}
				for _, o := range r.find("RoleBinding") {
					rb := as[rbacv1.RoleBinding](g, o)
					if rb.RoleRef.Kind == "Role" && strings.HasSuffix(rb.RoleRef.Name, "-manager") {
						bound[rb.Namespace] = true
					}
				}
				g.Expect(bound).To(Equal(roles))
			},
		},
		"two shards": {
			values: "values-shards.yaml",
			check: func(g Gomega, ns string, r rendered) {
				// One manager per shard, each watching only its namespaces under its own Lease.
				want := map[string][]string{"a": {"shard-ns-a"}, "b": {"shard-ns-b", "shard-ns-c"}}
				deployments := r.find("Deployment")
				g.Expect(deployments).To(HaveLen(2))
				services := map[string]string{} // shard → Service name
				for _, o := range r.find("Service") {
					svc := as[corev1.Service](g, o)
					services[svc.Spec.Selector["scim.stackscim.io/shard"]] = svc.Name
				}
				for _, o := range deployments {
					d := as[appsv1.Deployment](g, o)
					expectHardenedManager(g, d)
					shard := d.Spec.Selector.MatchLabels["scim.stackscim.io/shard"]
					g.Expect(want).To(HaveKey(shard))
					g.Expect(d.Spec.Template.Labels).To(HaveKeyWithValue("scim.stackscim.io/shard", shard))
					g.Expect(args(d)).To(ContainElements(
						"--watch-namespace="+strings.Join(want[shard], ","),
						"--leader-election-id="+shard+".stack-scim-operator.scim.stackscim.io"))
					g.Expect(services).To(HaveKey(shard))
				}
				g.Expect(r.find("PodDisruptionBudget")).To(HaveLen(2))
				// A Role in every shard namespace, none cluster-wide for the manager.
				roles := map[string]bool{}
				for _, o := range r.find("Role") {
					if role := as[rbacv1.Role](g, o); strings.HasSuffix(role.Name, "-manager") {
						roles[role.Namespace] = true
					}
				}
				g.Expect(roles).To(Equal(map[string]bool{"shard-ns-a": true, "shard-ns-b": true, "shard-ns-c": true}))
				for _, o := range r.find("ClusterRole") {
					g.Expect(o.GetName()).NotTo(HaveSuffix("-manager"))
				}
				// The Ingress sends each namespace's tenants to its shard.
				ing := one[networkingv1.Ingress](g, r, "Ingress")
				routes := map[string]string{}
				for _, p := range ing.Spec.Rules[0].HTTP.Paths {
					routes[p.Path] = p.Backend.Service.Name
				}
				g.Expect(routes).To(Equal(map[string]string{
					"/scim/v2/shard-ns-a": services["a"], "/scim/v2/shard-ns-b": services["b"], "/scim/v2/shard-ns-c": services["b"]}))
			},
		},
		"one replica without leader election": {
			values: "values-single.yaml",
			check: func(g Gomega, ns string, r rendered) {
				d := one[appsv1.Deployment](g, r, "Deployment")
				expectHardenedManager(g, d)
				g.Expect(d.Spec.Replicas).To(HaveValue(Equal(int32(1))))
				g.Expect(args(d)).NotTo(ContainElement("--leader-elect"))
				g.Expect(args(d)).To(ContainElement("--scim-external-url=https://scim.internal.example.com"))
				g.Expect(r.find("Role")).To(BeEmpty(), "no leader election, no Role")
				g.Expect(r.find("PodDisruptionBudget")).To(BeEmpty(), "a PDB would block drains with one replica")
				g.Expect(r.find("Secret")).To(BeEmpty(), "tokens come from existing Secrets")
				s := one[scimv1.ScimSettings](g, r, "ScimSettings")
				g.Expect(s.Spec.Site.TokenSecretRef).To(Equal(scimv1.SecretKeyReference{Name: "site-token", Key: "scim"}))
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			ns := newNamespaceName()
			lintArgs := []string{"lint", "--strict", chartDir}
			tmplArgs := []string{"template", "scim", chartDir, "--namespace", ns, "--include-crds"}
			if tc.values != "" {
				f := filepath.Join("internal", "manifests", "testdata", tc.values)
				lintArgs = append(lintArgs, "-f", f)
				tmplArgs = append(tmplArgs, "-f", f)
			}
			out, err := run(helm, lintArgs...)
			g.Expect(err).NotTo(HaveOccurred(), "helm lint: %s", out)
			out, err = run(helm, tmplArgs...)
			g.Expect(err).NotTo(HaveOccurred(), "helm template")
			r := rendered(decode(t, out))
			tc.check(g, ns, r)
			dryRun(t, r)
		})
	}
}

func TestChart_rejectsBadValues(t *testing.T) {
	helm := tool(t, "HELM")
	tests := map[string]struct {
		values  string
		wantErr string
	}{
		"misspelt key (schema)":                    {values: "values-bad-typo.yaml", wantErr: "ingres"},
		"several replicas without leader election": {values: "values-bad-leader.yaml", wantErr: "leaderElection.enabled=false needs replicaCount: 1"},
		"a namespace in two shards":                {values: "values-bad-shards.yaml", wantErr: `namespace "shard-ns-a" is in two shards`},
		"shards and watchNamespace":                {values: "values-bad-shards-watch.yaml", wantErr: "set either watchNamespace or shards"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := run(helm, "template", "scim", chartDir, "-f", filepath.Join("internal", "manifests", "testdata", tc.values))
			g.Expect(err).To(MatchError(ContainSubstring(tc.wantErr)))
		})
	}
}

func TestChart_notesTellHowToFindTheSCIMURL(t *testing.T) {
	helm := tool(t, "HELM")
	g := NewWithT(t)
	// NOTES.txt renders only on install; even a client-side dry-run asks the cluster for its
	// version, so point helm at the test control plane.
	out, err := run(helm, "install", "scim", chartDir, "--namespace", "ops", "--dry-run=client",
		"--kubeconfig", writeKubeconfig(t),
		"--set", "ingress.enabled=true", "--set", "ingress.host=scim.example.com", "--set", "ingress.tls.enabled=true")
	g.Expect(err).NotTo(HaveOccurred())
	notes := string(out[bytes.Index(out, []byte("NOTES:")):])
	g.Expect(notes).To(ContainSubstring("kubectl get scimsettings -A -o wide"))
	g.Expect(notes).To(ContainSubstring("(here: https://scim.example.com)"))
}

// writeKubeconfig writes a kubeconfig for the test control plane.
func writeKubeconfig(t *testing.T) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: env.Config.CertData, ClientKeyData: env.Config.KeyData, Token: env.Config.BearerToken,
	}
	cfg.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	cfg.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatalf("writing kubeconfig: %v", err)
	}
	return path
}

func TestKustomize_defaultAndSamplesAreValid(t *testing.T) {
	kubectl := tool(t, "KUBECTL")
	t.Run("config/default", func(t *testing.T) {
		g := NewWithT(t)
		out, err := run(kubectl, "kustomize", "config/default")
		g.Expect(err).NotTo(HaveOccurred())
		r := rendered(decode(t, out))
		d := one[appsv1.Deployment](g, r, "Deployment")
		expectHardenedManager(g, d)
		g.Expect(d.Namespace).To(Equal("stack-scim-system"))
		g.Expect(args(d)).To(ContainElement("--leader-elect"))
		cr := one[rbacv1.ClusterRole](g, r, "ClusterRole")
		g.Expect(cr.Rules).To(Equal(generatedRules(g)))
		g.Expect(r.find("CustomResourceDefinition")).To(HaveLen(3), "StackUser, StackGroup and ScimSettings")
		dryRun(t, r)
	})
	t.Run("config/samples", func(t *testing.T) {
		g := NewWithT(t)
		out, err := run(kubectl, "kustomize", "config/samples")
		g.Expect(err).NotTo(HaveOccurred())
		r := rendered(decode(t, out))
		g.Expect(r.find("ScimSettings")).To(HaveLen(1))
		g.Expect(r.find("StackUser")).To(HaveLen(1))
		ns := newNamespaceName()
		for _, o := range r {
			o.SetNamespace(ns)
		}
		dryRun(t, r)
	})
}
