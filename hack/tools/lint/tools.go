//go:build tools

// Package tools pins golangci-lint, built from the Go module proxy by hack/build-tools.sh
// like the other tools. It has a module of its own so its many dependencies never touch
// the operator's go.mod or the other tool modules.
package tools

import _ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
