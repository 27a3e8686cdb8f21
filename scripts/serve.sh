#!/usr/bin/env bash
# One command from a fresh Debian machine to a running server: installs what is missing
# (apt libraries, the default model), builds in release mode, and starts `serve` on the
# default model. Extra arguments go to `serve` (e.g. --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
# Its own build folder: scripts/test.sh leaves an -enable-testing build in .build/release, which SwiftPM
# would take as up to date for a plain release build (and its kernels are slower).
swift build -c release --product serve --scratch-path .build-release
exec .build-release/release/serve "$@"
