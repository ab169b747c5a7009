#!/usr/bin/env bash
# Builds what spate's Kubernetes API-server test (kube/apiserver_test.go)
# runs: kube-apiserver, Kubernetes' own Job controller (nothing else of
# kube-controller-manager) and etcd, from the separate module tools/kube,
# so none of it enters spate's dependencies. The binaries go to
# ${SPATE_KUBE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/spate/kube}; a directory
# that already holds all three at this version is kept as it is (seconds).
# Prints the directory on stdout; everything else goes to stderr. Use it as:
#   export SPATE_KUBE=$(.ci/kube.sh)
# The first build, from a cold Go build cache, takes about 750 CPU-seconds
# (6-7 minutes of 2 idle cores; 27 minutes measured on a shared, busy
# 2-core machine), 1.7 GB peak memory and 2.1 GB of build cache; the three
# binaries are 180 MB.
set -euo pipefail
cd "$(dirname "$0")/.."

version=v1.32.13
out="${SPATE_KUBE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/spate/kube}"
mkdir -p "$out"

if [ "$(cat "$out/VERSION" 2>/dev/null)" = "$version" ] &&
  [ -x "$out/kube-apiserver" ] && [ -x "$out/job-controller" ] && [ -x "$out/etcd" ]; then
  echo "kube: $version already built in $out" >&2
  echo "$out"
  exit 0
fi

# kubectl and the API server's clients parse the server's version: stamp it.
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags="$ldflags -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=32"
done

start=$(date +%s)
echo "kube: building kube-apiserver, job-controller and etcd $version into $out ..." >&2
rm -f "$out/VERSION"
go build -C tools/kube -trimpath -ldflags "$ldflags" -o "$out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver >&2
go build -C tools/kube -trimpath -ldflags "$ldflags" -o "$out/job-controller" ./job-controller >&2
go build -C tools/kube -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3 >&2
echo "$version" > "$out/VERSION"
echo "kube: built in $(( $(date +%s) - start ))s" >&2
echo "$out"
