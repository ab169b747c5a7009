#!/usr/bin/env bash
# Runs every fuzz target of spate's inputs for a bounded time each (the
# first argument, default 15s): scenarios, sweep files, thresholds and
# results.json. Each input is held to a time and memory bound inside the
# target (internal/fuzzcheck: 5s, 512 MiB); a failure's minimization is
# bounded by -fuzzminimizetime, and the whole of each target by timeout.
# A failing input is saved under the package's testdata/fuzz/ and the
# script exits non-zero. CI time: 4 targets × the fuzz time, plus building
# the two packages with coverage instrumentation (about 2 minutes in all).
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime="${1:-15s}"
targets=(
  "./scenarios FuzzParseScenario"
  "./scenarios FuzzParseSweep"
  "./scenarios FuzzParseThreshold"
  "./report FuzzDecodeResults"
)
for t in "${targets[@]}"; do
  set -- $t
  start=$(date +%s)
  echo "fuzz: $2 in $1 for $fuzztime" >&2
  # -parallel 2: the machine is shared; the build and a hung input get
  # the rest of the 10 minutes timeout allows.
  timeout 600 go test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" -fuzzminimizetime 30s -parallel 2 "$1"
  echo "fuzz: $2 took $(( $(date +%s) - start ))s" >&2
done
