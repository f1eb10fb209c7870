#!/usr/bin/env bash
# Regenerates tests/data/embeddings/*.json: llama-server's /v1/embeddings (--embeddings --pooling mean,
# L2-normalized) for a few inputs on synthetic models written by neocloud's own GGUF writer — the same
# models tests/server/server_test.sh serves ("tiny" q8_0, seed 5, llama-spm vocab; and a qwen2 model).
# Builds llama.cpp (tools/llama-cpp.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$(bash "$ROOT/tools/llama-cpp.sh" | tail -1)
NC="$ROOT/build/release/bin/neocloud"
D="$ROOT/tests/data/embeddings"
TMP=$(mktemp -d)
PID=""
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$TMP"' EXIT
mkdir -p "$D"
INPUTS='["Once upon a time", "Hello world", "The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy dog, again and again, until the end of the story.", "ünïcödé — 你好 🚀"]'
# name vocab synth-args
while read -r name vocab args; do
  # shellcheck disable=SC2086
  "$NC" model synth --vocab "$B/../models/ggml-vocab-$vocab.gguf" $args --out "$TMP/m.gguf" >/dev/null
  "$B/bin/llama-server" -m "$TMP/m.gguf" --embeddings --pooling mean --port 18399 -c 2048 -t 2 --log-disable \
    >"$TMP/server.log" 2>&1 &
  PID=$!
  for _ in $(seq 300); do curl -sf http://127.0.0.1:18399/health >/dev/null && break; sleep 0.2; done
  curl -sf http://127.0.0.1:18399/v1/embeddings -d "{\"model\":\"m\",\"input\":$INPUTS}" |
    python3 -c 'import json,sys; r=json.load(sys.stdin); inputs=json.loads(sys.argv[1]);
json.dump({"source": "llama-server --embeddings --pooling mean", "inputs": inputs,
           "prompt_tokens": r["usage"]["prompt_tokens"],
           "embeddings": [d["embedding"] for d in sorted(r["data"], key=lambda d: d["index"])]},
          open(sys.argv[2], "w"))' "$INPUTS" "$D/$name.json"
  kill $PID; wait $PID 2>/dev/null || true; PID=""
  echo "$name"
done <<'LIST'
tiny-q8_0-seed5 llama-spm --shape tiny --type q8_0 --seed 5
qwen2-micro-f16-seed7 qwen2 --shape micro --arch qwen2 --type f16 --seed 7
LIST
