#!/usr/bin/env bash
# Side-by-side engine benchmark: neocloud bench vs llama-bench on the same synthetic model files,
# same threads, interleaved in the same run. Prints a table with ratios (neocloud / llama.cpp) of
# the median over ROUNDS rounds, and the decode roofline from measured memory bandwidth.
#   bench/engine_vs_llamacpp.sh [TYPES] (default "q8_0 q4_0 q4_k f16")
# Env: SHAPE (tinyllama-1.1b), THREADS (2), PP (512), TG (128), REPS (3 per round), ROUNDS (3).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TYPES=${1:-"q8_0 q4_0 q4_k f16"}
SHAPE=${SHAPE:-tinyllama-1.1b}
THREADS=${THREADS:-2}
PP=${PP:-512}
TG=${TG:-128}
REPS=${REPS:-3}
ROUNDS=${ROUNDS:-3}
B=$(bash "$ROOT/tools/llama-cpp.sh" | tail -1)
NC="$ROOT/build/release/bin/neocloud"
[ -x "$NC" ] || (cd "$ROOT" && make release >/dev/null)
MODELS="$ROOT/.cache/models"
OUT=${OUT:-"$ROOT/.cache/bench/$(date +%Y%m%d-%H%M%S)"}
mkdir -p "$MODELS" "$OUT"
gcc -O2 -mavx2 -fopenmp "$ROOT/bench/membw.c" -o "$OUT/membw"
OMP_NUM_THREADS=$THREADS "$OUT/membw" | tee "$OUT/membw.txt"
for t in $TYPES; do
  m="$MODELS/$SHAPE-$t.gguf"
  [ -f "$m" ] || "$NC" model synth --vocab "$B/../models/ggml-vocab-llama-spm.gguf" --shape "$SHAPE" --type "$t" --out "$m"
  for r in $(seq "$ROUNDS"); do
    # Bandwidth drifts on shared machines: measure it again next to every round (compare.py uses the max).
    OMP_NUM_THREADS=$THREADS "$OUT/membw" 512 >> "$OUT/membw.txt"
    "$B/bin/llama-bench" -m "$m" -t "$THREADS" -p "$PP" -n "$TG" -r "$REPS" -o json > "$OUT/llama-$t-$r.json" 2>/dev/null
    "$NC" bench -m "$m" -t "$THREADS" -p "$PP" -n "$TG" -r "$REPS" --json > "$OUT/nc-$t-$r.json"
  done
done
python3 "$ROOT/bench/compare.py" "$OUT" "$SHAPE" "$THREADS" $TYPES | tee "$OUT/summary.md"
# Memory: peak RSS of one bench run per file (weights are repacked once at load, originals dropped).
{
  echo
  echo "| type | file MB | peak RSS MB | RSS - file MB | load + repack s |"
  echo "|---|---:|---:|---:|---:|"
  for t in $TYPES; do
    m="$MODELS/$SHAPE-$t.gguf"
    /usr/bin/time -v "$NC" bench -m "$m" -t "$THREADS" -p 64 -n 16 -r 1 --json > "$OUT/rss-$t.json" 2> "$OUT/rss-$t.txt"
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$OUT/rss-$t.txt")
    load=$(sed -n 's/.*"load_time_s": \([0-9.]*\).*/\1/p' "$OUT/rss-$t.json" | head -1)
    size=$(stat -c %s "$m")
    echo "| $t | $((size / 1000000)) | $((rss / 1000)) | $(((rss * 1000 - size) / 1000000)) | $load |"
  done
} | tee -a "$OUT/summary.md"
