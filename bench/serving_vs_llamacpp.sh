#!/usr/bin/env bash
# Serving benchmark, neocloud serve vs llama-server (continuous batching, -np 16), same synthetic
# tinyllama-1.1b Q4_0 file, same threads, same load (bench/serving_load.py: vLLM benchmark_serving
# definitions; prompts 128-512 tokens, 128 out, Poisson arrivals), at concurrency 1, 4, 8, 16.
#   bench/serving_vs_llamacpp.sh            Env: NUM (requests per level, default 4*conc, at least 8),
#                                           RATE (req/s, default inf), THREADS (2), LEVELS ("1 4 8 16")
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$(bash "$ROOT/tools/llama-cpp.sh" | tail -1)
NC="$ROOT/build/release/bin/neocloud"
THREADS=${THREADS:-2}
LEVELS=${LEVELS:-"1 4 8 16"}
RATE=${RATE:-inf}
M="$ROOT/.cache/models/tinyllama-1.1b-q4_0.gguf"
[ -f "$M" ] || "$NC" model synth --vocab "$B/../models/ggml-vocab-llama-spm.gguf" --shape tinyllama-1.1b --type q4_0 --out "$M"
OUT=${OUT:-"$ROOT/.cache/bench/serving-$(date +%Y%m%d-%H%M%S)"}
mkdir -p "$OUT"
CTX=$((16 * 640))
wait_up() { for _ in $(seq 600); do curl -sf "http://127.0.0.1:$1/health" >/dev/null && return 0; sleep 0.2; done; return 1; }
"$NC" serve -m "$M:m" --port 18181 --parallel 16 -c "$CTX" -t "$THREADS" 2>"$OUT/neocloud.log" &
NPID=$!
"$B/bin/llama-server" -m "$M" --port 18182 -np 16 -c "$CTX" -t "$THREADS" -tb "$THREADS" --log-disable >"$OUT/llama.log" 2>&1 &
LPID=$!
trap 'kill $NPID $LPID 2>/dev/null || true' EXIT
wait_up 18181 && wait_up 18182
# The compute ceiling: on a CPU, batching cannot make a request cheaper than evaluating its prompt and
# output tokens at prefill speed. Prefill speed of 128-token chunks (what serve uses), same threads:
"$NC" bench -m "$M" -p 128 -n 0 -r 3 -t "$THREADS" --json 2>/dev/null > "$OUT/pp128.json"
for c in $LEVELS; do
  n=${NUM:-$((c * 4 > 8 ? c * 4 : 8))}
  # Interleaved: llama-server, then neocloud, at each level (the other server is idle meanwhile).
  python3 "$ROOT/bench/serving_load.py" http://127.0.0.1:18182 m "$c" "$n" "$RATE" > "$OUT/llama-$c.json"
  python3 "$ROOT/bench/serving_load.py" http://127.0.0.1:18181 m "$c" "$n" "$RATE" > "$OUT/nc-$c.json"
done
python3 - "$OUT" $LEVELS <<'PY' | tee "$OUT/summary.md"
import json, sys
out, levels = sys.argv[1], sys.argv[2:]
pp = json.load(open(f"{out}/pp128.json"))[0]["avg_ts"]
print("| conc | server | req/s | output tok/s | TTFT p50 / p99 ms | TPOT p50 ms | ITL p50 / p99 ms | ratio tok/s |")
print("|---:|---|---:|---:|---:|---:|---:|---:|")
single = None
for c in levels:
    l = json.load(open(f"{out}/llama-{c}.json")); n = json.load(open(f"{out}/nc-{c}.json"))
    if c == "1": single = n["output_tok_s"]
    for name, r in (("llama-server", l), ("neocloud", n)):
        ratio = f"{n['output_tok_s'] / l['output_tok_s']:.2f}x" if name == "neocloud" else ""
        print(f"| {c} | {name} | {r['request_throughput']:.3f} | {r['output_tok_s']:.1f} | "
              f"{r['ttft_ms']['p50']:.0f} / {r['ttft_ms']['p99']:.0f} | {r['tpot_ms']['p50']:.1f} | "
              f"{r['itl_ms']['p50']:.1f} / {r['itl_ms']['p99']:.1f} | {ratio} |")
if single:
    top_run = json.load(open(f"{out}/nc-{levels[-1]}.json"))
    top = top_run["output_tok_s"]
    ceiling = top_run["output_tokens"] / ((top_run["input_tokens"] + top_run["output_tokens"]) / pp)
    print(f"\nneocloud output tok/s at {levels[-1]} streams / at 1 stream: {top / single:.2f}x")
    print(f"compute ceiling (all prompt + output tokens at the measured pp128 rate, {pp:.0f} tok/s): "
          f"{ceiling:.1f} output tok/s = {ceiling / single:.2f}x the single stream; "
          f"{levels[-1]} streams reach {top / ceiling:.0%} of it")
PY
