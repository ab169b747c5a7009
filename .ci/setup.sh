#!/usr/bin/env bash
# Installs and builds what the test suite needs, idempotently: make test
# runs it first, so the README's test command works on a fresh Debian
# machine with only Go (and make) installed, and costs seconds once
# everything is there.
#   - rabbitmq-server (.ci/rabbitmq.sh): drivers/rabbitmq's tests start
#     private nodes from it; the system's own service is kept stopped.
#   - Chromium (.ci/browser.sh): the HTML report's browser test.
#   - the kumo AWS emulator (.ci/kumo.sh), built into
#     ${XDG_CACHE_HOME:-$HOME/.cache}/spate/kumo, where the EventBridge
#     tests and spate run (endpoint: managed) look for it.
# Installing needs root or sudo; set SPATE_SKIP_SETUP=1 to skip all of it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${SPATE_SKIP_SETUP:-}" ]; then
  echo "setup: skipped (SPATE_SKIP_SETUP is set)" >&2
  exit 0
fi

# kumo's first build takes minutes: it runs while the packages install.
log=$(mktemp)
.ci/kumo.sh > /dev/null 2> "$log" &
kumo_pid=$!
# If an install fails, stop the build too rather than leave it running.
trap 'kill "$kumo_pid" 2>/dev/null || true; rm -f "$log"' EXIT

.ci/rabbitmq.sh
.ci/browser.sh

if ! wait "$kumo_pid"; then
  cat "$log" >&2
  echo "setup: building kumo failed" >&2
  exit 1
fi
cat "$log" >&2
