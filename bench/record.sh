#!/usr/bin/env bash
# Records every figure bench/README.md keeps, in one run on one machine:
#   bench/record.sh [DURATION_SECONDS]     (default 30 s per load scenario)
# 1. the machine (CPU, cores, load average);
# 2. `serve bench runtime` with 1 and 2 threads: prefill (512 tokens), single-stream generation (128 tokens),
#    batched decode at 8 and 32 sequences, and with the reference adapters (32 distinct unmerged copies, merged);
#    then 1 and 8 sequences decoding over 1000 cached tokens each;
# 3. every load scenario of bench/scenarios through bench/run-scenario.sh (exactly 64-token completions for
#    base-1/base-8: ignore_eos), base-8 with 8-token user prompts right after the engine's own 8-stream
#    decode, twice (issue 4's ratio: HTTP against the engine at the same concurrency), and half-adapter-8 with
#    the same short prompts (issue 5's mixed batch without its 128-token prefills).
# Everything is printed and kept under bench/results/record-<UTC time>.txt.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DURATION="${1:-30}"
REF="$ROOT/../shared/reference/adapters"
mkdir -p bench/results
OUT="bench/results/record-$(date -u +%Y%m%dT%H%M%SZ).txt"
# Its own build folder: scripts/test.sh builds .build/release with -enable-testing, which SwiftPM does not
# tell apart from a plain release build, and those kernels run slower.
swift build -c release --product serve --scratch-path .build-release >&2
SERVE="$ROOT/.build-release/release/serve"
export SERVE
{
    echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "== git $(git rev-parse --short HEAD)"
    adapters=()
    [[ -d "$REF/qv-r8" ]] && adapters+=(--adapter "$REF/qv-r8")
    [[ -d "$REF/all-r16" ]] && adapters+=(--adapter "$REF/all-r16")
    echo "== serve bench runtime --threads 1,2 --batches 8,32 ${adapters[*]}"
    "$SERVE" bench runtime --threads 1,2 --batches 8,32 --batch-steps 32 "${adapters[@]}"
    echo "== serve bench runtime --threads 2 --batches 1,8 --context 1000 (decode over a long cache: attention)"
    "$SERVE" bench runtime --threads 2 --batches 1,8 --batch-steps 32 --generate-tokens 1 --prompt-tokens 16 --context 1000 \
        | grep "tokens cached"
    for s in base-1 base-8; do
        echo "== scenario $s (64-token completions, ignore_eos, ${DURATION} s)"
        bench/run-scenario.sh "bench/scenarios/$s.json" -- --duration "$DURATION" --max-tokens 64 \
            --extra-body '{"ignore_eos": true}' --quiet 2>&1 | tail -n 25
    done
    # The VM's speed drifts over minutes, so the engine and HTTP figures are taken in alternating pairs.
    for pair in 1 2; do
        echo "== pair $pair: engine alone, 8 streams, then scenario base-8 with 8-token user prompts (64-token completions, ignore_eos, ${DURATION} s)"
        "$SERVE" bench runtime --threads 2 --batches 8 --batch-steps 64 --generate-tokens 1 --prompt-tokens 16 | grep batched
        bench/run-scenario.sh bench/scenarios/base-8.json -- --duration "$DURATION" --max-tokens 64 --prompt-tokens 8 \
            --extra-body '{"ignore_eos": true}' --quiet 2>&1 | tail -n 25
    done
    echo "== scenario half-adapter-8 with 8-token user prompts (64-token completions, ignore_eos, ${DURATION} s): the cost of"
    echo "   mixing adapter and base rows without the scenario's 128-token prefills"
    bench/run-scenario.sh bench/scenarios/half-adapter-8.json -- --duration "$DURATION" --max-tokens 64 --prompt-tokens 8 \
        --extra-body '{"ignore_eos": true}' --quiet 2>&1 | tail -n 25
    for s in base-32 half-adapter-8 adapters-64-uniform adapters-64-zipf adapters-64-churn; do
        echo "== scenario $s (${DURATION} s)"
        bench/run-scenario.sh "bench/scenarios/$s.json" -- --duration "$DURATION" --quiet 2>&1 | tail -n 25
    done
    echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$OUT"
echo "recorded in $OUT"
