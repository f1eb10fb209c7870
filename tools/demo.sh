#!/usr/bin/env bash
# What `make run` starts: makes a small random-weight demo model (once) with a real Llama tokenizer and
# serves it with the OpenAI-compatible API on http://127.0.0.1:${PORT:-8080}/v1 as model
# "demo-random-weights" (its answers are noise: the weights are random). Ctrl-C stops it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/build/release/bin/neocloud"
SRC=$(bash "$ROOT/tools/llama-cpp.sh" --fetch)
DEMO="$ROOT/.cache/demo/demo-tiny-q8_0.gguf"
mkdir -p "$(dirname "$DEMO")"
[ -f "$DEMO" ] || "$BIN" model synth --vocab "$SRC/models/ggml-vocab-llama-spm.gguf" --shape tiny --type q8_0 --out "$DEMO"
echo "try: curl http://127.0.0.1:${PORT:-8080}/v1/completions -d '{\"model\":\"demo-random-weights\",\"prompt\":\"Hello\",\"max_tokens\":16}'"
exec "$BIN" serve -m "$DEMO:demo-random-weights" --port "${PORT:-8080}" --parallel 4
