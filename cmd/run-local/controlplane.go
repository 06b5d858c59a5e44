package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/stackscim/stack-scim-operator/internal/scheme"
)

// controlPlane is a local kube-apiserver and etcd with the CRDs installed.
type controlPlane struct {
	env        *envtest.Environment
	config     *rest.Config
	client     client.Client
	kubeconfig string
}

// startControlPlane boots the binaries hack/build-tools.sh built (KUBEBUILDER_ASSETS, as
// the Makefile exports it, or the version-keyed folder hack/versions.sh names) and writes an
// administrator kubeconfig for kubectl.
func startControlPlane(root, kubeconfig string) (*controlPlane, error) {
	assets, err := assetsDir(root)
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	cp := &controlPlane{env: env, config: cfg, kubeconfig: kubeconfig}
	if err := cp.init(); err != nil {
		cp.stop()
		return nil, err
	}
	return cp, nil
}

func (cp *controlPlane) init() error {
	var err error
	if cp.client, err = client.New(cp.config, client.Options{Scheme: scheme.New()}); err != nil {
		return err
	}
	user, err := cp.env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding the kubeconfig user: %w", err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return err
	}
	return os.WriteFile(cp.kubeconfig, data, 0o600)
}

// kubectl is the kubectl built next to kube-apiserver, or plain "kubectl" from PATH.
func (cp *controlPlane) kubectl() string {
	p := filepath.Join(cp.env.BinaryAssetsDirectory, "kubectl")
	if _, err := os.Stat(p); err != nil {
		return "kubectl"
	}
	return p
}

func (cp *controlPlane) stop() {
	if err := cp.env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "run-local: stopping the control plane:", err)
	}
}

func assetsDir(root string) (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		out, err := exec.Command(filepath.Join(root, "hack", "versions.sh"), "print").Output()
		if err != nil {
			return "", fmt.Errorf("hack/versions.sh print: %w", err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(line, "ENVTEST_ASSETS="); ok {
				dir = v
			}
		}
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return "", fmt.Errorf("no %s in %q: run `make run-local` (it builds them) or `make controlplane`", bin, dir)
		}
	}
	return dir, nil
}
