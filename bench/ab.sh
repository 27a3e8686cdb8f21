#!/usr/bin/env bash
# A/B of `serve bench runtime` between builds, for a VM whose speed drifts by ±20% over minutes: the binaries
# take turns, ROUNDS times, and each figure (prompt processing, generation, batched decode) is reported as median,
# min and max per binary.
#
#   bench/ab.sh ROUNDS "RUNTIME FLAGS" BINARY_A BINARY_B [...]
#   bench/ab.sh 8 "--threads 2 --batches 8,32 --batch-steps 32 --generate-tokens 1 --prompt-tokens 16" /tmp/serve-old /tmp/serve-new
#
# Copy each build out of .build-release first (cp .build-release/release/serve /tmp/serve-new): the binaries must
# stay put while the rounds run. A binary may be a script that sets an environment and execs serve.
set -euo pipefail
[[ $# -ge 3 ]] || { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
rounds="$1"; flags="$2"; shift 2
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for _ in $(seq "$rounds"); do
    for bin in "$@"; do
        # One line per figure: binary, the figure's label, tokens/s.
        # shellcheck disable=SC2086
        "$bin" bench runtime $flags 2>&1 | awk -v b="$bin" '/ tokens\/s/ && !/^kernel/ {
            label = $0; sub(/^threads /, "t", label); sub(/ +[0-9.]+ tokens\/s.*/, "", label)
            for (i = 1; i <= NF; i++) if ($i == "tokens/s") print b "\t" label "\t" $(i - 1) }' >> "$results"
    done
done
# Per (figure, binary), in that order: median, min and max of its runs.
cut -f1,2 "$results" | sort -u -t$'\t' -k2,2 -k1,1 | while IFS=$'\t' read -r bin label; do
    awk -F'\t' -v b="$bin" -v l="$label" '$1 == b && $2 == l { print $3 }' "$results" | sort -n | awk -v b="$bin" -v l="$label" '
        { v[NR] = $1 }
        END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
              printf "%-60s %-28s median %6.1f  min %6.1f  max %6.1f  (n=%d)\n", l, b, m, v[1], v[NR], NR }'
done
