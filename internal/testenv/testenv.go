// Package testenv boots a real kube-apiserver and etcd (envtest) with the project's CRDs
// installed, for the tests of controllers/ and internal/. The binaries are built from Go
// modules by hack/build-tools.sh; `make test` does that and sets KUBEBUILDER_ASSETS.
package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/stackscim/stack-scim-operator/internal/scheme"
)

// Env is a running control plane with the CRDs installed.
type Env struct {
	// Config reaches the API server as an administrator.
	Config *rest.Config
	// Client is an uncached client with the project's scheme.
	Client client.Client
	// Scheme knows the core types and the project's API types.
	Scheme *k8sruntime.Scheme

	env *envtest.Environment
}

// RepoRoot is the repository's top folder, found from this source file.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// assets finds the folder holding kube-apiserver and etcd: KUBEBUILDER_ASSETS, or the
// version-keyed folder hack/build-tools.sh builds into.
func assets() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	out, err := exec.Command(filepath.Join(RepoRoot(), "hack", "versions.sh"), "print").Output()
	if err != nil {
		return "", fmt.Errorf("reading hack/versions.sh: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if dir, ok := strings.CutPrefix(line, "ENVTEST_ASSETS="); ok {
			if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err != nil {
				return "", fmt.Errorf("no kube-apiserver in %s: run `make controlplane` (or `make test`) first", dir)
			}
			return dir, nil
		}
	}
	return "", fmt.Errorf("hack/versions.sh printed no ENVTEST_ASSETS")
}

// Start boots the control plane and installs the CRDs from config/crd/bases.
func Start() (*Env, error) {
	dir, err := assets()
	if err != nil {
		return nil, err
	}
	e := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: dir,
	}
	cfg, err := e.Start()
	if err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", dir, err)
	}
	// Tests create many objects quickly; the default client-side limits only slow them.
	cfg.QPS, cfg.Burst = 1000, 2000
	s := scheme.New()
	// Tests read CRDs back (printer columns, descriptions) and dry-run rendered manifests.
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		_ = e.Stop()
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		_ = e.Stop()
		return nil, err
	}
	return &Env{Config: cfg, Client: c, Scheme: s, env: e}, nil
}

// KubeConfig returns a kubeconfig for an administrator of the control plane, for
// processes started by tests (the manager binary, kubectl).
func (e *Env) KubeConfig() ([]byte, error) {
	u, err := e.env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, err
	}
	return u.KubeConfig()
}

// Stop shuts the control plane down.
func (e *Env) Stop() error { return e.env.Stop() }

// Run is a TestMain body: it starts the control plane, runs the tests, and stops it.
// The returned *Env is published through set before the tests run.
func Run(m *testing.M, set func(*Env)) int {
	e, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	set(e)
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv: stopping:", err)
	}
	return code
}

var nsCounter atomic.Int64

// Namespace creates a fresh namespace for one test and deletes it when the test ends.
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1_000_000, nsCounter.Add(1))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := e.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() { _ = e.Client.Delete(context.Background(), ns) })
	return name
}
