#!/usr/bin/env bash
# The whole test suite: installs what is missing, then builds (release, so the model
# tests run at real speed) and runs every test target.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
swift build -c release --build-tests -Xswiftc -enable-testing
# The test process loads OpenBLAS itself, without `serve`'s restart when OpenBLAS fell back to generic
# kernels (Sources/serve/OpenBLASCore.swift): give it the kernels `serve` ends up with.
if [[ -z "${OPENBLAS_CORETYPE:-}" ]]; then
    cores=$(OPENBLAS_VERBOSE=2 .build/release/serve template --help 2>&1 | sed -n 's/^Core: //p')
    if [[ $(printf '%s\n' "$cores" | wc -l) -gt 1 ]]; then
        OPENBLAS_CORETYPE=$(printf '%s\n' "$cores" | tail -n 1)
        export OPENBLAS_CORETYPE
        echo "test.sh: OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE (OpenBLAS's own choice here: $(printf '%s\n' "$cores" | head -n 1))"
    fi
fi
swift test -c release --skip-build -Xswiftc -enable-testing
