#!/usr/bin/env bash
# One command from a fresh Debian machine to a running server: installs what is missing
# (apt libraries, the default model), builds in release mode, and starts `serve` on the
# default model. Extra arguments go to `serve` (e.g. --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
swift build -c release --product serve
exec .build/release/serve "$@"
