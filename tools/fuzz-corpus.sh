#!/usr/bin/env bash
# Seed corpora: for the GGUF fuzzer, small valid models (tiny shapes, every type) written by our own
# writer, truncated to their first 64 KiB so the fuzzer mutates headers, metadata and tensor infos.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?corpus dir}
TOK=${2:-}
CHAT=${3:-}
# Tokenizer corpus: every case of the differential test corpus, one file each.
if [ -n "$TOK" ] && [ ! -d "$TOK" ]; then
  mkdir -p "$TOK"
  python3 - "$ROOT/tests/data/tokenizer/corpus.txt" "$TOK" <<'PY'
import sys
data = open(sys.argv[1], "rb").read().split(b"\n__ggml_vocab_test__\n")
for i, c in enumerate(data):
    open(f"{sys.argv[2]}/case-{i:04d}", "wb").write(c)
PY
fi
# Chat-template corpus: llama.cpp's real chat templates.
if [ -n "$CHAT" ] && [ ! -d "$CHAT" ]; then
  mkdir -p "$CHAT"
  cp "$(bash "$ROOT/tools/llama-cpp.sh" --fetch)"/models/templates/*.jinja "$CHAT"/
fi
mkdir -p "$OUT"
[ -z "$(ls -A "$OUT")" ] || exit 0
SRC=$(bash "$ROOT/tools/llama-cpp.sh" --fetch)
NC="$ROOT/build/release/bin/neocloud"
[ -x "$NC" ] || (cd "$ROOT" && make release >/dev/null)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for t in f32 q8_0 q4_k; do
  "$NC" model synth --vocab "$SRC/models/ggml-vocab-llama-spm.gguf" --type "$t" --out "$TMP/m.gguf" >/dev/null
  head -c 65536 "$TMP/m.gguf" > "$OUT/spm-$t"
done
# Whole micro models (placeholder vocabulary) reach the model loader.
for t in f32 f16 q8_0 q4_0; do
  for arch in llama qwen2; do
    "$NC" model synth --vocab builtin:64 --shape micro --arch "$arch" --type "$t" --out "$OUT/micro-$arch-$t" >/dev/null
  done
done
# LoRA adapters for the micro llama f32 model (the fuzzer checks adapters against that model).
for t in f32 f16 q8_0; do
  "$NC" model synth-lora --base "$OUT/micro-llama-f32" --rank 4 --type "$t" --targets qkvo,mlp,output \
        --out "$OUT/lora-micro-$t" >/dev/null
done
# The head of a real vocab file.
head -c 65536 "$SRC/models/ggml-vocab-qwen2.gguf" > "$OUT/qwen2-vocab-head"
