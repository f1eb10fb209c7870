#!/usr/bin/env bash
# The neocloud CLI end to end: model synth / info, logits (file size and a bad-input error), bench --json
# with llama-bench's field names. Usage: cli_test.sh NEOCLOUD_BIN LLAMA_SRC TMPDIR
set -euo pipefail
NC=$1; SRC=$2; TMP=$3
mkdir -p "$TMP"
fail() { echo "FAIL: $*" >&2; exit 1; }
m="$TMP/cli-tiny.gguf"
"$NC" model synth --vocab "$SRC/models/ggml-vocab-llama-spm.gguf" --shape tiny --type q8_0 --seed 3 --out "$m" >/dev/null
"$NC" model synth --vocab "$SRC/models/ggml-vocab-llama-spm.gguf" --shape tiny --type q8_0 --seed 3 --out "$m.2" >/dev/null
cmp -s "$m" "$m.2" || fail "synth is not deterministic by seed"
info=$("$NC" model info "$m")
grep -q "n_vocab=32000" <<<"$info" || fail "model info lacks n_vocab"
grep -q "blk.1.ffn_down.weight" <<<"$info" || fail "model info lacks tensors"
"$NC" logits -m "$m" --tokens 1,2,3,4,5 --out "$TMP/l.bin" -t 2 >/dev/null
[ "$(stat -c %s "$TMP/l.bin")" -eq $((5 * 32000 * 4)) ] || fail "logits file size"
if "$NC" logits -m "$m" --tokens 1,99999999 --out "$TMP/bad.bin" 2>"$TMP/err.txt"; then fail "bad token accepted"; fi
grep -q "outside the vocabulary" "$TMP/err.txt" || fail "bad token error message: $(cat "$TMP/err.txt")"
[ ! -e "$TMP/bad.bin" ] || fail "output written on error"
if "$NC" model info "$TMP/l.bin" 2>"$TMP/err.txt"; then fail "non-GGUF accepted"; fi
grep -q "bad magic" "$TMP/err.txt" || fail "non-GGUF error message"
json=$("$NC" bench -m "$m" -p 16 -n 4 -r 2 -t 2 --json)
for f in n_prompt n_gen n_threads avg_ts stddev_ts; do grep -q "\"$f\"" <<<"$json" || fail "bench json lacks $f"; done
python3 -c 'import json,sys; rows=json.load(sys.stdin); assert len(rows)==2 and rows[0]["n_prompt"]==16 and rows[1]["n_gen"]==4 and all(r["avg_ts"]>0 for r in rows)' <<<"$json" || fail "bench json content"
rm -f "$m" "$m.2"
echo "cli ok"
