package image_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/stackscim/stack-scim-operator/internal/ociimage"
	"github.com/stackscim/stack-scim-operator/internal/testenv"
)

// TestImage_archiveIsAMultiPlatformImageUsersCanLoad: the archive is one OCI index named
// for docker load / ctr import (io.containerd.image.name) and podman load
// (org.opencontainers.image.ref.name), with a linux/amd64 and a linux/arm64 image; each
// runs /manager as UID 65532 from a static binary built for its platform, carries the
// version labels, and every blob matches its digest (the loaders check them).
func TestImage_archiveIsAMultiPlatformImageUsersCanLoad(t *testing.T) {
	g := NewWithT(t)
	path, err := ociimage.Built(testenv.RepoRoot(), t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	a, err := ociimage.Open(path)
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(a.Index.Manifests).To(HaveLen(1), "one named multi-platform index")
	top := a.Index.Manifests[0]
	g.Expect(top.MediaType).To(Equal(ocispec.MediaTypeImageIndex))
	ref := top.Annotations["io.containerd.image.name"]
	g.Expect(ref).To(MatchRegexp(`^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9/._-]+:[A-Za-z0-9._-]+$`), "a full image reference")
	g.Expect(top.Annotations).To(HaveKeyWithValue("org.opencontainers.image.ref.name", ref))
	if img := os.Getenv("IMG"); img != "" {
		g.Expect(ref).To(Equal(img), "named as the Makefile's IMG")
	}
	tag := ref[strings.LastIndex(ref, ":")+1:]

	images, err := a.Images()
	g.Expect(err).NotTo(HaveOccurred())
	platforms := map[string]ociimage.Image{}
	for _, img := range images {
		platforms[img.Platform.OS+"/"+img.Platform.Architecture] = img
	}
	g.Expect(platforms).To(HaveLen(2))
	g.Expect(platforms).To(HaveKey("linux/amd64"))
	g.Expect(platforms).To(HaveKey("linux/arm64"))

	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for name, img := range platforms {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			c := img.Config
			g.Expect(c.OS).To(Equal("linux"))
			g.Expect(c.Architecture).To(Equal(img.Platform.Architecture))
			g.Expect(c.Config.Entrypoint).To(Equal([]string{"/manager"}))
			g.Expect(c.Config.Cmd).To(BeEmpty())
			g.Expect(c.Config.User).To(Equal("65532:65532"), "non-root, numeric so runAsNonRoot can verify it")
			g.Expect(c.Config.Labels).To(HaveKeyWithValue("org.opencontainers.image.version", tag), "the label and the tag agree")
			g.Expect(c.Config.Labels).To(HaveKeyWithValue("org.opencontainers.image.licenses", "Apache-2.0"))
			g.Expect(c.Config.Labels["org.opencontainers.image.revision"]).NotTo(BeEmpty())

			root := t.TempDir()
			g.Expect(img.Unpack(root)).To(Succeed())
			bin := filepath.Join(root, "manager")
			f, err := elf.Open(bin)
			g.Expect(err).NotTo(HaveOccurred())
			defer f.Close()
			g.Expect(f.Machine).To(Equal(machines[img.Platform.Architecture]))
			for _, p := range f.Progs {
				g.Expect(p.Type).NotTo(Equal(elf.PT_INTERP), "statically linked: the image has no libc")
			}
			passwd, err := os.ReadFile(filepath.Join(root, "etc", "passwd"))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(string(passwd)).To(ContainSubstring(":65532:65532:"))
			st, err := os.Stat(filepath.Join(root, "tmp"))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(st.Mode() & os.ModeSticky).NotTo(BeZero())

			if img.Platform.Architecture != runtime.GOARCH {
				return // checked above as a binary for its machine; it cannot run here
			}
			out, err := exec.Command(bin, "--version").CombinedOutput()
			g.Expect(err).NotTo(HaveOccurred(), "%s", out)
			g.Expect(string(out)).To(HavePrefix("stack-scim-operator "+tag+" (commit "), "manager --version prints the stamped version")
			g.Expect(string(out)).NotTo(ContainSubstring("commit unknown"))
			g.Expect(string(out)).NotTo(ContainSubstring("built unknown"))
		})
	}
}
