# Tool versions and where their binaries live. Sourced by hack/*.sh; the Makefile reads
# the same paths through `hack/versions.sh print`.
root=${root:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
KUBERNETES_VERSION=v1.37.2
ETCD_VERSION=v3.6.16
CONTROLLER_TOOLS_VERSION=v0.23.0
TOOLS_DIR=$root/bin/tools
ENVTEST_ASSETS=$TOOLS_DIR/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION
CONTROLLER_GEN=$TOOLS_DIR/controller-gen-$CONTROLLER_TOOLS_VERSION/controller-gen
if [[ ${1:-} == print ]]; then
  printf 'ENVTEST_ASSETS=%s\nCONTROLLER_GEN=%s\n' "$ENVTEST_ASSETS" "$CONTROLLER_GEN"
fi
