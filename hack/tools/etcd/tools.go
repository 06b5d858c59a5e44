//go:build tools

// Package tools pins etcd for the local control plane. It lives apart from the
// kube-apiserver module because one module would pull Kubernetes back a minor version.
package tools

import _ "go.etcd.io/etcd/server/v3"
