#!/usr/bin/env bash
# Soak test: the release `serve` with 64 adapters (copies of the reference adapters in a temp dir), mixed
# load for DURATION seconds (default 600):
#   - `serve bench`: CLIENTS (64) closed-loop streaming clients, adapters uniform at random (10% base),
#     max_tokens 8-32, churn of one adapter added and one removed per second through the admin API;
#   - bench/soak_load.py beside it: 4 clients that only cancel mid-stream (70%) or send malformed
#     requests (30%: bad JSON, invalid UTF-8, 10,000 '[', 1e400, a broken request line), and a sampler of
#     the server's VmRSS/VmHWM (/proc/PID/status) every second.
# Prints served/failed by reason from both, resident memory, and the server's gauges afterwards.
# Usage: DURATION=120 bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-600}"
REFERENCE="${REFERENCE:-/work/shared/reference/adapters}"
CLIENTS="${CLIENTS:-64}"

# SERVE=path/to/serve skips the build (its own build folder .build-release otherwise, not scripts/test.sh's -enable-testing build).
if [ -z "${SERVE:-}" ]; then
    swift build -c release --product serve --scratch-path .build-release >/dev/null
    SERVE="$(swift build -c release --scratch-path .build-release --show-bin-path)/serve"
fi

WORK="$(mktemp -d /tmp/loraserve-soak.XXXXXX)"
PID=""
cleanup() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi; rm -rf "$WORK"; }
trap cleanup EXIT

# 64 adapters: copies of the reference ones (qv-r8, all-r16, attn-r4-rslora, train-init), round robin.
mkdir -p "$WORK/adapters" "$WORK/churn"
SOURCES=()
for d in "$REFERENCE"/*/; do [ -f "$d/adapter_config.json" ] && SOURCES+=("${d%/}"); done
NAMES=()
for i in $(seq 0 63); do
    src="${SOURCES[$((i % ${#SOURCES[@]}))]}"
    name="soak-$i-$(basename "$src")"
    cp -r "$src" "$WORK/adapters/$name"; chmod -R u+w "$WORK/adapters/$name"
    NAMES+=("$name")
done
cp -r "${SOURCES[0]}" "$WORK/churn/"; chmod -R u+w "$WORK/churn"
CHURN_PATH="$WORK/churn/$(basename "${SOURCES[0]}")"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$SERVE" server --port "$PORT" --adapters-dir "$WORK/adapters" --adapter-root "$WORK/churn" \
    --max-running-sequences 32 --log-level warning 2>"$WORK/server.log" &
PID=$!
for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
    sleep 1
done
echo "server pid $PID on port $PORT, $(curl -s "http://127.0.0.1:$PORT/v1/models" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]))') models; RSS at start $(grep VmRSS /proc/$PID/status | awk '{print $2" "$3}'); load for ${DURATION}s"

python3 bench/soak_load.py --port "$PORT" --pid "$PID" --duration "$DURATION" --clients 4 \
    --cancel-share 0.7 --malformed-share 0.3 --adapters "$(IFS=,; echo "${NAMES[*]}")" >"$WORK/side.json" &
SIDE=$!
"$SERVE" bench --url "http://127.0.0.1:$PORT" --clients "$CLIENTS" --duration "$DURATION" --max-tokens 8-32 \
    --adapters "$(IFS=,; echo "${NAMES[*]}")" --base-fraction 0.1 --temperature 0.7 \
    --churn-rate 1 --churn-path "$CHURN_PATH" --churn-keep 4 --name soak --json "$WORK/bench.json" --quiet || echo "serve bench exited with $?"
wait "$SIDE" || echo "side load exited with $?"

echo "== serve bench (main load + churn) =="
python3 - "$WORK/bench.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["summary"]
print(json.dumps({k: s[k] for k in ["duration_s", "requests_sent", "requests_succeeded", "requests_failed", "requests_per_s",
                                    "output_tokens_per_s", "errors", "error_samples"] if k in s}, indent=2))
print("latency_ms:", json.dumps(s.get("latency_ms")))
print("churn:", json.dumps(r.get("churn")))
PY
echo "== side load (cancellations, malformed requests) and resident memory =="
cat "$WORK/side.json"

kill -0 "$PID" 2>/dev/null && echo "server alive after the soak" || { echo "SERVER DIED"; tail -20 "$WORK/server.log"; exit 1; }
sleep 2
echo "server gauges after the soak (running sequences, open connections and KV bytes should be 0/1/0):"
curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^loraserve_(running_sequences|queued_requests|http_open_connections|kv_cache_bytes|adapters_registered|adapter_resident_bytes|requests_finished_total)' || true
echo "RSS after the soak: $(grep -E 'VmRSS|VmHWM' /proc/$PID/status | tr -s ' \t' ' ' | tr '\n' ' ')"
echo "server error log lines: $(grep -c '"error"' "$WORK/server.log" || true)"
