#!/usr/bin/env bash
# Builds the llama.cpp reference (the commit bundled in node-llama-cpp@3.21.1) for side-by-side checks:
# llama-bench, llama-server, llama-tokenize, and libllama for the golden-logit dumper.
#   tools/llama-cpp.sh            -> builds into $NEOCLOUD_REF (default: .cache/ref, git-ignored)
#   tools/llama-cpp.sh --fetch    -> only fetches the source (vocab GGUFs, templates) and prints the tree
# Prints the build directory on the last line. Idempotent: reuses an existing build.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REF=${NEOCLOUD_REF:-$ROOT/.cache/ref}
JOBS=${JOBS:-$(nproc)}
mkdir -p "$REF"
if [ ! -f "$REF/node_modules/node-llama-cpp/llama/gitRelease.bundle" ]; then
  (cd "$REF" && npm i -E node-llama-cpp@3.21.1 --ignore-scripts --omit=optional --no-audit --no-fund >/dev/null)
fi
if [ ! -d "$REF/llama.cpp/.git" ]; then
  git clone -q "$REF/node_modules/node-llama-cpp/llama/gitRelease.bundle" "$REF/llama.cpp"
fi
if [ "${1:-}" = "--fetch" ]; then echo "$REF/llama.cpp"; exit 0; fi
B="$REF/llama.cpp/build"
if [ ! -x "$B/bin/llama-bench" ] || [ ! -x "$B/bin/llama-tokenize" ] || [ ! -x "$B/bin/llama-server" ]; then
  cmake -S "$REF/llama.cpp" -B "$B" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DBUILD_SHARED_LIBS=ON >/dev/null
  cmake --build "$B" -j "$JOBS" --target llama-bench llama-tokenize llama-server llama >/dev/null
fi
if [ ! -x "$B/bin/llama_logits" ] || [ "$ROOT/tools/ref/llama_logits.cpp" -nt "$B/bin/llama_logits" ]; then
  g++ -O2 -std=c++17 "$ROOT/tools/ref/llama_logits.cpp" -I "$REF/llama.cpp/include" -I "$REF/llama.cpp/ggml/include" \
      -L "$B/bin" -lllama -lggml -lggml-base -Wl,-rpath,"$B/bin" -o "$B/bin/llama_logits"
fi
for tool in llama_tokenize_dump llama_tokenize_bench llama_generate; do
  if [ ! -x "$B/bin/$tool" ] || [ "$ROOT/tools/ref/$tool.cpp" -nt "$B/bin/$tool" ]; then
    g++ -O2 -std=c++17 "$ROOT/tools/ref/$tool.cpp" -I "$REF/llama.cpp/include" -I "$REF/llama.cpp/ggml/include" \
        -L "$B/bin" -lllama -lggml -lggml-base -Wl,-rpath,"$B/bin" -o "$B/bin/$tool"
  fi
done
echo "$B"
