// Command image builds the operator's container image without a Docker daemon: one
// layer on an empty base (the binary, /etc/passwd and /etc/group naming UID 65532, an
// empty /tmp), per platform, gathered in one OCI image index and written as an OCI
// archive that `docker load`, `podman load` and `ctr import` accept.
//
// CA roots live in the binary itself (golang.org/x/crypto/x509roots/fallback), so the
// image needs no certificate bundle. Timestamps come from -created (the commit date), so
// the same commit builds the same archive.
//
//	go run . -out image.oci.tar -ref ghcr.io/x/stack-scim-operator:0.1.0 \
//	  -binary linux/amd64=bin/image/linux-amd64/manager -binary linux/arm64=...
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The user the image runs as: distroless's "nonroot".
const (
	uid        = 65532
	entrypoint = "/manager"
)

type binaries map[string]string // "linux/amd64" -> path

func (b binaries) String() string { return fmt.Sprint(map[string]string(b)) }
func (b binaries) Set(v string) error {
	platform, path, ok := strings.Cut(v, "=")
	if !ok || strings.Count(platform, "/") != 1 {
		return fmt.Errorf("want os/arch=path, got %q", v)
	}
	b[platform] = path
	return nil
}

func main() {
	bins := binaries{}
	out := flag.String("out", "", "OCI archive to write")
	ref := flag.String("ref", "", "image reference the archive names, e.g. ghcr.io/stackscim/stack-scim-operator:0.1.0")
	version := flag.String("version", "", "org.opencontainers.image.version label")
	revision := flag.String("revision", "", "org.opencontainers.image.revision label")
	created := flag.String("created", "", "creation time, RFC 3339 (the commit date)")
	flag.Var(bins, "binary", "os/arch=path of the manager binary for that platform (repeat)")
	flag.Parse()
	if *out == "" || *ref == "" || len(bins) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	when := time.Unix(0, 0).UTC()
	if *created != "" {
		t, err := time.Parse(time.RFC3339, *created)
		if err != nil {
			log.Fatalf("-created: %v", err)
		}
		when = t.UTC()
	}
	labels := map[string]string{
		"org.opencontainers.image.title":    "stack-scim-operator",
		"org.opencontainers.image.source":   "https://github.com/stackscim/stack-scim-operator",
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.version":  *version,
		"org.opencontainers.image.revision": *revision,
		"org.opencontainers.image.created":  when.Format(time.RFC3339),
	}
	if err := build(*out, *ref, bins, labels, when); err != nil {
		log.Fatal(err)
	}
}

func build(out, ref string, bins binaries, labels map[string]string, when time.Time) error {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	platforms := make([]string, 0, len(bins))
	for p := range bins {
		platforms = append(platforms, p)
	}
	sort.Strings(platforms)
	for _, p := range platforms {
		osName, arch, _ := strings.Cut(p, "/")
		img, err := image(bins[p], osName, arch, labels, when)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: osName, Architecture: arch}},
		})
	}

	dir, err := os.MkdirTemp("", "oci-layout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	// docker load and ctr import take the name from io.containerd.image.name; podman and
	// skopeo from org.opencontainers.image.ref.name, which may be a full reference.
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          ref,
		"org.opencontainers.image.ref.name": ref,
	})); err != nil {
		return err
	}
	return tarDir(dir, out, when)
}

// image is one platform's image: a single layer on an empty base.
func image(binary, osName, arch string, labels map[string]string, when time.Time) (v1.Image, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	layerTar, err := rootfs(bin, when)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created:   v1.Time{Time: when},
		CreatedBy: "hack/tools/image: manager, /etc/passwd, /etc/group, /tmp",
		Comment:   "make image",
	}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = osName, arch
	cf.Created = v1.Time{Time: when}
	cf.Config.Entrypoint = []string{entrypoint}
	cf.Config.User = fmt.Sprintf("%d:%d", uid, uid)
	cf.Config.WorkingDir = "/"
	cf.Config.Env = []string{"PATH=/", "HOME=/home/nonroot"}
	cf.Config.Labels = labels
	return mutate.ConfigFile(img, cf)
}

// rootfs is the layer: what distroless-static gives the binary, minus what it does not use.
func rootfs(bin []byte, when time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64, owner int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: owner, Gid: owner, ModTime: when, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, body []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: when, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	steps := []func() error{
		func() error { return dir("etc/", 0o755, 0) },
		func() error {
			return file("etc/passwd", 0o644, fmt.Appendf(nil, "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", uid, uid))
		},
		func() error { return file("etc/group", 0o644, fmt.Appendf(nil, "root:x:0:\nnonroot:x:%d:\n", uid)) },
		func() error { return dir("home/", 0o755, 0) },
		func() error { return dir("home/nonroot/", 0o700, uid) },
		func() error { return dir("tmp/", 0o1777, 0) },
		func() error { return file(strings.TrimPrefix(entrypoint, "/"), 0o755, bin) },
		tw.Close,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// tarDir writes the OCI layout folder as a tar with fixed owners and times.
func tarDir(dir, out string, when time.Time) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: when, Mode: 0o644, Format: tar.FormatPAX}
		if d.IsDir() {
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, hdr.Name+"/", 0o755
			return tw.WriteHeader(hdr)
		}
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(body))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = tw.Write(body)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, out)
}
