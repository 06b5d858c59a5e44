#!/usr/bin/env bash
# Tool versions and where their binaries live. Sourced by hack/*.sh; the Makefile reads
# the same paths through `hack/versions.sh print`.
root=${root:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
KUBERNETES_VERSION=v1.37.2
ETCD_VERSION=v3.6.16
CONTROLLER_TOOLS_VERSION=v0.23.0
HELM_VERSION=v3.22.0
GOLANGCI_LINT_VERSION=v2.15.0
TOOLS_DIR=$root/bin/tools
ENVTEST_ASSETS=$TOOLS_DIR/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION
CONTROLLER_GEN=$TOOLS_DIR/controller-gen-$CONTROLLER_TOOLS_VERSION/controller-gen
HELM=$TOOLS_DIR/helm-$HELM_VERSION/helm
KUBECTL=$ENVTEST_ASSETS/kubectl
GOLANGCI_LINT=$TOOLS_DIR/golangci-lint-$GOLANGCI_LINT_VERSION/golangci-lint
if [[ ${1:-} == print ]]; then
  printf 'ENVTEST_ASSETS=%s\nCONTROLLER_GEN=%s\n' "$ENVTEST_ASSETS" "$CONTROLLER_GEN"
  printf 'HELM=%s\nKUBECTL=%s\n' "$HELM" "$KUBECTL"
  printf 'GOLANGCI_LINT=%s\n' "$GOLANGCI_LINT"
fi
