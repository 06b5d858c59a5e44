//go:build tools

// Package tools pins the code generators and linters the Makefile runs.
package tools

import _ "sigs.k8s.io/controller-tools/cmd/controller-gen"
