package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/stackscim/stack-scim-operator/internal/ociimage"
	"github.com/stackscim/stack-scim-operator/internal/testenv"
)

// TestContainer_imageRunsWithTheChartsPodSpec runs the image `make image` built, as the
// chart's pod would run it: runc starts it from the archive's layers with the image's
// entrypoint and user, the rendered container's args and env, a read-only root with an
// emptyDir on /tmp, no capabilities, and the ServiceAccount token mounted where
// client-go's in-cluster config reads it. The manager finds the control plane through
// KUBERNETES_SERVICE_HOST/PORT as in a cluster, turns ready, and serves an Okta flow.
//
// Container runtimes cannot always run here (podman's rlimits are refused in some
// sandboxes; runc may be missing): the test then skips and says why.
func TestContainer_imageRunsWithTheChartsPodSpec(t *testing.T) {
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc is not installed (`make test` installs it with apt-get where it can): cannot run the image")
	}
	g := NewWithT(t)
	archive, err := ociimage.Built(testenv.RepoRoot(), t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	a, err := ociimage.Open(archive)
	g.Expect(err).NotTo(HaveOccurred())
	images, err := a.Images()
	g.Expect(err).NotTo(HaveOccurred())
	var img *ociimage.Image
	for i := range images {
		if images[i].Platform.Architecture == runtime.GOARCH {
			img = &images[i]
		}
	}
	g.Expect(img).NotTo(BeNil(), "the archive has an image for %s", runtime.GOARCH)

	in := installChart(t, true)
	site := startSite(t)
	st := tenant(t, in.tenantNamespace, site, nil)

	bundle := t.TempDir()
	rootfs := filepath.Join(bundle, "rootfs")
	g.Expect(os.Mkdir(rootfs, 0o755)).To(Succeed())
	g.Expect(img.Unpack(rootfs)).To(Succeed())
	g.Expect(os.Chmod(bundle, 0o755)).To(Succeed())
	saDir := serviceAccountMount(t, in)
	g.Expect(runcConfig(t, runc, bundle, img, in, saDir)).To(Succeed())

	state := t.TempDir()
	id := "scim-" + in.namespace
	logPath := filepath.Join(t.TempDir(), "container.log")
	logFile, err := os.Create(logPath)
	g.Expect(err).NotTo(HaveOccurred())
	cmd := exec.Command(runc, "--root", state, "run", "--bundle", bundle, id)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	g.Expect(cmd.Start()).To(Succeed())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = exec.Command(runc, "--root", state, "kill", id, "TERM").Run()
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = exec.Command(runc, "--root", state, "kill", id, "KILL").Run()
			<-exited
		}
		_ = exec.Command(runc, "--root", state, "delete", "--force", id).Run()
		_ = logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("--- container output ---\n%s", tail(b, 8000))
		}
	})

	// runc refuses to start where the sandbox forbids namespaces, mounts or cgroups; that
	// is the machine, not the image: skip with runc's words. Anything else is a failure.
	probe := fmt.Sprintf("http://127.0.0.1:%d%s", in.probePort, in.container.ReadinessProbe.HTTPGet.Path)
	g.Eventually(func() string {
		select {
		case <-exited:
			return "exited"
		default:
		}
		if resp, err := http.Get(probe); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return "ready"
			}
		}
		return ""
	}, 90*time.Second, 100*time.Millisecond).Should(BeElementOf("ready", "exited"), "the container turns ready")
	select {
	case <-exited:
		b, _ := os.ReadFile(logPath)
		if msg := string(b); !strings.Contains(msg, "/manager") && (strings.Contains(msg, "operation not permitted") ||
			strings.Contains(msg, "permission denied") || strings.Contains(msg, "cgroup")) {
			t.Skipf("runc cannot start containers on this machine: %s", strings.TrimSpace(tail(b, 600)))
		}
		t.Fatalf("the container exited:\n%s", tail(b, 4000))
	default:
	}

	// The process runs as the image's user, not root.
	out, err := exec.Command(runc, "--root", state, "state", id).Output()
	g.Expect(err).NotTo(HaveOccurred())
	var cs struct {
		Pid int `json:"pid"`
	}
	g.Expect(json.Unmarshal(out, &cs)).To(Succeed())
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cs.Pid))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(status)).To(MatchRegexp(`(?m)^Uid:\s+65532\s+65532\s+65532\s+65532$`))

	op := &operator{scimAddr: fmt.Sprintf("127.0.0.1:%d", in.scimPort)}
	playOktaFlow(t, newSCIMClient(op, st), site)
}

// serviceAccountMount writes what the kubelet projects into a pod for its
// ServiceAccount: the token (from the TokenRequest API), the cluster CA and the namespace.
func serviceAccountMount(t *testing.T, in *installation) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string][]byte{
		"token":     []byte(in.token),
		"ca.crt":    env.Config.CAData,
		"namespace": []byte(in.namespace),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runcConfig writes the bundle's config.json: `runc spec`'s default, made into the
// chart's pod spec. rlimits are dropped (some sandboxes refuse setrlimit) and so is the
// network namespace (the container shares the host's loopback with the control plane).
func runcConfig(t *testing.T, runc, bundle string, img *ociimage.Image, in *installation, saDir string) error {
	t.Helper()
	if out, err := exec.Command(runc, "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		return fmt.Errorf("runc spec: %w: %s", err, out)
	}
	path := filepath.Join(bundle, "config.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var spec map[string]any
	if err := json.Unmarshal(raw, &spec); err != nil {
		return err
	}
	api, err := url.Parse(env.Config.Host)
	if err != nil {
		return err
	}
	var uid, gid int
	if _, err := fmt.Sscanf(img.Config.Config.User, "%d:%d", &uid, &gid); err != nil {
		return fmt.Errorf("image user %q: %w", img.Config.Config.User, err)
	}
	sc := in.container.SecurityContext
	if sc != nil && sc.RunAsUser != nil {
		uid = int(*sc.RunAsUser)
	}
	envs := append(append(append([]string{}, img.Config.Config.Env...), in.containerEnv()...),
		"KUBERNETES_SERVICE_HOST="+api.Hostname(), "KUBERNETES_SERVICE_PORT="+api.Port())
	process := spec["process"].(map[string]any)
	delete(process, "rlimits")
	process["terminal"] = false
	process["args"] = append(append([]string{}, img.Config.Config.Entrypoint...), in.container.Args...)
	process["env"] = envs
	process["cwd"] = "/"
	process["user"] = map[string]any{"uid": uid, "gid": gid}
	process["noNewPrivileges"] = sc != nil && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation
	if sc != nil && sc.Capabilities != nil && len(sc.Capabilities.Drop) == 1 && sc.Capabilities.Drop[0] == "ALL" {
		process["capabilities"] = map[string]any{}
	}
	spec["root"] = map[string]any{"path": "rootfs", "readonly": sc != nil && sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem}
	mounts := spec["mounts"].([]any)
	for _, vm := range in.container.VolumeMounts {
		if vm.MountPath == "/tmp" { // the chart's emptyDir
			mounts = append(mounts, map[string]any{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
				"options": []string{"nosuid", "nodev", "mode=1777", "size=64m"}})
		}
	}
	mounts = append(mounts, map[string]any{"destination": "/var/run/secrets/kubernetes.io/serviceaccount",
		"type": "bind", "source": saDir, "options": []string{"rbind", "ro"}})
	spec["mounts"] = mounts
	linux := spec["linux"].(map[string]any)
	var namespaces []any
	for _, ns := range linux["namespaces"].([]any) {
		if ns.(map[string]any)["type"] != "network" {
			namespaces = append(namespaces, ns)
		}
	}
	linux["namespaces"] = namespaces
	out, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o644)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.ToValidUTF8(b, nil))
}
