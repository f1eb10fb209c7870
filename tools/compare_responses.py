#!/usr/bin/env python3
"""Replays one recorded list of HTTP requests against two `neocloud serve` binaries and compares the answers.

Each binary is started in turn the way tests/gateway/gateway_e2e.py starts it (a tiny synthetic model made
with `neocloud model synth`, a fresh SQLite database, --admin-key-file, and --gpus N for the jobs API),
then gets the same requests in the same order: health and metrics, models, completions and chat (greedy,
seeded), embeddings, the tokenizer routes, malformed bodies, wrong field types, unsupported parameters,
bad keys, wrong scopes, the admin API, usage events, limits, budgets, unknown routes and methods, and the
jobs API. Requests may use values saved from earlier answers (ids, keys): `{name}` in a path or body.

Answers are normalized before they are compared: generated ids (cmpl-, chatcmpl-, org_, proj_, key_, req_,
job/reservation ids) become placeholders numbered in order of first appearance, key secrets and
timestamps are replaced, floats are rounded to 5 significant digits, x-request-id / date headers are dropped, the
items of a listing's "data" are compared as a set (sorted), the events of a stream per choice; /metrics is
compared by status only. For each request the script compares the status, the error's type/code/param,
the error message (reported separately when it is the only difference), the success body's structure
and deterministic values (greedy text must match), stream events, and the headers that carry meaning
(content-type, retry-after, x-ratelimit-* names, x-should-retry).

Usage:
  compare_responses.py --old BIN --new BIN [--vocab VOCAB.gguf] [--tmp DIR] [--gpus 2] [--json OUT.json]
Prints a table of every request whose normalized answer differs and a summary line
"N requests, M identical, K differ". Exit status 0 (the differences are for a person to judge).
Python standard library only.
"""
import argparse
import ctypes
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "gateway"))
import gateway_e2e  # noqa: E402

MODEL = "tiny"
MODEL2 = "acme/tiny"  # a second alias of the same file: a model id with a slash, as Hugging Face names
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_VOCAB = os.path.join(REPO, ".cache/ref/llama.cpp/models/ggml-vocab-llama-spm.gguf")

# ---------------------------------------------------------------------------------------------------
# The server


class Server:
    def __init__(self, binary, tmp, model, gpus):
        self.binary, self.tmp, self.model, self.gpus = binary, tmp, model, gpus
        self.proc = None
        self.port = None
        self.log_path = os.path.join(tmp, "server.log")

    def start(self):
        os.makedirs(self.tmp, exist_ok=True)
        key_file = os.path.join(self.tmp, "admin.key")
        cmd = [self.binary, "serve", "-m", f"{self.model}:{MODEL}", "-m", f"{self.model}:{MODEL2}", "--port", "0", "-t", "2", "--parallel", "8",
               "--db", "sqlite:" + os.path.join(self.tmp, "db.sqlite"), "--admin-key-file", key_file]
        if self.gpus:
            jobs_dir = os.path.join(self.tmp, "jobs")
            os.makedirs(jobs_dir, exist_ok=True)
            cmd += ["--gpus", str(self.gpus), "--jobs-dir", jobs_dir, "--jobs-grace", "1"]
        libc = ctypes.CDLL(None, use_errno=True)

        def die_with_parent():
            libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG

        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        deadline = time.time() + 90
        while self.port is None:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.binary} exited ({self.proc.returncode}) at start:\n{self.log_tail()}")
            if time.time() > deadline:
                raise SystemExit(f"{self.binary} did not print its port:\n{self.log_tail()}")
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/v1", open(self.log_path).read())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.05)
        while True:
            if time.time() > deadline:
                raise SystemExit(f"/health did not answer 200:\n{self.log_tail()}")
            try:
                if call(self.port, "GET", "/health", None, None)["status"] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        with open(key_file) as f:
            self.admin_key = f.read().strip()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode if self.proc else None

    def log_tail(self, n=30):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def call(port, method, path, auth, body, raw=None, timeout=300):
    """One request on its own connection: {'status', 'headers' (lower-case), 'body' (str)}."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        return _call(conn, method, path, auth, body, raw)
    except (OSError, http.client.HTTPException) as e:  # the server closed the connection: that is the answer
        return {"status": f"no response ({type(e).__name__})", "headers": [], "body": ""}
    finally:
        conn.close()


def socket_call(port, method, path, auth, raw):
    """A request written on a raw socket whose answer is read even when the server stops reading the body
    (a 413 sent before the body has all arrived)."""
    import socket
    data = raw if isinstance(raw, bytes) else raw.encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    if auth:
        head += f"Authorization: {auth}\r\n"
    head += f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        s.sendall(head.encode())
        try:
            for i in range(0, len(data), 1 << 16):
                s.sendall(data[i:i + (1 << 16)])
        except OSError:
            pass  # the server answered and closed early: read its answer below
        buf = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                buf += d
        except OSError:
            pass
    finally:
        s.close()
    if not buf:
        return {"status": "no response", "headers": [], "body": ""}
    head_b, _, body_b = buf.partition(b"\r\n\r\n")
    lines = head_b.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = [(k.strip().lower(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:])]
    return {"status": status, "headers": headers, "body": body_b.decode("utf-8", "replace")}


def _call(conn, method, path, auth, body, raw):
    if True:
        headers = {}
        if auth is not None:
            headers["Authorization"] = auth
        data = None
        if raw is not None:
            data = raw if isinstance(raw, bytes) else raw.encode()
            headers["Content-Type"] = "application/json"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        return {"status": r.status, "headers": [(k.lower(), v) for k, v in r.getheaders()],
                "body": r.read().decode("utf-8", "replace")}


# ---------------------------------------------------------------------------------------------------
# API keys (a well-formed key the database does not hold: fixed, so that both runs send the same one)

def well_formed_key(kind, fill):
    body = f"nc-{kind}-" + (fill * 43)[:43]
    return body + gateway_e2e.key_checksum(body)  # the server's checksum, as the gateway test computes it


# ---------------------------------------------------------------------------------------------------
# The recorded requests
#
# Each: name, method, path, key (a name in the run's key table, None for no Authorization, or
# "raw:<header>"), body (JSON) or raw (bytes/str sent as is), save {var: path in the answer},
# compare ("full" or "status"), wait (seconds before sending). `{var}` in path/body/raw is substituted.

CHAT = [{"role": "user", "content": "Hello"}]


def deep(n):
    return "[" * n + "]" * n


REQUESTS = [
    # --- public routes -----------------------------------------------------------------------
    dict(name="health", method="GET", path="/health", key=None),
    dict(name="metrics (status only)", method="GET", path="/metrics", key=None, compare="status"),
    dict(name="POST /health (no key)", method="POST", path="/health", key=None, body={}),
    dict(name="metrics with a query string (status only)", method="GET", path="/metrics?x=1", key=None,
         compare="status"),

    # --- setup through the admin API (compared too) --------------------------------------------
    dict(name="operator lists organizations", method="GET", path="/v1/admin/organizations", key="op"),
    dict(name="operator sets a price", method="POST", path="/v1/admin/prices", key="op",
         body={"item": MODEL, "input_per_mtok": 1000000, "output_per_mtok": 1000000, "cached_per_mtok": 0, "per_unit": 0}),
    dict(name="operator sets a metered price", method="POST", path="/v1/admin/prices", key="op",
         body={"item": "gpu_seconds:H100", "per_unit": 2500}),
    dict(name="operator creates org main", method="POST", path="/v1/admin/organizations", key="op",
         body={"name": "main"}, save={"org": "id", "admin": "admin_key.value", "admin_id": "admin_key.id"}),
    dict(name="operator creates org other", method="POST", path="/v1/admin/organizations", key="op",
         body={"name": "other"}, save={"org2": "id", "admin2": "admin_key.value"}),
    dict(name="admin creates project", method="POST", path="/v1/organization/projects", key="admin",
         body={"name": "app"}, save={"proj": "id"}),
    dict(name="org2 admin creates project", method="POST", path="/v1/organization/projects", key="admin2",
         body={"name": "b-app"}, save={"proj2": "id"}),
    dict(name="org2 admin creates inference key", method="POST", path="/v1/organization/api_keys", key="admin2",
         body={"kind": "inference", "name": "b key", "project_id": "{proj2}"}, save={"inf2": "value"}),
    dict(name="operator creates an org with a taken name", method="POST", path="/v1/admin/organizations", key="op",
         body={"name": "main"}),
    dict(name="admin creates a project with a taken name", method="POST", path="/v1/organization/projects",
         key="admin2", body={"name": "b-app"}),
    dict(name="admin creates inference key", method="POST", path="/v1/organization/api_keys", key="admin",
         body={"kind": "inference", "name": "app key", "project_id": "{proj}"}, save={"inf": "value", "inf_id": "id"}),
    dict(name="admin creates model-scoped key", method="POST", path="/v1/organization/api_keys", key="admin",
         body={"kind": "inference", "name": "other only", "project_id": "{proj}", "scopes": {"models": ["other"]}},
         save={"inf_model": "value"}),
    dict(name="admin creates embeddings-only key", method="POST", path="/v1/organization/api_keys", key="admin",
         body={"kind": "inference", "name": "emb only", "project_id": "{proj}", "scopes": {"endpoints": ["embeddings"]}},
         save={"inf_emb": "value"}),
    dict(name="admin creates key to revoke", method="POST", path="/v1/organization/api_keys", key="admin",
         body={"kind": "inference", "name": "to revoke", "project_id": "{proj}"}, save={"inf_rev": "value", "rev_id": "id"}),
    dict(name="admin creates rpm-limited key", method="POST", path="/v1/organization/api_keys", key="admin",
         body={"kind": "inference", "name": "rpm 2", "project_id": "{proj}"}, save={"inf_rpm": "value", "rpm_id": "id"}),
    dict(name="admin creates max_tokens-capped key", method="POST", path="/v1/organization/api_keys", key="admin",
         body={"kind": "inference", "name": "cap 5", "project_id": "{proj}"}, save={"inf_cap": "value", "cap_id": "id"}),
    dict(name="admin creates project with zero budget", method="POST", path="/v1/organization/projects", key="admin",
         body={"name": "broke"}, save={"proj0": "id"}),
    dict(name="admin creates key in zero-budget project", method="POST", path="/v1/organization/api_keys", key="admin",
         body={"kind": "inference", "name": "broke key", "project_id": "{proj0}"}, save={"inf0": "value"}),

    # --- models -------------------------------------------------------------------------------
    dict(name="models list", method="GET", path="/v1/models", key="inf"),
    dict(name="model get", method="GET", path="/v1/models/tiny", key="inf"),
    dict(name="model get percent-encoded", method="GET", path="/v1/models/ti%6Ey", key="inf"),
    dict(name="model get unknown", method="GET", path="/v1/models/nope", key="inf"),
    dict(name="model get trailing slash", method="GET", path="/v1/models/", key="inf"),
    dict(name="model get with slash in id", method="GET", path="/v1/models/a/b", key="inf"),
    dict(name="model get, id with a slash", method="GET", path="/v1/models/acme/tiny", key="inf"),
    dict(name="model get, id with a slash percent-encoded", method="GET", path="/v1/models/acme%2Ftiny", key="inf"),
    dict(name="model get, double slash", method="GET", path="//v1/models", key="inf"),
    dict(name="completion on the model whose id has a slash", method="POST", path="/v1/completions", key="inf",
         body={"model": "acme/tiny", "prompt": "Hello, my name is", "max_tokens": 6, "temperature": 0}),
    dict(name="models list, model-scoped key", method="GET", path="/v1/models", key="inf_model"),
    dict(name="model get, model-scoped key", method="GET", path="/v1/models/tiny", key="inf_model"),

    # --- completions ----------------------------------------------------------------------------
    dict(name="completion greedy", method="POST", path="/v1/completions", key="inf",
         body={"model": MODEL, "prompt": "Hello, my name is", "max_tokens": 12, "temperature": 0, "seed": 7}),
    dict(name="completion greedy n=2", method="POST", path="/v1/completions", key="inf",
         body={"model": MODEL, "prompt": "The capital of France", "max_tokens": 8, "temperature": 0, "seed": 7, "n": 2}),
    dict(name="completion two prompts", method="POST", path="/v1/completions", key="inf",
         body={"model": MODEL, "prompt": ["Once upon a time", "1 2 3 4"], "max_tokens": 6, "temperature": 0}),
    dict(name="completion token-id prompt", method="POST", path="/v1/completions", key="inf",
         body={"model": MODEL, "prompt": [1, 15043, 3186], "max_tokens": 5, "temperature": 0}),
    dict(name="completion logprobs 3", method="POST", path="/v1/completions", key="inf",
         body={"model": MODEL, "prompt": "Hi", "max_tokens": 4, "temperature": 0, "logprobs": 3}),
    dict(name="completion stop strings", method="POST", path="/v1/completions", key="inf",
         body={"model": MODEL, "prompt": "Hello", "max_tokens": 20, "temperature": 0, "stop": ["e", "\n"]}),
    dict(name="completion seeded sampling", method="POST", path="/v1/completions", key="inf",
         body={"model": MODEL, "prompt": "Hello", "max_tokens": 8, "temperature": 0.8, "seed": 42}),
    dict(name="completion max_tokens 0", method="POST", path="/v1/completions", key="inf",
         body={"model": MODEL, "prompt": "Hello", "max_tokens": 0, "temperature": 0}),
    dict(name="completion stream with usage", method="POST", path="/v1/completions", key="inf",
         body={"model": MODEL, "prompt": "Hello", "max_tokens": 6, "temperature": 0, "stream": True,
               "stream_options": {"include_usage": True}}),
    dict(name="completion stream n=2", method="POST", path="/v1/completions", key="inf",
         body={"model": MODEL, "prompt": "Hello", "max_tokens": 4, "temperature": 0, "stream": True, "n": 2}),
    dict(name="completion context length exceeded", method="POST", path="/v1/completions", key="inf",
         body={"model": MODEL, "prompt": "Hello", "max_tokens": 100000}),
    dict(name="completion 9 prompts x n=128 (1152 sequences)", method="POST", path="/v1/completions", key="inf2",
         body={"model": MODEL, "prompt": list("abcdefghi"), "n": 128, "max_tokens": 1, "temperature": 0}),
    dict(name="completion 17 prompts x n=128 (2176 sequences: work limit)", method="POST", path="/v1/completions",
         key="inf2", body={"model": MODEL, "prompt": list("abcdefghijklmnopq"), "n": 128, "max_tokens": 1, "temperature": 0}),
    dict(name="completion no model", method="POST", path="/v1/completions", key="inf", body={"prompt": "Hi"}),
    dict(name="completion unknown model", method="POST", path="/v1/completions", key="inf",
         body={"model": "nope", "prompt": "Hi"}),
    dict(name="completion echo (unsupported)", method="POST", path="/v1/completions", key="inf",
         body={"model": MODEL, "prompt": "Hi", "echo": True}),
    dict(name="completion suffix (unsupported)", method="POST", path="/v1/completions", key="inf",
         body={"model": MODEL, "prompt": "Hi", "suffix": "x"}),
    dict(name="completion best_of 3 (unsupported)", method="POST", path="/v1/completions", key="inf",
         body={"model": MODEL, "prompt": "Hi", "best_of": 3}),

    # --- chat -------------------------------------------------------------------------------------
    dict(name="chat greedy", method="POST", path="/v1/chat/completions", key="inf",
         body={"model": MODEL, "messages": CHAT, "max_tokens": 10, "temperature": 0, "seed": 3}),
    dict(name="chat greedy n=2 with system", method="POST", path="/v1/chat/completions", key="inf",
         body={"model": MODEL, "messages": [{"role": "system", "content": "Be brief."}] + CHAT, "max_tokens": 6,
               "temperature": 0, "n": 2}),
    dict(name="chat logprobs top 2", method="POST", path="/v1/chat/completions", key="inf",
         body={"model": MODEL, "messages": CHAT, "max_tokens": 3, "temperature": 0, "logprobs": True, "top_logprobs": 2}),
    dict(name="chat stream", method="POST", path="/v1/chat/completions", key="inf",
         body={"model": MODEL, "messages": CHAT, "max_tokens": 6, "temperature": 0, "stream": True,
               "stream_options": {"include_usage": True}}),
    dict(name="chat text parts", method="POST", path="/v1/chat/completions", key="inf",
         body={"model": MODEL, "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
               "max_tokens": 3, "temperature": 0}),
    dict(name="chat tools (unsupported)", method="POST", path="/v1/chat/completions", key="inf",
         body={"model": MODEL, "messages": CHAT, "tools": [{"type": "function", "function": {"name": "f"}}]}),
    dict(name="chat response_format json_object (unsupported)", method="POST", path="/v1/chat/completions", key="inf",
         body={"model": MODEL, "messages": CHAT, "response_format": {"type": "json_object"}}),
    dict(name="chat response_format text", method="POST", path="/v1/chat/completions", key="inf",
         body={"model": MODEL, "messages": CHAT, "response_format": {"type": "text"}, "max_tokens": 2, "temperature": 0}),
    dict(name="chat assistant tool_calls (unsupported)", method="POST", path="/v1/chat/completions", key="inf",
         body={"model": MODEL, "messages": CHAT + [{"role": "assistant", "content": None, "tool_calls": [{"id": "x"}]}]}),
    dict(name="chat image part (unsupported)", method="POST", path="/v1/chat/completions", key="inf",
         body={"model": MODEL, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
    dict(name="chat empty messages", method="POST", path="/v1/chat/completions", key="inf",
         body={"model": MODEL, "messages": []}),
    dict(name="chat messages a string", method="POST", path="/v1/chat/completions", key="inf",
         body={"model": MODEL, "messages": "hi"}),
    dict(name="chat bad role", method="POST", path="/v1/chat/completions", key="inf",
         body={"model": MODEL, "messages": [{"role": "wizard", "content": "hi"}]}),
    dict(name="chat content a number", method="POST", path="/v1/chat/completions", key="inf",
         body={"model": MODEL, "messages": [{"role": "user", "content": 5}]}),
    dict(name="chat max_tokens 0", method="POST", path="/v1/chat/completions", key="inf",
         body={"model": MODEL, "messages": CHAT, "max_tokens": 0}),
    dict(name="chat top_logprobs without logprobs", method="POST", path="/v1/chat/completions", key="inf",
         body={"model": MODEL, "messages": CHAT, "top_logprobs": 2}),
    dict(name="chat logprobs not a bool", method="POST", path="/v1/chat/completions", key="inf",
         body={"model": MODEL, "messages": CHAT, "logprobs": 1}),
    dict(name="chat chat_template_kwargs not an object", method="POST", path="/v1/chat/completions", key="inf",
         body={"model": MODEL, "messages": CHAT, "chat_template_kwargs": 1}),
    dict(name="chat n=200", method="POST", path="/v1/chat/completions", key="inf",
         body={"model": MODEL, "messages": CHAT, "n": 200}),

    # --- wrong types / values ---------------------------------------------------------------------
    *[dict(name=f"completion {field}={value!r}", method="POST", path="/v1/completions", key="inf",
           body={"model": MODEL, "prompt": "Hi", "max_tokens": 2, "temperature": 0, field: value})
      for field, value in [("temperature", "hot"), ("temperature", 3), ("top_p", 0), ("top_p", "x"), ("top_k", 1.5),
                           ("min_p", 2), ("presence_penalty", 5), ("frequency_penalty", "x"),
                           ("repetition_penalty", 0), ("seed", "x"), ("seed", 1.5), ("logit_bias", "x"),
                           ("logit_bias", {"99999999": 1}), ("logit_bias", {"5": 1000}), ("n", 0), ("n", "2"),
                           ("n", 129), ("stop", 5), ("stop", ["a", "b", "c", "d", "e"]), ("stop", [1]),
                           ("stream", "yes"), ("stream_options", {"include_usage": True}), ("logprobs", 10),
                           ("logprobs", True), ("ignore_eos", "no"), ("user", 5), ("prompt", {}), ("prompt", []),
                           ("prompt", [[1, "a"]]), ("prompt", [-5]), ("model", 5), ("max_completion_tokens", -1)]],
    # (on org other's key: the old binary accepts some of these, and org main's usage is compared below)
    *[dict(name=f"completion {field}={value!r}", method="POST", path="/v1/completions", key="inf2",
           body={"model": MODEL, "prompt": "Hi", "max_tokens": 2, "temperature": 0, field: value})
      for field, value in [("logit_bias", {" 5": 1}), ("logit_bias", {"+5": 1}), ("logit_bias", {"5 ": 1}),
                           ("n", 2 ** 64 - 1), ("seed", 2 ** 64 - 1), ("top_k", 2 ** 64 - 1)]],
    dict(name="completion max_tokens=2**64-1", method="POST", path="/v1/completions", key="inf2",
         body={"model": MODEL, "prompt": "Hi", "max_tokens": 2 ** 64 - 1}),
    dict(name="completion max_tokens='10'", method="POST", path="/v1/completions", key="inf",
         body={"model": MODEL, "prompt": "Hi", "max_tokens": "10"}),
    dict(name="completion max_tokens=-1", method="POST", path="/v1/completions", key="inf",
         body={"model": MODEL, "prompt": "Hi", "max_tokens": -1}),

    # --- malformed bodies -------------------------------------------------------------------------
    dict(name="completion malformed JSON", method="POST", path="/v1/completions", key="inf", raw="{\"model\": "),
    dict(name="completion empty body", method="POST", path="/v1/completions", key="inf", raw=""),
    dict(name="completion body is an array", method="POST", path="/v1/completions", key="inf", raw="[]"),
    dict(name="completion body is null", method="POST", path="/v1/completions", key="inf", raw="null"),
    dict(name="completion JSON nested 200 deep", method="POST", path="/v1/completions", key="inf2",
         raw='{"model": "tiny", "prompt": "Hi", "max_tokens": 1, "temperature": 0, "x": ' + deep(200) + "}"),
    dict(name="completion JSON nested 100 deep", method="POST", path="/v1/completions", key="inf",
         raw='{"model": "tiny", "prompt": "Hi", "max_tokens": 1, "temperature": 0, "x": ' + deep(100) + "}"),
    dict(name="completion invalid UTF-8 in prompt", method="POST", path="/v1/completions", key="inf",
         raw=b'{"model": "tiny", "prompt": "\xff\xfe", "max_tokens": 1}'),
    dict(name="admin malformed JSON", method="POST", path="/v1/organization/projects", key="admin", raw="{nope"),
    dict(name="admin body is an array", method="POST", path="/v1/organization/projects", key="admin", raw="[1]"),
    dict(name="admin JSON nested 200 deep", method="POST", path="/v1/organization/projects", key="admin",
         raw='{"name": ' + deep(200) + "}"),
    dict(name="usage event JSON nested 200 deep", method="POST", path="/v1/usage/events", key="inf", raw=deep(200)),

    # --- embeddings -------------------------------------------------------------------------------
    dict(name="embeddings one input", method="POST", path="/v1/embeddings", key="inf",
         body={"model": MODEL, "input": "hello world"}),
    dict(name="embeddings two inputs base64", method="POST", path="/v1/embeddings", key="inf",
         body={"model": MODEL, "input": ["a", "b c"], "encoding_format": "base64"}),
    dict(name="embeddings token ids", method="POST", path="/v1/embeddings", key="inf",
         body={"model": MODEL, "input": [1, 2, 3]}),
    dict(name="embeddings no input", method="POST", path="/v1/embeddings", key="inf", body={"model": MODEL}),
    dict(name="embeddings empty string", method="POST", path="/v1/embeddings", key="inf", body={"model": MODEL, "input": ""}),
    dict(name="embeddings input a number", method="POST", path="/v1/embeddings", key="inf", body={"model": MODEL, "input": 5}),
    dict(name="embeddings bad encoding_format", method="POST", path="/v1/embeddings", key="inf",
         body={"model": MODEL, "input": "x", "encoding_format": "hex"}),
    dict(name="embeddings 1500 inputs (work limit)", method="POST", path="/v1/embeddings", key="inf2",
         body={"model": MODEL, "input": ["a"] * 1500}),
    dict(name="embeddings 2100 inputs", method="POST", path="/v1/embeddings", key="inf2",
         body={"model": MODEL, "input": ["a"] * 2100}),
    dict(name="embeddings, embeddings-only key", method="POST", path="/v1/embeddings", key="inf_emb",
         body={"model": MODEL, "input": "hello"}),

    # --- tokenizer routes -------------------------------------------------------------------------
    dict(name="tokenize", method="POST", path="/tokenize", key="inf", body={"content": "Hello world"}),
    dict(name="tokenize with pieces, model given", method="POST", path="/tokenize", key="inf",
         body={"model": MODEL, "content": "Hello world", "with_pieces": True, "add_special": False}),
    dict(name="tokenize add_special not a bool", method="POST", path="/tokenize", key="inf",
         body={"content": "x", "add_special": "yes"}),
    dict(name="tokenize no content", method="POST", path="/tokenize", key="inf", body={}),
    dict(name="tokenize unknown model", method="POST", path="/tokenize", key="inf", body={"model": "nope", "content": "x"}),
    dict(name="detokenize", method="POST", path="/detokenize", key="inf", body={"tokens": [1, 15043, 3186]}),
    dict(name="detokenize out of vocabulary", method="POST", path="/detokenize", key="inf", body={"tokens": [99999999]}),
    dict(name="detokenize tokens missing", method="POST", path="/detokenize", key="inf", body={"tokens": "1 2"}),
    dict(name="apply-template", method="POST", path="/apply-template", key="inf", body={"messages": CHAT}),
    dict(name="apply-template no generation prompt", method="POST", path="/apply-template", key="inf",
         body={"messages": CHAT, "add_generation_prompt": False}),
    dict(name="apply-template bad add_generation_prompt", method="POST", path="/apply-template", key="inf",
         body={"messages": CHAT, "add_generation_prompt": "x"}),
    dict(name="apply-template no messages", method="POST", path="/apply-template", key="inf", body={}),
    dict(name="tokenize malformed JSON", method="POST", path="/tokenize", key="inf", raw="{"),

    # --- authentication ---------------------------------------------------------------------------
    dict(name="completion without a key", method="POST", path="/v1/completions", key=None,
         body={"model": MODEL, "prompt": "Hi", "max_tokens": 2}),
    dict(name="completion Basic auth", method="POST", path="/v1/completions", key="raw:Basic dXNlcjpwYXNz",
         body={"model": MODEL, "prompt": "Hi", "max_tokens": 2}),
    dict(name="completion malformed key", method="POST", path="/v1/completions", key="raw:Bearer hello",
         body={"model": MODEL, "prompt": "Hi", "max_tokens": 2}),
    dict(name="completion sk- key", method="POST", path="/v1/completions", key="raw:Bearer sk-" + "a" * 48,
         body={"model": MODEL, "prompt": "Hi", "max_tokens": 2}),
    dict(name="completion well-formed unknown key", method="POST", path="/v1/completions", key="unknown_inf",
         body={"model": MODEL, "prompt": "Hi", "max_tokens": 2}),
    dict(name="admin route, well-formed unknown admin key", method="GET", path="/v1/organization/projects",
         key="unknown_admin"),
    dict(name="models without a key", method="GET", path="/v1/models", key=None),
    dict(name="admin route without a key", method="GET", path="/v1/organization/projects", key=None),
    dict(name="OPTIONS without a key", method="OPTIONS", path="/v1/chat/completions", key=None),
    dict(name="unknown route without a key", method="GET", path="/v1/nope", key=None),
    dict(name="malformed JSON without a key", method="POST", path="/v1/completions", key=None, raw="{"),

    # --- scopes / permissions ---------------------------------------------------------------------
    dict(name="admin key on completions", method="POST", path="/v1/completions", key="admin",
         body={"model": MODEL, "prompt": "Hi", "max_tokens": 2}),
    dict(name="admin key on completions, malformed JSON", method="POST", path="/v1/completions", key="admin", raw="{"),
    dict(name="admin key on completions, no model", method="POST", path="/v1/completions", key="admin",
         body={"prompt": "Hi"}),
    dict(name="admin key on chat, unknown model", method="POST", path="/v1/chat/completions", key="admin",
         body={"model": "nope", "messages": CHAT}),
    dict(name="admin key on models", method="GET", path="/v1/models", key="admin"),
    dict(name="admin key on model get", method="GET", path="/v1/models/tiny", key="admin"),
    dict(name="admin key on embeddings", method="POST", path="/v1/embeddings", key="admin",
         body={"model": MODEL, "input": "x"}),
    dict(name="admin key on tokenize", method="POST", path="/tokenize", key="admin", body={"content": "x"}),
    dict(name="inference key on admin projects", method="GET", path="/v1/organization/projects", key="inf"),
    dict(name="inference key creating a key", method="POST", path="/v1/organization/api_keys", key="inf",
         body={"project_id": "{proj}", "name": "x"}),
    dict(name="inference key on operator route", method="GET", path="/v1/admin/organizations", key="inf"),
    dict(name="tenant admin on operator route", method="GET", path="/v1/admin/organizations", key="admin"),
    dict(name="tenant admin setting a price", method="POST", path="/v1/admin/prices", key="admin",
         body={"item": MODEL, "input_per_mtok": 0}),
    dict(name="tenant admin raising own org limits", method="PUT", path="/v1/admin/organizations/{org}/limits",
         key="admin", body={"rpm": 1000000}),
    dict(name="model-scoped key on completions", method="POST", path="/v1/completions", key="inf_model",
         body={"model": MODEL, "prompt": "Hi", "max_tokens": 2}),
    dict(name="model-scoped key on tokenize (default model)", method="POST", path="/tokenize", key="inf_model",
         body={"content": "x"}),
    dict(name="embeddings-only key on completions", method="POST", path="/v1/completions", key="inf_emb",
         body={"model": MODEL, "prompt": "Hi", "max_tokens": 2}),
    dict(name="embeddings-only key on completions, malformed JSON", method="POST", path="/v1/completions",
         key="inf_emb", raw="{"),
    dict(name="embeddings-only key on models", method="GET", path="/v1/models", key="inf_emb"),
    dict(name="embeddings-only key on usage events", method="POST", path="/v1/usage/events", key="inf_emb",
         body={"id": "e-emb", "source": "cmp", "type": "com.neocloud.usage", "data": {"item": "gpu_seconds:H100", "quantity": 1}}),

    # --- admin API ----------------------------------------------------------------------------------
    dict(name="projects list", method="GET", path="/v1/organization/projects", key="admin"),
    dict(name="project get", method="GET", path="/v1/organization/projects/{proj}", key="admin"),
    dict(name="project get unknown id", method="GET", path="/v1/organization/projects/proj_nope", key="admin"),
    dict(name="project get of another org", method="GET", path="/v1/organization/projects/{proj2}", key="admin"),
    dict(name="project create without name", method="POST", path="/v1/organization/projects", key="admin", body={}),
    dict(name="project create name a number", method="POST", path="/v1/organization/projects", key="admin",
         body={"name": 5}),
    dict(name="project create empty body", method="POST", path="/v1/organization/projects", key="admin", raw=""),
    dict(name="keys list", method="GET", path="/v1/organization/api_keys", key="admin"),
    dict(name="key create in unknown project", method="POST", path="/v1/organization/api_keys", key="admin",
         body={"project_id": "proj_nope", "name": "x"}),
    dict(name="key create in another org's project", method="POST", path="/v1/organization/api_keys", key="admin",
         body={"project_id": "{proj2}", "name": "x"}),
    dict(name="key create bad kind", method="POST", path="/v1/organization/api_keys", key="admin",
         body={"project_id": "{proj}", "name": "x", "kind": "bogus"}),
    dict(name="key create scopes not an object", method="POST", path="/v1/organization/api_keys", key="admin",
         body={"project_id": "{proj}", "name": "x", "scopes": "all"}),
    dict(name="key create bad expires_in_seconds", method="POST", path="/v1/organization/api_keys", key="admin",
         body={"project_id": "{proj}", "name": "x", "expires_in_seconds": "soon"}),
    dict(name="key create admin kind", method="POST", path="/v1/organization/api_keys", key="admin",
         body={"kind": "admin", "name": "second admin"}),
    dict(name="revoke key", method="DELETE", path="/v1/organization/api_keys/{rev_id}", key="admin"),
    dict(name="revoked key on completions", method="POST", path="/v1/completions", key="inf_rev",
         body={"model": MODEL, "prompt": "Hi", "max_tokens": 2}),
    dict(name="rotate a revoked key (FailedPrecondition)", method="POST", path="/v1/organization/api_keys/{rev_id}/rotate",
         key="admin", body={"overlap_seconds": 0}),
    dict(name="revoke a revoked key", method="DELETE", path="/v1/organization/api_keys/{rev_id}", key="admin"),
    dict(name="revoke unknown key", method="DELETE", path="/v1/organization/api_keys/key_nope", key="admin"),
    dict(name="rotate bad overlap", method="POST", path="/v1/organization/api_keys/{inf_id}/rotate", key="admin",
         body={"overlap_seconds": -1}),
    dict(name="limits set rpm 2", method="PUT", path="/v1/organization/limits", key="admin",
         body={"scope": "key", "scope_id": "{rpm_id}", "rpm": 2, "tpm": None, "max_concurrent": None, "max_tokens": None}),
    dict(name="limits set max_tokens 5", method="PUT", path="/v1/organization/limits", key="admin",
         body={"scope": "key", "scope_id": "{cap_id}", "max_tokens": 5}),
    dict(name="limits set bad scope", method="PUT", path="/v1/organization/limits", key="admin",
         body={"scope": "galaxy", "scope_id": "x", "rpm": 1}),
    dict(name="limits set org scope by tenant", method="PUT", path="/v1/organization/limits", key="admin",
         body={"scope": "org", "scope_id": "{org}", "rpm": 5}),
    dict(name="limits set rpm a string", method="PUT", path="/v1/organization/limits", key="admin",
         body={"scope": "key", "scope_id": "{rpm_id}", "rpm": "many"}),
    dict(name="limits set on unknown project", method="PUT", path="/v1/organization/limits", key="admin",
         body={"scope": "project", "scope_id": "proj_nope", "rpm": 1}),
    dict(name="limits list", method="GET", path="/v1/organization/limits", key="admin"),
    dict(name="budget set 0 on project", method="PUT", path="/v1/organization/budgets", key="admin",
         body={"scope": "project", "scope_id": "{proj0}", "monthly_limit_micros": 0}),
    dict(name="budget set negative", method="PUT", path="/v1/organization/budgets", key="admin",
         body={"scope": "project", "scope_id": "{proj}", "monthly_limit_micros": -5}),
    dict(name="budget set on another org's project", method="PUT", path="/v1/organization/budgets", key="admin",
         body={"scope": "project", "scope_id": "{proj2}", "monthly_limit_micros": 0}),
    dict(name="budgets list", method="GET", path="/v1/organization/budgets", key="admin"),
    dict(name="prices list (tenant)", method="GET", path="/v1/organization/prices", key="admin"),
    dict(name="operator org limits on unknown org", method="PUT", path="/v1/admin/organizations/org_nope/limits",
         key="op", body={"rpm": 5}),
    dict(name="operator org budget on unknown org", method="PUT", path="/v1/admin/organizations/org_nope/budget",
         key="op", body={"monthly_limit_micros": 5}),
    dict(name="operator org limits", method="PUT", path="/v1/admin/organizations/{org2}/limits", key="op",
         body={"rpm": 1000}),
    dict(name="operator creates org without name", method="POST", path="/v1/admin/organizations", key="op", body={}),
    dict(name="operator price without item", method="POST", path="/v1/admin/prices", key="op", body={"per_unit": 1}),
    dict(name="operator prices list", method="GET", path="/v1/admin/prices", key="op"),
    dict(name="usage completions without start_time", method="GET", path="/v1/organization/usage/completions",
         key="admin"),
    dict(name="usage completions bad bucket_width", method="GET",
         path="/v1/organization/usage/completions?start_time=1&bucket_width=1w", key="admin"),
    dict(name="usage completions grouped", method="GET",
         path="/v1/organization/usage/completions?start_time={t0}&bucket_width=1d&group_by=model", key="admin"),
    dict(name="costs", method="GET", path="/v1/organization/costs?start_time={t0}&group_by=line_item", key="admin"),
    dict(name="costs bad start_time", method="GET", path="/v1/organization/costs?start_time=abc", key="admin"),
    dict(name="admin unknown sub-route", method="GET", path="/v1/organization/nope", key="admin"),
    dict(name="admin wrong method on projects", method="DELETE", path="/v1/organization/projects", key="admin"),
    dict(name="projects list, trailing slash", method="GET", path="/v1/organization/projects/", key="admin"),
    dict(name="admin /v1/organization exact", method="GET", path="/v1/organization", key="admin"),
    dict(name="admin /v1/admin exact", method="GET", path="/v1/admin", key="op"),
    dict(name="operator unknown sub-route", method="GET", path="/v1/admin/nope", key="op"),

    # --- limits in effect -------------------------------------------------------------------------
    dict(name="rpm 2: request 1", method="POST", path="/v1/completions", key="inf_rpm",
         body={"model": MODEL, "prompt": "Hi", "max_tokens": 2, "temperature": 0}),
    dict(name="rpm 2: request 2", method="POST", path="/v1/completions", key="inf_rpm",
         body={"model": MODEL, "prompt": "Hi", "max_tokens": 2, "temperature": 0}),
    dict(name="rpm 2: request 3 (429)", method="POST", path="/v1/completions", key="inf_rpm",
         body={"model": MODEL, "prompt": "Hi", "max_tokens": 2, "temperature": 0}),
    dict(name="cap 5: max_tokens 10", method="POST", path="/v1/completions", key="inf_cap",
         body={"model": MODEL, "prompt": "Hi", "max_tokens": 10}),
    dict(name="cap 5: chat without max_tokens", method="POST", path="/v1/chat/completions", key="inf_cap",
         body={"model": MODEL, "messages": CHAT, "temperature": 0, "ignore_eos": True}),
    dict(name="zero budget: completion (429)", method="POST", path="/v1/completions", key="inf0",
         body={"model": MODEL, "prompt": "Hi", "max_tokens": 2}),

    # --- usage events --------------------------------------------------------------------------------
    dict(name="usage event valid", method="POST", path="/v1/usage/events", key="inf",
         body={"id": "evt-0", "source": "cmp", "type": "com.neocloud.usage", "data": {"item": "gpu_seconds:H100", "quantity": 3}}),
    dict(name="usage event duplicate in batch + replay", method="POST", path="/v1/usage/events", key="inf",
         body=[{"id": "evt-1", "source": "cmp", "type": "com.neocloud.usage", "data": {"item": "gpu_seconds:H100", "quantity": 7}},
               {"id": "evt-1", "source": "cmp", "type": "com.neocloud.usage", "data": {"item": "gpu_seconds:H100", "quantity": 7}},
               {"id": "evt-0", "source": "cmp", "type": "com.neocloud.usage", "data": {"item": "gpu_seconds:H100", "quantity": 3}}]),
    dict(name="usage event token-priced", method="POST", path="/v1/usage/events", key="inf",
         body={"id": "evt-tok", "source": "cmp", "type": "com.neocloud.usage",
               "data": {"item": MODEL, "input_tokens": 100, "output_tokens": 11}}),
    dict(name="usage event admin key with subject", method="POST", path="/v1/usage/events", key="admin",
         body={"id": "evt-2", "source": "cmp", "type": "com.neocloud.usage", "subject": "{proj}",
               "data": {"item": "gpu_seconds:H100", "quantity": 5}}),
    dict(name="usage event admin key, other org's project", method="POST", path="/v1/usage/events", key="admin",
         body={"id": "evt-3", "source": "cmp", "type": "com.neocloud.usage", "subject": "{proj2}",
               "data": {"item": "gpu_seconds:H100", "quantity": 5}}),
    dict(name="usage event inference key, other project", method="POST", path="/v1/usage/events", key="inf",
         body={"id": "evt-4", "source": "cmp", "type": "com.neocloud.usage", "subject": "{proj0}",
               "data": {"item": "gpu_seconds:H100", "quantity": 1}}),
    dict(name="usage event missing data", method="POST", path="/v1/usage/events", key="inf",
         body={"id": "evt-5", "source": "cmp", "type": "com.neocloud.usage"}),
    dict(name="usage event unknown item", method="POST", path="/v1/usage/events", key="inf",
         body={"id": "evt-6", "source": "cmp", "type": "com.neocloud.usage", "data": {"item": "nope", "quantity": 1}}),
    dict(name="usage event empty batch", method="POST", path="/v1/usage/events", key="inf", body=[]),
    dict(name="usage event malformed JSON", method="POST", path="/v1/usage/events", key="inf", raw="{"),
    dict(name="usage events GET (wrong method)", method="GET", path="/v1/usage/events", key="inf"),

    # --- unknown routes / wrong methods --------------------------------------------------------------
    dict(name="unknown route", method="GET", path="/v1/nope", key="inf"),
    dict(name="unknown root route", method="GET", path="/nope", key="inf"),
    dict(name="GET /v1/completions", method="GET", path="/v1/completions", key="inf"),
    dict(name="PUT /v1/chat/completions", method="PUT", path="/v1/chat/completions", key="inf", body={}),
    dict(name="POST /v1/models", method="POST", path="/v1/models", key="inf", body={}),
    dict(name="POST /v1/models, admin key", method="POST", path="/v1/models", key="admin", body={}),
    dict(name="DELETE /v1/models/tiny", method="DELETE", path="/v1/models/tiny", key="inf"),
    dict(name="GET /tokenize", method="GET", path="/tokenize", key="inf"),
    dict(name="completions with query string", method="POST", path="/v1/completions?x=1", key="inf",
         body={"model": MODEL, "prompt": "Hi", "max_tokens": 2, "temperature": 0}),
    dict(name="completion body over 8 MiB (413)", method="POST", path="/v1/completions", key="inf",
         raw='{"model": "tiny", "prompt": "' + "a" * (9 << 20) + '"}', socket=True),
    dict(name="completions trailing slash", method="POST", path="/v1/completions/", key="inf2",
         body={"model": MODEL, "prompt": "Hi", "max_tokens": 2, "temperature": 0}),
    dict(name="jobs route, inference key", method="GET", path="/v1/jobs", key="inf", jobs=True),
]

JOBS_REQUESTS = [
    dict(name="jobs list", method="GET", path="/v1/jobs", key="inf"),
    dict(name="jobs list, admin key", method="GET", path="/v1/jobs", key="admin"),
    dict(name="jobs quotas", method="GET", path="/v1/jobs/quotas", key="inf"),
    dict(name="jobs list bad state", method="GET", path="/v1/jobs?state=bogus", key="inf"),
    dict(name="job get unknown", method="GET", path="/v1/jobs/job_nope", key="inf"),
    dict(name="job cancel unknown", method="POST", path="/v1/jobs/job_nope/cancel", key="inf"),
    dict(name="job logs unknown", method="GET", path="/v1/jobs/job_nope/logs", key="inf"),
    dict(name="job logs bad offset", method="GET", path="/v1/jobs/job_nope/logs?offset=-1", key="inf"),
    dict(name="job unknown action", method="GET", path="/v1/jobs/job_nope/frobnicate", key="inf"),
    dict(name="job submit empty", method="POST", path="/v1/jobs", key="inf", body={}),
    dict(name="job submit malformed JSON", method="POST", path="/v1/jobs", key="inf", raw="{"),
    dict(name="job submit gpus a string", method="POST", path="/v1/jobs", key="inf", body={"command": "true", "gpus": "1"}),
    dict(name="job submit bad priority", method="POST", path="/v1/jobs", key="inf",
         body={"command": "true", "gpus": 1, "priority": "urgent"}),
    dict(name="job submit 8 GPUs (never fits)", method="POST", path="/v1/jobs", key="inf", body={"command": "true", "gpus": 8}),
    dict(name="job submit nested 200 deep", method="POST", path="/v1/jobs", key="inf", raw='{"command": ' + deep(200) + "}"),
    dict(name="jobs PUT (405)", method="PUT", path="/v1/jobs", key="inf", body={}),
    dict(name="job submit sleep", method="POST", path="/v1/jobs", key="inf",
         body={"name": "sleeper", "command": "sleep", "args": ["30"], "gpus": 1}, save={"job": "id"}, volatile_job=True),
    dict(name="job cancel", method="POST", path="/v1/jobs/{job}/cancel", key="inf", volatile_job=True,
         wait_job_end="job"),
    dict(name="job cancel again (ended)", method="POST", path="/v1/jobs/{job}/cancel", key="inf"),
    dict(name="job get of another org", method="GET", path="/v1/jobs/{job}", key="admin2"),
    dict(name="reservations list", method="GET", path="/v1/reservations", key="inf"),
    dict(name="reservation too large", method="POST", path="/v1/reservations", key="inf",
         body={"gpu_type": "sim", "gpus": 5, "duration_seconds": 60}),
    dict(name="reservation no gpu_type", method="POST", path="/v1/reservations", key="inf", body={"gpus": 1}),
    dict(name="reservation get unknown", method="GET", path="/v1/reservations/res_nope", key="inf"),
    dict(name="reservation cancel unknown", method="POST", path="/v1/reservations/res_nope/cancel", key="inf"),
    dict(name="reservations DELETE collection", method="DELETE", path="/v1/reservations", key="inf"),
    dict(name="nodes list (operator)", method="GET", path="/v1/admin/nodes", key="op"),
    dict(name="nodes list (tenant admin)", method="GET", path="/v1/admin/nodes", key="admin"),
    dict(name="gpu quota get", method="GET", path="/v1/admin/organizations/{org}/gpu_quota", key="op"),
    dict(name="gpu quota put", method="PUT", path="/v1/admin/organizations/{org}/gpu_quota", key="op",
         body={"gpus": 1}),
    dict(name="gpu quota put unknown org", method="PUT", path="/v1/admin/organizations/org_nope/gpu_quota", key="op",
         body={"gpus": 1}),
    dict(name="gpu quota put without gpus", method="PUT", path="/v1/admin/organizations/{org}/gpu_quota", key="op",
         body={}),
    dict(name="gpu quota by tenant admin", method="GET", path="/v1/admin/organizations/{org}/gpu_quota", key="admin"),
    dict(name="gpu quota POST (405)", method="POST", path="/v1/admin/organizations/{org}/gpu_quota", key="op", body={}),
    dict(name="jobs list, percent-encoded state", method="GET", path="/v1/jobs?state=%71ueued", key="inf"),
    dict(name="jobs trailing slash", method="GET", path="/v1/jobs/", key="inf"),
    dict(name="jobs, embeddings-only key", method="GET", path="/v1/jobs", key="inf_emb"),
]

# Last (the old binary may not survive them): inputs whose parsing threw.
LAST_REQUESTS = [
    dict(name="chat response_format type a number", method="POST", path="/v1/chat/completions", key="inf",
         body={"model": MODEL, "messages": CHAT, "response_format": {"type": 5}}),
    dict(name="health after the above", method="GET", path="/health", key=None),
    dict(name="completion after the above", method="POST", path="/v1/completions", key="inf",
         body={"model": MODEL, "prompt": "Hello, my name is", "max_tokens": 4, "temperature": 0}),
]

# Fields of a job that depend on timing (state of the process, events, segments).
JOB_VOLATILE = {"status", "pending_reason", "exit_code", "finished_at", "segments", "gpu_seconds", "events"}

# ---------------------------------------------------------------------------------------------------
# Running the list


def subst(v, env):
    if isinstance(v, str):
        def rep(m):
            k = m.group(1)
            if k not in env:
                return m.group(0)
            return str(env[k])
        return re.sub(r"\{([a-z_0-9]+)\}", rep, v)
    if isinstance(v, list):
        return [subst(x, env) for x in v]
    if isinstance(v, dict):
        return {k: subst(x, env) for k, x in v.items()}
    return v


def dig(j, path):
    for part in path.split("."):
        if not isinstance(j, dict) or part not in j:
            return None
        j = j[part]
    return j


def run_list(server, requests):
    env = {"t0": int(time.time()) - 3600}
    keys = {"op": server.admin_key, "unknown_inf": well_formed_key("inf", "Zq7"),
            "unknown_admin": well_formed_key("admin", "Qz3")}
    out = []
    for i, r in enumerate(requests):
        path = subst(r["path"], env)
        body = subst(r.get("body"), env) if "body" in r else None
        raw = r.get("raw")
        if isinstance(raw, str):
            raw = subst(raw, env)
        k = r.get("key")
        if k is None:
            auth = None
        elif k.startswith("raw:"):
            auth = k[4:]
        else:
            secret = keys.get(k) or env.get(k)
            auth = "Bearer " + secret if secret else "Bearer missing-" + k
        t = time.time()
        if r.get("socket"):
            resp = socket_call(server.port, r["method"], path, auth, raw)
        else:
            resp = call(server.port, r["method"], path, auth, body, raw=raw)
        resp["seconds"] = round(time.time() - t, 3)
        shown = body if raw is None else (raw if isinstance(raw, str) else raw.decode("latin-1"))
        if isinstance(shown, str) and len(shown) > 2000:
            shown = shown[:200] + f"... ({len(shown)} bytes)"
        resp["request"] = {"method": r["method"], "path": path, "key": k, "body": shown}
        try:
            j = json.loads(resp["body"])
        except ValueError:
            j = None
        for var, p in (r.get("save") or {}).items():
            v = dig(j, p)
            if v is not None:
                env[var] = v
                if isinstance(v, str) and v.startswith("nc-"):
                    keys[var] = v
        if r.get("wait_job_end"):
            # Not a recorded request: waits for the cancelled job to end so that the next cancel is deterministic.
            job = env.get(r["wait_job_end"])
            deadline = time.time() + 30
            while job and time.time() < deadline:
                g = call(server.port, "GET", f"/v1/jobs/{job}", "Bearer " + env["inf"], None)
                try:
                    st = json.loads(g["body"]).get("status")
                except ValueError:
                    st = None
                if st in ("succeeded", "failed", "cancelled", "preempted", "timed_out", "node_failed"):
                    break
                time.sleep(0.2)
        out.append(resp)
    return out


# ---------------------------------------------------------------------------------------------------
# Normalization

ID_PATTERNS = [
    (re.compile(r"nc-(?:inf|admin)-[0-9A-Za-z]{20,}"), "secret"),
    (re.compile(r"nc-(?:inf|admin)-[0-9A-Za-z]{2,8}\u2026[0-9A-Za-z]{2,8}"), "secret"),  # a redacted key in a message
    (re.compile(r"\bchatcmpl-[0-9a-f]{8,}"), "chatcmpl"),
    (re.compile(r"\bcmpl-[0-9a-f]{8,}"), "cmpl"),
    (re.compile(r"\breq_[0-9a-f]{32}"), "cmpl"),
    (re.compile(r"\b(?:org|proj|key|job|res|resv|evt|usage)_[0-9A-Za-z]{6,}"), "id"),
]
TIME_KEYS = {"created", "created_at", "expires_at", "revoked_at", "last_used_at", "effective_at", "effective_at_us",
             "effective_from", "start_time", "end_time", "time", "time_us", "started_at_us", "ended_at_us",
             "activated_at_us", "released_at_us", "finished_at", "updated_at", "heartbeat_at", "last_heartbeat"}


class Normalizer:
    """Per run: generated ids become <kind#n> in order of first appearance."""

    def __init__(self):
        self.seen = {}

    def token(self, s, kind):
        if s not in self.seen:
            prefix = s.split("_")[0] if kind == "id" else kind
            n = sum(1 for v in self.seen.values() if v.startswith(f"<{prefix}#")) + 1
            self.seen[s] = f"<{prefix}#{n}>"
        return self.seen[s]

    def text(self, s):
        for pat, kind in ID_PATTERNS:
            if kind == "secret":
                s = pat.sub("<secret>", s)
            elif kind in ("cmpl", "chatcmpl"):  # one per response, never referred to again
                s = pat.sub(f"<{kind}>", s)
            else:
                s = pat.sub(lambda m: self.token(m.group(0), kind), s)
        s = re.sub(r"\b1[6-9]\d{8}(\d{3}|\d{6})?\b", "<ts>", s)  # unix times in messages
        s = re.sub(r"\b(\d+m)?\d+(\.\d+)?(ms|s)\b", "<duration>", s)  # "try again in 29.994s"
        return s

    def value(self, v, key=None):
        if isinstance(v, dict):
            return {k: self.value(x, k) for k, x in v.items()}
        if isinstance(v, list):
            return [self.value(x, key) for x in v]
        is_time = key in TIME_KEYS or (isinstance(key, str) and (key.endswith("_us") or key.endswith("_at")))
        if is_time and v is not None and not isinstance(v, (dict, list)):
            return "<time>"
        if isinstance(v, str):
            if key == "redacted_value" or key == "value" and v.startswith("nc-"):
                return "<secret>"
            return self.text(v)
        if isinstance(v, float):
            return float(f"{v:.5g}")
        return v


INTERESTING_HEADERS = ("content-type", "retry-after", "x-should-retry")


def headers_view(resp):
    h = {}
    for k, v in resp["headers"]:
        if k in INTERESTING_HEADERS:
            h[k] = v if k != "retry-after" else "<present>"
        elif k.startswith("x-ratelimit-"):
            h[k] = v if k.startswith("x-ratelimit-limit") or k.startswith("x-ratelimit-remaining") else "<present>"
        elif k == "retry-after-ms":
            h[k] = "<present>"
    return h


def sse(text):
    out = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                out.append(line[len("data: "):])
    return out


def view(resp, req, norm):
    """The comparable view of one answer: status, headers, error fields / message, body."""
    v = {"status": resp["status"], "headers": headers_view(resp)}
    if req.get("compare") == "status":
        v["headers"] = {k: x for k, x in v["headers"].items() if k == "content-type"}
        return v
    ctype = dict(resp["headers"]).get("content-type", "")
    if ctype.startswith("text/event-stream"):
        events = []
        for e in sse(resp["body"]):
            try:
                events.append(norm.value(json.loads(e)))
            except ValueError:
                events.append(e)
        # Events per choice (choices of n > 1 interleave as the engine runs them), and the rest in order.
        per_choice, other = {}, []
        for e in events:
            if isinstance(e, dict) and e.get("choices"):
                top = {k: x for k, x in e.items() if k != "choices"}
                for c in e["choices"]:
                    per_choice.setdefault(str(c.get("index")), []).append({**top, "choice": c})
            else:
                other.append(e)
        v["stream"] = {"choices": per_choice, "other": other}
        # The generated text per choice, whatever the chunking.
        text = {}
        for e in events:
            if isinstance(e, dict):
                for c in e.get("choices", []):
                    t = c.get("text") if "text" in c else (c.get("delta") or {}).get("content")
                    text[c.get("index")] = text.get(c.get("index"), "") + (t or "")
        v["stream_text"] = {str(k): t for k, t in sorted(text.items(), key=lambda kv: str(kv[0]))}
        return v
    try:
        j = json.loads(resp["body"])
    except ValueError:
        v["raw"] = norm.text(resp["body"])
        return v
    if isinstance(j, dict) and isinstance(j.get("error"), dict) and len(j) == 1:
        e = j["error"]
        v["error"] = {k: norm.value(e.get(k)) for k in ("type", "code", "param")}
        v["error_keys"] = sorted(e.keys())
        v["message"] = norm.text(str(e.get("message")))
        return v
    j = norm.value(j)
    if isinstance(j, dict) and isinstance(j.get("data"), list):
        # Listings ordered by generated ids (random) come in either order: compare them as sets.
        j["data"] = sorted(j["data"], key=lambda x: json.dumps(x, sort_keys=True))
    if req.get("volatile_job") and isinstance(j, dict):
        j = {k: ("<volatile>" if k in JOB_VOLATILE else x) for k, x in j.items()}
    if req["path"].startswith("/v1/jobs") and isinstance(j, dict) and isinstance(j.get("data"), list):
        j["data"] = [{k: ("<volatile>" if k in JOB_VOLATILE else x) for k, x in d.items()} if isinstance(d, dict) else d
                     for d in j["data"]]
    v["body"] = j
    return v


def first_diff(a, b, path=""):
    """The first path where two JSON values differ, and the two values there."""
    if type(a) != type(b):
        return path or "$", a, b
    if isinstance(a, dict):
        for k in list(a.keys()) + [k for k in b if k not in a]:
            if k not in a or k not in b or a[k] != b[k]:
                if k in a and k in b:
                    return first_diff(a[k], b[k], f"{path}.{k}")
                return f"{path}.{k}", a.get(k, "<absent>"), b.get(k, "<absent>")
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}[len]", len(a), len(b)
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return first_diff(x, y, f"{path}[{i}]")
    return path or "$", a, b


def classify(old, new):
    """'' when equal, else the kinds of difference: status, error, message, body, stream, headers."""
    kinds = []
    if old["status"] != new["status"]:
        kinds.append("status")
    if old.get("error") != new.get("error") or old.get("error_keys") != new.get("error_keys"):
        kinds.append("error")
    if old.get("message") != new.get("message"):
        kinds.append("message")
    if old.get("body") != new.get("body") or old.get("raw") != new.get("raw"):
        kinds.append("body")
    if old.get("stream") != new.get("stream") or old.get("stream_text") != new.get("stream_text"):
        kinds.append("stream")
    if old["headers"] != new["headers"]:
        kinds.append("headers")
    return kinds


def brief(v):
    s = str(v["status"])
    if "error" in v:
        e = v["error"]
        s += f" {e['type']}/{e['code']}/{e['param']}"
    return s


def short(x, n=160):
    s = json.dumps(x, ensure_ascii=False) if not isinstance(x, str) else x
    return s if len(s) <= n else s[: n - 3] + "..."


# ---------------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old", required=True, help="the old neocloud binary")
    ap.add_argument("--new", required=True, help="the new neocloud binary")
    ap.add_argument("--vocab", default=DEFAULT_VOCAB)
    ap.add_argument("--tmp", help="work directory (default: a new temporary one, removed at the end)")
    ap.add_argument("--gpus", type=int, default=2, help="simulated GPUs for the jobs API (0: no jobs API)")
    ap.add_argument("--json", help="write every request with both normalized answers here")
    args = ap.parse_args()

    tmp = args.tmp or tempfile.mkdtemp(prefix="nc-compare-")
    os.makedirs(tmp, exist_ok=True)
    model = os.path.join(tmp, "m.gguf")
    # One model file for both runs (made by the new binary; the old binary's synth is checked to match).
    for binary, out in ((args.new, model), (args.old, model + ".old")):
        r = subprocess.run([binary, "model", "synth", "--vocab", args.vocab, "--shape", "micro", "--type", "f16", "--seed",
                            "5", "--out", out], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise SystemExit(f"model synth with {binary} failed: {r.stdout}{r.stderr}")
    with open(model, "rb") as a, open(model + ".old", "rb") as b:
        synth_same = a.read() == b.read()

    requests = [r for r in REQUESTS if not (r.get("jobs") and not args.gpus)]
    if args.gpus:
        requests = [r for r in requests if not r.get("jobs")] + JOBS_REQUESTS
    requests = requests + LAST_REQUESTS

    results = {}
    for label, binary in (("old", args.old), ("new", args.new)):
        srv = Server(binary, os.path.join(tmp, label), model, args.gpus)
        print(f"[{label}] starting {binary}", flush=True)
        srv.start()
        t = time.time()
        try:
            results[label] = run_list(srv, requests)
        finally:
            rc = srv.stop()
        print(f"[{label}] {len(requests)} requests in {time.time() - t:.1f}s; server exit status {rc}", flush=True)

    rows = []
    dump = []
    n_same = 0
    n_message_only = 0
    for i, req in enumerate(requests):
        o, n = results["old"][i], results["new"][i]
        vo, vn = view(o, req, Normalizer_for("old", results)), view(n, req, Normalizer_for("new", results))
        kinds = classify(vo, vn)
        dump.append({"index": i + 1, "name": req["name"], "request": o["request"], "old": vo, "new": vn, "differs": kinds,
                     "old_raw": o["body"][:2000], "new_raw": n["body"][:2000]})
        if not kinds:
            n_same += 1
            continue
        if kinds == ["message"]:
            n_message_only += 1
        rows.append((i + 1, req, o, vo, vn, kinds))

    print()
    print(f"model synth byte-identical between the binaries: {synth_same}")
    print()
    if rows:
        print("| # | request | key | old | new | differs in | detail |")
        print("|---|---------|-----|-----|-----|------------|--------|")
        for idx, req, o, vo, vn, kinds in rows:
            detail = []
            if "message" in kinds:
                detail.append(f"old msg: {short(vo.get('message'), 200)!s} // new msg: {short(vn.get('message'), 200)!s}")
            for part in ("body", "raw", "stream", "stream_text", "headers"):
                if vo.get(part) != vn.get(part):
                    p, a, b = first_diff(vo.get(part), vn.get(part))
                    detail.append(f"{part}{p if p != '$' else ''}: old {short(a)} // new {short(b)}")
            if "error" in kinds and "error_keys" in vo and vo.get("error_keys") != vn.get("error_keys"):
                detail.append(f"error keys: {vo.get('error_keys')} // {vn.get('error_keys')}")
            if ("status" in kinds or "error" in kinds) and "message" not in kinds and "message" in vn:
                detail.append(f"msg (same): {short(vn['message'], 120)}")
            rq = o["request"]
            name = f"{req['name']}: {rq['method']} {short(Normalizer_for('old', results).text(rq['path']), 70)}"
            row = [str(idx), name.replace("|", "\\|"), str(rq["key"]), brief(vo).replace("|", "\\|"),
                   brief(vn).replace("|", "\\|"), ",".join(kinds), " ; ".join(detail).replace("|", "\\|").replace("\n", "\\n")]
            print("| " + " | ".join(row) + " |")
    print()
    print(f"{len(requests)} requests, {n_same} identical, {len(requests) - n_same} differ "
          f"({n_message_only} only in the error message text)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dump, f, indent=1, ensure_ascii=False)
    if not args.tmp:
        shutil.rmtree(tmp, ignore_errors=True)


_NORMALIZERS = {}


def Normalizer_for(label, _results):
    """One normalizer per run, used over the whole run in request order (placeholders number alike)."""
    if label not in _NORMALIZERS:
        _NORMALIZERS[label] = Normalizer()
    return _NORMALIZERS[label]


if __name__ == "__main__":
    main()
