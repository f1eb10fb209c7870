#!/usr/bin/env python3
"""End-to-end test of the multi-tenant gateway (`neocloud serve --db ...`) over HTTP.

Starts the server on a tiny random-weight model with a fresh SQLite file or a fresh PostgreSQL schema,
then checks, each as a named step printed when it passes:
  1 auth        401 without a key, with malformed / mistyped / unknown keys, after revocation (at once,
                despite the auth cache), after rotation with no overlap and after expiry
  2 forbidden   403: admin keys on models, inference keys on admin routes, model and endpoint scopes,
                non-operator admin keys on operator routes
  3 bola        org A's admin key never sees or changes org B's projects, keys, limits, budgets, usage, and
                cannot meter usage events into B's project
  4 rate limits RPM (x-ratelimit-* counting down, 429 with retry-after), TPM, request too large,
                max_tokens cap, org limits set by the operator
  5 budget      50 concurrent requests against a 500-micro project budget: never overspent, the ledger's
                spent equals the sum of the responses' usage, nothing left held; operator org budgets
  6 usage api   /v1/organization/usage/completions and /costs equal the responses' usage and prices
  7 disconnect  a client that leaves mid-stream is billed ('client_disconnected', tokens > 0)
  8 events      POST /v1/usage/events: duplicates in a batch and replays stored once, priced per unit
  9 audit       the audit log has the mutations made, with the acting key
  10 ledger     read from the database: no record left open, nothing held, every spend counter equals its
                usage records plus usage events
A failed check is reported and the next ones still run; the exit status is 1 if any failed.

Usage:
  gateway_e2e.py --neocloud BIN --vocab VOCAB.gguf --tmp DIR --db sqlite
  gateway_e2e.py --neocloud BIN --vocab VOCAB.gguf --tmp DIR --db postgres --pg-url-file FILE
Exit 0 on success; "FAIL: ..." and exit 1 otherwise. Python standard library only.
"""
import argparse
import ctypes
import glob
import http.client
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import traceback
import zlib
from datetime import datetime, timezone

MODEL = "tiny"
MTOK = 1_000_000


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def run_steps(steps):
    """Runs (name, fn) steps in order, printing `ok N name: <fn's summary>` or `FAIL N name: why` for
    each; returns the names of those that failed (a failing step does not stop the others)."""
    failures = []
    for i, (name, fn) in enumerate(steps, 1):
        t0 = time.time()
        try:
            msg = fn()
            print(f"ok {i} {name}: {msg} ({time.time() - t0:.1f}s)", flush=True)
        except Fail as e:
            print(f"FAIL {i} {name}: {e}", flush=True)
            failures.append(name)
        except Exception:  # noqa: BLE001
            print(f"FAIL {i} {name}: {traceback.format_exc()}", flush=True)
            failures.append(name)
    return failures


def report_result(failures, t0, server):
    """Prints the suite's verdict (with the server's log tail on failure); the process exit status."""
    if failures:
        print(f"FAIL: {len(failures)} step(s) failed: {', '.join(failures)} ({time.time() - t0:.1f}s)", flush=True)
        print(server.log_tail(), flush=True)
        return 1
    print(f"PASS ({time.time() - t0:.1f}s)", flush=True)
    return 0


def run_server_suite(t):
    """Starts t's backend and server, runs t.run() (its failed steps' names) and stops the server; the
    exit status. For suites with t.backend, t.server and t.server_client."""
    t0 = time.time()
    failures = ["start"]
    try:
        t.backend.create()
        t.server_client = t.server.start()
        failures = t.run()
    except Fail as e:
        print(f"FAIL start: {e}", flush=True)
    finally:
        t.server.stop()
    return report_result(failures, t0, t.server)


def slurm_conf_of(slurm_dir):
    """The SLURM_CONF that tools/slurm.sh's DIR/env sets (the ctest `slurm` fixture); Fail without it."""
    env_file = os.path.join(slurm_dir or "", "env")
    check(os.path.exists(env_file), f"no Slurm at {slurm_dir} (the ctest `slurm` fixture starts it)")
    return open(env_file).read().split("SLURM_CONF=", 1)[1].split()[0].strip("'\"")


# ---------------------------------------------------------------------------------------------------
# HTTP


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body.decode("utf-8", "replace") if isinstance(body, bytes) else body

    def h(self, name):
        return self.headers.get(name.lower())

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise Fail(f"not a JSON body (HTTP {self.status}): {self.body[:300]!r}")

    def __str__(self):
        return f"HTTP {self.status} {self.body[:500]}"


class Client:
    def __init__(self, port):
        self.port = port

    def _conn(self, timeout=120):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    @staticmethod
    def _headers(key, auth, body):
        h = {}
        if auth is not None:
            h["Authorization"] = auth
        elif key is not None:
            h["Authorization"] = "Bearer " + key
        if body is not None:
            h["Content-Type"] = "application/json"
        return h

    def call(self, method, path, key=None, body=None, auth=None, timeout=120):
        conn = self._conn(timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            conn.request(method, path, body=data, headers=self._headers(key, auth, body))
            r = conn.getresponse()
            return Resp(r.status, r.getheaders(), r.read())
        finally:
            conn.close()

    def open(self, method, path, key, body):
        """Sends a request and returns (connection, response) once the headers are in: read the body later."""
        conn = self._conn()
        conn.request(method, path, body=json.dumps(body).encode(), headers=self._headers(key, None, body))
        return conn, conn.getresponse()

    def get(self, path, key):
        return self.call("GET", path, key)

    def post(self, path, key, body):
        return self.call("POST", path, key, body)

    def put(self, path, key, body):
        return self.call("PUT", path, key, body)

    def ok(self, method, path, key, body=None, status=(200, 201)):
        """An admin call that must succeed; returns its JSON."""
        r = self.call(method, path, key, body)
        check(r.status in status, f"{method} {path} {json.dumps(body) if body is not None else ''}: expected HTTP "
                                  f"{'/'.join(map(str, status))}, got {r}")
        return r.json()


def sse_events(text):
    """The `data:` payloads of an event stream, in order."""
    out = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                out.append(line[len("data: "):])
    return out


def expect_error(r, status, code, etype=None, param=None, what=""):
    """An OpenAI-shaped error with this status and code (None: JSON null); returns the error object."""
    check(r.status == status, f"{what}: expected HTTP {status} (code {code!r}), got {r}")
    j = r.json()
    e = j.get("error") if isinstance(j, dict) else None
    check(isinstance(e, dict) and all(k in e for k in ("message", "type", "param", "code")),
          f"{what}: not an OpenAI error body (error.message/type/param/code): {r.body[:300]}")
    check(e["code"] == code, f"{what}: expected error.code {code!r}, got {e['code']!r}: {r.body[:300]}")
    if etype is not None:
        check(e["type"] == etype, f"{what}: expected error.type {etype!r}, got {e['type']!r}: {r.body[:300]}")
    if param is not None:
        check(e["param"] == param, f"{what}: expected error.param {param!r}, got {e['param']!r}: {r.body[:300]}")
    check(isinstance(e["message"], str) and e["message"], f"{what}: empty error message")
    return e


# ---------------------------------------------------------------------------------------------------
# API keys (the server's format, to make a well-formed key that does not exist)

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def b62(n, width):
    s = ""
    for _ in range(width):
        n, r = divmod(n, 62)
        s = B62[r] + s
    return s


def key_checksum(body):
    return b62(zlib.crc32(body.encode()) & 0xFFFFFFFF, 6)


def well_formed_key(kind="inf"):
    body = f"nc-{kind}-" + "".join(secrets.choice(B62) for _ in range(43))
    return body + key_checksum(body)


def flip_char(key, i):
    """`key` with its i-th character replaced by another base62 character."""
    c = key[i]
    return key[:i] + (B62[(B62.index(c) + 1) % 62]) + key[i + 1:]


# ---------------------------------------------------------------------------------------------------
# The server and the database


def pg_bin(name):
    def ver(p):
        m = re.search(r"/postgresql/(\d+)", p)
        return int(m.group(1)) if m else 0
    cands = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=ver, reverse=True)
    if cands:
        return cands[0]
    p = shutil.which(name)
    if not p:
        raise Fail(f"{name} not found (install the postgresql package)")
    return p


def add_url_param(url, param):
    return url + ("&" if "?" in url else "?") + param


class Backend:
    def __init__(self, args):
        self.kind = args.db
        self.tmp = args.tmp
        self.schema = None
        if self.kind == "sqlite":
            self.db_path = os.path.join(self.tmp, "nc.db")
            self.url = "sqlite:" + self.db_path
        else:
            check(args.pg_url_file, "--db postgres needs --pg-url-file")
            with open(args.pg_url_file) as f:
                self.base_url = f.read().strip()
            check(self.base_url, f"{args.pg_url_file} is empty")
            self.psql = pg_bin("psql")
            self.schema = f"gw_e2e_{os.getpid()}"
            self.url = add_url_param(self.base_url, "options=-csearch_path%3D" + self.schema)

    def create(self):
        if self.schema:
            self.sql(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE; CREATE SCHEMA {self.schema}", self.base_url)

    def drop(self):
        if self.schema:
            self.sql(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE", self.base_url)

    def sql(self, query, url=None):
        r = subprocess.run([self.psql, "-X", "-q", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1", url or self.url, "-c", query],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise Fail(f"psql failed ({r.returncode}): {query}: {r.stderr.strip()}")
        return [line.split("|") for line in r.stdout.splitlines() if line]

    def query(self, query):
        """Rows of a SELECT on the server's database, as lists of strings."""
        if self.kind == "sqlite":
            con = sqlite3.connect(self.db_path, timeout=30)
            try:
                return [[("" if v is None else str(v)) for v in row] for row in con.execute(query).fetchall()]
            finally:
                con.close()
        return self.sql(query)


class Server:
    def __init__(self, args, backend):
        self.args = args
        self.backend = backend
        self.proc = None
        self.log_path = os.path.join(args.tmp, "server.log")
        self.port = None

    def start(self):
        a = self.args
        model = os.path.join(a.tmp, "m.gguf")
        r = subprocess.run([a.neocloud, "model", "synth", "--vocab", a.vocab, "--shape", "micro", "--type", "f16", "--seed",
                            "5", "--out", model], capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, f"model synth failed: {r.stdout}{r.stderr}")
        self.key_file = os.path.join(a.tmp, "admin.key")
        cmd = [a.neocloud, "serve", "-m", f"{model}:{MODEL}", "--port", "0", "-t", "2", "--parallel", "8", "--db",
               self.backend.url, "--admin-key-file", self.key_file] + list(getattr(a, "serve_args", []))
        libc = ctypes.CDLL(None, use_errno=True)

        def die_with_parent():  # the server goes when this test goes, even when killed with SIGKILL
            libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG

        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        deadline = time.time() + 60
        while self.port is None:
            check(self.proc.poll() is None, f"the server exited ({self.proc.returncode}) at start:\n{self.log_tail()}")
            check(time.time() < deadline, f"the server did not print its port in 60 s:\n{self.log_tail()}")
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/v1", open(self.log_path).read())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.05)
        client = Client(self.port)
        while True:
            check(self.proc.poll() is None, f"the server exited ({self.proc.returncode}):\n{self.log_tail()}")
            check(time.time() < deadline, f"/health did not answer 200 in 60 s:\n{self.log_tail()}")
            try:
                if client.call("GET", "/health", timeout=5).status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        with open(self.key_file) as f:
            self.admin_key = f.read().strip()
        check(self.admin_key.startswith("nc-admin-"), f"--admin-key-file holds {self.admin_key[:12]!r}..., not an admin key")
        return client

    def stop(self):
        """Stops the server (SIGTERM, then SIGKILL); returns its exit status."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return None

    def log_tail(self, n=40):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


# ---------------------------------------------------------------------------------------------------
# The test


class Org:
    """An organization made by the operator, with its first admin key."""

    def __init__(self, t, name):
        j = t.c.ok("POST", "/v1/admin/organizations", t.op, {"name": name})
        check(j.get("id", "").startswith("org_") and j.get("name") == name, f"create organization: {j}")
        self.t = t
        self.id = j["id"]
        self.admin = j["admin_key"]["value"]
        self.admin_id = j["admin_key"]["id"]
        check(self.admin.startswith("nc-admin-"), f"the new org's admin key is {self.admin[:12]!r}...")

    def project(self, name):
        j = self.t.c.ok("POST", "/v1/organization/projects", self.admin, {"name": name})
        check(j.get("id", "").startswith("proj_") and j.get("name") == name, f"create project: {j}")
        return j["id"]

    def key(self, project, name, scopes=None, kind="inference", **extra):
        body = {"kind": kind, "name": name, **extra}
        if project:
            body["project_id"] = project
        if scopes is not None:
            body["scopes"] = scopes
        j = self.t.c.ok("POST", "/v1/organization/api_keys", self.admin, body)
        prefix = "nc-inf-" if kind == "inference" else "nc-admin-"
        check(j.get("value", "").startswith(prefix) and j.get("id", "").startswith("key_"), f"create key: {j}")
        return j["value"], j["id"]

    def limits(self, scope, scope_id, **l):
        body = {"scope": scope, "scope_id": scope_id, "rpm": None, "tpm": None, "max_concurrent": None, "max_tokens": None}
        body.update(l)
        return self.t.c.ok("PUT", "/v1/organization/limits", self.admin, body, status=(200,))

    def budget(self, scope, scope_id, micros):
        return self.t.c.ok("PUT", "/v1/organization/budgets", self.admin,
                           {"scope": scope, "scope_id": scope_id, "monthly_limit_micros": micros}, status=(200,))


def cost(price, prompt, completion):
    """What the server charges: ceil((prompt * input + completion * output) / 1e6) micro-USD."""
    return (prompt * price[0] + completion * price[1] + MTOK - 1) // MTOK


class Test:
    def __init__(self, args):
        self.args = args
        self.backend = Backend(args)
        self.server = Server(args, self.backend)
        self.t0 = int(time.time()) - 2  # start_time of every usage query
        self.prices = {}  # item -> (input_per_mtok, output_per_mtok, per_unit) in effect now

    # --- helpers --------------------------------------------------------------------------------

    def infer(self, key, chat=False, stream=False, max_tokens=None, n=None, prompt="Hi", include_usage=True, **extra):
        """One completion (chat or not, streamed or not) that must succeed: (response, usage dict, choices)."""
        body = {"model": MODEL, **extra}
        if chat:
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if n is not None:
            body["n"] = n
        if stream:
            body["stream"] = True
            if include_usage:
                body["stream_options"] = {"include_usage": True}
        path = "/v1/chat/completions" if chat else "/v1/completions"
        r = self.c.post(path, key, body)
        check(r.status == 200, f"POST {path} {json.dumps(body)}: expected 200, got {r}")
        if not stream:
            j = r.json()
            u = j.get("usage")
            check(isinstance(u, dict) and u.get("total_tokens") == u.get("prompt_tokens", 0) + u.get("completion_tokens", 0),
                  f"usage of {path}: {j}")
            return r, u, j["choices"]
        check((r.h("content-type") or "").startswith("text/event-stream"), f"stream content-type: {r.h('content-type')}")
        events = sse_events(r.body)
        check(events and events[-1] == "[DONE]", f"stream does not end with [DONE]: {r.body[-300:]!r}")
        chunks = [json.loads(e) for e in events[:-1]]
        for ch in chunks:
            check("error" not in ch, f"error event in a stream: {ch}")
        usage = None
        finished = set()
        for ch in chunks:
            if ch.get("usage"):
                check(ch["choices"] == [], f"the usage chunk has choices: {ch}")
                usage = ch["usage"]
            for c in ch.get("choices", []):
                if c.get("finish_reason"):
                    finished.add(c["index"])
        if include_usage:
            check(usage is not None, f"stream with include_usage has no usage chunk: {r.body[-400:]!r}")
        return r, usage, sorted(finished)

    def ratelimit_headers(self, r):
        return {k: v for k, v in r.headers.items() if k.startswith("x-ratelimit-")}

    def usage(self, key, end=None, **params):
        q = f"start_time={self.t0}"
        if end is not False:
            q += f"&end_time={end or int(time.time()) + 120}"
        for k, v in params.items():
            q += f"&{k}={v}"
        j = self.c.ok("GET", "/v1/organization/usage/completions?" + q, key, status=(200,))
        check(j.get("object") == "page" and isinstance(j.get("data"), list), f"usage page: {j}")
        for b in j["data"]:
            check(b.get("object") == "bucket" and "start_time" in b and "end_time" in b and isinstance(b.get("results"), list),
                  f"usage bucket: {b}")
        return j

    @staticmethod
    def totals(page, group=None):
        """Sums of a usage page: {group value: [input, output, requests]} (key None without group)."""
        out = {}
        for b in page["data"]:
            for res in b["results"]:
                g = res.get(group) if group else None
                t = out.setdefault(g, [0, 0, 0])
                t[0] += res["input_tokens"]
                t[1] += res["output_tokens"]
                t[2] += res["num_model_requests"]
        return out

    def costs(self, key, **params):
        q = f"start_time={self.t0}&end_time={int(time.time()) + 120}"
        for k, v in params.items():
            q += f"&{k}={v}"
        j = self.c.ok("GET", "/v1/organization/costs?" + q, key, status=(200,))
        check(j.get("object") == "page" and isinstance(j.get("data"), list), f"costs page: {j}")
        out = {}
        group = params.get("group_by")
        for b in j["data"]:
            for res in b["results"]:
                a = res.get("amount", {})
                check(a.get("currency") == "usd" and isinstance(a.get("value"), (int, float)), f"costs result: {res}")
                g = res.get(group) if group else None
                out[g] = out.get(g, 0) + round(a["value"] * MTOK)
        return out

    def set_price(self, item, input_per_mtok=0, output_per_mtok=0, per_unit=0):
        j = self.c.ok("POST", "/v1/admin/prices", self.op, {"item": item, "input_per_mtok": input_per_mtok,
                                                             "output_per_mtok": output_per_mtok, "cached_per_mtok": 0,
                                                             "per_unit": per_unit}, status=(201,))
        check(j.get("item") == item and j.get("input_per_mtok") == input_per_mtok and j.get("per_unit") == per_unit,
              f"price: {j}")
        self.prices[item] = (input_per_mtok, output_per_mtok, per_unit)

    # --- the checks -----------------------------------------------------------------------------

    def setup(self):
        self.op = self.server.admin_key
        orgs = self.c.ok("GET", "/v1/admin/organizations", self.op, status=(200,))
        check(len(orgs.get("data", [])) == 1, f"a fresh database has one (the operator's) organization: {orgs}")
        self.op_org = orgs["data"][0]["id"]
        keys = self.c.ok("GET", "/v1/organization/api_keys", self.op, status=(200,))["data"]
        check(len(keys) == 1 and keys[0]["kind"] == "admin", f"the operator org has its one admin key: {keys}")
        self.op_key_id = keys[0]["id"]
        # 1 micro-USD per token in and out (the budget check counts in tokens), and a metered item.
        self.set_price(MODEL, 1_000_000, 1_000_000)
        self.set_price("gpu_seconds:H100", per_unit=2500)
        self.m = Org(self, "main")
        self.m_proj = self.m.project("app")
        self.m_key, self.m_key_id = self.m.key(self.m_proj, "app key")

    def check_auth(self):
        c, m = self.c, self.m
        body = {"model": MODEL, "prompt": "Hi", "max_tokens": 2}
        expect_error(c.post("/v1/completions", None, body), 401, None, "invalid_request_error", what="no Authorization header")
        expect_error(c.call("POST", "/v1/completions", body=body, auth="Basic dXNlcjpwYXNz"), 401, None,
                     what="a non-Bearer Authorization header")
        expect_error(c.get("/v1/models", None), 401, None, what="GET /v1/models without a key")
        expect_error(c.get("/v1/organization/projects", None), 401, None, what="admin route without a key")
        for bad in ("hello", "nc-inf-short", "nc-inf-" + "x" * 49, "sk-" + "a" * 48):
            expect_error(c.post("/v1/completions", bad, body), 401, "invalid_api_key", what=f"malformed key {bad[:12]}...")
        # The real key, one character changed (in the secret; then in the checksum).
        key = self.m_key
        check(c.post("/v1/completions", key, body).status == 200, "the real key works")
        check(key_checksum(key[:-6]) == key[-6:], "the test's checksum matches the server's (key format changed?)")
        for i in (len("nc-inf-") + 5, len(key) - 1):
            expect_error(c.post("/v1/completions", flip_char(key, i), body), 401, "invalid_api_key",
                         what=f"the real key with character {i} changed")
        # Well-formed keys (valid checksum) that the database does not hold.
        for kind in ("inf", "admin"):
            unknown = well_formed_key(kind)
            path = "/v1/completions" if kind == "inf" else "/v1/organization/projects"
            r = c.post(path, unknown, body if kind == "inf" else {"name": "x"})
            expect_error(r, 401, "invalid_api_key", what=f"a well-formed unknown {kind} key")
        # Revocation takes effect at once, although the key was just cached by a successful call.
        rk, rk_id = m.key(self.m_proj, "to revoke")
        check(c.get("/v1/models", rk).status == 200, "a new key works on GET /v1/models")
        check(c.post("/v1/completions", rk, body).status == 200, "a new key works on POST /v1/completions")
        j = c.ok("DELETE", f"/v1/organization/api_keys/{rk_id}", m.admin, status=(200,))
        check(j.get("id") == rk_id and j.get("deleted") is True, f"revoke: {j}")
        expect_error(c.post("/v1/completions", rk, body), 401, "invalid_api_key", what="a revoked key, right after revocation")
        expect_error(c.get("/v1/models", rk), 401, "invalid_api_key", what="a revoked key on GET /v1/models")
        listed = {k["id"]: k for k in c.ok("GET", "/v1/organization/api_keys", m.admin, status=(200,))["data"]}
        check(listed[rk_id]["revoked_at"] is not None, f"the listing shows the key revoked: {listed[rk_id]}")
        check("value" not in listed[rk_id] and rk not in json.dumps(listed), "the listing never shows a key's plaintext")
        check(c.post("/v1/completions", self.m_key, body).status == 200, "the org's other key still works")
        # Rotation without overlap: the old key stops at once, the new one works.
        ok, ok_id = m.key(self.m_proj, "to rotate")
        check(c.post("/v1/completions", ok, body).status == 200, "a key to rotate works")
        j = c.ok("POST", f"/v1/organization/api_keys/{ok_id}/rotate", m.admin, {"overlap_seconds": 0}, status=(201,))
        new_key = j.get("value", "")
        check(new_key.startswith("nc-inf-") and new_key != ok and j.get("id") != ok_id, f"rotate: {j}")
        expect_error(c.post("/v1/completions", ok, body), 401, "invalid_api_key", what="a key rotated with overlap 0")
        check(c.post("/v1/completions", new_key, body).status == 200, "the rotated key's successor works")
        # Expiry.
        ek, _ = m.key(self.m_proj, "short-lived", expires_in_seconds=1)
        check(c.post("/v1/completions", ek, body).status == 200, "a key that expires in 1 s works now")
        time.sleep(1.2)
        expect_error(c.post("/v1/completions", ek, body), 401, "invalid_api_key", what="an expired key (cached a moment ago)")
        return "no key / non-Bearer / 4 malformed / 2 mistyped / 2 unknown / revoked / rotated / expired -> 401"

    def check_forbidden(self):
        c, m = self.c, self.m
        body = {"model": MODEL, "prompt": "Hi", "max_tokens": 2}
        chat = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
        for path, b in (("/v1/completions", body), ("/v1/chat/completions", chat),
                        ("/v1/embeddings", {"model": MODEL, "input": "hello"})):
            expect_error(c.post(path, m.admin, b), 403, "insufficient_permissions", what=f"an admin key on {path}")
        expect_error(c.get("/v1/models", m.admin), 403, "insufficient_permissions", what="an admin key on GET /v1/models")
        expect_error(c.get("/v1/organization/projects", self.m_key), 403, "insufficient_permissions",
                     what="an inference key on GET /v1/organization/projects")
        expect_error(c.post("/v1/organization/api_keys", self.m_key, {"project_id": self.m_proj, "name": "x"}), 403,
                     "insufficient_permissions", what="an inference key on POST /v1/organization/api_keys")
        expect_error(c.get("/v1/admin/organizations", self.m_key), 403, "insufficient_permissions",
                     what="an inference key on /v1/admin/organizations")
        # Model scope.
        sk, _ = m.key(self.m_proj, "other model only", scopes={"models": ["other"]})
        expect_error(c.post("/v1/completions", sk, body), 403, "model_not_allowed", param="model",
                     what="a key scoped to models ['other'] calling tiny")
        expect_error(c.post("/v1/chat/completions", sk, chat), 403, "model_not_allowed",
                     what="a key scoped to models ['other'] calling tiny (chat)")
        j = c.ok("GET", "/v1/models", sk, status=(200,))
        check(j.get("data") == [], f"GET /v1/models with a key scoped to models ['other'] lists nothing: {j}")
        expect_error(c.get(f"/v1/models/{MODEL}", sk), 403, "model_not_allowed", what="GET /v1/models/tiny with that key")
        j = c.ok("GET", "/v1/models", self.m_key, status=(200,))
        check([x["id"] for x in j.get("data", [])] == [MODEL], f"an unscoped key lists the model: {j}")
        # Endpoint scope.
        ek, _ = m.key(self.m_proj, "embeddings only", scopes={"endpoints": ["embeddings"]})
        expect_error(c.post("/v1/completions", ek, body), 403, "insufficient_permissions",
                     what="a key scoped to endpoints ['embeddings'] on /v1/completions")
        expect_error(c.post("/v1/chat/completions", ek, chat), 403, "insufficient_permissions",
                     what="a key scoped to endpoints ['embeddings'] on /v1/chat/completions")
        r = c.post("/v1/embeddings", ek, {"model": MODEL, "input": "hello"})
        check(r.status == 200 and r.json()["data"][0]["object"] == "embedding",
              f"the embeddings-only key can make embeddings: {r}")
        # Operator routes need the operator's admin key.
        expect_error(c.get("/v1/admin/organizations", m.admin), 403, "insufficient_permissions",
                     what="a tenant admin key on GET /v1/admin/organizations")
        expect_error(c.post("/v1/admin/organizations", m.admin, {"name": "evil"}), 403, "insufficient_permissions",
                     what="a tenant admin key creating an organization")
        expect_error(c.post("/v1/admin/prices", m.admin, {"item": MODEL, "input_per_mtok": 0}), 403,
                     "insufficient_permissions", what="a tenant admin key setting a price")
        expect_error(c.put(f"/v1/admin/organizations/{m.id}/limits", m.admin, {"rpm": 1000000}), 403,
                     "insufficient_permissions", what="a tenant admin key raising its own org limits")
        expect_error(c.put(f"/v1/admin/organizations/{m.id}/budget", m.admin, {"monthly_limit_micros": None}), 403,
                     "insufficient_permissions", what="a tenant admin key lifting its own org budget")
        # Org-wide limits and budgets are the operator's, not the tenant's.
        expect_error(c.put("/v1/organization/limits", m.admin, {"scope": "org", "scope_id": m.id, "rpm": 5}), 400, None,
                     what="a tenant setting scope 'org' limits")
        expect_error(c.put("/v1/organization/budgets", m.admin, {"scope": "org", "scope_id": m.id,
                                                                 "monthly_limit_micros": 5}), 400, None,
                     what="a tenant setting an 'org' budget")
        return "admin key on models, inference key on admin routes, model scope, endpoint scope, operator routes -> 403"

    def check_bola(self):
        c = self.c
        body = {"model": MODEL, "prompt": "Hi", "max_tokens": 3}
        a, b = Org(self, "tenant-a"), Org(self, "tenant-b")
        self.a, self.b = a, b
        a_proj, b_proj = a.project("a-app"), b.project("b-app")
        a_key, a_key_id = a.key(a_proj, "a key")
        b_key, b_key_id = b.key(b_proj, "b key")
        self.a_key, self.b_key = a_key, b_key
        r = c.post("/v1/completions", b_key, body)
        check(r.status == 200, f"B's request: {r}")
        b_usage = r.json()["usage"]
        # Lists show only A's objects.
        projects = c.ok("GET", "/v1/organization/projects", a.admin, status=(200,))["data"]
        check([p["id"] for p in projects] == [a_proj], f"A lists exactly its project {a_proj}: {projects}")
        keys = c.ok("GET", "/v1/organization/api_keys", a.admin, status=(200,))["data"]
        check(sorted(k["id"] for k in keys) == sorted([a.admin_id, a_key_id]), f"A lists exactly its 2 keys: {keys}")
        audit = c.ok("GET", "/v1/organization/audit_logs", a.admin, status=(200,))["data"]
        leaked = [e for e in audit if any(x in json.dumps(e) for x in (b.id, b_proj, b_key_id, b.admin_id))]
        check(not leaked and audit, f"A's audit log shows nothing of B: {leaked}")
        # Mutations of B's objects with A's admin key: 404, and nothing changes.
        expect_error(c.call("DELETE", f"/v1/organization/api_keys/{b_key_id}", a.admin), 404, "not_found",
                     what="A revoking B's key")
        expect_error(c.call("DELETE", f"/v1/organization/api_keys/{b.admin_id}", a.admin), 404, "not_found",
                     what="A revoking B's admin key")
        expect_error(c.post(f"/v1/organization/api_keys/{b_key_id}/rotate", a.admin, {"overlap_seconds": 0}), 404,
                     "not_found", what="A rotating B's key")
        expect_error(c.post("/v1/organization/api_keys", a.admin, {"project_id": b_proj, "name": "x"}), 404, "not_found",
                     what="A creating a key in B's project")
        expect_error(c.put("/v1/organization/limits", a.admin, {"scope": "project", "scope_id": b_proj, "rpm": 1}), 404,
                     "not_found", what="A setting limits on B's project")
        expect_error(c.put("/v1/organization/limits", a.admin, {"scope": "key", "scope_id": b_key_id, "rpm": 1}), 404,
                     "not_found", what="A setting limits on B's key")
        expect_error(c.put("/v1/organization/budgets", a.admin, {"scope": "project", "scope_id": b_proj,
                                                                 "monthly_limit_micros": 0}), 404, "not_found",
                     what="A setting a budget on B's project")
        expect_error(c.put("/v1/organization/budgets", a.admin, {"scope": "key", "scope_id": b_key_id,
                                                                 "monthly_limit_micros": 0}), 404, "not_found",
                     what="A setting a budget on B's key")
        r = c.post("/v1/completions", b_key, body)
        check(r.status == 200, f"B's key still works after A's attempts: {r}")
        b_usage2 = r.json()["usage"]
        b_keys = {k["id"]: k for k in c.ok("GET", "/v1/organization/api_keys", b.admin, status=(200,))["data"]}
        check(b_keys[b_key_id]["revoked_at"] is None and b_keys[b_key_id]["expires_at"] is None,
              f"B's key is neither revoked nor expiring: {b_keys[b_key_id]}")
        check(len(b_keys) == 2, f"B has its 2 keys and no key made by A: {list(b_keys)}")
        check(c.ok("GET", "/v1/organization/limits", b.admin, status=(200,))["data"] == [], "B has no limits (A set none)")
        check(c.ok("GET", "/v1/organization/budgets", b.admin, status=(200,))["data"] == [], "B has no budgets (A set none)")
        check(c.ok("GET", "/v1/organization/limits", a.admin, status=(200,))["data"] == [], "A's limits list is empty")
        # Usage: A made no request, B made two.
        for params in ({"bucket_width": "1d"}, {"bucket_width": "1m", "group_by": "project_id,api_key_id"}):
            t = self.totals(self.usage(a.admin, **params))
            check(sum(v[2] for v in t.values()) == 0 and sum(v[0] + v[1] for v in t.values()) == 0,
                  f"A's usage ({params}) is empty: {t}")
        check(sum(self.costs(a.admin).values()) == 0, "A's costs are 0")
        t = self.totals(self.usage(b.admin, bucket_width="1d"))
        want = [b_usage["prompt_tokens"] + b_usage2["prompt_tokens"],
                b_usage["completion_tokens"] + b_usage2["completion_tokens"], 2]
        check(t == {None: want}, f"B's usage shows its 2 requests {want}: {t}")
        t = self.totals(self.usage(a.admin, bucket_width="1d", project_ids=b_proj, api_key_ids=b_key_id))
        check(sum(v[2] for v in t.values()) == 0, f"A filtering on B's project/key ids sees nothing: {t}")
        # Usage events: an admin key names the project in `subject`; it must be a project of its own org, or A could
        # meter usage into B's project (B's spend, B's budget).
        b.budget("project", b_proj, 100_000_000)

        def b_spent():
            return [x["spent_micros"] for x in c.ok("GET", "/v1/organization/budgets", b.admin, status=(200,))["data"]
                    if x["scope_id"] == b_proj]

        before = b_spent()
        event = {"id": "bola-1", "source": "e2e/bola", "type": "com.neocloud.usage", "subject": b_proj,
                 "data": {"item": "gpu_seconds:H100", "quantity": 1000}}
        r = c.post("/v1/usage/events", a.admin, event)
        after = b_spent()
        check(400 <= r.status < 500 and before == after,
              f"A's admin key posting a usage event with subject = B's project {b_proj}: expected a 4xx and B's project "
              f"spend unchanged, got {r} and B's project spent_micros {before} -> {after}")
        return "lists, audit log, revoke/rotate/key-create/limits/budgets on B's ids (404), usage and costs"

    def check_rate_limits(self):
        c, m = self.c, self.m
        reset_re = re.compile(r"^(\d+m)?\d+(\.\d+)?(ms|s)$")
        # RPM 3 on a key: 3 pass (remaining 2, 1, 0; the second one streamed), the 4th is refused.
        k, k_id = m.key(self.m_proj, "rpm 3")
        j = m.limits("key", k_id, rpm=3)
        check(j.get("rpm") == 3 and j.get("scope") == "key", f"set limits: {j}")
        got = []
        for i in range(3):
            r, _, _ = self.infer(k, stream=(i == 1), max_tokens=2)
            h = self.ratelimit_headers(r)
            check(h.get("x-ratelimit-limit-requests") == "3", f"request {i + 1}: x-ratelimit-limit-requests: {h}")
            check(reset_re.match(h.get("x-ratelimit-reset-requests", "")), f"request {i + 1}: x-ratelimit-reset-requests: {h}")
            check("x-ratelimit-limit-tokens" not in h, f"no token headers without a TPM limit: {h}")
            got.append(h.get("x-ratelimit-remaining-requests"))
        check(got == ["2", "1", "0"], f"x-ratelimit-remaining-requests over 3 requests: expected 2,1,0, got {got}")
        r = c.post("/v1/completions", k, {"model": MODEL, "prompt": "Hi", "max_tokens": 2})
        expect_error(r, 429, "rate_limit_exceeded", "requests", what="the 4th request at rpm 3")
        ra, ra_ms = r.h("retry-after"), r.h("retry-after-ms")
        check(ra is not None and ra.isdigit() and 0 < int(ra) <= 20, f"retry-after of the 4th request: {ra!r}")
        check(ra_ms is not None and ra_ms.isdigit() and 0 < int(ra_ms) <= 20000 and int(ra) == math.ceil(int(ra_ms) / 1000),
              f"retry-after-ms {ra_ms!r} vs retry-after {ra!r}")
        h = self.ratelimit_headers(r)
        check(h.get("x-ratelimit-limit-requests") == "3" and h.get("x-ratelimit-remaining-requests") == "0",
              f"the 429 carries the x-ratelimit headers: {h}")
        r = c.post("/v1/chat/completions", k, {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}],
                                               "max_tokens": 2, "stream": True})
        expect_error(r, 429, "rate_limit_exceeded", "requests", what="a streaming request over rpm 3")
        check(r.h("retry-after") and r.h("x-ratelimit-remaining-requests") == "0", f"streaming 429 headers: {r.headers}")
        check(self.infer(self.m_key, max_tokens=2)[0].status == 200, "another key of the same project is not limited")
        # TPM 100: prompt (2) + max_tokens 60 reserved; a second such request while the first runs is refused.
        k, k_id = m.key(self.m_proj, "tpm 100")
        m.limits("key", k_id, tpm=100)
        conn, first = c.open("POST", "/v1/completions", k, {"model": MODEL, "prompt": "Hi", "max_tokens": 60,
                                                            "ignore_eos": True, "stream": True})
        try:
            if first.status != 200:
                raise Fail(f"the first request at tpm 100: HTTP {first.status} {first.read()[:300]!r}")
            h = {k2.lower(): v for k2, v in first.getheaders() if k2.lower().startswith("x-ratelimit-")}
            check(h.get("x-ratelimit-limit-tokens") == "100" and h.get("x-ratelimit-remaining-tokens") == "38",
                  f"streamed response's token headers (100 - 2 - 60 = 38 left): {h}")
            check(reset_re.match(h.get("x-ratelimit-reset-tokens", "")), f"x-ratelimit-reset-tokens: {h}")
            r = c.post("/v1/completions", k, {"model": MODEL, "prompt": "Hi", "max_tokens": 60})
            expect_error(r, 429, "rate_limit_exceeded", "tokens", what="a second 62-token request at tpm 100")
            check(r.h("retry-after") and int(r.h("retry-after")) > 0 and int(r.h("retry-after-ms")) > 0,
                  f"retry-after on the tokens 429: {r.headers}")
            check(r.h("x-ratelimit-limit-tokens") == "100", f"the tokens 429 carries x-ratelimit-limit-tokens: {r.headers}")
            rest = first.read().decode()
            check(sse_events(rest)[-1:] == ["[DONE]"], f"the first stream completes: {rest[-200:]!r}")
        finally:
            conn.close()
        r = c.post("/v1/completions", k, {"model": MODEL, "prompt": "Hi", "max_tokens": 200})
        expect_error(r, 429, "rate_limit_exceeded", "tokens", what="a request larger than the TPM")
        check(r.h("x-should-retry") == "false", f"a too-large request says x-should-retry: false: {r.headers}")
        # With n choices, n x max_tokens are reserved.
        k, k_id = m.key(self.m_proj, "tpm 100, n=2")
        m.limits("key", k_id, tpm=100)
        r, u, choices = self.infer(k, n=2, max_tokens=30, ignore_eos=True)
        check(len(choices) == 2 and u["completion_tokens"] == 60, f"n=2 max_tokens 30: {u}")
        check(r.h("x-ratelimit-remaining-tokens") == "38", f"n=2 x max_tokens 30 + 2 reserved: 38 of 100 left: {r.headers}")
        r = c.post("/v1/completions", k, {"model": MODEL, "prompt": "Hi", "max_tokens": 50, "n": 2})
        expect_error(r, 429, "rate_limit_exceeded", "tokens", what="n=2 x max_tokens 50 + 2 over tpm 100")
        check(r.h("x-should-retry") == "false", f"n=2 x 50 + 2 > 100 is too large: x-should-retry false: {r.headers}")
        # max_concurrent 1: a second request while a stream runs is refused; the slot comes back when the client leaves.
        k, k_id = m.key(self.m_proj, "one at a time")
        m.limits("key", k_id, max_concurrent=1)
        conn, first = c.open("POST", "/v1/completions", k, {"model": MODEL, "prompt": "Hi", "max_tokens": 1000,
                                                            "ignore_eos": True, "stream": True})
        try:
            check(first.status == 200, f"the first request at max_concurrent 1: HTTP {first.status}")
            r = c.post("/v1/completions", k, {"model": MODEL, "prompt": "Hi", "max_tokens": 2})
            expect_error(r, 429, "rate_limit_exceeded", "requests", what="a second request at max_concurrent 1")
            check(r.h("retry-after") and r.h("retry-after-ms"), f"retry-after on the concurrency 429: {r.headers}")
        finally:
            if conn.sock is not None:  # leave with a reset, as a killed client
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            first.close()
            conn.close()
        deadline = time.time() + 15
        while True:
            r = c.post("/v1/completions", k, {"model": MODEL, "prompt": "Hi", "max_tokens": 2})
            if r.status == 200 or time.time() > deadline:
                break
            time.sleep(0.05)
        check(r.status == 200, f"the concurrency slot is released after the first client left: {r}")
        # Org limits set by the operator apply to every key of the org (org A made no requests so far).
        j = c.ok("PUT", f"/v1/admin/organizations/{self.a.id}/limits", self.op, {"rpm": 1000, "tpm": 100000}, status=(200,))
        check(j.get("rpm") == 1000 and j.get("scope") == "org", f"operator org limits: {j}")
        r, _, _ = self.infer(self.a_key, max_tokens=2)
        h = self.ratelimit_headers(r)
        check(h.get("x-ratelimit-limit-requests") == "1000" and h.get("x-ratelimit-remaining-requests") == "999" and
              h.get("x-ratelimit-limit-tokens") == "100000", f"org limits in the headers of org A's request: {h}")
        self.a_requests = 1
        # max_tokens cap 8: above it is a 400; without max_tokens the cap is the default.
        k, k_id = m.key(self.m_proj, "cap 8")
        m.limits("key", k_id, max_tokens=8)
        expect_error(c.post("/v1/completions", k, {"model": MODEL, "prompt": "Hi", "max_tokens": 9}), 400, "invalid_value",
                     param="max_tokens", what="max_tokens 9 over a cap of 8")
        expect_error(c.post("/v1/chat/completions", k, {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}],
                                                        "max_tokens": 9}), 400, "invalid_value", param="max_tokens",
                     what="chat max_tokens 9 over a cap of 8")
        _, u, _ = self.infer(k, max_tokens=8, ignore_eos=True)
        check(u["completion_tokens"] == 8, f"max_tokens 8 under a cap of 8: {u}")
        _, u, _ = self.infer(k, chat=True, ignore_eos=True)
        check(u["completion_tokens"] == 8, f"chat without max_tokens under a cap of 8 generates 8 tokens: {u}")
        _, u, _ = self.infer(k, chat=True, stream=True, ignore_eos=True)
        check(u["completion_tokens"] == 8, f"streamed chat without max_tokens under a cap of 8: {u}")
        # /v1/completions defaults max_tokens to 16 when the request has none; the cap is documented as "a default
        # when the request sets none, else a ceiling", so a request without max_tokens must not be refused.
        r = c.post("/v1/completions", k, {"model": MODEL, "prompt": "Hi", "ignore_eos": True})
        check(r.status == 200, f"/v1/completions without max_tokens under a cap of 8: expected 200 with at most 8 "
                               f"completion tokens (the cap as the default), got {r}")
        check(r.json()["usage"]["completion_tokens"] <= 8, f"/v1/completions without max_tokens under cap 8: {r}")
        return "rpm 3: remaining 2,1,0 then 429 requests; tpm 100: 429 tokens and too-large x-should-retry false; " \
               "max_tokens cap 8; org limits from the operator"

    def check_budget(self):
        c, m = self.c, self.m
        check(self.prices[MODEL][:2] == (1_000_000, 1_000_000), "the budget check runs at 1 micro-USD per token")
        proj = m.project("budgeted")
        key, _ = m.key(proj, "budget key")
        limit = 500
        m.budget("project", proj, limit)
        n, max_tokens = 50, 20
        barrier = threading.Barrier(n)
        results = [None] * n

        def one(i):
            try:
                barrier.wait(timeout=30)
                results[i] = c.post("/v1/completions", key, {"model": MODEL, "prompt": "Hi", "max_tokens": max_tokens})
            except Exception as e:  # reported below
                results[i] = e

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        ok, quota = [], 0
        for i, r in enumerate(results):
            check(isinstance(r, Resp), f"concurrent request {i}: {r!r}")
            if r.status == 200:
                ok.append(r.json()["usage"])
            else:
                expect_error(r, 429, "insufficient_quota", "insufficient_quota", what=f"concurrent request {i} over budget")
                check(r.h("x-should-retry") == "false", f"insufficient_quota says x-should-retry: false: {r.headers}")
                quota += 1
        check(ok and quota, f"some of {n} requests succeed and some get 429 insufficient_quota: {len(ok)} ok, {quota} 429")
        spent_sum = sum(cost(self.prices[MODEL], u["prompt_tokens"], u["completion_tokens"]) for u in ok)
        check(spent_sum <= limit, f"the successful requests cost {spent_sum} micros > the budget {limit}")
        budgets = c.ok("GET", "/v1/organization/budgets", m.admin, status=(200,))["data"]
        mine = [x for x in budgets if x["scope"] == "project" and x["scope_id"] == proj]
        check(len(mine) == 1, f"the project's budget is listed: {budgets}")
        st = mine[0]
        check(st["monthly_limit_micros"] == limit, f"budget limit: {st}")
        check(st["held_micros"] == 0, f"nothing is held after every request finished: {st}")
        check(st["spent_micros"] == spent_sum,
              f"spent_micros {st['spent_micros']} == the sum of the successful responses' prompt+completion tokens "
              f"{spent_sum} ({len(ok)} requests)")
        check(st["spent_micros"] <= limit, f"spent {st['spent_micros']} <= limit {limit}")
        # The next request is refused (unless the budget still has room for a worst case).
        if limit - spent_sum < 2 + max_tokens:
            r = c.post("/v1/completions", key, {"model": MODEL, "prompt": "Hi", "max_tokens": max_tokens})
            expect_error(r, 429, "insufficient_quota", "insufficient_quota", what="a request after the budget is used up")
        # An org budget set by the operator (org B has spent already): 0 stops it, null lifts it.
        c.ok("PUT", f"/v1/admin/organizations/{self.b.id}/budget", self.op, {"monthly_limit_micros": 0}, status=(200,))
        r = c.post("/v1/completions", self.b_key, {"model": MODEL, "prompt": "Hi", "max_tokens": 2})
        expect_error(r, 429, "insufficient_quota", "insufficient_quota", what="org B under an operator budget of 0")
        c.ok("PUT", f"/v1/admin/organizations/{self.b.id}/budget", self.op, {"monthly_limit_micros": None}, status=(200,))
        check(c.post("/v1/completions", self.b_key, {"model": MODEL, "prompt": "Hi", "max_tokens": 2}).status == 200,
              "org B works again once the operator lifts its budget")
        self.budget_spent = spent_sum
        return f"{len(ok)} ok + {quota} insufficient_quota of {n}; spent {spent_sum} <= {limit} micros, held 0"

    def check_usage_api(self):
        c = self.c
        # New prices from now on: 1.5 and 2.5 micro-USD per token, so that costs round up per request.
        self.set_price(MODEL, 1_500_000, 2_500_000)
        prices = c.ok("GET", "/v1/organization/prices", self.m.admin, status=(200,))["data"]
        check({MODEL, "gpu_seconds:H100"} <= {p["item"] for p in prices}, f"tenants see the prices: {prices}")
        o = Org(self, "usage")
        self.usage_org = o
        proj = o.project("u-app")
        k1, k1_id = o.key(proj, "u1")
        k2, k2_id = o.key(proj, "u2")
        price = self.prices[MODEL]
        want = {k1_id: [0, 0, 0], k2_id: [0, 0, 0]}
        want_cost = {k1_id: 0, k2_id: 0}

        def add(key_id, u):
            w = want[key_id]
            w[0] += u["prompt_tokens"]
            w[1] += u["completion_tokens"]
            w[2] += 1
            want_cost[key_id] += cost(price, u["prompt_tokens"], u["completion_tokens"])

        plan = [
            (k1, k1_id, dict(max_tokens=5)),
            (k1, k1_id, dict(stream=True, max_tokens=7)),
            (k1, k1_id, dict(chat=True, max_tokens=6)),
            (k1, k1_id, dict(chat=True, stream=True, max_tokens=8)),
            (k1, k1_id, dict(chat=True, n=2, max_tokens=4)),
            (k1, k1_id, dict(prompt=["Hello there", "Hi"], max_tokens=3)),
            (k2, k2_id, dict(max_tokens=3, prompt="The quick brown fox")),
            (k2, k2_id, dict(chat=True, stream=True, max_tokens=5)),
            (k2, k2_id, dict(stream=True, n=2, max_tokens=3)),
            (k2, k2_id, dict(chat=True, max_tokens=9, prompt="Tell me a story")),
        ]
        request_ids = []
        for key, key_id, kw in plan:
            r, u, choices = self.infer(key, **kw)
            request_ids.append(r.h("x-request-id") or "")
            expect_choices = kw.get("n", 1) * (len(kw["prompt"]) if isinstance(kw.get("prompt"), list) else 1)
            check(len(choices) == expect_choices, f"{kw}: {expect_choices} choices, got {choices}")
            check(u["completion_tokens"] <= kw["max_tokens"] * expect_choices, f"{kw}: usage {u}")
            add(key_id, u)
        # Request ids: req_ + 32 hex, the first 12 the unix time in ms (so the ledger's index on them
        # grows at one end), each the id of its ledger record.
        now_ms = time.time() * 1000
        for rid in request_ids:
            check(re.fullmatch(r"req_[0-9a-f]{32}", rid), f"request id {rid!r}")
            check(abs(int(rid[4:16], 16) - now_ms) < 120_000, f"request id {rid} does not start with the time ({now_ms:.0f} ms)")
        check(request_ids == sorted(request_ids, key=lambda x: x[4:16]), f"request ids out of time order: {request_ids}")
        stored = {row[0] for row in self.backend.query("SELECT id FROM usage_records")}
        check(set(request_ids) <= stored, f"request ids without a ledger record: {set(request_ids) - stored}")
        # An embeddings request: a cost, but not a completions usage result.
        r = c.post("/v1/embeddings", k2, {"model": MODEL, "input": "hello world"})
        check(r.status == 200, f"embeddings: {r}")
        emb_tokens = r.json()["usage"]["prompt_tokens"]
        emb_cost = cost(price, emb_tokens, 0)
        total = [sum(w[i] for w in want.values()) for i in range(3)]
        check(total[2] == len(plan), "one usage record per request")
        for params in ({"bucket_width": "1d"}, {"bucket_width": "1h"}, {"bucket_width": "1m"}, {"group_by": "model"}):
            t = self.totals(self.usage(o.admin, **params))
            got = [sum(v[i] for v in t.values()) for i in range(3)]
            check(got == total, f"usage/completions {params}: input/output/requests {got} != the responses' {total}")
        t = self.totals(self.usage(o.admin, bucket_width="1d", group_by="model"), "model")
        check(list(t) == [MODEL], f"group_by=model: {t}")
        t = self.totals(self.usage(o.admin, bucket_width="1d", group_by="api_key_id"), "api_key_id")
        check(t == want, f"usage/completions group_by=api_key_id: {t} != the responses' {want}")
        t = self.totals(self.usage(o.admin, bucket_width="1d", api_key_ids=k2_id), "api_key_id")
        check(sum(v[2] for v in t.values()) == want[k2_id][2], f"api_key_ids filter: {t}")
        t = self.totals(self.usage(o.admin, bucket_width="1d", group_by="project_id"), "project_id")
        check(t == {proj: total}, f"group_by=project_id: {t}")
        # end_time defaults to now (after a second, so that the last request is not in the current second).
        time.sleep(1.05)
        t = self.totals(self.usage(o.admin, end=False, bucket_width="1d"))
        check([sum(v[i] for v in t.values()) for i in range(3)] == total, f"usage without end_time: {t} != {total}")
        # Costs: every request at the new prices, rounded up per request, plus the embeddings request.
        want_total_cost = sum(want_cost.values()) + emb_cost
        got = self.costs(o.admin)
        check(sum(got.values()) == want_total_cost,
              f"costs total {sum(got.values())} micros != the sum of per-request costs {want_total_cost} "
              f"(prices {price} per 1M tokens)")
        got = self.costs(o.admin, group_by="api_key_id")
        want_by_key = {k1_id: want_cost[k1_id], k2_id: want_cost[k2_id] + emb_cost}
        check(got == want_by_key, f"costs group_by=api_key_id: {got} != {want_by_key}")
        got = self.costs(o.admin, group_by="line_item")
        check(got == {MODEL: want_total_cost}, f"costs group_by=line_item: {got}")
        return (f"{len(plan)} requests (streamed, chat, n=2, 2 prompts): input {total[0]}, output {total[1]}, "
                f"requests {total[2]}; per key; costs {want_total_cost} micros")

    def check_disconnect(self):
        m = self.m
        key, key_id = m.key(self.m_proj, "leaves early")
        body = json.dumps({"model": MODEL, "prompt": "Hi", "max_tokens": 400, "ignore_eos": True, "stream": True}).encode()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(30)
        s.connect(("127.0.0.1", self.server.port))
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + key.encode() +
                  b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        buf = b""
        while buf.count(b"data: ") < 3:
            d = s.recv(512)
            if not d:
                break
            buf += d
        check(buf.startswith(b"HTTP/1.1 200"), f"the stream starts: {buf[:300]!r}")
        check(buf.count(b"data: ") >= 3, f"read 3 chunks before leaving: {buf[-300:]!r}")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset, as a killed client
        s.close()
        rows = []
        deadline = time.time() + 20
        while time.time() < deadline:
            rows = self.backend.query("SELECT status, state, prompt_tokens, completion_tokens, cost_micros FROM usage_records "
                                      f"WHERE api_key_id = '{key_id}'")
            if rows and rows[0][1] == "settled":
                break
            time.sleep(0.1)
        check(len(rows) == 1, f"one usage record for the disconnected stream ({self.backend.kind}): {rows}")
        status, state, prompt, completion, cost_micros = rows[0][0], rows[0][1], int(rows[0][2]), int(rows[0][3]), int(rows[0][4])
        check(state == "settled", f"the record is settled: {rows[0]}")
        check(status == "client_disconnected", f"the record's status is client_disconnected: {rows[0]}")
        check(0 < completion <= 400, f"the record bills the tokens generated for the client (0 < n <= 400): {rows[0]}")
        check(prompt == 2, f"prompt tokens of 'Hi': {rows[0]}")
        check(cost_micros == cost(self.prices[MODEL], prompt, completion), f"cost of the record at {self.prices[MODEL]}: {rows[0]}")
        # It is in the usage API too.
        t = self.totals(self.usage(m.admin, bucket_width="1d", api_key_ids=key_id))
        check(t == {None: [prompt, completion, 1]}, f"the disconnected request in usage/completions: {t}")
        return f"status client_disconnected, {completion} completion tokens billed ({cost_micros} micros), from {self.backend.kind}"

    def check_events(self):
        c = self.c
        o = Org(self, "metered")
        proj = o.project("jobs")
        key, key_id = o.key(proj, "meter")
        per_unit = self.prices["gpu_seconds:H100"][2]
        src = "e2e/gpu-meter"

        def ev(i, qty, **kw):
            return {"id": f"evt-{i}", "source": src, "type": "com.neocloud.usage", "data": {"item": "gpu_seconds:H100",
                                                                                          "quantity": qty}, **kw}

        j = c.ok("POST", "/v1/usage/events", key, ev(0, 3), status=(200,))
        check(j.get("accepted") == 1 and j.get("duplicates") == [], f"one event: {j}")
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        j = c.ok("POST", "/v1/usage/events", key, [ev(1, 7, time=now), ev(1, 7, time=now), ev(0, 3)], status=(200,))
        dups = sorted((d.get("source"), d.get("id")) for d in j.get("duplicates", []))
        check(j.get("accepted") == 1 and dups == [(src, "evt-0"), (src, "evt-1")],
              f"[evt-1, evt-1 again, evt-0 replayed]: expected accepted 1, duplicates evt-1 and evt-0, got {j}")
        # An admin key meters into a project named by `subject`; an inference key only into its own project.
        j = c.ok("POST", "/v1/usage/events", o.admin, ev(2, 5, subject=proj), status=(200,))
        check(j.get("accepted") == 1 and j.get("duplicates") == [], f"an admin key's event: {j}")
        r = c.post("/v1/usage/events", key, ev(9, 1, subject=self.m_proj))
        expect_error(r, 400, None, what="an inference key's event for another project")
        # The platform's own meters cannot be forged (or pre-empted by a duplicate id) by the billed tenant.
        for forged_source in ("neocloud/capacity", "NeoCloud/capacity", "neocloud"):
            forged = {"id": "job_0123456789abcdef/0", "source": forged_source, "type": "gpu.seconds",
                      "data": {"item": "gpu-seconds/sim/on-demand", "quantity": 0}}
            for k in (key, o.admin):
                r = c.post("/v1/usage/events", k, forged)
                expect_error(r, 400, None, what=f"a tenant's event with source {forged_source!r}")
        # The same (source, id) in another organization is that organization's own event.
        j = c.ok("POST", "/v1/usage/events", self.m_key, ev(0, 1), status=(200,))
        check(j.get("accepted") == 1, f"the same event id in another org is not a duplicate: {j}")
        # A token-priced event for a model.
        tok = {"id": "evt-tok", "source": src, "type": "com.neocloud.usage",
               "data": {"item": MODEL, "input_tokens": 100, "output_tokens": 11}}
        j = c.ok("POST", "/v1/usage/events", key, tok, status=(200,))
        check(j.get("accepted") == 1, f"a token event: {j}")
        want_gpu = per_unit * (3 + 7 + 5)
        want_tok = cost(self.prices[MODEL], 100, 11)
        got = self.costs(o.admin, group_by="line_item")
        check(got == {"gpu_seconds:H100": want_gpu, MODEL: want_tok},
              f"costs by line item: expected gpu_seconds:H100 {want_gpu} (= {per_unit} x 15 units, each event once) and "
              f"{MODEL} {want_tok}, got {got}")
        got = self.costs(o.admin, group_by="api_key_id")
        check(got == {key_id: per_unit * 10 + want_tok, None: per_unit * 5}, f"costs by key (the admin key's event has none): {got}")
        t = self.totals(self.usage(o.admin, bucket_width="1d"))
        check(sum(v[2] for v in t.values()) == 0, f"usage events are not model requests in usage/completions: {t}")
        return f"accepted 1 + 1 (evt-1 twice in a batch, evt-0 replayed: 2 duplicates) + 1; costs {want_gpu} micros for 15 units"

    def check_audit(self):
        m = self.m
        entries = self.c.ok("GET", "/v1/organization/audit_logs", m.admin, status=(200,))["data"]
        by_type = {}
        for e in entries:
            by_type.setdefault(e.get("type"), []).append(e)
        for t in ("project.create", "api_key.create", "api_key.revoke", "api_key.rotate", "rate_limits.set", "budget.set"):
            es = by_type.get(t, [])
            check(es, f"the audit log has a {t} entry (types: {sorted(by_type)})")
            for e in es:
                # Everything in org main was done with its admin key, except its first admin key (the operator's).
                actor = self.op_key_id if (t == "api_key.create" and e.get("target") == m.admin_id) else m.admin_id
                check(e.get("actor_api_key_id") == actor,
                      f"{t} on {e.get('target')} was done with key {actor}: actor_api_key_id {e.get('actor_api_key_id')!r}: {e}")
        org_create = by_type.get("organization.create", [])
        check(org_create and org_create[0]["actor_api_key_id"] == self.op_key_id,
              f"organization.create by the operator's key {self.op_key_id}: {org_create}")
        rl = [e for e in by_type["rate_limits.set"] if (e.get("after") or {}).get("rpm") == 3]
        check(rl and rl[0]["target"].startswith("key:"), f"rate_limits.set records the limits set (rpm 3): {by_type['rate_limits.set']}")
        bs = [e for e in by_type["budget.set"] if e.get("after") == {"monthly_limit_micros": 500}]
        check(bs, f"budget.set records the budget set (500): {by_type['budget.set']}")
        rv = by_type["api_key.revoke"]
        check(all(isinstance(e.get("before"), dict) and e["before"].get("id") for e in rv), f"api_key.revoke has 'before': {rv}")
        check(len(by_type["project.create"]) == 2, f"2 projects created in org main: {by_type['project.create']}")
        leaked = [e for e in entries if re.search(r"nc-(inf|admin)-[0-9A-Za-z]{20,}", json.dumps(e))]
        check(not leaked, f"no plaintext key in the audit log: {leaked[:1]}")
        return f"{len(entries)} entries; project.create, api_key.create/revoke/rotate, rate_limits.set, budget.set by " \
               f"{m.admin_id}"

    def check_ledger(self):
        """The ledger's invariants once every request has finished, read from the database itself."""
        db = self.backend
        open_rows = db.query("SELECT id, status FROM usage_records WHERE state <> 'settled'")
        check(not open_rows, f"no usage record is left open: {open_rows[:5]}")
        held = db.query("SELECT scope, scope_id, period, held_micros FROM spend WHERE held_micros <> 0")
        check(not held, f"no money is left held: {held[:5]}")
        want = {}

        def add(org, project, key, period, micros):
            for scope, sid in (("org", org), ("project", project), ("key", key)):
                if sid:
                    want[(scope, sid, period)] = want.get((scope, sid, period), 0) + micros

        records = db.query("SELECT org_id, project_id, api_key_id, period, cost_micros FROM usage_records")
        for org, project, key, period, micros in records:
            add(org, project, key, period, int(micros))
        for org, project, key, t, micros in db.query("SELECT org_id, project_id, api_key_id, time, cost_micros FROM usage_events"):
            period = datetime.fromtimestamp(int(t) / 1e6, timezone.utc).strftime("%Y-%m")
            add(org, project, key, period, int(micros))
        got = {(sc, sid, per): int(v) for sc, sid, per, v in db.query("SELECT scope, scope_id, period, spent_micros FROM spend")}
        want = {k: v for k, v in want.items() if v}
        got = {k: v for k, v in got.items() if v}
        diff = {k: (got.get(k), want.get(k)) for k in set(got) | set(want) if got.get(k) != want.get(k)}
        check(not diff, f"spend counters (spent, sum of records + events) differ: {dict(list(diff.items())[:6])}")
        # /metrics: the ledger writer's counters and its write-latency histogram (one server run wrote
        # every record, each with at least one write).
        r = self.c.call("GET", "/metrics")
        check(r.status == 200, f"/metrics: {r}")
        text = r.body.decode() if isinstance(r.body, bytes) else r.body
        values = {}
        for line in text.splitlines():
            if line.startswith("neocloud:ledger_"):
                name, v = line.rsplit(" ", 1)
                values[name] = float(v)
        writes, commits = values.get("neocloud:ledger_writes_total", 0), values.get("neocloud:ledger_commits_total", 0)
        check(writes >= len(records) and 0 < commits <= writes, f"ledger counters: {writes} writes, {commits} commits, "
              f"{len(records)} records")
        buckets = [v for k, v in values.items() if k.startswith("neocloud:ledger_write_seconds_bucket")]
        check(buckets == sorted(buckets) and buckets[-1] == writes == values.get("neocloud:ledger_write_seconds_count"),
              f"ledger_write_seconds histogram: {buckets}, {writes} writes")
        check(values.get("neocloud:ledger_write_seconds_sum", 0) > 0, "ledger_write_seconds_sum")
        return (f"{len(records)} records settled, nothing held, {len(got)} spend counters == records + events; "
                f"/metrics: {writes:.0f} ledger writes in {commits:.0f} commits")

    # --- driver -----------------------------------------------------------------------------------

    def run(self):
        a = self.args
        if os.path.isdir(a.tmp):
            shutil.rmtree(a.tmp)
        os.makedirs(a.tmp)
        self.backend.create()
        self.c = self.server.start()
        print(f"server on port {self.server.port} ({self.backend.kind}: {self.backend.url})", flush=True)
        checks = [
            ("setup", self.setup),
            ("1 auth: 401", self.check_auth),
            ("2 scopes: 403", self.check_forbidden),
            ("3 BOLA: tenants isolated", self.check_bola),
            ("4 rate limits: 429 and headers", self.check_rate_limits),
            ("5 budget under concurrency", self.check_budget),
            ("6 usage and costs API", self.check_usage_api),
            ("7 client disconnect billed", self.check_disconnect),
            ("8 usage events", self.check_events),
            ("9 audit log", self.check_audit),
            ("10 ledger invariants", self.check_ledger),
        ]
        failures = []
        for name, fn in checks:
            t = time.time()
            try:
                detail = fn()
            except Exception as e:  # Fail, or an error of the test itself (also a failure)
                print(f"FAIL: [{name}] {e if isinstance(e, Fail) else repr(e)}", flush=True)
                if not isinstance(e, Fail):
                    traceback.print_exc()
                failures.append(name)
                if name == "setup":
                    break
                continue
            check(self.server.proc.poll() is None, f"the server died during '{name}':\n{self.server.log_tail()}")
            print(f"PASS [{name}] ({time.time() - t:.1f}s){': ' + detail if detail else ''}", flush=True)
        return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--neocloud", required=True)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--db", choices=("sqlite", "postgres"), required=True)
    ap.add_argument("--pg-url-file")
    args = ap.parse_args()
    args.tmp = os.path.abspath(args.tmp)

    def on_signal(sig, _frame):
        raise SystemExit(f"FAIL: killed by signal {sig}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    start = time.time()
    test = None
    failures = ["start"]
    try:
        test = Test(args)
        failures = test.run()
    except Fail as e:
        print(f"FAIL: {e}", flush=True)
    finally:
        if test is not None:
            rc = test.server.stop()
            if rc is not None:
                print(f"server stopped (exit status {rc})", flush=True)
            try:
                test.backend.drop()
            except Exception as e:  # the result stands; say why the schema is left
                print(f"note: dropping schema {test.backend.schema}: {e}", flush=True)
            if failures:
                print(f"--- server log (last lines of {test.server.log_path}):\n{test.server.log_tail(25)}", flush=True)
    elapsed = time.time() - start
    if failures:
        print(f"FAIL: {len(failures)} check(s) failed on {args.db}: {', '.join(failures)} ({elapsed:.1f}s)", flush=True)
        sys.exit(1)
    print(f"OK: gateway end-to-end on {args.db} ({elapsed:.1f}s)", flush=True)


if __name__ == "__main__":
    main()
