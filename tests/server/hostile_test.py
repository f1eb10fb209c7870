#!/usr/bin/env python3
"""Regression test: hostile input at the HTTP edge of `neocloud serve` (gateway and GPU jobs on).

Starts the server on a tiny random-weight model with a fresh SQLite file, short timeouts and a small
connection cap, then checks, each as a named step printed when it passes:
  1 deep json    a ~200 KB body nested 100,000 levels (whole body, and inside `data`,
                 `chat_template_kwargs`, `scopes`, ...) on every JSON route: 400 naming the limit, and the
                 server still answers
  2 slow clients 40 clients sending one header byte every 0.3 s and 10 sending a body byte by byte are
                 dropped at the header / body deadline while another client is served at once; an idle
                 kept-alive connection is closed after the idle timeout
  3 conn cap     past --max-connections, a new connection gets 503 and is closed; freed slots serve again
  4 work bound   prompts x n over the sequence limit, n x max_tokens over the token limit, and embedding
                 inputs over the input limit: 400 naming the field and the limit, answered at once
  5 fairness     organization A's large batch (many prompts) is running; organization B's 4-token chat
                 completes within a few engine steps' time, long before A's batch ends
  6 private files the database, its WAL and the job directory are readable by the server's user only
               (the job directory is 0711 with the job sandbox: passable, not listable)
Usage: hostile_test.py --neocloud BIN --vocab VOCAB.gguf --tmp DIR
Exit 0 on success; "FAIL: ..." and exit 1 otherwise. Python standard library only.
"""
import argparse
import json
import os
import shutil
import socket
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gateway"))
import gateway_e2e as g  # noqa: E402  (Server, Client, Org, check: the gateway test's harness)
from gateway_e2e import Fail, check  # noqa: E402

HEADER_MS = 1500
BODY_MS = 1500
IDLE_MS = 1500
MAX_CONN = 64
MAX_TOKENS = 200_000
DEPTH = 100_000


class SqliteBackend:
    def __init__(self, tmp):
        self.url = "sqlite:" + os.path.join(tmp, "db.sqlite")


def deep(depth=DEPTH, open_="[", close="]"):
    return open_ * depth + close * depth


def raw(port, data, timeout=30):
    """Sends raw bytes on a new connection; returns (status, body) of the response."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            head, sep, rest = buf.partition(b"\r\n\r\n")
            if sep:
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v.strip())
                if len(rest) >= length:
                    return int(head.split(b" ")[1]), rest[:length].decode("utf-8", "replace")
        head = buf.split(b"\r\n")[0]
        check(head.startswith(b"HTTP/1.1 "), f"no HTTP response, got {buf[:200]!r}")
        return int(head.split(b" ")[1]), ""
    finally:
        s.close()


def post_raw(port, method, path, key, body):
    data = body.encode() if isinstance(body, str) else body
    head = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
            f"Content-Length: {len(data)}\r\n")
    if key:
        head += f"Authorization: Bearer {key}\r\n"
    return raw(port, head.encode() + b"\r\n" + data)


def closed_by_server(s, within):
    """True when the server closes (EOF or reset) `s` within `within` seconds."""
    s.settimeout(within)
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


class Test:
    def __init__(self, args):
        self.args = args
        args.serve_args = ["--gpus", "2", "--header-timeout-ms", str(HEADER_MS), "--body-timeout-ms", str(BODY_MS),
                           "--idle-timeout-ms", str(IDLE_MS), "--max-connections", str(MAX_CONN),
                           "--max-request-tokens", str(MAX_TOKENS), "--ctx", "2048",
                           "--jobs-dir", os.path.join(args.tmp, "jobs")]
        self.server = g.Server(args, SqliteBackend(args.tmp))
        self.c = self.server.start()
        self.port = self.server.port
        self.op = self.server.admin_key
        self.a = g.Org(self, "org-a")
        self.b = g.Org(self, "org-b")
        self.a_proj = self.a.project("pa")
        self.b_proj = self.b.project("pb")
        self.a_key, _ = self.a.key(self.a_proj, "a")
        self.b_key, _ = self.b.key(self.b_proj, "b")

    def alive(self, what):
        r = self.c.call("GET", "/health", timeout=10)
        check(r.status == 200, f"after {what}: /health answered {r}")

    # 1 ------------------------------------------------------------------------------------------
    def check_deep_json(self):
        d = deep()
        dobj = '{"a":' * DEPTH + "1" + "}" * DEPTH
        # (method, path, key, body): every route that reads a JSON body, with the nesting where a
        # field's value goes (what crashed the old server) and as the whole body.
        org = self.a.id
        cases = [
            ("POST", "/v1/completions", self.a_key, '{"model":"tiny","prompt":"x","logit_bias":%s}' % dobj.replace('"a":', '"1":')),
            ("POST", "/v1/chat/completions", self.a_key,
             '{"model":"tiny","messages":[{"role":"user","content":"x"}],"chat_template_kwargs":%s}' % dobj),
            ("POST", "/v1/embeddings", self.a_key, '{"model":"tiny","input":%s}' % d),
            ("POST", "/tokenize", self.a_key, '{"model":"tiny","content":%s}' % d),
            ("POST", "/detokenize", self.a_key, '{"model":"tiny","tokens":%s}' % d),
            ("POST", "/apply-template", self.a_key, '{"model":"tiny","messages":%s}' % d),
            ("POST", "/v1/usage/events", self.a.admin,
             '{"specversion":"1.0","id":"e1","source":"s","type":"t","data":%s}' % dobj),
            ("POST", "/v1/organization/projects", self.a.admin, '{"name":%s}' % d),
            ("POST", "/v1/organization/api_keys", self.a.admin,
             '{"name":"k","project_id":"%s","scopes":%s}' % (self.a_proj, dobj)),
            ("PUT", "/v1/organization/limits", self.a.admin, '{"scope":"organization","rpm":%s}' % d),
            ("PUT", "/v1/organization/budgets", self.a.admin, '{"scope":"organization","limit_micros":%s}' % d),
            ("POST", "/v1/admin/organizations", self.op, '{"name":%s}' % d),
            ("POST", "/v1/jobs", self.a.admin, '{"command":"true","gpus":1,"env":%s}' % dobj),
            ("POST", "/v1/reservations", self.a.admin, '{"gpus":1,"duration_s":%s}' % d),
            ("PUT", f"/v1/admin/organizations/{org}/gpu_quota", self.op, '{"gpus":%s}' % d),
            ("POST", "/v1/admin/nodes/n0/heartbeat", self.op, d),
        ]
        for method, path, key, body in cases:
            check(len(body) > 150_000, f"{path}: the body is {len(body)} bytes")
            for b in (body, d):
                status, text = post_raw(self.port, method, path, key, b)
                check(status == 400, f"{method} {path} with {len(b)} bytes nested {DEPTH} deep: expected 400, got {status} "
                                     f"{text[:300]}")
                try:
                    err = json.loads(text)["error"]
                except (ValueError, KeyError):
                    raise Fail(f"{method} {path}: not an OpenAI error body: {text[:300]}")
                check("128" in err["message"] and err["type"] == "invalid_request_error",
                      f"{method} {path}: the error names the nesting limit: {err}")
                self.alive(f"{method} {path}")
        # Without a key, the same body is refused for auth first: no parse happens before auth.
        status, _ = post_raw(self.port, "POST", "/v1/completions", None, d)
        check(status == 401, f"a deep body without a key: expected 401, got {status}")
        # Nesting within the limit still parses (the request is then judged on its fields).
        ok_depth = '{"model":"tiny","messages":[{"role":"user","content":"x"}],"max_tokens":1,"chat_template_kwargs":%s}' % (
            '{"a":' * 100 + "1" + "}" * 100)
        status, text = post_raw(self.port, "POST", "/v1/chat/completions", self.a_key, ok_depth)
        check(status == 200, f"chat_template_kwargs nested 100 deep (under the limit): expected 200, got {status} {text[:300]}")
        return f"{len(cases)} routes x 2 bodies nested {DEPTH} levels -> 400 naming the limit; server alive after each"

    # 2 ------------------------------------------------------------------------------------------
    def check_slow_clients(self):
        req = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
        slow = [socket.create_connection(("127.0.0.1", self.port), timeout=10) for _ in range(40)]
        body_slow = []
        for _ in range(10):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            s.sendall(b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Authorization: Bearer " + self.a_key.encode() + b"\r\nContent-Length: 1000\r\n\r\n")
            body_slow.append(s)
        stop = threading.Event()
        dropped = {}

        def trickle(socks, payload, name):
            i = 0
            while not stop.is_set():
                for k, s in enumerate(socks):
                    if (name, k) in dropped:
                        continue
                    try:
                        s.sendall(payload[i % len(payload): i % len(payload) + 1])
                    except OSError:
                        dropped[(name, k)] = time.time()
                i += 1
                time.sleep(0.3)

        t0 = time.time()
        threads = [threading.Thread(target=trickle, args=(slow, req, "h")),
                   threading.Thread(target=trickle, args=(body_slow, b"{" * 1000, "b"))]
        for t in threads:
            t.start()
        try:
            # Another client is served at once while they trickle.
            time.sleep(0.5)
            t1 = time.time()
            r = self.c.call("POST", "/v1/chat/completions", self.a_key,
                            {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}, timeout=10)
            served = time.time() - t1
            check(r.status == 200, f"a normal request while 50 clients trickle: {r}")
            check(served < 2.0, f"a normal request took {served:.2f}s while 50 clients trickled")
            # Every slow client is closed by the server shortly after its deadline.
            deadline = max(HEADER_MS, BODY_MS) / 1000 + 3
            closed = [closed_by_server(s, max(0.05, t0 + deadline - time.time())) for s in slow + body_slow]
        finally:
            stop.set()
            for t in threads:
                t.join()
            for s in slow + body_slow:
                s.close()
        check(all(closed), f"{closed.count(False)} of 50 slow clients still open {deadline:.1f}s after they connected")
        # Idle keep-alive: a connection that sent one whole request and then nothing is closed.
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = s.recv(4096)
        check(first.startswith(b"HTTP/1.1 200"), f"keep-alive request: {first[:100]!r}")
        t2 = time.time()
        check(closed_by_server(s, IDLE_MS / 1000 + 3), f"an idle keep-alive connection still open after {IDLE_MS / 1000 + 3}s")
        idle = time.time() - t2
        s.close()
        check(idle >= IDLE_MS / 1000 - 0.3, f"the idle connection was closed after {idle:.2f}s, before the idle timeout")
        self.alive("slow clients")
        return (f"40 header and 10 body tricklers dropped by {deadline:.1f}s; another client served in {served:.2f}s; "
                f"idle keep-alive closed after {idle:.2f}s")

    # 3 ------------------------------------------------------------------------------------------
    def check_connection_cap(self):
        held = [socket.create_connection(("127.0.0.1", self.port), timeout=10) for _ in range(MAX_CONN)]
        try:
            time.sleep(0.3)
            s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            resp = s.recv(4096)
            s.close()
            check(resp.startswith(b"HTTP/1.1 503"), f"connection {MAX_CONN + 1} of {MAX_CONN}: expected 503, got {resp[:120]!r}")
        finally:
            for h in held:
                h.close()
        time.sleep(0.3)
        self.alive("the connection cap")
        return f"connection {MAX_CONN + 1} -> 503; served again once they closed"

    # 4 ------------------------------------------------------------------------------------------
    def check_work_bound(self):
        def refused(path, body, param, what):
            t = time.time()
            r = self.c.post(path, self.a_key, body)
            took = time.time() - t
            g.expect_error(r, 400, None, "invalid_request_error", param=param, what=what)
            msg = r.json()["error"]["message"]
            check("limit" in msg, f"{what}: the message names the limit: {msg}")
            check(took < 2.0, f"{what}: refused after {took:.2f}s")
            return msg

        refused("/v1/completions", {"model": "tiny", "prompt": ["x"] * 200_000, "max_tokens": 1}, "prompt",
                "200,000 prompts")
        refused("/v1/completions", {"model": "tiny", "prompt": ["x"] * 100, "n": 50, "max_tokens": 1}, "prompt",
                "100 prompts x n 50")
        refused("/v1/completions", {"model": "tiny", "prompt": "x", "n": 128, "max_tokens": 1900}, "max_tokens",
                "n 128 x max_tokens 1900")
        refused("/v1/chat/completions", {"model": "tiny", "messages": [{"role": "user", "content": "x"}], "n": 128,
                                         "max_tokens": 1900}, "max_tokens", "chat n 128 x max_tokens 1900")
        r = self.c.post("/v1/embeddings", self.a_key, {"model": "tiny", "input": ["x"] * 3000})
        g.expect_error(r, 400, None, "invalid_request_error", param="input", what="3000 embedding inputs")
        # Within the bounds, the same shapes run.
        r = self.c.post("/v1/completions", self.a_key, {"model": "tiny", "prompt": ["x"] * 20, "n": 2, "max_tokens": 2})
        check(r.status == 200 and len(r.json()["choices"]) == 40, f"20 prompts x n 2: {r}")
        return "prompts x n, n x max_tokens (completions and chat), embedding inputs -> 400 naming the limit, at once"

    # 5 ------------------------------------------------------------------------------------------
    def check_fairness(self):
        result = {}

        def batch():
            t = time.time()
            result["a"] = self.c.post("/v1/completions", self.a_key,
                                      {"model": "tiny", "prompt": ["Once upon a time"] * 1500, "max_tokens": 48,
                                       "ignore_eos": True})
            result["a_s"] = time.time() - t

        th = threading.Thread(target=batch)
        t0 = time.time()
        th.start()
        time.sleep(1.0)  # A's 1500 sequences are queued and running
        t1 = time.time()
        r = self.c.post("/v1/chat/completions", self.b_key,
                        {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
        b_s = time.time() - t1
        b_done = time.time() - t0
        th.join()
        check(r.status == 200, f"B's chat: {r}")
        check(result["a"].status == 200, f"A's batch: {result['a']}")
        a_s = result["a_s"]
        check(b_done < a_s / 3, f"B's 4-token chat ended {b_done:.2f}s after A's batch started, A took {a_s:.2f}s: "
                                f"B waited behind A's queue")
        check(b_s < a_s / 5, f"B's 4-token chat took {b_s:.2f}s while A's {a_s:.2f}s batch ran")
        return f"A's 1500-prompt batch took {a_s:.2f}s; B's chat sent 1 s in took {b_s:.2f}s"

    # 6 ------------------------------------------------------------------------------------------
    def check_private_files(self):
        db = os.path.join(self.args.tmp, "db.sqlite")
        paths = [db, db + "-wal", os.path.join(self.args.tmp, "jobs")]
        modes = {p: oct(os.stat(p).st_mode & 0o777) for p in paths if os.path.exists(p)}
        check(db in modes, f"no database at {db}")
        # Nothing readable or writable by others; the jobs directory may be passed through (0711) so that
        # sandboxed jobs' users reach their own directory (job_sandbox.h), but not listed.
        loose = {p: m for p, m in modes.items() if int(m, 8) & 0o066}
        check(not loose, f"files the server made are readable by others: {loose}")
        return f"database, WAL and job directory private: {sorted(set(modes.values()))}"

    def run(self):
        failures = []
        for name, fn in [("6 private files", self.check_private_files), ("1 deep json", self.check_deep_json), ("2 slow clients", self.check_slow_clients),
                         ("3 conn cap", self.check_connection_cap), ("4 work bound", self.check_work_bound),
                         ("5 fairness", self.check_fairness)]:
            t = time.time()
            try:
                detail = fn()
                print(f"PASS [{name}] ({time.time() - t:.1f}s): {detail}", flush=True)
            except Exception as e:  # report and go on
                failures.append(name)
                print(f"FAIL: [{name}] {e}", flush=True)
                if not isinstance(e, Fail):
                    traceback.print_exc()
                try:
                    self.alive(name)
                except Exception as e2:
                    print(f"FAIL: the server is gone after [{name}]: {e2}", flush=True)
                    failures.append("server died")
                    break
        return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--neocloud", required=True)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--tmp", required=True)
    args = ap.parse_args()
    args.tmp = os.path.abspath(args.tmp)
    shutil.rmtree(args.tmp, ignore_errors=True)
    os.makedirs(args.tmp)
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
            print(f"server stopped (exit status {rc})", flush=True)
            if rc not in (0, None):
                failures.append(f"server exit status {rc}")
            if failures:
                print(f"--- server log (last lines of {test.server.log_path}):\n{test.server.log_tail(25)}", flush=True)
    elapsed = time.time() - start
    if failures:
        print(f"FAIL: {len(failures)} check(s) failed: {', '.join(failures)} ({elapsed:.1f}s)", flush=True)
        sys.exit(1)
    shutil.rmtree(args.tmp, ignore_errors=True)
    print(f"OK: hostile input at the edge ({elapsed:.1f}s)", flush=True)


if __name__ == "__main__":
    main()
