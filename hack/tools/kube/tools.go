//go:build tools

// Package tools pins the Kubernetes commands the tests and `make run-local` need
// (kube-apiserver and kubectl), built from the module proxy instead of downloaded.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
