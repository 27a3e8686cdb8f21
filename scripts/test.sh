#!/usr/bin/env bash
# The whole test suite: installs what is missing, then builds (release, so the model
# tests run at real speed) and runs every test target.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
swift build -c release --build-tests -Xswiftc -enable-testing
swift test -c release --skip-build -Xswiftc -enable-testing
