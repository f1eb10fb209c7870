#!/usr/bin/env bash
# The openai npm SDK against `neocloud serve --db sqlite:…` (tests/gateway/sdk_gateway_test.mjs): sets up
# keys, limits, a price and a zero budget with `neocloud admin`, then runs the SDK checks.
# Usage: sdk_gateway_test.sh NEOCLOUD_BIN LLAMA_SRC TMPDIR
set -euo pipefail
NC=$1; SRC=$2; TMP=$3
rm -rf "$TMP" && mkdir -p "$TMP"
fail() { echo "FAIL: $*" >&2; exit 1; }
SDK=${NC_SDK_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/.cache/sdk}
[ -d "$SDK/node_modules/openai" ] || fail "openai SDK not installed in $SDK (run tools/sdk.sh)"
"$NC" model synth --vocab "$SRC/models/ggml-vocab-llama-spm.gguf" --shape micro --type f16 --seed 5 --out "$TMP/m.gguf" >/dev/null
source "$(dirname "$0")/../server/lib.sh"
start_server "$TMP/serve.log" -m "$TMP/m.gguf:tiny" -t 2 --db "sqlite:$TMP/nc.db" --admin-key-file "$TMP/admin.key"
export NEOCLOUD_URL=$U NEOCLOUD_ADMIN_KEY
NEOCLOUD_ADMIN_KEY=$(cat "$TMP/admin.key")
id() { sed -n 's/^  "id": "\([a-z]*_[0-9a-f]*\)".*/\1/p' | head -1; }
value() { sed -n 's/.*"value": "\(nc-inf-[A-Za-z0-9]*\)".*/\1/p'; }
p_open=$("$NC" admin projects create open | id)
p_broke=$("$NC" admin projects create broke | id)
k_open=$("$NC" admin keys create --project "$p_open" --name open | value)
k_limited_json=$("$NC" admin keys create --project "$p_open" --name limited)
k_limited=$(echo "$k_limited_json" | value)
k_limited_id=$(echo "$k_limited_json" | id)
k_broke=$("$NC" admin keys create --project "$p_broke" --name broke | value)
"$NC" admin limits set --scope key --id "$k_limited_id" --rpm 6 >/dev/null
"$NC" admin prices add tiny --input 1 --output 2 >/dev/null
"$NC" admin budgets set --scope project --id "$p_broke" --monthly-usd 0 >/dev/null
[ -n "$k_open" ] && [ -n "$k_limited" ] && [ -n "$k_broke" ] || fail "keys were not created"
node "$(dirname "$0")/sdk_gateway_test.mjs" "$U/v1" "$SDK" "$k_limited" "$k_broke" "$k_open" || fail "SDK checks"
kill -TERM $PID && wait $PID || fail "exit status $?"
