#!/usr/bin/env bash
# Installs the official `openai` npm SDK (5.x: later majors need Node 22) into .cache/sdk for the
# end-to-end server tests. Idempotent.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
D="$ROOT/.cache/sdk"
mkdir -p "$D"
if [ ! -f "$D/node_modules/openai/package.json" ]; then
  (cd "$D" && npm i -E openai@5.23.2 --no-audit --no-fund >/dev/null)
fi
echo "$D"
