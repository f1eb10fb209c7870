#!/usr/bin/env bash
# What `make run` starts: `neocloud serve` with no model, which makes its small random-weight demo model
# on first start (~/.cache/neocloud) and serves it with the OpenAI-compatible API on
# http://127.0.0.1:${PORT:-8080}/v1 as "demo-random-weights" (its answers are noise: the weights are
# random). Serve your own GGUF with `build/release/bin/neocloud serve -m model.gguf`. Ctrl-C stops it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/build/release/bin/neocloud"
echo "try: curl http://127.0.0.1:${PORT:-8080}/v1/chat/completions -d '{\"model\":\"demo-random-weights\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],\"max_tokens\":16}'"
exec "$BIN" serve --port "${PORT:-8080}" --parallel 4
