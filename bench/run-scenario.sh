#!/usr/bin/env bash
# Runs one load scenario against a freshly started LoraServe and keeps the results.
#
#   bench/run-scenario.sh bench/scenarios/adapters-64-zipf.json [config/serve.json] [-- extra 'serve bench' flags]
#
# 1. creates the adapters the scenario names (adapter_count copies of a PEFT adapter, named
#    <adapter_prefix>0 … <adapter_prefix>N-1, or each name of "adapters") in a temporary adapters_dir, and
#    for churn scenarios one more copy in a folder added to adapter_roots;
# 2. writes a temporary configuration: the given config (default config/serve.json), then the
#    scenario's "server" object, then port / adapters_dir / adapter_roots;
# 3. starts `serve --config that-file`, waits for GET /health, runs `serve bench --scenario …`,
#    stops the server with SIGTERM;
# 4. writes bench/results/<name>-<UTC time>.json (+ .svg plot, .server.log, .bench.txt).
#
# Environment: SERVE (the serve binary; default .build-release/release/serve, built there if missing), PORT (default: a
# free port), SOURCE_ADAPTER (default ../shared/reference/adapters/qv-r8), RESULTS (default bench/results),
# HEALTH_TIMEOUT seconds (default 180).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
usage() { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[[ $# -ge 1 ]] || usage
SCENARIO="$1"; shift
CONFIG="$ROOT/config/serve.json"
if [[ $# -ge 1 && "$1" != "--" ]]; then CONFIG="$1"; shift; fi
if [[ $# -ge 1 && "$1" == "--" ]]; then shift; fi
[[ -f "$SCENARIO" ]] || { echo "run-scenario: no scenario file $SCENARIO" >&2; exit 2; }
[[ -f "$CONFIG" ]] || { echo "run-scenario: no configuration file $CONFIG" >&2; exit 2; }

SERVE="${SERVE:-$ROOT/.build-release/release/serve}"
if [[ ! -x "$SERVE" ]]; then
    echo "run-scenario: building serve (release)" >&2
    (cd "$ROOT" && swift build -c release --product serve --scratch-path .build-release) >&2
fi
SOURCE_ADAPTER="${SOURCE_ADAPTER:-$ROOT/../shared/reference/adapters/qv-r8}"
RESULTS="${RESULTS:-$ROOT/bench/results}"
HEALTH_TIMEOUT="${HEALTH_TIMEOUT:-180}"
mkdir -p "$RESULTS"

PORT="${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/loraserve-bench.XXXXXX")"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# What the scenario needs: its name, the adapter names, whether it churns, its server overrides.
eval "$(python3 - "$SCENARIO" <<'PY'
import json, shlex, sys
s = json.load(open(sys.argv[1]))
name = s.get("name") or sys.argv[1].rsplit("/", 1)[-1].removesuffix(".json")
adapters = s.get("adapters") or []
if isinstance(adapters, str):
    adapters = [a.strip() for a in adapters.split(",") if a.strip()]
if not adapters and s.get("adapter_count"):
    adapters = [f'{s.get("adapter_prefix", "bench-")}{i}' for i in range(int(s["adapter_count"]))]
print("NAME=" + shlex.quote(name))
print("ADAPTERS=(" + " ".join(shlex.quote(a) for a in adapters) + ")")
print("CHURN=" + ("1" if s.get("churn_rate") else "0"))
print("SERVER_OVERRIDES=" + shlex.quote(json.dumps(s.get("server", {}))))
PY
)"

copy_adapter() {  # hard links when the file system allows, else a copy
    cp -al "$1" "$2" 2>/dev/null || cp -a "$1" "$2"
}
mkdir -p "$WORK/adapters" "$WORK/churn"
if [[ ${#ADAPTERS[@]} -gt 0 || "$CHURN" == 1 ]]; then
    [[ -d "$SOURCE_ADAPTER" ]] || { echo "run-scenario: no source adapter at $SOURCE_ADAPTER (set SOURCE_ADAPTER)" >&2; exit 2; }
fi
for a in "${ADAPTERS[@]}"; do copy_adapter "$SOURCE_ADAPTER" "$WORK/adapters/$a"; done
CHURN_FLAGS=()
if [[ "$CHURN" == 1 ]]; then
    copy_adapter "$SOURCE_ADAPTER" "$WORK/churn/churn-source"
    CHURN_FLAGS=(--churn-path "$WORK/churn/churn-source")
fi
echo "run-scenario: $NAME: ${#ADAPTERS[@]} adapters in $WORK/adapters, port $PORT" >&2

python3 - "$CONFIG" "$SERVER_OVERRIDES" "$PORT" "$WORK" > "$WORK/serve.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config.update(json.loads(sys.argv[2]))
config["host"] = "127.0.0.1"
config["port"] = int(sys.argv[3])
config["adapters_dir"] = sys.argv[4] + "/adapters"
config["adapter_roots"] = list(config.get("adapter_roots", [])) + [sys.argv[4] + "/churn"]
json.dump(config, sys.stdout, indent=2)
PY

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
BASE="$RESULTS/$NAME-$STAMP"
cp "$WORK/serve.json" "$BASE.config.json"
(cd "$ROOT" && exec "$SERVE" --config "$WORK/serve.json") > "$BASE.server.log" 2>&1 &
SERVER_PID=$!

URL="http://127.0.0.1:$PORT"
deadline=$((SECONDS + HEALTH_TIMEOUT))
until curl -sf -o /dev/null "$URL/health"; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "run-scenario: the server exited before it was healthy; its log ($BASE.server.log) ends:" >&2
        tail -20 "$BASE.server.log" >&2
        SERVER_PID=""
        exit 1
    fi
    if (( SECONDS >= deadline )); then
        echo "run-scenario: no healthy server at $URL after $HEALTH_TIMEOUT s" >&2
        exit 1
    fi
    sleep 0.5
done

status=0
"$SERVE" bench --scenario "$SCENARIO" --url "$URL" --json "$BASE.json" --plot "$BASE.svg" \
    ${CHURN_FLAGS[@]+"${CHURN_FLAGS[@]}"} "$@" | tee "$BASE.bench.txt" || status=$?

kill -TERM "$SERVER_PID" 2>/dev/null || true
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""
echo "run-scenario: results in $BASE.{json,svg,bench.txt,server.log,config.json}" >&2
exit "$status"
