#!/usr/bin/env bash
# Builds the kumo AWS emulator (EventBridge + SQS) that the EventBridge
# driver's tests and `endpoint: managed` use, from the separate tools module
# (tools/go.mod), so it never enters spate's own dependencies. Prints the
# binary's path on stdout; everything else goes to stderr. Use it as:
#   export SPATE_KUMO=$(.ci/kumo.sh)
# The first build takes minutes (kumo emulates many services); a binary
# newer than tools/go.mod and tools/go.sum is kept as it is (set
# SPATE_KUMO_REBUILD=1 to build anyway), so running this again is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."

out="${SPATE_KUMO_OUT:-${XDG_CACHE_HOME:-$HOME/.cache}/spate/kumo}"
mkdir -p "$(dirname "$out")"

if [ -z "${SPATE_KUMO_REBUILD:-}" ] && [ -x "$out" ] && [ "$out" -nt tools/go.mod ] && [ "$out" -nt tools/go.sum ]; then
  echo "kumo is up to date: $out" >&2
  echo "$out"
  exit 0
fi

# The checksum database does not answer for some older aws-sdk-go-v2 module
# versions kumo pins. tools/go.sum holds their checksums, which go verifies
# (a download into an empty module cache needs no checksum database); this
# only matters when go.sum lacks an entry, e.g. after changing kumo's version
# with go get.
export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}github.com/aws/aws-sdk-go-v2"

start=$(date +%s)
echo "building kumo into $out ..." >&2
go build -C tools -o "$out" github.com/sivchari/kumo/cmd/kumo >&2
echo "built kumo in $(( $(date +%s) - start ))s" >&2
echo "$out"
