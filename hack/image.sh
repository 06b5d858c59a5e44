#!/usr/bin/env bash
# Builds the operator's image with no Docker daemon, from the Go module proxy only: a
# static manager per platform (version, commit and date stamped in), then hack/tools/image
# (go-containerregistry) packs them into one OCI image index on an empty base and writes an
# OCI archive that `docker load`, `podman load` and `ctr import` accept. Prints its path.
# Settings (environment): VERSION (default: the chart's appVersion, so the chart's default
# image tag is this image), COMMIT, BUILD_DATE, IMG, PLATFORMS, IMAGE_ARCHIVE.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
VERSION=${VERSION:-$(sed -n 's/^appVersion: *//p' charts/stack-scim-operator/Chart.yaml | tr -d '"')}
COMMIT=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
BUILD_DATE=${BUILD_DATE:-$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)}
IMG=${IMG:-ghcr.io/stackscim/stack-scim-operator:$VERSION}
PLATFORMS=${PLATFORMS:-linux/amd64 linux/arm64}
IMAGE_ARCHIVE=${IMAGE_ARCHIVE:-bin/image/stack-scim-operator-$VERSION.oci.tar}
[[ $IMAGE_ARCHIVE == /* ]] || IMAGE_ARCHIVE=$root/$IMAGE_ARCHIVE

pkg=github.com/stackscim/stack-scim-operator/internal/version
ldflags="-s -w -X $pkg.Version=$VERSION -X $pkg.Commit=$COMMIT -X $pkg.Date=$BUILD_DATE"
# No -trimpath and CGO off, as `make test` builds: the host platform's build then reuses
# the test build's compiled packages, and only the other platform compiles from scratch.
args=()
for platform in $PLATFORMS; do
  bin=$root/bin/image/${platform//\//-}/manager
  CGO_ENABLED=0 GOOS=${platform%/*} GOARCH=${platform#*/} \
    go build -ldflags "$ldflags" -o "$bin" ./cmd/manager
  args+=(-binary "$platform=$bin")
done
(cd hack/tools/image && go run . -out "$IMAGE_ARCHIVE" -ref "$IMG" \
  -version "$VERSION" -revision "$COMMIT" -created "$BUILD_DATE" "${args[@]}")
echo "$IMAGE_ARCHIVE"
