#!/usr/bin/env bash
# Builds the kubectl plugin (cmd/kubectl-stackscim) for release: one archive per platform,
# kubectl-stackscim_<VERSION>_<os>_<arch>.tar.gz holding the static binary and LICENSE
# (the layout krew and `tar -xzf ... && mv kubectl-stackscim ~/bin/` expect), reproducible
# (sorted entries, fixed owner and mtime, gzip without a timestamp). Prints each path.
# Usage: hack/plugin.sh OUT_DIR. Settings (environment): VERSION (default: the chart's
# appVersion), COMMIT, BUILD_DATE, PLUGIN_PLATFORMS.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=${1:?usage: hack/plugin.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
VERSION=${VERSION:-$(sed -n 's/^appVersion: *//p' charts/stack-scim-operator/Chart.yaml | tr -d '"')}
COMMIT=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
BUILD_DATE=${BUILD_DATE:-$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)}
PLUGIN_PLATFORMS=${PLUGIN_PLATFORMS:-linux/amd64 linux/arm64 darwin/arm64}

pkg=github.com/stackscim/stack-scim-operator/internal/version
ldflags="-s -w -X $pkg.Version=$VERSION -X $pkg.Commit=$COMMIT -X $pkg.Date=$BUILD_DATE"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for platform in $PLUGIN_PLATFORMS; do
  os=${platform%/*} arch=${platform#*/}
  dir=$work/${os}_$arch
  mkdir -p "$dir"
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags "$ldflags" -o "$dir/kubectl-stackscim" ./cmd/kubectl-stackscim
  cp LICENSE "$dir/"
  archive=$out/kubectl-stackscim_${VERSION}_${os}_$arch.tar.gz
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="$BUILD_DATE" \
    -C "$dir" -cf - kubectl-stackscim LICENSE | gzip -9n > "$archive"
  echo "$archive"
done
