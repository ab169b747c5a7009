#!/usr/bin/env bash
# A release gate in plain shell: run a scenario, keep the report directory,
# and fail the build when a threshold fails or the run regressed against a
# baseline report kept from the last release.
#
#   examples/ci/release-gate.sh [SCENARIO] [BASELINE_DIR]
#
# Environment:
#   SPATE           the spate binary (default: build one into bin/spate)
#   REPORT_DIR      where the report goes (default: spate-results/gate)
#   MAX_REGRESSION  space-separated METRIC=LIMIT tolerances against the
#                   baseline (default: "e2e.p99=10% lost=0 duplicates=0 achieved_rate=5%")
#
# Exit code: spate's own. 0 pass; 1 runtime error or interrupted; 2 invalid
# scenario or usage; 3 a threshold failed or a metric regressed beyond its
# tolerance. The report directory (report.html, junit.xml, results.json,
# .hgrm and .hlog files) is there in every case but 2: archive it.
set -uo pipefail
cd "$(dirname "$0")/../.."

SCENARIO=${1:-examples/quickstart.yaml}
BASELINE=${2:-}
REPORT_DIR=${REPORT_DIR:-spate-results/gate}
MAX_REGRESSION=${MAX_REGRESSION:-"e2e.p99=10% lost=0 duplicates=0 achieved_rate=5%"}

if [ -z "${SPATE:-}" ]; then
  go build -o bin/spate ./cmd/spate || exit 1
  SPATE=bin/spate
fi

# 1. Validate first: a broken scenario is a usage error, not a failed release.
"$SPATE" validate "$SCENARIO" || exit $?

# 2. Run. --progress=log prints a line every 5 s, readable in CI logs.
rm -rf "$REPORT_DIR"
"$SPATE" run --progress=log --out "$REPORT_DIR" "$SCENARIO"
run=$?
echo "spate run exited $run; report in $REPORT_DIR (open report.html; CI reads junit.xml)"

# 3. Compare with the baseline, if there is one.
compare=0
if [ -n "$BASELINE" ]; then
  args=()
  for tol in $MAX_REGRESSION; do args+=(--max-regression "$tol"); done
  "$SPATE" report --compare "$BASELINE" "$REPORT_DIR" "${args[@]}" | tee "$REPORT_DIR/compare.txt"
  compare=${PIPESTATUS[0]}
fi

# The run's own failure wins; then a regression.
if [ "$run" -ne 0 ]; then exit "$run"; fi
exit "$compare"
