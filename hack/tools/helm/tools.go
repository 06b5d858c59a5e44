//go:build tools

// Package tools pins helm, which the chart tests (`helm lint`, `helm template`) and
// `make chart-crds` users run; built from the module proxy instead of downloaded.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
