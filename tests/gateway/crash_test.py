#!/usr/bin/env python3
"""Crash test of the gateway's usage ledger: SIGKILL under streaming load, restart, check the ledger.

8 client threads stream /v1/completions and /v1/chat/completions (plus some non-streaming requests and
some streams the client drops on purpose) with an inference key of a project that has a budget, so
every request holds its worst case in the ledger first. Meanwhile the server is killed with SIGKILL
10-15 times at random moments and restarted on the same SQLite database. Afterwards (clean stop, one
more start so reconciliation has run, clean stop) the database must show:

  1. every response a client received completely (streams: the usage chunk, `data: [DONE]` and the
     chunked terminator; others: a 200 with its whole JSON body) exactly once in usage_records,
     settled, status 'completed', with the prompt/completion tokens the client saw, the cost of those
     tokens and the worst case held for it;
  2. no record left 'open'; every request id a client saw in a response head has a record (its hold
     was committed before the head was sent); cut ones are 'interrupted' (or 'completed' when the
     kill came after the commit), dropped ones 'client_disconnected' (or 'interrupted'/'completed');
     'interrupted' records cost what their last progress update recorded as delivered (nothing when it
     recorded no token) and their count equals what the restarts' reconciliation logged;
  3. spend counters: nothing held; spent == SUM(cost_micros) of the records per scope and period.
  4. long streams: 6 streams of up to 3,000 tokens (3 of a project with a budget, 3 of one without) are
     cut by a SIGKILL after about 2 s; after the restart each one's record is 'interrupted' with the
     completion tokens its client had received up to at most 1 s (+0.25 s for the group commit)
     before its last chunk, never 0, and never more than it received (+ the chunks in flight).

Usage: crash_test.py --neocloud BIN --vocab VOCAB.gguf --tmp DIR [--seed N] [--kills N]
Python standard library only. Exit 0 on success; "FAIL: ..." and exit 1 otherwise.
"""
import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

N_CLIENTS = 8
HTTP_TIMEOUT_S = 30.0
WORDS = ("the quick brown fox jumps over a lazy dog while seven wizards quietly hex "
         "bright vixens near old stone bridges under a pale autumn moon").split()


class TestFailure(Exception):
    pass


def fail(msg):
    raise TestFailure(msg)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tail(path, n=30):
    try:
        with open(path, "r", errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"


class Server:
    """The neocloud process: started, killed and restarted on one database and (if it can) one port."""

    def __init__(self, args, tmp):
        self.bin = args.neocloud
        self.tmp = tmp
        self.model = os.path.join(tmp, "m.gguf")
        self.db = os.path.join(tmp, "nc.db")
        self.admin_key_file = os.path.join(tmp, "admin.key")
        self.port = free_port()
        self.proc = None
        self.starts = 0
        self.logs = []
        self.lock = threading.Lock()

    def start(self, ready_timeout=60.0):
        for attempt in range(5):
            log = os.path.join(self.tmp, "server-%02d.log" % self.starts)
            self.starts += 1
            self.logs.append(log)
            cmd = [self.bin, "serve", "-m", self.model + ":tiny", "--port", str(self.port), "-t", "2",
                   "--parallel", "8", "--db", "sqlite:" + self.db, "--admin-key-file", self.admin_key_file]
            with open(log, "wb") as lf:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT)
            with self.lock:
                self.proc = proc
            deadline = time.monotonic() + ready_timeout
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                if self.health() == 200:
                    return
                time.sleep(0.03)
            if proc.poll() is None:
                self.kill()
                fail("the server did not become healthy in %.0f s; log %s:\n%s" % (ready_timeout, log, tail(log)))
            text = tail(log, 200)
            if "cannot listen" in text and attempt < 4:
                # Someone else took the port while the server was down: move to another one.
                self.port = free_port()
                continue
            fail("the server exited with %s at start; log %s:\n%s" % (proc.returncode, log, tail(log)))
        fail("the server could not start")

    def health(self):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            c.request("GET", "/health")
            r = c.getresponse()
            r.read()
            c.close()
            return r.status
        except (OSError, http.client.HTTPException):
            return None

    def kill(self):
        with self.lock:
            proc = self.proc
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop(self, timeout=30.0):
        """SIGTERM; returns the exit status (fails when the server does not exit in time)."""
        with self.lock:
            proc = self.proc
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else 0
        os.kill(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            fail("the server did not exit within %.0f s of SIGTERM; log %s:\n%s" % (timeout, self.logs[-1],
                                                                                     tail(self.logs[-1])))

    def reconciled_total(self):
        """Sum of 'N request(s) ... were in flight' over all start logs."""
        total = 0
        for log in self.logs:
            try:
                with open(log, "r", errors="replace") as f:
                    for m in re.finditer(r"gateway: (\d+) request\(s\) of instance '[^']*' were in flight", f.read()):
                        total += int(m.group(1))
            except OSError:
                pass
        return total


def admin_call(port, key, method, path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT_S)
    c.request(method, path, body=json.dumps(body),
              headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status not in (200, 201):
        fail("%s %s -> %d %s" % (method, path, r.status, data[:500]))
    return json.loads(data)


class Outcomes:
    def __init__(self):
        self.lock = threading.Lock()
        self.completed = []     # dicts: rid, prompt, completion, max_tokens, kind
        self.cut = []           # dicts: rid, max_tokens, kind, why  (head received, body cut by the kill)
        self.dropped = []       # dicts: rid, max_tokens, kind       (the client closed on purpose)
        self.no_response = 0    # no response head (connection refused / reset before it)
        self.loading = 0        # 503 model_loading right after a restart
        self.bad = []           # protocol violations (the test fails)
        self.body_done = threading.Event()  # set the moment a client has read a whole response body

    def add(self, kind, item):
        with self.lock:
            getattr(self, kind).append(item)

    def count(self, kind):
        with self.lock:
            setattr(self, kind, getattr(self, kind) + 1)


def sse_events(text):
    return [line[6:] for line in text.split("\n") if line.startswith("data: ")]


def check_stream(body, chat, max_tokens):
    """Validates a complete stream; returns (prompt_tokens, completion_tokens) or raises ValueError."""
    events = sse_events(body.decode("utf-8"))
    if len(events) < 2 or events[-1] != "[DONE]":
        raise ValueError("the stream does not end with data: [DONE]")
    chunks = [json.loads(e) for e in events[:-1]]
    for c in chunks:
        if "error" in c:
            raise ValueError("error event in the stream: %s" % json.dumps(c)[:300])
    usage = chunks[-1].get("usage")
    if not isinstance(usage, dict) or chunks[-1].get("choices") != []:
        raise ValueError("the last event before [DONE] is not the usage chunk: %s" % json.dumps(chunks[-1])[:300])
    finishes = [c["choices"][0]["finish_reason"] for c in chunks[:-1] if c.get("choices")
                and c["choices"][0].get("finish_reason") is not None]
    if len(finishes) != 1:
        raise ValueError("expected one chunk with a finish_reason, got %d" % len(finishes))
    p, n = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not isinstance(p, int) or not isinstance(n, int) or p <= 0 or n < 0 or n > max_tokens:
        raise ValueError("implausible usage %s (max_tokens %d)" % (usage, max_tokens))
    if usage.get("total_tokens") != p + n:
        raise ValueError("total_tokens != prompt + completion in %s" % usage)
    return p, n


def check_plain(body, chat, max_tokens):
    j = json.loads(body)
    usage = j.get("usage") or {}
    p, n = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not j.get("choices") or not isinstance(p, int) or not isinstance(n, int) or p <= 0 or n < 0 or n > max_tokens:
        raise ValueError("implausible response %s" % body[:300])
    return p, n


def long_streams(server, admin, budget_key_id, budget_key, budget_project):
    """Phase 4 (see the top): SIGKILL during long streams; each is billed for what its client received."""
    server.start()
    free = admin_call(server.port, admin, "POST", "/v1/organization/projects", {"name": "no-budget"})
    k = admin_call(server.port, admin, "POST", "/v1/organization/api_keys", {"project_id": free["id"], "name": "free"})
    keys = [budget_key] * 3 + [k["value"]] * 3
    streams = [{"chunks": [], "rid": None} for _ in keys]

    def run(i):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=HTTP_TIMEOUT_S)
        body = {"model": "tiny", "prompt": "once upon a time", "max_tokens": 3000, "ignore_eos": True,
                "temperature": 1.0, "stream": True, "logprobs": 0}
        try:
            conn.request("POST", "/v1/completions", body=json.dumps(body),
                         headers={"Authorization": "Bearer " + keys[i], "Content-Type": "application/json"})
            resp = conn.getresponse()
            streams[i]["rid"] = resp.getheader("x-request-id")
            while True:
                line = resp.readline()
                if not line:
                    break
                if line.startswith(b"data: {"):
                    streams[i]["chunks"].append(time.monotonic())  # one token per chunk (logprobs: every token)
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(keys))]
    for t in threads:
        t.start()
    time.sleep(2.0)
    server.kill()
    for t in threads:
        t.join(HTTP_TIMEOUT_S)
    server.start()  # reconciles
    rc = server.stop()
    if rc != 0:
        fail("the server exited with %s after SIGTERM (long streams)" % rc)
    c = sqlite3.connect("file:%s?mode=ro" % server.db, uri=True)
    problems, lags = [], []
    for i, st in enumerate(streams):
        received = len(st["chunks"])
        if st["rid"] is None or received == 0:
            problems.append("stream %d received nothing before the kill" % i)
            continue
        row = c.execute("SELECT status, completion_tokens, cost_micros, prompt_tokens, held_micros FROM usage_records "
                        "WHERE id = ?", (st["rid"],)).fetchone()
        if row is None:
            problems.append("stream %d (%s, %d tokens received) has no usage record" % (i, st["rid"], received))
            continue
        status, billed, cost, prompt, held = row
        last = st["chunks"][-1]
        floor = sum(1 for t in st["chunks"] if t <= last - 1.25)
        lag_s = last - st["chunks"][billed - 1] if 0 < billed <= received else 0.0
        lags.append(lag_s)
        if status != "interrupted" or billed == 0 or billed < floor or billed > received + 16:
            problems.append("stream %d (%s, %s): billed %d tokens; its client received %d, %d of them 1.25 s before "
                            "its last chunk" % (i, "budget" if i < 3 else "no budget", status, billed, received, floor))
        want = prompt + billed if held == 0 else min(prompt + billed, held)
        if cost != want:
            problems.append("stream %d: cost %d for %d + %d tokens, want %d" % (i, cost, prompt, billed, want))
    c.close()
    if problems:
        fail("long streams cut by a SIGKILL:\n  " + "\n  ".join(problems))
    print("crash test: long streams: 6 cut after 2 s, each billed for what its client received up to %.2f s before "
          "its last chunk (%s tokens received)" % (max(lags), ", ".join(str(len(s["chunks"])) for s in streams)),
          flush=True)


def client_loop(idx, server, key, seed, stop, out):
    rng = random.Random(seed * 1000 + idx)
    conn = None
    conn_port = None
    while not stop.is_set():
        port = server.port
        if conn is None or conn_port != port:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT_S)
            conn_port = port
        r = rng.random()
        chat = rng.random() < 0.3
        stream = r < 0.85
        drop = stream and rng.random() < 0.1
        max_tokens = rng.randint(5, 60)
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
        body = {"model": "tiny", "max_tokens": max_tokens, "temperature": 1.0}
        if chat:
            body["messages"] = [{"role": "user", "content": text}]
            path = "/v1/chat/completions"
        else:
            body["prompt"] = text
            path = "/v1/completions"
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        kind = ("chat" if chat else "cmpl") + ("-stream" if stream else "") + ("-drop" if drop else "")
        rid = None
        try:
            conn.request("POST", path, body=json.dumps(body),
                         headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
            resp = conn.getresponse()
            rid = resp.getheader("x-request-id")
            if resp.status != 200:
                data = resp.read()
                if resp.status == 503 and b"model_loading" in data:
                    out.count("loading")
                    time.sleep(0.05)
                    continue
                out.add("bad", "%s %s -> %d %s (x-request-id %s)" % (kind, path, resp.status, data[:300], rid))
                conn.close()
                conn = None
                continue
            if not rid:
                out.add("bad", "%s: a 200 response without x-request-id" % kind)
            if drop:
                # Read a few events, then hang up mid-stream.
                for _ in range(rng.randint(1, 6)):
                    if not resp.readline():
                        break
                try:
                    conn.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
                conn = None
                out.add("dropped", {"rid": rid, "max_tokens": max_tokens, "kind": kind})
                continue
            data = resp.read()  # http.client raises IncompleteRead when the body (or chunked encoding) is cut
            out.body_done.set()
            try:
                p, n = (check_stream if stream else check_plain)(data, chat, max_tokens)
            except (ValueError, KeyError, IndexError, TypeError, UnicodeDecodeError) as e:
                out.add("bad", "%s %s (x-request-id %s): %s" % (kind, path, rid, e))
                continue
            out.add("completed", {"rid": rid, "prompt": p, "completion": n, "max_tokens": max_tokens, "kind": kind})
            if resp.will_close:
                conn.close()
                conn = None
        except socket.timeout:
            out.add("bad", "%s (x-request-id %s): no progress for %.0f s (server hung?)" % (kind, rid, HTTP_TIMEOUT_S))
            conn.close()
            conn = None
        except (OSError, http.client.HTTPException) as e:
            if rid is None:
                out.count("no_response")
            else:
                out.add("cut", {"rid": rid, "max_tokens": max_tokens, "kind": kind, "why": type(e).__name__})
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(rng.uniform(0.02, 0.15))
    if conn is not None:
        conn.close()


def check_ledger(db_path, out, org_id, project_id, key_id, reconciled_logged):
    conn = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
    cols = ["id", "org_id", "project_id", "api_key_id", "state", "status", "prompt_tokens", "completion_tokens",
            "cost_micros", "held_micros", "period", "instance"]
    rows = {}
    n_rows = 0
    for r in conn.execute("SELECT %s FROM usage_records" % ", ".join(cols)):
        n_rows += 1
        rec = dict(zip(cols, r))
        if rec["id"] in rows:
            fail("usage_records has id %s twice" % rec["id"])
        rows[rec["id"]] = rec
    spend = conn.execute("SELECT scope, scope_id, period, spent_micros, held_micros FROM spend").fetchall()
    conn.close()
    problems = []

    def problem(msg):
        if len(problems) < 40:
            problems.append(msg)
        elif len(problems) == 40:
            problems.append("...")

    # 2. nothing open; per-record consistency.
    by_status = {}
    for rec in rows.values():
        by_status[rec["status"]] = by_status.get(rec["status"], 0) + 1
        if rec["state"] != "settled":
            problem("record %s is in state %r (status %r, held %d)" % (rec["id"], rec["state"], rec["status"],
                                                                         rec["held_micros"]))
        if rec["instance"] != "local":
            problem("record %s has instance %r (want 'local')" % (rec["id"], rec["instance"]))
        if (rec["org_id"], rec["project_id"], rec["api_key_id"]) != (org_id, project_id, key_id):
            problem("record %s belongs to %s/%s/%s" % (rec["id"], rec["org_id"], rec["project_id"], rec["api_key_id"]))
        if rec["status"] == "interrupted":
            # Billed for what its last progress update recorded as delivered (streams), else nothing.
            want = rec["prompt_tokens"] + rec["completion_tokens"]
            if rec["held_micros"] > 0:
                want = min(want, rec["held_micros"])
            if rec["cost_micros"] != want and not (rec["completion_tokens"] == 0 and rec["cost_micros"] == 0):
                problem("interrupted record %s has cost %d for %d + %d tokens (want %d, or 0 with no tokens)" %
                        (rec["id"], rec["cost_micros"], rec["prompt_tokens"], rec["completion_tokens"], want))
            if rec["prompt_tokens"] <= 0:  # known at admission, kept for the record
                problem("interrupted record %s lost its prompt_tokens" % rec["id"])
        elif rec["status"] in ("completed", "client_disconnected"):
            want = min(rec["prompt_tokens"] + rec["completion_tokens"], rec["held_micros"])
            if rec["cost_micros"] != want:
                problem("record %s (%s): cost_micros %d, want %d (1 micro-USD per token, %d + %d tokens, held %d)" %
                        (rec["id"], rec["status"], rec["cost_micros"], want, rec["prompt_tokens"],
                         rec["completion_tokens"], rec["held_micros"]))
        else:
            problem("record %s has status %r" % (rec["id"], rec["status"]))

    # 1. every completed response exactly once, completed, with the client's token counts.
    seen = {}
    for kind in ("completed", "cut", "dropped"):
        for o in getattr(out, kind):
            if o["rid"] in seen:
                problem("request id %s was returned twice (%s and %s)" % (o["rid"], seen[o["rid"]], kind))
            seen[o["rid"]] = kind
    for o in out.completed:
        rec = rows.get(o["rid"])
        if rec is None:
            problem("completed response %s (%s, %d+%d tokens) has no usage record" %
                    (o["rid"], o["kind"], o["prompt"], o["completion"]))
            continue
        if rec["status"] != "completed" or rec["state"] != "settled":
            problem("completed response %s (%s): record is %s/%s" % (o["rid"], o["kind"], rec["state"], rec["status"]))
        if (rec["prompt_tokens"], rec["completion_tokens"]) != (o["prompt"], o["completion"]):
            problem("completed response %s (%s): client saw %d+%d tokens, the ledger has %d+%d" %
                    (o["rid"], o["kind"], o["prompt"], o["completion"], rec["prompt_tokens"], rec["completion_tokens"]))
        if rec["held_micros"] != o["prompt"] + o["max_tokens"]:
            problem("completed response %s (%s): held %d, want the worst case %d (prompt %d + max_tokens %d)" %
                    (o["rid"], o["kind"], rec["held_micros"], o["prompt"] + o["max_tokens"], o["prompt"],
                     o["max_tokens"]))
    # Responses whose head arrived but not the end: their hold was committed before the head was sent.
    cut_status, drop_status = {}, {}
    for kind, allowed, counts in (("cut", ("interrupted", "completed"), cut_status),
                                  ("dropped", ("client_disconnected", "interrupted", "completed"), drop_status)):
        for o in getattr(out, kind):
            rec = rows.get(o["rid"])
            if rec is None:
                problem("%s response %s (%s) has no usage record" % (kind, o["rid"], o["kind"]))
                continue
            counts[rec["status"]] = counts.get(rec["status"], 0) + 1
            if rec["status"] not in allowed:
                problem("%s response %s (%s): record status %r, want one of %s" % (kind, o["rid"], o["kind"],
                                                                                  rec["status"], allowed))
    unseen = {}
    for rid, rec in rows.items():
        if rid not in seen:
            unseen[rec["status"]] = unseen.get(rec["status"], 0) + 1
    if by_status.get("interrupted", 0) != reconciled_logged:
        problem("%d interrupted records, but the restarts' reconciliation logged %d" %
                (by_status.get("interrupted", 0), reconciled_logged))

    # 3. spend counters.
    sums = {}
    for rec in rows.values():
        for scope, sid in (("org", rec["org_id"]), ("project", rec["project_id"]), ("key", rec["api_key_id"])):
            k = (scope, sid, rec["period"])
            sums[k] = sums.get(k, 0) + rec["cost_micros"]
    spend_keys = set()
    for scope, sid, period, spent, held in spend:
        spend_keys.add((scope, sid, period))
        if held != 0:
            problem("spend %s %s %s: held_micros %d (want 0: nothing is in flight)" % (scope, sid, period, held))
        if spent != sums.get((scope, sid, period), 0):
            problem("spend %s %s %s: spent_micros %d, but its records' cost_micros sum to %d" %
                    (scope, sid, period, spent, sums.get((scope, sid, period), 0)))
    for k, v in sums.items():
        if k not in spend_keys and v != 0:
            problem("no spend row for %s %s %s (records cost %d)" % (k + (v,)))
    if ("project", project_id) not in {(s, i) for s, i, _ in spend_keys}:
        problem("no spend row for the project")
    return problems, n_rows, by_status, cut_status, drop_status, unseen


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--neocloud", required=True)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--kills", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="keep --tmp (database, logs) after a pass")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    kills_wanted = args.kills if args.kills is not None else rng.randint(10, 15)
    print("crash test: seed %d (rerun with --seed %d), %d kills" % (seed, seed, kills_wanted), flush=True)
    t0 = time.monotonic()

    tmp = os.path.abspath(args.tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    server = Server(args, tmp)
    stop = threading.Event()
    threads = []
    ok = False
    try:
        synth = subprocess.run([args.neocloud, "model", "synth", "--vocab", args.vocab, "--shape", "micro", "--type",
                                "f16", "--seed", "5", "--out", server.model], capture_output=True, text=True)
        if synth.returncode != 0:
            fail("model synth: %s%s" % (synth.stdout, synth.stderr))
        server.start()
        with open(server.admin_key_file) as f:
            admin = f.read().strip()
        project = admin_call(server.port, admin, "POST", "/v1/organization/projects", {"name": "p"})
        project_id = project["id"]
        key = admin_call(server.port, admin, "POST", "/v1/organization/api_keys", {"project_id": project_id, "name": "k"})
        inference_key, key_id = key["value"], key["id"]
        admin_call(server.port, admin, "POST", "/v1/admin/prices",
                   {"item": "tiny", "input_per_mtok": 1000000, "output_per_mtok": 1000000})
        admin_call(server.port, admin, "PUT", "/v1/organization/budgets",
                   {"scope": "project", "scope_id": project_id, "monthly_limit_micros": 10 ** 12})

        out = Outcomes()
        for i in range(N_CLIENTS):
            t = threading.Thread(target=client_loop, args=(i, server, inference_key, seed, stop, out), daemon=True)
            t.start()
            threads.append(t)

        kills = 0
        for _ in range(kills_wanted):
            time.sleep(rng.uniform(1.0, 4.0))
            if rng.random() < 0.4:
                # Kill the instant a client has read a whole response: had the server sent the last byte
                # before its usage record was committed, that record would now be lost or 'interrupted'.
                out.body_done.clear()
                out.body_done.wait(5.0)
            server.kill()
            kills += 1
            server.start()
        time.sleep(2.0)

        # Drain: the clients finish what they have in flight, then the server stops cleanly, starts once
        # more (reconciliation) and stops again.
        stop.set()
        for t in threads:
            t.join(HTTP_TIMEOUT_S + 10)
            if t.is_alive():
                fail("a client thread did not finish")
        time.sleep(0.5)  # dropped streams: let the server notice and settle them
        rc1 = server.stop()
        server.start()
        rc2 = server.stop()
        if rc1 != 0 or rc2 != 0:
            fail("the server exited with %s / %s after SIGTERM (want 0); log %s:\n%s" %
                 (rc1, rc2, server.logs[-1], tail(server.logs[-1])))

        if out.bad:
            fail("%d protocol violation(s) while the server was up:\n  %s" % (len(out.bad), "\n  ".join(out.bad[:20])))

        c = sqlite3.connect("file:%s?mode=ro" % server.db, uri=True)
        org_row = c.execute("SELECT org_id FROM projects WHERE id = ?", (project_id,)).fetchone()
        c.close()
        if org_row is None:
            fail("project %s not in the database" % project_id)
        problems, n_rows, by_status, cut_status, drop_status, unseen = check_ledger(
            server.db, out, org_row[0], project_id, key_id, server.reconciled_total())

        elapsed = time.monotonic() - t0
        def fmt_counts(d):
            return ", ".join("%d %s" % (v, k) for k, v in sorted(d.items())) or "none"
        print("crash test: clients: %d completed, %d cut by a kill (records: %s), %d dropped by the client "
              "(records: %s), %d without a response head, %d refused while loading" %
              (len(out.completed), len(out.cut), fmt_counts(cut_status), len(out.dropped), fmt_counts(drop_status),
               out.no_response, out.loading))
        print("crash test: ledger: %d records (%s); %d never seen by a client (%s)" %
              (n_rows, fmt_counts(by_status), sum(unseen.values()), fmt_counts(unseen)))
        if problems:
            fail("the ledger does not match what the clients saw (seed %d):\n  %s" % (seed, "\n  ".join(problems)))
        if len(out.completed) < 100:
            fail("only %d completed responses (want at least 100): the test proves too little" % len(out.completed))
        if by_status.get("interrupted", 0) < 3 or len(out.cut) < 3:
            fail("only %d interrupted records and %d cut responses (want at least 3 each): the kills hit nothing" %
                 (by_status.get("interrupted", 0), len(out.cut)))
        print("crash test: %d kills, %d completed responses all in the ledger exactly once, %d cut (%d interrupted, "
              "%d client_disconnected), no open holds; %.1f s" %
              (kills, len(out.completed), len(out.cut) + len(out.dropped), by_status.get("interrupted", 0),
               by_status.get("client_disconnected", 0), elapsed))
        long_streams(server, admin, key_id, inference_key, project_id)
        ok = True
    except TestFailure as e:
        print("FAIL: %s" % e, flush=True)
    except Exception:
        import traceback
        print("FAIL: unexpected error (seed %d):\n%s" % (seed, traceback.format_exc()), flush=True)
    finally:
        stop.set()
        try:
            server.kill()
        except Exception:
            pass
        for t in threads:
            t.join(5)
    if ok and not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
