# stack-scim-operator. On a fresh machine, `make run-local` and `make test` are all you need:
# every tool (controller-gen, kube-apiserver, etcd, kubectl, helm, golangci-lint) is built from the Go module
# proxy into bin/tools/, keyed by version.
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

ENVTEST_ASSETS := $(shell hack/versions.sh print | sed -n 's/^ENVTEST_ASSETS=//p')
CONTROLLER_GEN := $(shell hack/versions.sh print | sed -n 's/^CONTROLLER_GEN=//p')
export KUBEBUILDER_ASSETS := $(ENVTEST_ASSETS)
export CONTROLLER_GEN
HELM := $(shell hack/versions.sh print | sed -n 's/^HELM=//p')
GOLANGCI_LINT := $(shell hack/versions.sh print | sed -n 's/^GOLANGCI_LINT=//p')
KUBECTL := $(shell hack/versions.sh print | sed -n 's/^KUBECTL=//p')
# The manifest tests (internal/manifests) run helm and kubectl from these; they fail, not
# skip, when make exported the paths and the binaries are missing.
export HELM KUBECTL
CHART := charts/stack-scim-operator

GO_TEST_FLAGS ?= -count=1
FUZZTIME ?= 10s
# The image: its tag is the chart's appVersion unless VERSION says otherwise, so the chart's
# default image is the one `make image` builds.
CHART_APP_VERSION := $(shell sed -n 's/^appVersion: *//p' $(CHART)/Chart.yaml | tr -d '"')
VERSION ?= $(CHART_APP_VERSION)
IMAGE_REPO ?= ghcr.io/stackscim/stack-scim-operator
IMG ?= $(IMAGE_REPO):$(VERSION)
PLATFORMS ?= linux/amd64 linux/arm64
IMAGE_ARCHIVE ?= $(CURDIR)/bin/image/stack-scim-operator-$(VERSION).oci.tar
export VERSION IMG PLATFORMS IMAGE_ARCHIVE
# Static binaries everywhere: tests build what the image ships, and `make image` reuses the
# test build's packages for the host platform.
export CGO_ENABLED ?= 0

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Development

.PHONY: tools
tools: ## Build every pinned tool (controller-gen, kube-apiserver, etcd, kubectl).
	hack/build-tools.sh all

$(CONTROLLER_GEN):
	hack/build-tools.sh controller-gen

.PHONY: controlplane
controlplane:
	hack/build-tools.sh controlplane kubectl

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code from the API types.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC from markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	$(MAKE) --no-print-directory chart-crds

.PHONY: fmt
fmt: ## Run gofmt.
	gofmt -l -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

$(GOLANGCI_LINT):
	hack/build-tools.sh golangci-lint

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint (pinned, config in .golangci.yml).
	$(GOLANGCI_LINT) run ./...

.PHONY: build
build: generate ## Build the manager and the site simulator.
	go build -o bin/manager ./cmd/manager
	@if [[ -d cmd/site-simulator ]]; then go build -o bin/site-simulator ./cmd/site-simulator; fi

PLUGIN_LDFLAGS = -X github.com/stackscim/stack-scim-operator/internal/version.Version=$(VERSION) \
	-X github.com/stackscim/stack-scim-operator/internal/version.Commit=$(shell git rev-parse HEAD 2>/dev/null || echo unknown) \
	-X github.com/stackscim/stack-scim-operator/internal/version.Date=$(shell git log -1 --format=%cI 2>/dev/null || echo unknown)
.PHONY: plugin
plugin: ## Build the kubectl plugin bin/kubectl-stackscim (`kubectl stackscim plan` once on PATH).
	go build -ldflags "$(PLUGIN_LDFLAGS)" -o bin/kubectl-stackscim ./cmd/kubectl-stackscim

##@ Test

.PHONY: test
test: $(CONTROLLER_GEN) controlplane lint ## Run the whole test suite (lint, unit, envtest, generated-file checks, short fuzz).
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	go vet ./...
	go test $(GO_TEST_FLAGS) ./...
	hack/fuzz.sh $(FUZZTIME)

.PHONY: bench
bench: controlplane ## Run the benchmarks and write bench/out/report.{md,json} (BENCH_FLAGS=-help for sizes; BENCH_SCALE=full: 100k users).
	go run ./cmd/bench $(BENCH_FLAGS)

# The image tests (internal/image) read the archive `make image` wrote.
test: image

##@ Image and release

.PHONY: image
image: ## Build the OCI image archive for linux/amd64 and linux/arm64 with no Docker daemon (bin/image/).
	hack/image.sh

.PHONY: runc
runc: ## Install runc (apt-get) for the test that runs the image; skipped with a note where that is impossible.
	@command -v runc >/dev/null || { command -v apt-get >/dev/null && [[ $$(id -u) == 0 ]] && \
	  { apt-get install -y -qq runc >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq runc >/dev/null; }; }; } || \
	  echo "runc not installed: the container test will skip and say why"

# The container test runs the image with runc when it can be had.
test: runc

RELEASE_DIR ?= bin/release
.PHONY: release
release: $(HELM) image ## Package the chart, the image archive and the kubectl plugin archives with SHA-256 checksums into bin/release/.
	rm -rf $(RELEASE_DIR) && mkdir -p $(RELEASE_DIR)
	$(HELM) package $(CHART) --version $(VERSION) --app-version $(VERSION) --destination $(RELEASE_DIR)
	cp $(IMAGE_ARCHIVE) $(RELEASE_DIR)/
	hack/plugin.sh $(RELEASE_DIR)
	cd $(RELEASE_DIR) && sha256sum *.tgz *.oci.tar *.tar.gz > SHA256SUMS && cat SHA256SUMS

##@ Run

.PHONY: run-local
run-local: $(CONTROLLER_GEN) controlplane ## Start a local control plane, the site simulator, a sample tenant and the manager.
	go build -o bin/run-local ./cmd/run-local
	bin/run-local

.PHONY: install
install: ## Install the CRDs into the cluster in KUBECONFIG.
	kubectl apply --server-side -f config/crd/bases

.PHONY: deploy
deploy: ## Deploy the operator to the cluster in KUBECONFIG (kustomize).
	kubectl apply --server-side -k config/default

.PHONY: undeploy
undeploy: ## Remove the operator from the cluster in KUBECONFIG.
	kubectl delete --ignore-not-found -k config/default

.PHONY: clean
clean: ## Remove built binaries (keeps the tool cache).
	rm -rf bin/manager bin/site-simulator bin/kubectl-stackscim .local

##@ Chart

$(HELM):
	hack/build-tools.sh helm

.PHONY: helm
helm: $(HELM) ## Build helm from the module proxy.

# The tests lint and render the chart and kustomize config/default.
test: $(HELM)

.PHONY: chart-crds
chart-crds: ## Copy the generated CRDs and manager ClusterRole rules into the chart (a test checks they match).
	rm -f $(CHART)/crds/*.yaml
	cp config/crd/bases/*.yaml $(CHART)/crds/
	cp config/rbac/role.yaml $(CHART)/files/manager-role.yaml

.PHONY: chart-lint
chart-lint: $(HELM) ## Lint the chart.
	$(HELM) lint --strict $(CHART)

.PHONY: chart-template
chart-template: $(HELM) ## Render the chart with its default values.
	$(HELM) template stack-scim-operator $(CHART) --namespace stack-scim-system --include-crds
