#!/usr/bin/env python3
"""LoRA adapters served as models (issue 16): `serve --lora ID=PATH@BASE` and the operator's
/v1/admin/lora_adapters, over HTTP with API keys (SQLite).
  1 serve     an adapter given at start is listed in /v1/models with its parent, answers chat and
              completions under its own id (echoed back), greedily different from its base model, and
              the same twice
  2 private   an adapter added at run time for one organization: that organization lists and calls it;
              another organization gets 404 on the call and on /v1/models/{id}, and does not see it
  3 memory    with adapter memory for one adapter: using a second evicts the idle first (reloaded,
              same answer, when asked for again); while a stream holds one, another is a 503
              adapter_memory_full; after the stream it works
  4 remove    DELETE while a stream runs: the stream ends normally, later calls are 404
  5 refuse    an adapter of another base model is a 400 naming the mismatch; a taken id 409; an unknown
              base 404; a non-admin key 403; the operator's CLI (neocloud admin lora) adds, lists, removes
  6 price     an adapter without a price of its own is billed at its base model's price; with its own
              price, at that one (the costs API, in micro-USD)
Usage: lora_serving.py --neocloud BIN --vocab VOCAB.gguf --tmp DIR
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gateway"))
from gateway_e2e import MODEL, Backend, Fail, Org, Server, check, expect_error, report_result, run_steps, sse_events  # noqa: E402


def synth_lora(a, base, out, seed, rank=16):
    r = subprocess.run([a.neocloud, "model", "synth-lora", "--base", base, "--rank", str(rank), "--seed", str(seed),
                        "--targets", "qkvo,mlp", "--out", out], capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, f"synth-lora: {r.stdout}{r.stderr}")
    return out


class LoraServing:
    def __init__(self, args):
        self.args = args
        self.backend = Backend(args)
        self.server = Server(args, self.backend)

    def chat(self, key, model, text="hello there", max_tokens=12, status=200):
        r = self.c.call("POST", "/v1/chat/completions", key, {"model": model, "messages": [{"role": "user", "content": text}],
                                                               "max_tokens": max_tokens, "temperature": 0})
        check(r.status == status, f"chat with {model}: expected {status}, got {r}")
        return r.json()

    def answer(self, key, model, text="hello there"):
        j = self.chat(key, model, text)
        check(j["model"] == model, f"the response names {j['model']!r}, not {model!r}")
        return j["choices"][0]["message"]["content"]

    def adapters(self):
        return {a["id"]: a for a in self.c.ok("GET", "/v1/admin/lora_adapters", self.op)["data"]}

    def setup(self):
        self.c = self.server_client
        self.op = self.server.admin_key
        self.a = Org(self, "lora-a")
        self.b = Org(self, "lora-b")
        self.a_key, _ = self.a.key(self.a.project("p"), "a")
        self.b_key, _ = self.b.key(self.b.project("p"), "b")

    def check_serve(self):
        models = {m["id"]: m for m in self.c.ok("GET", "/v1/models", self.a_key)["data"]}
        check("pub" in models and models["pub"].get("parent") == MODEL, f"/v1/models: {models}")
        base = [self.answer(self.a_key, MODEL, t) for t in ("hello there", "one two three")]
        tuned = [self.answer(self.a_key, "pub", t) for t in ("hello there", "one two three")]
        check(base != tuned, f"the adapter changes greedy output: base {base!r}, adapter {tuned!r}")
        check(self.answer(self.a_key, "pub") == tuned[0], "the same answer twice")
        r = self.c.ok("POST", "/v1/completions", self.a_key, {"model": "pub", "prompt": "hello", "max_tokens": 5,
                                                             "temperature": 0})
        check(r["model"] == "pub" and r["choices"][0]["text"] is not None, f"completions: {r}")
        return f"base {base[0]!r} vs adapter {tuned[0]!r}"

    def check_private(self):
        self.c.ok("POST", "/v1/admin/lora_adapters", self.op, {"id": "a-only", "base": MODEL, "path": self.files[1],
                                                               "organization_id": self.a.id}, status=(201,))
        ids_a = [m["id"] for m in self.c.ok("GET", "/v1/models", self.a_key)["data"]]
        ids_b = [m["id"] for m in self.c.ok("GET", "/v1/models", self.b_key)["data"]]
        check("a-only" in ids_a and "a-only" not in ids_b, f"listing: A {ids_a}, B {ids_b}")
        self.answer(self.a_key, "a-only")
        expect_error(self.c.call("POST", "/v1/chat/completions", self.b_key,
                                 {"model": "a-only", "messages": [{"role": "user", "content": "x"}]}),
                     404, "model_not_found", what="another org's adapter")
        expect_error(self.c.call("GET", "/v1/models/a-only", self.b_key), 404, "model_not_found", what="its model page")
        return "organization A's adapter: listed and served for A, 404 for B"

    def check_memory(self):
        # Budget: one adapter (serve --lora-memory-mib is set from this adapter size).
        first = self.answer(self.a_key, "pub")
        self.answer(self.a_key, "a-only")  # evicts the idle "pub"
        ads = self.adapters()
        check(ads["a-only"]["resident"] and not ads["pub"]["resident"], f"after using a-only: {ads}")
        check(self.answer(self.a_key, "pub") == first, "reloaded, the same answer")
        # A stream holds "pub": "a-only" cannot be made resident meanwhile.
        conn, resp = self.c.open("POST", "/v1/chat/completions", self.a_key,
                                 {"model": "pub", "messages": [{"role": "user", "content": "long"}], "max_tokens": 400,
                                  "stream": True, "temperature": 0, "ignore_eos": True})
        check(resp.status == 200, f"the stream started: {resp.status}")
        head = resp.read(16)  # the first event is out: the request holds its adapter
        r = self.c.call("POST", "/v1/chat/completions", self.a_key,
                        {"model": "a-only", "messages": [{"role": "user", "content": "x"}], "max_tokens": 3})
        e = expect_error(r, 503, "adapter_memory_full", what="no room while the stream runs")
        body = (head + resp.read()).decode()
        conn.close()
        check("[DONE]" in body, "the stream ended normally")
        deadline = time.time() + 5  # the engine lets go of a finished request at its next step
        while self.c.call("POST", "/v1/chat/completions", self.a_key, {"model": "a-only", "max_tokens": 2,
                          "messages": [{"role": "user", "content": "x"}]}).status == 503 and time.time() < deadline:
            time.sleep(0.05)
        self.answer(self.a_key, "a-only")
        metrics = self.c.call("GET", "/metrics").body
        check("neocloud:lora_adapters 2" in metrics and "neocloud:lora_adapters_resident 1" in metrics,
              f"/metrics counts the adapters: {[l for l in metrics.splitlines() if 'lora' in l]}")
        return f"evicted and reloaded by LRU; 503 while held: {e['message'][:60]}..."

    def check_remove(self):
        conn, resp = self.c.open("POST", "/v1/chat/completions", self.a_key,
                                 {"model": "a-only", "messages": [{"role": "user", "content": "go"}], "max_tokens": 200,
                                  "stream": True, "temperature": 0, "ignore_eos": True})
        check(resp.status == 200, "the stream started")
        head = resp.read(16)
        self.c.ok("DELETE", "/v1/admin/lora_adapters/a-only", self.op)
        events = sse_events((head + resp.read()).decode())
        conn.close()
        check(events and events[-1] == "[DONE]" and len(events) > 50, f"the stream went on to its end: {len(events)} events")
        expect_error(self.c.call("POST", "/v1/chat/completions", self.a_key,
                                 {"model": "a-only", "messages": [{"role": "user", "content": "x"}]}),
                     404, "model_not_found", what="after DELETE")
        check("a-only" not in self.adapters(), "no longer listed")
        return f"the stream in flight finished ({len(events)} events); then 404"

    def check_refuse(self):
        r = self.c.call("POST", "/v1/admin/lora_adapters", self.op, {"id": "wrong", "base": MODEL, "path": self.files[2]})
        e = expect_error(r, 400, None, what="an adapter of another base")
        check("another base model" in e["message"], f"the 400 says why: {e}")
        expect_error(self.c.call("POST", "/v1/admin/lora_adapters", self.op, {"id": "pub", "base": MODEL,
                                                                               "path": self.files[0]}),
                     409, "already_exists", what="a taken id")
        expect_error(self.c.call("POST", "/v1/admin/lora_adapters", self.op, {"id": "x", "base": "nope",
                                                                               "path": self.files[0]}),
                     404, "not_found", what="an unknown base")
        r = self.c.call("POST", "/v1/admin/lora_adapters", self.a_key, {"id": "x", "base": MODEL, "path": self.files[0]})
        check(r.status in (401, 403), f"an inference key on the operator's API: {r}")
        # The operator's CLI: add, list, remove.
        env = dict(os.environ, NEOCLOUD_URL=f"http://127.0.0.1:{self.server.port}", NEOCLOUD_ADMIN_KEY=self.op)
        cli = [self.args.neocloud, "admin", "lora"]
        r = subprocess.run(cli + ["add", "by-cli", "--base", MODEL, "--path", self.files[1]], env=env, capture_output=True,
                           text=True, timeout=60)
        check(r.returncode == 0 and "by-cli" in r.stdout, f"neocloud admin lora add: {r.stdout}{r.stderr}")
        self.answer(self.a_key, "by-cli")
        r = subprocess.run(cli + ["list"], env=env, capture_output=True, text=True, timeout=60)
        check(r.returncode == 0 and "by-cli" in r.stdout and "pub" in r.stdout, f"neocloud admin lora list: {r.stdout}")
        r = subprocess.run(cli + ["remove", "by-cli"], env=env, capture_output=True, text=True, timeout=60)
        check(r.returncode == 0 and "by-cli" not in self.adapters(), f"neocloud admin lora remove: {r.stdout}{r.stderr}")
        return "400 naming the mismatch, 409, 404, 403; the CLI adds, lists and removes"

    def spent(self, key):
        j = self.c.ok("GET", f"/v1/organization/costs?start_time={self.t0}&end_time={int(time.time()) + 120}", key)
        return sum(round(r["amount"]["value"] * 1_000_000) for b in j["data"] for r in b["results"])

    def check_price(self):
        admin_b = self.b.admin
        def price(item, micros_per_token):
            self.c.ok("POST", "/v1/admin/prices", self.op, {"item": item, "input_per_mtok": micros_per_token * 1_000_000,
                                                             "output_per_mtok": micros_per_token * 1_000_000,
                                                             "cached_per_mtok": 0, "per_unit": 0, "effective_from": 0},
                      status=(201,))
        def billed_for(model, want_per_token):
            before = self.spent(admin_b)
            u = self.chat(self.b_key, model)["usage"]
            want = before + (u["prompt_tokens"] + u["completion_tokens"]) * want_per_token
            deadline = time.time() + 10
            while self.spent(admin_b) != want and time.time() < deadline:
                time.sleep(0.1)
            check(self.spent(admin_b) == want, f"{model}: spent {self.spent(admin_b)}, want {want} ({u})")
            return want - before
        price(MODEL, 100)
        as_base = billed_for("pub", 100)
        price("pub", 300)
        own = billed_for("pub", 300)
        return f"billed {as_base} micro-USD at the base's price, then {own} at its own"

    def run(self):
        self.t0 = int(time.time()) - 60
        self.setup()
        return run_steps([("serve", self.check_serve), ("private", self.check_private), ("memory", self.check_memory),
                          ("remove", self.check_remove), ("refuse", self.check_refuse),
                          ("price", self.check_price)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--neocloud", required=True)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--tmp", required=True)
    args = ap.parse_args()
    args.db = "sqlite"
    shutil.rmtree(args.tmp, ignore_errors=True)
    os.makedirs(args.tmp)
    t = LoraServing(args)
    t0 = time.time()
    failures = ["start"]
    try:
        # The base model the server will write (same command, same seed), to make adapters for it first.
        base = os.path.join(args.tmp, "base-for-adapters.gguf")
        r = subprocess.run([args.neocloud, "model", "synth", "--vocab", args.vocab, "--shape", "micro", "--type", "f16",
                            "--seed", "5", "--out", base], capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, f"synth: {r.stderr}")
        other = os.path.join(args.tmp, "other-base.gguf")
        r = subprocess.run([args.neocloud, "model", "synth", "--vocab", args.vocab, "--shape", "tiny", "--type", "f16",
                            "--out", other], capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, f"synth: {r.stderr}")
        t.files = [synth_lora(args, base, os.path.join(args.tmp, "pub.gguf"), 1),
                   synth_lora(args, base, os.path.join(args.tmp, "a.gguf"), 2),
                   synth_lora(args, other, os.path.join(args.tmp, "wrong.gguf"), 3)]
        size = os.path.getsize(t.files[0])  # f32 file ~ its size in memory: room for one adapter, not two
        args.serve_args = ["--lora", f"pub={t.files[0]}@{MODEL}", "--lora-memory-mib", f"{1.5 * size / (1 << 20):.6f}"]
        t.backend.create()
        t.server_client = t.server.start()
        failures = t.run()
    except Fail as e:
        print(f"FAIL start: {e}", flush=True)
    finally:
        t.server.stop()
    return report_result(failures, t0, t.server)


if __name__ == "__main__":
    sys.exit(main())
