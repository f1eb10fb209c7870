#!/usr/bin/env bash
# Regenerates tests/data/generate/*.ref: for each synthetic model below (written by neocloud's own GGUF
# writer, seed 1, "tiny" shape), llama.cpp's greedy generation of 128 tokens (tools/ref/llama_generate.cpp:
# prompt ids, generated ids, and the top-1 minus top-2 logit gap at every step). Builds llama.cpp.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$(bash "$ROOT/tools/llama-cpp.sh" | tail -1)
NC="$ROOT/build/release/bin/neocloud"
D="$ROOT/tests/data/generate"
PROMPT="Once upon a time, in a land far away,"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$D"
# name vocab arch llama3_rope
while read -r name vocab arch l3; do
  for type in f32 f16 q8_0; do
    "$NC" model synth --vocab "$B/../models/ggml-vocab-$vocab.gguf" --shape tiny --arch "$arch" --type "$type" \
          --tied 0 --llama3-rope "$l3" --seed 1 --out "$TMP/m.gguf" >/dev/null
    "$B/bin/llama_generate" "$TMP/m.gguf" "$PROMPT" 128 "$D/$name-$type.ref" 2
    echo "$name-$type"
  done
done <<'LIST'
spm llama-spm llama 0
llama3 llama-bpe llama 1
qwen2 qwen2 qwen2 0
LIST
