package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

	"github.com/stackscim/stack-scim-operator/internal/sitesim"
	"github.com/stackscim/stack-scim-operator/internal/testenv"
)

// installation is the chart installed the way `helm install` would, minus the pods (the
// local control plane runs no kubelet): every rendered object is created, and the tests
// run the manager themselves with the rendered Deployment's args, env and ServiceAccount.
type installation struct {
	release, namespace string
	// tenantNamespace holds the tenant (ScimSettings, Secrets, StackUsers).
	tenantNamespace string
	container       corev1.Container
	deployment      *appsv1.Deployment
	serviceAccount  string
	// token is the ServiceAccount's token from the TokenRequest API.
	token string
	// clusterRoles are the names of the rendered ClusterRoles.
	clusterRoles []string
	// ports the chart was rendered with (free ones, so tests do not collide).
	scimPort, probePort, metricsPort int
}

// helmBinary is the pinned helm: $HELM when make exported it (then it must exist), else
// the path hack/versions.sh names.
func helmBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HELM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("HELM=%s is not there: build it with `make helm`: %v", p, err)
		}
		return p
	}
	out, err := exec.Command(filepath.Join(testenv.RepoRoot(), "hack", "versions.sh"), "print").Output()
	if err != nil {
		t.Fatalf("hack/versions.sh print: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if p, ok := strings.CutPrefix(line, "HELM="); ok {
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("helm is not built at %s: run `make helm` (make test does)", p)
			}
			return p
		}
	}
	t.Fatal("hack/versions.sh print names no HELM")
	return ""
}

func freePort(t *testing.T) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(freeAddr(t))
	var p int
	_, _ = fmt.Sscan(port, &p)
	return p
}

// installChart renders the chart into a fresh release namespace with the given --set
// values and creates every object as cluster admin, as helm install does. The tenant
// lives in its own namespace; watchNamespace, when set, is that namespace.
func installChart(t *testing.T, watchTenantNamespace bool, set ...string) *installation {
	t.Helper()
	g := NewWithT(t)
	in := &installation{
		namespace:       env.Namespace(t),
		tenantNamespace: env.Namespace(t),
		scimPort:        freePort(t),
		probePort:       freePort(t),
		metricsPort:     freePort(t),
	}
	in.release = "r" + in.namespace
	args := []string{"template", in.release, filepath.Join(testenv.RepoRoot(), "charts", "stack-scim-operator"),
		"--namespace", in.namespace,
		"--set", fmt.Sprintf("scim.port=%d,probes.port=%d,metrics.port=%d", in.scimPort, in.probePort, in.metricsPort)}
	if watchTenantNamespace {
		args = append(args, "--set", "watchNamespace="+in.tenantNamespace)
	}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(helmBinary(t), args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	g.Expect(err).NotTo(HaveOccurred(), "helm template: %s", stderr.String())

	ctx := context.Background()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			g.Expect(errors.Is(err, io.EOF)).To(BeTrue(), "decoding the rendered chart: %v", err)
			break
		}
		if len(m) == 0 {
			continue
		}
		obj := &unstructured.Unstructured{Object: m}
		g.Expect(env.Client.Create(ctx, obj)).To(Succeed(), "creating %s %s", obj.GetKind(), obj.GetName())
		if obj.GetNamespace() == "" {
			t.Cleanup(func() { _ = env.Client.Delete(context.Background(), obj) })
		}
		switch obj.GetKind() {
		case "ClusterRole":
			in.clusterRoles = append(in.clusterRoles, obj.GetName())
		case "Deployment":
			in.deployment = &appsv1.Deployment{}
			g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(m, in.deployment)).To(Succeed())
			in.container = in.deployment.Spec.Template.Spec.Containers[0]
			in.serviceAccount = in.deployment.Spec.Template.Spec.ServiceAccountName
		}
	}
	g.Expect(in.deployment).NotTo(BeNil(), "the chart renders a Deployment")
	in.token = saToken(t, in.namespace, in.serviceAccount)
	return in
}

// token asks the TokenRequest API for a token of a ServiceAccount, as the kubelet does
// for a pod's projected token.
func saToken(t *testing.T, namespace, name string) string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(context.Background(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s/%s: %v", namespace, name, err)
	}
	return tr.Status.Token
}

// asToken is a rest.Config that authenticates with token only (no admin certificate).
func asToken(token string) *rest.Config {
	return &rest.Config{Host: env.Config.Host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: env.Config.CAData}}
}

// kubeconfigFor writes a kubeconfig that reaches the control plane with token.
func kubeconfigFor(t *testing.T, token string) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	cfg.AuthInfos["sa"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["sa"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "sa"}
	cfg.CurrentContext = "sa"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// containerEnv is the rendered container's env as KEY=value lines (literal values only).
func (in *installation) containerEnv() []string {
	var out []string
	for _, e := range in.container.Env {
		if e.ValueFrom == nil {
			out = append(out, e.Name+"="+e.Value)
		}
	}
	return out
}

// startInstalled runs the manager binary as the installation's pod would: the rendered
// args and env, the ServiceAccount's token from the TokenRequest API. Outside a pod the
// manager cannot read its namespace from the token mount, so it is passed as the
// leader election namespace.
func (in *installation) startInstalled(t *testing.T) *operator {
	t.Helper()
	kc := kubeconfigFor(t, in.token)
	args := append(append([]string{}, in.container.Args...), "--leader-election-namespace="+in.namespace)
	p := start(t, "manager", append(in.containerEnv(), "KUBECONFIG="+kc), args...)
	return &operator{process: p, scimAddr: fmt.Sprintf("127.0.0.1:%d", in.scimPort)}
}

// waitReady polls the rendered readiness probe until it answers 200, as the kubelet would.
func (in *installation) waitReady(t *testing.T) {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d%s", in.probePort, in.container.ReadinessProbe.HTTPGet.Path)
	NewWithT(t).Eventually(func() int {
		resp, err := http.Get(url)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}, 90*time.Second, 100*time.Millisecond).Should(Equal(http.StatusOK), "readiness probe %s", url)
}

// playOktaFlow is the short Okta lifecycle an install test proves: credentials test,
// lookup, create, then deactivate, each seen on the site.
func playOktaFlow(t *testing.T, okta *scimClient, site *site) string {
	t.Helper()
	g := NewWithT(t)
	userName := "ada.lovelace@example.com"
	g.Eventually(func() int { code, _ := okta.do(http.MethodGet, "/Users?startIndex=1&count=2", nil); return code },
		60*time.Second, 100*time.Millisecond).Should(Equal(http.StatusOK))
	code, list := okta.do(http.MethodGet, `/Users?filter=userName%20eq%20%22`+userName+`%22&startIndex=1&count=100`, nil)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(list["totalResults"]).To(BeEquivalentTo(0))
	code, created := okta.do(http.MethodPost, "/Users", map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": userName, "externalId": "00u2okta", "active": true,
		"name":   map[string]any{"givenName": "Ada", "familyName": "Lovelace"},
		"emails": []any{map[string]any{"primary": true, "value": userName, "type": "work"}},
	})
	g.Expect(code).To(Equal(http.StatusCreated), "%v", created)
	id, _ := created["id"].(string)
	g.Eventually(func() *sitesim.User { return site.user(userName) }, 60*time.Second, 100*time.Millisecond).Should(
		And(Not(BeNil()), HaveField("Active", true), HaveField("ExternalID", "00u2okta")))
	code, _ = okta.do(http.MethodPatch, "/Users/"+id, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"active": false}}},
	})
	g.Expect(code).To(BeElementOf(http.StatusOK, http.StatusNoContent))
	g.Eventually(func() *sitesim.User { return site.user(userName) }, 60*time.Second, 100*time.Millisecond).Should(HaveField("Active", false))
	return id
}
