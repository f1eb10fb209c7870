#!/usr/bin/env bash
# Tokenizer speed, neocloud vs llama.cpp (libllama, same commit as the references), on a 1 MB text:
# English docs and C++ source from the llama.cpp tree plus the multilingual differential corpus.
# Best of R runs each, interleaved; prints tokens/s and the ratio per vocabulary.
#   bench/tokenizer_vs_llamacpp.sh [R]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
R=${1:-5}
B=$(bash "$ROOT/tools/llama-cpp.sh" | tail -1)
SRC="$B/.."
NC="$ROOT/build/release/bin/neocloud"
TXT="$ROOT/.cache/bench/tokenizer-1mb.txt"
mkdir -p "$(dirname "$TXT")"
if [ ! -f "$TXT" ]; then
  { cat "$SRC"/docs/*.md; cat "$SRC"/src/llama-vocab.cpp "$SRC"/src/llama-model.cpp; for i in 1 2 3 4; do cat "$ROOT/tests/data/tokenizer/corpus.txt"; done; } \
    | head -c 1048576 > "$TXT"
fi
printf "%-16s %10s %14s %14s %8s\n" vocab tokens "llama.cpp t/s" "neocloud t/s" ratio
for v in llama-spm llama-bpe qwen2 gpt-2 phi-3 deepseek-llm command-r bert-bge gemma-4; do
  M="$SRC/models/ggml-vocab-$v.gguf"
  ref=$("$B/bin/llama_tokenize_bench" "$M" "$TXT" "$R")
  our=$("$NC" tokenize -m "$M" --file "$TXT" --bench "$R")
  python3 - "$v" "$ref" "$our" <<'PY'
import sys
def parse(s): return dict(kv.split("=") for kv in s.split())
v, r, o = sys.argv[1], parse(sys.argv[2]), parse(sys.argv[3])
rt = int(r["tokens"]) / float(r["best_s"]); ot = int(o["tokens"]) / float(o["best_s"])
same = "" if r["tokens"] == o["tokens"] else "  (token counts differ!)"
print(f"{v:<16} {o['tokens']:>10} {rt:>14,.0f} {ot:>14,.0f} {ot/rt:>7.2f}x{same}")
PY
done
