package v1alpha1_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stackscim/stack-scim-operator/internal/testenv"
)

// controllerGen finds the pinned controller-gen the Makefile builds.
func controllerGen(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CONTROLLER_GEN"); p != "" {
		return p
	}
	out, err := exec.Command(filepath.Join(testenv.RepoRoot(), "hack", "versions.sh"), "print").Output()
	if err != nil {
		t.Fatalf("hack/versions.sh: %v", err)
	}
	for _, line := range bytes.Split(out, []byte("\n")) {
		if p, ok := bytes.CutPrefix(line, []byte("CONTROLLER_GEN=")); ok {
			if _, err := os.Stat(string(p)); err != nil {
				t.Fatalf("controller-gen is not built at %s: run `make test` (or hack/build-tools.sh controller-gen)", p)
			}
			return string(p)
		}
	}
	t.Fatal("hack/versions.sh printed no CONTROLLER_GEN")
	return ""
}

// TestGenerated_upToDate regenerates the CRDs and deepcopy code into a temporary place
// and compares them with the committed files, so the CRDs can never drift from the Go
// types (run `make generate manifests` to fix a failure).
func TestGenerated_upToDate(t *testing.T) {
	gen := controllerGen(t)
	root := testenv.RepoRoot()
	tmp := t.TempDir()

	run := func(args ...string) []byte {
		cmd := exec.Command(gen, args...)
		cmd.Dir = root
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("controller-gen %v: %v\n%s", args, err, stderr.String())
		}
		return out
	}
	run("crd", "paths=./api/...", "output:crd:dir="+tmp)
	entries, err := os.ReadDir(tmp)
	if err != nil || len(entries) == 0 {
		t.Fatalf("controller-gen wrote no CRDs: %v", err)
	}
	for _, e := range entries {
		want, _ := os.ReadFile(filepath.Join(tmp, e.Name()))
		got, err := os.ReadFile(filepath.Join(root, "config", "crd", "bases", e.Name()))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("config/crd/bases/%s is out of date with api/v1alpha1: run `make manifests`", e.Name())
		}
	}

	deepcopy := run("object:headerFile=hack/boilerplate.go.txt", "paths=./api/...", "output:stdout")
	got, err := os.ReadFile(filepath.Join(root, "api", "v1alpha1", "zz_generated.deepcopy.go"))
	if err != nil || !bytes.Equal(got, deepcopy) {
		t.Errorf("api/v1alpha1/zz_generated.deepcopy.go is out of date: run `make generate`")
	}
}
