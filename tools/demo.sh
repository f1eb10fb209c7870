#!/usr/bin/env bash
# What `make run` starts today: makes a small random-weight demo model (once) with a real Llama
# tokenizer, prints what it is, and measures the engine on it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/build/release/bin/neocloud"
SRC=$(bash "$ROOT/tools/llama-cpp.sh" --fetch)
DEMO="$ROOT/.cache/demo/demo-tiny-q8_0.gguf"
mkdir -p "$(dirname "$DEMO")"
[ -f "$DEMO" ] || "$BIN" model synth --vocab "$SRC/models/ggml-vocab-llama-spm.gguf" --shape tiny --type q8_0 --out "$DEMO"
"$BIN" model info "$DEMO" | tail -3
"$BIN" bench -m "$DEMO" -p 128 -n 32 -r 3 -t "$(nproc)"
