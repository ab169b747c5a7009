//go:build tools

// Package kube pins the Kubernetes and etcd programs that spate's
// Kubernetes test runs (built by .ci/kube.sh); it is never built itself.
package kube

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
