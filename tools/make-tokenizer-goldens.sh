#!/usr/bin/env bash
# Regenerates the differential tokenizer references: writes tests/data/tokenizer/corpus.txt
# (tools/tokenizer-corpus.py, seed 1) and, for every vocab GGUF in llama.cpp's models/ that neocloud
# supports, tests/data/tokenizer/<vocab>.ref from libllama (tools/ref/llama_tokenize_dump.cpp).
# Builds llama.cpp first (tools/llama-cpp.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$(bash "$ROOT/tools/llama-cpp.sh" | tail -1)
D="$ROOT/tests/data/tokenizer"
mkdir -p "$D"
python3 "$ROOT/tools/tokenizer-corpus.py" "$D/corpus.txt" 1 "${CASES:-600}"
for v in aquila baichuan bert-bge command-r deepseek-coder deepseek-llm falcon gemma-4 gpt-2 gpt-neox \
         llama-bpe llama-spm mpt phi-3 qwen2 qwen35 refact starcoder; do
  "$B/bin/llama_tokenize_dump" "$B/../models/ggml-vocab-$v.gguf" "$D/corpus.txt" "$D/$v.ref"
  gzip -9nf "$D/$v.ref"
  echo "$v: $(stat -c %s "$D/$v.ref.gz") bytes"
done
