#!/usr/bin/env bash
# Long fuzzing run: every FuzzTests target with LORASERVE_FUZZ_ITERATIONS inputs (default 100,000) on a
# release build; prints inputs/s per target. A trapping input is saved to /tmp/loraserve-fuzz-crash-<target>.bin.
# Usage: scripts/fuzz.sh [FILTER]   e.g. scripts/fuzz.sh FuzzTests.testJSONParser
set -euo pipefail
cd "$(dirname "$0")/.."
export LORASERVE_FUZZ_ITERATIONS="${LORASERVE_FUZZ_ITERATIONS:-100000}"
REPORT="$(mktemp /tmp/loraserve-fuzz-report.XXXXXX)"
export LORASERVE_FUZZ_REPORT="$REPORT"
swift build -c release --build-tests -Xswiftc -enable-testing
status=0
swift test -c release --skip-build -Xswiftc -enable-testing --filter "${1:-FuzzTests.FuzzTests}" || status=$?
echo "== fuzz rates ($LORASERVE_FUZZ_ITERATIONS mutated inputs per target) =="
cat "$REPORT"
rm -f "$REPORT"
exit $status
