package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
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
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/sitesim"
	"github.com/stackscim/stack-scim-operator/internal/testenv"
)

var (
	env        *testenv.Env
	binDir     string
	kubeconfig string
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Run(m, func(e *testenv.Env) {
		env = e
		dir, err := os.MkdirTemp("", "scim-e2e-")
		if err != nil {
			panic(err)
		}
		binDir = dir
		for name, pkg := range map[string]string{"manager": "./cmd/manager", "site-simulator": "./cmd/site-simulator"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
			cmd.Dir = testenv.RepoRoot()
			if out, err := cmd.CombinedOutput(); err != nil {
				panic(fmt.Sprintf("building %s: %v\n%s", pkg, err, out))
			}
		}
		kc, err := e.KubeConfig()
		if err != nil {
			panic(err)
		}
		kubeconfig = filepath.Join(dir, "kubeconfig")
		if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
			panic(err)
		}
	}))
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// process is a binary the test started; its output goes to a file shown when the test fails.
type process struct {
	cmd *exec.Cmd
	log string
}

func start(t *testing.T, name string, env []string, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, log: logPath}
	t.Cleanup(func() {
		p.stop()
		_ = f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("--- last output of %s ---\n%s", name, b)
		}
	})
	return p
}

func (p *process) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// kill ends the process at once, as a node failure or OOM kill would.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// site is a running site-simulator process.
type site struct {
	scimURL string // SCIM base URL of the site
	admin   string // http://host:port of the /_sim endpoints
	token   string
}

func startSite(t *testing.T, extraArgs ...string) *site {
	t.Helper()
	addr := freeAddr(t)
	s := &site{scimURL: "http://" + addr + "/api/scim/v2", admin: "http://" + addr, token: "site-token-e2e"}
	start(t, "site-simulator", nil, append([]string{"-addr", addr, "-token", s.token}, extraArgs...)...)
	NewWithT(t).Eventually(func() error { _, err := s.state(); return err }, 30*time.Second, 50*time.Millisecond).Should(Succeed())
	return s
}

func (s *site) state() (*sitesim.State, error) {
	resp, err := http.Get(s.admin + "/_sim/state")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("state: %s", resp.Status)
	}
	st := &sitesim.State{}
	return st, json.NewDecoder(resp.Body).Decode(st)
}

func (s *site) user(userName string) *sitesim.User {
	st, err := s.state()
	if err != nil {
		return nil
	}
	var found *sitesim.User
	for i := range st.Users {
		if strings.EqualFold(st.Users[i].UserName, userName) {
			if found != nil {
				return &sitesim.User{ID: "DUPLICATE"}
			}
			found = &st.Users[i]
		}
	}
	return found
}

// tenant creates the token Secrets and a ScimSettings pointing at the site, and returns
// the ScimSettings.
func tenant(t *testing.T, ns string, s *site, mutate func(*scimv1.ScimSettings)) *scimv1.ScimSettings {
	t.Helper()
	ctx := context.Background()
	for name, token := range map[string]string{"scim-token": "idp-token-e2e", "site-token": s.token} {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: map[string]string{"token": token}}
		if err := env.Client.Create(ctx, sec); err != nil {
			t.Fatal(err)
		}
	}
	rps := int32(500)
	st := &scimv1.ScimSettings{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "okta"},
		Spec: scimv1.ScimSettingsSpec{
			BearerTokenSecretRef: scimv1.BearerTokenSecretReference{Name: "scim-token"},
			Site: scimv1.SiteSpec{
				URL:               s.scimURL,
				TokenSecretRef:    scimv1.SecretKeyReference{Name: "site-token"},
				RequestsPerSecond: rps,
				Burst:             rps,
			},
			ResyncPeriod: &metav1.Duration{Duration: time.Hour},
		},
	}
	if mutate != nil {
		mutate(st)
	}
	if err := env.Client.Create(ctx, st); err != nil {
		t.Fatal(err)
	}
	return st
}

// operator is a running manager process.
type operator struct {
	*process
	scimAddr  string
	probeAddr string
}

func startOperator(t *testing.T, namespace string, extraArgs ...string) *operator {
	t.Helper()
	return startOperatorAt(t, namespace, freeAddr(t), extraArgs...)
}

// startOperatorAt starts a manager whose SCIM server listens on scimAddr (a restart keeps
// the address, as a Service would); extraArgs are more manager flags.
func startOperatorAt(t *testing.T, namespace, scimAddr string, extraArgs ...string) *operator {
	t.Helper()
	probeAddr := freeAddr(t)
	p := start(t, "manager", []string{"KUBECONFIG=" + kubeconfig}, append([]string{
		"--metrics-bind-address=0",
		"--health-probe-bind-address=" + probeAddr,
		"--scim-bind-address=" + scimAddr,
		"--watch-namespace=" + namespace,
		"--leader-elect",
		"--leader-election-namespace=" + namespace,
	}, extraArgs...)...)
	return &operator{process: p, scimAddr: scimAddr, probeAddr: probeAddr}
}

// scimClient talks SCIM to one tenant the way Okta does.
type scimClient struct {
	base  string
	token string
	// http sends the requests; http.DefaultClient when nil.
	http *http.Client
}

func newSCIMClient(op *operator, st *scimv1.ScimSettings) *scimClient {
	return &scimClient{base: "http://" + op.scimAddr + st.EffectiveBasePath(), token: "idp-token-e2e"}
}

func (c *scimClient) do(method, path string, body any) (int, map[string]any) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			panic(err)
		}
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/scim+json")
	req.Header.Set("User-Agent", "Okta SCIM Client 1.0.0")
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json; charset=utf-8")
	}
	hc := c.http
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, map[string]any{"error": err.Error()}
	}
	defer resp.Body.Close()
	out := map[string]any{}
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

// stackUser reads the StackUser behind a SCIM id.
func stackUser(ns, id string) *scimv1.StackUser {
	u := &scimv1.StackUser{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: id}, u); err != nil {
		return nil
	}
	return u
}
