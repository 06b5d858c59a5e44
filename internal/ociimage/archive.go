// Package ociimage reads the OCI image archive `make image` writes: the index, each
// platform's manifest and config, and its layers unpacked into a root filesystem. The
// image tests check the archive with it and the container test builds a runc bundle from
// it, so both look at the bytes users load, not at the build's inputs.
package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Archive is an OCI image layout read from a tar archive.
type Archive struct {
	// Index is the archive's index.json.
	Index ocispec.Index
	blobs map[string][]byte // "sha256:..." -> content
}

// Image is one platform's image in the archive.
type Image struct {
	Platform ocispec.Platform
	Manifest ocispec.Manifest
	Config   ocispec.Image
	archive  *Archive
}

// Open reads an OCI archive (tar of an OCI image layout).
func Open(path string) (*Archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a := &Archive{blobs: map[string][]byte{}}
	var layout, index []byte
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		switch {
		case name == "oci-layout":
			layout = body
		case name == "index.json":
			index = body
		case strings.HasPrefix(name, "blobs/"):
			algo, hexDigest, ok := strings.Cut(strings.TrimPrefix(name, "blobs/"), "/")
			if ok {
				a.blobs[algo+":"+hexDigest] = body
			}
		}
	}
	if !bytes.Contains(layout, []byte(`"imageLayoutVersion"`)) {
		return nil, fmt.Errorf("%s: no oci-layout file: not an OCI archive", path)
	}
	if err := json.Unmarshal(index, &a.Index); err != nil {
		return nil, fmt.Errorf("%s: index.json: %w", path, err)
	}
	return a, nil
}

// Blob returns a blob's content after checking it against its digest, as docker load,
// podman load and ctr import do.
func (a *Archive) Blob(d ocispec.Descriptor) ([]byte, error) {
	b, ok := a.blobs[string(d.Digest)]
	if !ok {
		return nil, fmt.Errorf("blob %s is missing", d.Digest)
	}
	sum := sha256.Sum256(b)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != string(d.Digest) || int64(len(b)) != d.Size {
		return nil, fmt.Errorf("blob %s: content has digest %s and size %d, descriptor says size %d", d.Digest, got, len(b), d.Size)
	}
	return b, nil
}

func (a *Archive) decode(d ocispec.Descriptor, v any) error {
	b, err := a.Blob(d)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Images lists the platform images under the archive's index, following nested indexes
// (the archive names one multi-platform index).
func (a *Archive) Images() ([]Image, error) {
	return a.images(a.Index.Manifests)
}

func (a *Archive) images(descs []ocispec.Descriptor) ([]Image, error) {
	var out []Image
	for _, d := range descs {
		switch d.MediaType {
		case ocispec.MediaTypeImageIndex:
			var idx ocispec.Index
			if err := a.decode(d, &idx); err != nil {
				return nil, err
			}
			imgs, err := a.images(idx.Manifests)
			if err != nil {
				return nil, err
			}
			out = append(out, imgs...)
		case ocispec.MediaTypeImageManifest:
			img := Image{archive: a}
			if d.Platform != nil {
				img.Platform = *d.Platform
			}
			if err := a.decode(d, &img.Manifest); err != nil {
				return nil, err
			}
			if err := a.decode(img.Manifest.Config, &img.Config); err != nil {
				return nil, err
			}
			out = append(out, img)
		default:
			return nil, fmt.Errorf("unexpected media type %q in an index", d.MediaType)
		}
	}
	return out, nil
}

// Unpack extracts the image's layers, in order, into dir: the container's root
// filesystem. Ownership is kept when running as root (runc needs /home/nonroot owned by
// the image user).
func (img Image) Unpack(dir string) error {
	for _, l := range img.Manifest.Layers {
		b, err := img.archive.Blob(l)
		if err != nil {
			return err
		}
		var r io.Reader = bytes.NewReader(b)
		if strings.HasSuffix(l.MediaType, "+gzip") {
			zr, err := gzip.NewReader(r)
			if err != nil {
				return err
			}
			r = zr
		}
		if err := untar(r, dir); err != nil {
			return fmt.Errorf("layer %s: %w", l.Digest, err)
		}
	}
	return nil
}

func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.Clean("/"+hdr.Name))
		mode := os.FileMode(hdr.Mode).Perm()
		if hdr.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return err
			}
			continue
		default:
			continue
		}
		if err := os.Chmod(target, mode); err != nil {
			return err
		}
		if os.Geteuid() == 0 {
			if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
				return err
			}
		}
	}
}

// Built returns the image archive to test: $IMAGE_ARCHIVE when `make` exported it
// (`make test` builds it first with `make image`), else one built now by hack/image.sh
// into dir (Go's build cache makes a rebuild cheap).
func Built(repoRoot, dir string) (string, error) {
	if p := os.Getenv("IMAGE_ARCHIVE"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("IMAGE_ARCHIVE=%s: %w (run `make image`)", p, err)
		}
		return p, nil
	}
	out := filepath.Join(dir, "image.oci.tar")
	cmd := exec.Command(filepath.Join(repoRoot, "hack", "image.sh"))
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "IMAGE_ARCHIVE="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("hack/image.sh: %w\n%s", err, b)
	}
	return out, nil
}
