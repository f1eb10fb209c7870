#!/usr/bin/env bash
# Soak of `neocloud serve`: 1,000 requests with random lengths and random client disconnects
# (tests/server/soak_test.py), then the server must still answer, hold no KV blocks, and exit cleanly
# on SIGTERM (under ASan, a leak or a memory error fails that exit).
# Usage: soak.sh NEOCLOUD_BIN LLAMA_SRC TMPDIR [N]
set -euo pipefail
NC=$1; SRC=$2; TMP=$3; N=${4:-1000}
mkdir -p "$TMP"
fail() { echo "FAIL: $*" >&2; exit 1; }
m="$TMP/soak-tiny.gguf"
"$NC" model synth --vocab "$SRC/models/ggml-vocab-llama-spm.gguf" --shape tiny --type q8_0 --seed 6 --out "$m" >/dev/null
source "$(dirname "$0")/lib.sh"
start_server "$TMP/serve.log" -m "$m:tiny" --parallel 8 -c 4096 -t 2
python3 "$(dirname "$0")/soak_test.py" "$U" tiny "$N" || fail "soak"
kill -TERM $PID
wait $PID || fail "server exit status $?: $(tail -20 "$TMP/serve.log")"
trap - EXIT
echo "soak ok"
