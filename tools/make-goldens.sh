#!/usr/bin/env bash
# Regenerates tests/data/golden/*.golden: for each line of manifest.txt, writes the synthetic model
# with neocloud's own writer, evaluates the prompt with llama.cpp (tools/ref/llama_logits.cpp, one
# batch, 2 threads) and packs the reference logits. A line with an adapter (its last four columns:
# type rank alpha targets) also writes a synthetic LoRA and evaluates with llama.cpp's --lora (NC_LORA).
# Needs `make release` and builds llama.cpp.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$(bash "$ROOT/tools/llama-cpp.sh" | tail -1)
SRC="$B/.."
NC="$ROOT/build/release/bin/neocloud"
GT="$ROOT/build/release/bin/nc_golden"
G="$ROOT/tests/data/golden"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
grep -v '^#' "$G/manifest.txt" | while read -r name vocab arch type l3 tied n seed ltype rank alpha targets; do
  [ -n "$name" ] || continue
  [ -z "${ONLY:-}" ] || [[ "$name" == $ONLY ]] || continue
  "$NC" model synth --vocab "$SRC/models/ggml-vocab-$vocab.gguf" --arch "$arch" --type "$type" \
        --llama3-rope "$l3" --tied "$tied" --seed 1 --out "$TMP/m.gguf" >/dev/null
  nv=$("$NC" model info "$TMP/m.gguf" | sed -n 's/.* n_vocab=\([0-9]*\) .*/\1/p')
  toks=$("$GT" tokens "$n" "$nv" "$seed")
  lora=""
  if [ -n "${ltype:-}" ]; then
    "$NC" model synth-lora --base "$TMP/m.gguf" --type "$ltype" --rank "$rank" --alpha "$alpha" --targets "$targets" \
          --out "$TMP/lora.gguf" >/dev/null
    lora="$TMP/lora.gguf"
  fi
  NC_LORA="$lora" "$B/bin/llama_logits" "$TMP/m.gguf" "$toks" "$TMP/ref.bin" 2 >/dev/null
  "$GT" pack "$TMP/ref.bin" "$n" "$nv" "$seed" "$G/$name.golden"
  echo "$name: n_vocab=$nv n_tokens=$n"
done
