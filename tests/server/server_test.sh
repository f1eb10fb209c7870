#!/usr/bin/env bash
# `neocloud serve` over HTTP with curl: health, models, completions (plain, streamed with usage, n=2,
# stop, seed determinism, logprobs), OpenAI error objects (404 model, 400 JSON/field/context, 413 body),
# tokenize/detokenize, and clients that disconnect mid-stream (the KV cache returns to empty).
# Usage: server_test.sh NEOCLOUD_BIN LLAMA_SRC TMPDIR
set -euo pipefail
NC=$1; SRC=$2; TMP=$3
mkdir -p "$TMP"
fail() { echo "FAIL: $*" >&2; exit 1; }
m="$TMP/serve-tiny.gguf"
"$NC" model synth --vocab "$SRC/models/ggml-vocab-llama-spm.gguf" --shape tiny --type q8_0 --seed 5 --out "$m" >/dev/null
# A second model (another tokenizer) in the same process, addressed by its own id.
m2="$TMP/serve-qwen2.gguf"
"$NC" model synth --vocab "$SRC/models/ggml-vocab-qwen2.gguf" --shape micro --arch qwen2 --type f16 --seed 7 --out "$m2" >/dev/null
source "$(dirname "$0")/lib.sh"
start_server "$TMP/serve.log" -m "$m:tiny" -m "$m2:second" --parallel 4 -c 2048 -t 2
post() { curl -s -w '\n%{http_code}' "$U$1" -H 'Content-Type: application/json' -d "$2"; }
py() { local body=$1; shift; python3 -c "import json,sys; lines=sys.stdin.read().rsplit('\n',1); r=json.loads(lines[0]); code=int(lines[1]); $body" "$@"; }

[ "$(curl -s "$U/health")" = '{"status":"ok"}' ] || fail "health"
curl -s "$U/v1/models" | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["object"]=="list" and r["data"][0]["id"]=="tiny" and r["data"][0]["object"]=="model"' || fail "models"
curl -s "$U/v1/models/tiny" | grep -q '"id":"tiny"' || fail "model by id"

# Plain completion: usage equals the tokenizer's count.
n_prompt=$(curl -s "$U/tokenize" -d '{"content":"Once upon a time"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
post /v1/completions '{"model":"tiny","prompt":"Once upon a time","max_tokens":7,"seed":11}' | py "
assert code==200, code
assert r['object']=='text_completion' and r['id'].startswith('cmpl-')
c=r['choices'][0]; assert c['finish_reason']=='length' and c['index']==0
u=r['usage']; assert u['prompt_tokens']==$n_prompt and u['completion_tokens']==7 and u['total_tokens']==$n_prompt+7, u" || fail "completion"
a=$(post /v1/completions '{"model":"tiny","prompt":"Seeded","max_tokens":12,"seed":42,"temperature":1.0}' | head -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"])')
b=$(post /v1/completions '{"model":"tiny","prompt":"Seeded","max_tokens":12,"seed":42,"temperature":1.0}' | head -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"])')
[ "$a" = "$b" ] || fail "same seed, different text"
# An empty prompt is BOS alone (as OpenAI, vLLM and llama.cpp accept), also inside a prompt array.
post /v1/completions '{"model":"tiny","prompt":["","x"],"max_tokens":2}' | py "
assert code==200 and len(r['choices'])==2 and r['usage']['prompt_tokens']>=3, r" || fail "empty prompt"
# n=2 and two prompts: four choices, indexes 0..3.
post /v1/completions '{"model":"tiny","prompt":["a","b"],"n":2,"max_tokens":3,"seed":1}' | py "
assert code==200 and sorted(c['index'] for c in r['choices'])==[0,1,2,3] and r['usage']['completion_tokens']==12, r" || fail "n and prompt arrays"
# Stop string: the text ends before it.
full=$(post /v1/completions '{"model":"tiny","prompt":"Stop test","max_tokens":20,"temperature":0}' | head -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"])')
stop=$(python3 -c 'import sys; t=sys.argv[1]; print(t[len(t)//2:len(t)//2+3])' "$full")
post /v1/completions "$(python3 -c 'import json,sys; print(json.dumps({"model":"tiny","prompt":"Stop test","max_tokens":20,"temperature":0,"stop":[sys.argv[1]]}))' "$stop")" | py "
c=r['choices'][0]; assert c['finish_reason']=='stop', c
assert c['text']==sys.argv[1][:sys.argv[1].find(sys.argv[2])], (c['text'], sys.argv[1], sys.argv[2])" "$full" "$stop" || fail "stop string"
# Logprobs: chosen token first in top_logprobs at temperature 0.
post /v1/completions '{"model":"tiny","prompt":"lp","max_tokens":3,"temperature":0,"logprobs":2}' | py "
lp=r['choices'][0]['logprobs']; assert len(lp['tokens'])==3 and all(len(t)==2 for t in lp['top_logprobs'])
assert all(v<=0 for v in lp['token_logprobs'])" || fail "logprobs"
# Streaming with usage: text chunks, a finish chunk, the usage chunk with empty choices, then [DONE].
curl -sN "$U/v1/completions" -d '{"model":"tiny","prompt":"Stream","max_tokens":5,"stream":true,"stream_options":{"include_usage":true}}' > "$TMP/sse.txt"
python3 - "$TMP/sse.txt" <<'PY' || fail "stream shape"
import json, sys
events = [l[6:] for l in open(sys.argv[1]).read().split("\n") if l.startswith("data: ")]
assert events[-1] == "[DONE]", events[-1]
chunks = [json.loads(e) for e in events[:-1]]
assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5
assert chunks[-2]["choices"][0]["finish_reason"] == "length"
assert all(c["usage"] is None for c in chunks[:-1])
assert len({c["id"] for c in chunks}) == 1
PY
# Several models: both listed; each answers with its own tokenizer; usage counts that model's tokens.
curl -s "$U/v1/models" | python3 -c 'import json,sys; r=json.load(sys.stdin); assert [m["id"] for m in r["data"]]==["tiny","second"], r' || fail "two models listed"
n2=$(curl -s "$U/tokenize" -d '{"model":"second","content":"Once upon a time"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
[ "$n2" != "$n_prompt" ] || fail "the second model should tokenize differently"
post /v1/completions '{"model":"second","prompt":"Once upon a time","max_tokens":3}' | py "
assert code==200 and r['model']=='second' and r['usage']['prompt_tokens']==$n2, r" || fail "second model completion"
# Embeddings: float and base64 encode the same unit vector; one per input, in order; usage = tokens.
post /v1/embeddings '{"model":"tiny","input":["Once upon a time","Hello world"]}' > "$TMP/emb-float.json"
post /v1/embeddings '{"model":"tiny","input":["Once upon a time","Hello world"],"encoding_format":"base64"}' > "$TMP/emb-b64.json"
python3 - "$TMP/emb-float.json" "$TMP/emb-b64.json" "$n_prompt" <<'PY' || fail "embeddings"
import base64, json, math, struct, sys
def load(p):
    body, code = open(p).read().rsplit("\n", 1)
    assert int(code) == 200, (code, body)
    return json.loads(body)
f, b, n_prompt = load(sys.argv[1]), load(sys.argv[2]), int(sys.argv[3])
assert f["object"] == "list" and f["model"] == "tiny" and [d["index"] for d in f["data"]] == [0, 1]
assert all(d["object"] == "embedding" for d in f["data"])
for df, db in zip(f["data"], b["data"]):
    v = df["embedding"]
    raw = base64.b64decode(db["embedding"])
    w = list(struct.unpack("<%df" % (len(raw) // 4), raw))
    assert len(v) == len(w) == 256, (len(v), len(w))
    assert all(abs(x - y) <= 1e-6 * max(1.0, abs(x)) for x, y in zip(v, w))
    assert abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-4
assert f["data"][0]["embedding"] != f["data"][1]["embedding"]
assert f["usage"]["prompt_tokens"] == f["usage"]["total_tokens"] > n_prompt
PY
# Against llama.cpp: llama-server's mean-pooled embeddings of the same models and inputs
# (tests/data/embeddings, tools/make-embedding-goldens.sh): same token counts, vectors within 1e-5.
for pair in tiny:tiny-q8_0-seed5 second:qwen2-micro-f16-seed7; do
  ref="$(dirname "$0")/../data/embeddings/${pair#*:}.json"
  body=$(python3 -c 'import json,sys; print(json.dumps({"model": sys.argv[1], "input": json.load(open(sys.argv[2]))["inputs"]}))' "${pair%%:*}" "$ref")
  post /v1/embeddings "$body" | py "
ref = json.load(open(sys.argv[1]))
assert code == 200, r
assert r['usage']['prompt_tokens'] == ref['prompt_tokens'], (r['usage'], ref['prompt_tokens'])
for d, e in zip(r['data'], ref['embeddings']):
    diff = max(abs(a - b) for a, b in zip(d['embedding'], e))
    assert len(d['embedding']) == len(e) and diff < 1e-5, diff" "$ref" || fail "embeddings differ from llama.cpp's (${pair%%:*})"
done
# The same input alone, as token ids (BOS included), gives the same vector: batching changes nothing.
ids=$(curl -s "$U/tokenize" -d '{"content":"Once upon a time"}' | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["tokens"]))')
post /v1/embeddings "{\"model\":\"tiny\",\"input\":$ids}" | py "
ref = json.loads(open(sys.argv[1]).read().rsplit('\\n', 1)[0])['data'][0]['embedding']
one = r['data'][0]['embedding']
assert code == 200 and len(one) == len(ref) and max(abs(a - b) for a, b in zip(one, ref)) < 1e-6" "$TMP/emb-float.json" || fail "embedding of token ids"
post /v1/embeddings '{"model":"tiny","input":""}' | py "assert code==400 and r['error']['param']=='input'" || fail "empty embedding input"
post /v1/embeddings '{"model":"tiny"}' | py "assert code==400 and r['error']['param']=='input'" || fail "missing embedding input"
post /v1/embeddings '{"model":"tiny","input":"x","encoding_format":"hex"}' | py "assert code==400 and r['error']['param']=='encoding_format'" || fail "bad encoding_format"
post /v1/embeddings '{"model":"tiny","input":"x","dimensions":64}' | py "assert code==400 and r['error']['param']=='dimensions'" || fail "dimensions"
post /v1/embeddings '{"model":"nope","input":"x"}' | py "assert code==404 and r['error']['code']=='model_not_found'" || fail "embedding 404"
post /v1/embeddings "$(python3 -c 'import json; print(json.dumps({"model":"tiny","input":"word "*3000}))')" | py "assert code==400 and r['error']['code']=='context_length_exceeded'" || fail "embedding context"
# Errors as OpenAI error objects.
post /v1/completions '{"model":"nope","prompt":"x"}' | py "assert code==404 and r['error']['code']=='model_not_found'" || fail "404"
post /v1/completions '{not json' | py "assert code==400 and r['error']['type']=='invalid_request_error'" || fail "bad json"
post /v1/completions '{"model":"tiny","prompt":"x","temperature":5}' | py "assert code==400 and r['error']['param']=='temperature'" || fail "bad field"
post /v1/completions '{"model":"tiny","prompt":"x","tools":[]}' | py "assert code==400 and r['error']['param']=='tools' and r['error']['code']=='unsupported_parameter'" || fail "unsupported field"
post /v1/completions '{"model":"tiny","prompt":"x","max_tokens":100000}' | py "assert code==400 and r['error']['code']=='context_length_exceeded'" || fail "context"
python3 -c 'print("{\"model\":\"tiny\",\"prompt\":\"" + "a"*(9<<20) + "\"}")' > "$TMP/big.json"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$U/v1/completions" --data-binary @"$TMP/big.json")" = "413" ] || fail "413"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$U/v1/nothing")" = "404" ] || fail "unknown route"
[ "$(curl -s "$U/detokenize" -d '{"tokens":[15043,3186]}')" = '{"content":"Hello world"}' ] || fail "detokenize"
# Clients that leave mid-stream: generation is cancelled and the KV cache empties.
for i in $(seq 12); do
  curl -sN --max-time 0.$((RANDOM % 8 + 1)) "$U/v1/completions" -d "{\"model\":\"tiny\",\"prompt\":\"bye $i\",\"max_tokens\":500,\"stream\":true}" >/dev/null 2>&1 &
done
wait $(jobs -p | grep -v "^$PID$") 2>/dev/null || true
for _ in $(seq 100); do
  used=$(curl -s "$U/metrics" | sed -n 's/^neocloud:kv_blocks_used{model_name="tiny"} //p')
  running=$(curl -s "$U/metrics" | sed -n 's/^neocloud:num_requests_running{model_name="tiny"} //p')
  [ "$used" = "0" ] && [ "$running" = "0" ] && break
  sleep 0.1
done
[ "$used" = "0" ] || fail "KV blocks still in use after disconnects: $used"
# /metrics with two models: each family's # HELP and # TYPE once, then its series of both models
# together (Prometheus refuses an exposition that repeats a family).
curl -s "$U/metrics" | python3 -c '
import re, sys
seen, family, series = set(), None, {}
for line in sys.stdin.read().splitlines():
    m = re.match(r"# (HELP|TYPE) (\S+) ", line)
    if m:
        assert (m[1], m[2]) not in seen, "second " + line
        seen.add((m[1], m[2]))
        family = m[2]
        continue
    name = re.match(r"[^{ ]+", line)[0]
    assert family and re.fullmatch(re.escape(family) + r"(_bucket|_sum|_count)?", name), "out of its family: " + line
    series.setdefault(family, set()).update(re.findall(r"model_name=\"(\w+)\"", line))
for f in ("neocloud:kv_blocks_total", "neocloud:time_to_first_token_seconds", "neocloud:request_success_total"):
    assert series.get(f) == {"tiny", "second"}, f"{f}: {series.get(f)}"
' || fail "metrics exposition"
[ "$(curl -s "$U/health")" = '{"status":"ok"}' ] || fail "server died"
# The official openai SDK (installed by tools/sdk.sh into .cache/sdk).
SDK=${NC_SDK_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/.cache/sdk}
[ -d "$SDK/node_modules/openai" ] || fail "openai SDK not installed in $SDK (run tools/sdk.sh)"
node "$(dirname "$0")/sdk_test.mjs" "$U/v1" "$SDK" || fail "openai SDK suite"
kill -TERM $PID && wait $PID || fail "exit status $?"
# No -m: serve makes its demo model (random weights, its own tokenizer and ChatML template) and says so.
XDG_CACHE_HOME="$TMP/xdg" start_server "$TMP/demo.log" -t 2
[ -f "$TMP/xdg/neocloud/demo-tiny-q8_0-v2.gguf" ] || fail "demo model file"
curl -s "$U/v1/models" | python3 -c 'import json,sys; m=json.load(sys.stdin)["data"]; assert len(m)==1 and m[0]["id"]=="demo-random-weights" and m[0]["random_weights"] is True, m' || fail "demo model listed"
post /v1/chat/completions '{"model":"demo-random-weights","messages":[{"role":"user","content":"Hello"}],"max_tokens":4}' | py "
assert code==200 and r['usage']['completion_tokens']<=4 and r['choices'][0]['message']['role']=='assistant', r" || fail "demo chat"
post /v1/embeddings '{"model":"demo-random-weights","input":"Hello"}' | py "assert code==200 and len(r['data'][0]['embedding'])>0" || fail "demo embeddings"
kill -TERM $PID && wait $PID || fail "demo exit status $?"
trap - EXIT
# Chat templates from real models, rendered by our Jinja engine, equal Python Jinja2's rendering
# (tests/server/chat_template_check.py); a template's raise_exception becomes a 400 with its message.
for t in meta-llama-Llama-3.1-8B-Instruct Qwen-Qwen2.5-7B-Instruct mistralai-Mistral-Nemo-Instruct-2407 google-gemma-2-2b-it; do
  "$NC" model synth --vocab "$SRC/models/ggml-vocab-llama-bpe.gguf" --shape micro --type f16 --seed 3 \
    --chat-template "$SRC/models/templates/$t.jinja" --out "$TMP/tmpl.gguf" >/dev/null
  start_server "$TMP/tmpl.log" -m "$TMP/tmpl.gguf:tmpl" -t 2
  /usr/bin/python3 "$(dirname "$0")/chat_template_check.py" "$U" tmpl "$SRC/models/templates/$t.jinja" \
    "<|begin_of_text|>" "<|end_of_text|>" ||
    fail "chat template $t"
  kill -TERM $PID && wait $PID || fail "exit status $?"
done
trap - EXIT
# While a model loads, /health and requests for it answer 503 (the "model" is a FIFO: opening it blocks
# until a writer comes); when the load then fails, serve stops and names the model.
rm -f "$TMP/slow.gguf" && mkfifo "$TMP/slow.gguf"
: >"$TMP/slow.log"
"$NC" serve -m "$TMP/slow.gguf:slow" --port 0 2>"$TMP/slow.log" &
SPID=$!
for _ in $(seq 100); do SPORT=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\)\/v1.*/\1/p' "$TMP/slow.log" || true); [ -n "$SPORT" ] && break; sleep 0.1; done
[ "$(curl -s -w ' %{http_code}' "http://127.0.0.1:$SPORT/health")" = '{"status":"loading"} 503' ] || fail "health while loading"
curl -s "http://127.0.0.1:$SPORT/v1/completions" -d '{"model":"slow","prompt":"x"}' -w '\n%{http_code}' | py "assert code==503 and r['error']['code']=='model_loading', r" || fail "503 while loading"
(echo "not a gguf" > "$TMP/slow.gguf") 2>/dev/null || true  # the reader may close first: SIGPIPE
if wait $SPID; then fail "serve should exit when its model fails to load"; fi
grep -q "model 'slow'" "$TMP/slow.log" || fail "load error names the model: $(cat "$TMP/slow.log")"
# A model that cannot load stops the server with the reason.
if "$NC" serve -m "$TMP/big.json:broken" --port 0 2>"$TMP/broken.log"; then fail "a broken model should stop serve"; fi
grep -q "broken" "$TMP/broken.log" || fail "load error names the model: $(cat "$TMP/broken.log")"
echo "server ok"
