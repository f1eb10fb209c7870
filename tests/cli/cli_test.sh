#!/usr/bin/env bash
# The neocloud CLI end to end: model synth / info, logits (file size and a bad-input error), bench --json
# with llama-bench's field names, tokenize (ids, --special, --no-bos, --pieces, --file, errors) and
# generate (streamed text, stats line, seed determinism, stop strings).
# Usage: cli_test.sh NEOCLOUD_BIN LLAMA_SRC TMPDIR
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
# tokenize: llama-bpe ids for a known sentence (the same as llama.cpp's reference file).
V="$SRC/models/ggml-vocab-llama-bpe.gguf"
[ "$("$NC" tokenize -m "$V" --text "Hello world")" = "128000,9906,1917" ] || fail "tokenize ids"
[ "$("$NC" tokenize -m "$V" --text "Hello world" --no-bos)" = "9906,1917" ] || fail "tokenize --no-bos"
[ "$("$NC" tokenize -m "$V" --text "<|eot_id|>" --no-bos --special)" = "128009" ] || fail "tokenize --special"
[ "$("$NC" tokenize -m "$V" --text "<|eot_id|>" --no-bos | tr ',' '\n' | wc -l)" -gt 1 ] || fail "special text parsed without --special"
printf 'Hello world' > "$TMP/t.txt"
[ "$("$NC" tokenize -m "$V" --file "$TMP/t.txt" --no-bos)" = "9906,1917" ] || fail "tokenize --file"
"$NC" tokenize -m "$V" --text " world" --no-bos --pieces | grep -q "^1917 ' world'$" || fail "tokenize --pieces"
if "$NC" tokenize -m "$V" 2>"$TMP/err.txt"; then fail "tokenize without text accepted"; fi
grep -q "give --text or --file" "$TMP/err.txt" || fail "tokenize usage error: $(cat "$TMP/err.txt")"
if "$NC" tokenize -m "$TMP/t.txt" --text x 2>"$TMP/err.txt"; then fail "tokenize of a non-GGUF accepted"; fi
# generate: streamed text then a stats line on stderr; the same seed gives the same text.
"$NC" generate -m "$m.gen" -p "Once upon a time" -n 12 --seed 5 -t 2 >"$TMP/g1.txt" 2>"$TMP/s1.txt" && fail "generate on a missing model succeeded" || true
"$NC" model synth --vocab "$SRC/models/ggml-vocab-llama-spm.gguf" --shape tiny --type q8_0 --seed 3 --out "$m" >/dev/null
"$NC" generate -m "$m" -p "Once upon a time" -n 12 --seed 5 -t 2 >"$TMP/g1.txt" 2>"$TMP/s1.txt"
"$NC" generate -m "$m" -p "Once upon a time" -n 12 --seed 5 -t 2 >"$TMP/g2.txt" 2>/dev/null
cmp -s "$TMP/g1.txt" "$TMP/g2.txt" || fail "generate is not deterministic by seed"
[ -s "$TMP/g1.txt" ] || fail "generate printed nothing"
grep -Eq "^prompt: 5 tokens, [0-9.]+ t/s \| generation: 12 tokens, [0-9.]+ t/s \| finish: length$" "$TMP/s1.txt" || fail "stats line: $(cat "$TMP/s1.txt")"
"$NC" generate -m "$m" -p "Once upon a time" -n 12 --temp 0 -t 2 --ignore-eos >"$TMP/g3.txt" 2>/dev/null
stop=$(python3 -c 'import sys; t=open(sys.argv[1],encoding="utf-8").read().strip(); i=len(t)//2; print(t[i:i+3])' "$TMP/g3.txt")
[ -n "$stop" ] || fail "greedy text too short to pick a stop string"
"$NC" generate -m "$m" -p "Once upon a time" -n 12 --temp 0 -t 2 --ignore-eos --stop "$stop" >"$TMP/g4.txt" 2>"$TMP/s4.txt"
grep -q "finish: stop" "$TMP/s4.txt" || fail "stop string did not stop: $(cat "$TMP/s4.txt")"
grep -qF -- "$stop" "$TMP/g4.txt" && fail "stop string was printed"
if "$NC" generate -m "$m" -p "x" --top-p 2 2>"$TMP/err.txt"; then fail "top-p 2 accepted"; fi
grep -q "top_p" "$TMP/err.txt" || fail "bad top-p error: $(cat "$TMP/err.txt")"
rm -f "$m" "$m.2"
echo "cli ok"
