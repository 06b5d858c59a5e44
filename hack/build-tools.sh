#!/usr/bin/env bash
# Builds the pinned tools from the Go module proxy into a version-keyed, git-ignored folder
# (bin/tools/<name>-<version>/), so a second run costs nothing. Nothing is downloaded from
# anywhere but the module proxy: setup-envtest's binary downloads do not work offline.
#
# Usage: hack/build-tools.sh [controlplane|kubectl|controller-gen|helm|golangci-lint|all]...
# Prints nothing but progress on stderr; the Makefile reads paths from hack/tool-path.sh.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/hack/versions.sh"

log() { printf '[build-tools] %s\n' "$*" >&2; }

# build <module dir> <output file> <package> [ldflags]
build() {
  local moddir=$1 out=$2 pkg=$3 ldflags=${4:-}
  if [[ -x $out ]]; then return 0; fi
  log "building $(basename "$out") ($pkg) into ${out#$root/}"
  local tmp="$out.tmp.$$"
  mkdir -p "$(dirname "$out")"
  (cd "$root/hack/tools/$moddir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w $ldflags" -o "$tmp" "$pkg")
  mv -f "$tmp" "$out"
}

kube_ldflags() {
  local v=$KUBERNETES_VERSION minor
  minor=$(cut -d. -f2 <<<"${v#v}")
  printf -- '-X k8s.io/component-base/version.gitVersion=%s -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=%s -X k8s.io/client-go/pkg/version.gitVersion=%s -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=%s' "$v" "$minor" "$v" "$minor"
}

want=("$@")
[[ ${#want[@]} -gt 0 ]] || want=(all)
for w in "${want[@]}"; do
  case $w in
    controlplane)
      build kube "$ENVTEST_ASSETS/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver "$(kube_ldflags)"
      build etcd "$ENVTEST_ASSETS/etcd" go.etcd.io/etcd/server/v3
      ;;
    kubectl)
      build kube "$ENVTEST_ASSETS/kubectl" k8s.io/kubernetes/cmd/kubectl "$(kube_ldflags)"
      ;;
    controller-gen)
      build dev "$CONTROLLER_GEN" sigs.k8s.io/controller-tools/cmd/controller-gen
      ;;
    helm)
      # Without these, helm assumes Kubernetes 1.20 for kubeVersion checks and Capabilities.
      helm_kube_minor=$(cut -d. -f2 <<<"${KUBERNETES_VERSION#v}")
      build helm "$HELM" helm.sh/helm/v3/cmd/helm "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$helm_kube_minor -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$helm_kube_minor"
      ;;
    golangci-lint)
      build lint "$GOLANGCI_LINT" github.com/golangci/golangci-lint/v2/cmd/golangci-lint "-X main.version=$GOLANGCI_LINT_VERSION"
      ;;
    all)
      "$0" controller-gen controlplane kubectl
      "$0" helm
      "$0" golangci-lint
      ;;
    *) log "unknown tool $w"; exit 2 ;;
  esac
done
