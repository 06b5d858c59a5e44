package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

// The endpoints file is a contract (DESIGN.md "Local run contract"): every key, readable
// by a shell, values intact.
func TestEndpoints_writeIsShellReadable(t *testing.T) {
	g := NewWithT(t)
	path := filepath.Join(t.TempDir(), "endpoints.env")
	e := endpoints{
		scimBaseURL: "http://127.0.0.1:8090/scim/v2/scim-demo/demo", scimToken: "abc123",
		siteURL: "http://127.0.0.1:8099/api/scim/v2", siteToken: "def456",
		siteState: "http://127.0.0.1:8099/_sim/state", kubeconfig: "/tmp/with space/it's/kubeconfig",
		namespace: "scim-demo", name: "demo",
	}
	g.Expect(e.write(path)).To(Succeed())
	out, err := exec.Command("bash", "-c", `set -a; . "$0"; for k in SCIM_BASE_URL SCIM_TOKEN SITE_SCIM_URL SITE_TOKEN KUBECONFIG SETTINGS_NAMESPACE SETTINGS_NAME; do printf '%s=%s\n' "$k" "${!k}"; done`, path).Output()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(strings.Split(strings.TrimSpace(string(out)), "\n")).To(Equal([]string{
		"SCIM_BASE_URL=" + e.scimBaseURL,
		"SCIM_TOKEN=abc123",
		"SITE_SCIM_URL=" + e.siteURL,
		"SITE_TOKEN=def456",
		"KUBECONFIG=" + e.kubeconfig,
		"SETTINGS_NAMESPACE=scim-demo",
		"SETTINGS_NAME=demo",
	}))
}
