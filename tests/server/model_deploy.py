#!/usr/bin/env python3
"""Models loaded and unloaded at run time, without a restart (issue 16): the operator's public models
(/v1/admin/models and `neocloud admin models`) and GGUF files organizations deploy as their own models.
  1 operator  a GGUF on the server loaded at run time: listed for every organization, answers chat;
              a taken id 409, a missing file 400, a tenant key 403; the CLI adds, lists and removes
  2 inflight  DELETE while a stream runs on that model: the stream ends normally; then 404; the engine
              is stopped once the stream let go (gone from /metrics)
  3 tenant    an organization uploads a GGUF (purpose model) and deploys it (POST /v1/models): it is
              "<org>/<name>", listed and served for that organization only (another gets 404 on chat,
              /v1/models/{id} and DELETE); deleting the upload does not touch it; past --tenant-models
              a 429; a fine-tune file as a model 400
  4 price     inference on a tenant's model is billed at the operator's "tenant-models" price
  5 restart   after a restart both run-time models are served again
  6 delete    the organization deletes its model: 404 after, and its file is gone; a model the operator
              placed for it is deleted without touching the operator's file
Usage: model_deploy.py --neocloud BIN --vocab VOCAB.gguf --tmp DIR
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gateway"))
from gateway_e2e import Backend, Org, Server, check, expect_error, run_server_suite, run_steps, sse_events  # noqa: E402
from files_api import upload  # noqa: E402


class DeployTest:
    def __init__(self, args):
        self.args = args
        self.backend = Backend(args)
        self.server = Server(args, self.backend)

    def synth(self, name, seed, shape="micro"):
        path = os.path.join(self.args.tmp, name)
        r = subprocess.run([self.args.neocloud, "model", "synth", "--vocab", self.args.vocab, "--shape", shape, "--type",
                            "q8_0", "--seed", str(seed), "--out", path], capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, f"synth: {r.stderr}")
        return path

    def upload(self, key, content, purpose="fine-tune", name="train.jsonl"):
        return upload(self.server.port, key, content, purpose, name)

    def chat(self, key, model, status=200):
        r = self.c.call("POST", "/v1/chat/completions", key, {"model": model, "max_tokens": 4, "temperature": 0,
                                                              "messages": [{"role": "user", "content": "hello"}]})
        check(r.status == status, f"chat with {model}: expected {status}, got {r}")
        return r

    def ids(self, key):
        return [m["id"] for m in self.c.ok("GET", "/v1/models", key)["data"]]

    def setup(self):
        self.c = self.server_client
        self.op = self.server.admin_key
        self.a = Org(self, "dep-a")
        self.b = Org(self, "dep-b")
        self.a_key, _ = self.a.key(self.a.project("p"), "a")
        self.b_key, _ = self.b.key(self.b.project("p"), "b")

    def check_operator(self):
        path = self.synth("runtime.gguf", 21)
        r = self.c.ok("POST", "/v1/admin/models", self.op, {"id": "runtime", "path": path}, status=(201,))
        check(r["id"] == "runtime" and r["state"] == "ready", f"loaded: {r}")
        check("runtime" in self.ids(self.a_key) and "runtime" in self.ids(self.b_key), "listed for every organization")
        self.chat(self.a_key, "runtime")
        expect_error(self.c.call("POST", "/v1/admin/models", self.op, {"id": "runtime", "path": path}), 409, "already_exists",
                     what="a taken id")
        expect_error(self.c.call("POST", "/v1/admin/models", self.op, {"id": "x", "path": path + ".missing"}), 400, None,
                     param="path", what="a missing file")
        r = self.c.call("POST", "/v1/admin/models", self.a_key, {"id": "x", "path": path})
        check(r.status in (401, 403), f"a tenant key: {r}")
        env = dict(os.environ, NEOCLOUD_URL=f"http://127.0.0.1:{self.server.port}", NEOCLOUD_ADMIN_KEY=self.op)
        cli = [self.args.neocloud, "admin", "models"]
        r = subprocess.run(cli + ["add", "by-cli", "--path", path], env=env, capture_output=True, text=True, timeout=60)
        check(r.returncode == 0 and "by-cli" in r.stdout, f"admin models add: {r.stdout}{r.stderr}")
        self.chat(self.b_key, "by-cli")
        r = subprocess.run(cli + ["list"], env=env, capture_output=True, text=True, timeout=60)
        check(r.returncode == 0 and "by-cli" in r.stdout and "runtime" in r.stdout, f"admin models list: {r.stdout}")
        r = subprocess.run(cli + ["remove", "by-cli"], env=env, capture_output=True, text=True, timeout=60)
        check(r.returncode == 0 and "by-cli" not in self.ids(self.a_key), f"admin models remove: {r.stdout}{r.stderr}")
        self.runtime_path = path
        return "loaded, served to all, 409/400/403; the CLI adds, lists, removes"

    def check_inflight(self):
        path = self.synth("doomed.gguf", 22)
        self.c.ok("POST", "/v1/admin/models", self.op, {"id": "doomed", "path": path}, status=(201,))
        conn, resp = self.c.open("POST", "/v1/chat/completions", self.a_key,
                                 {"model": "doomed", "messages": [{"role": "user", "content": "go"}], "max_tokens": 300,
                                  "stream": True, "temperature": 0, "ignore_eos": True})
        check(resp.status == 200, "the stream started")
        head = resp.read(16)
        self.c.ok("DELETE", "/v1/admin/models/doomed", self.op)
        self.chat(self.a_key, "doomed", status=404)
        events = sse_events((head + resp.read()).decode())
        conn.close()
        check(events and events[-1] == "[DONE]" and len(events) > 100, f"the stream went on to its end: {len(events)} events")
        deadline = time.time() + 10
        while 'model_name="doomed"' in self.c.call("GET", "/metrics").body and time.time() < deadline:
            time.sleep(0.1)
        check('model_name="doomed"' not in self.c.call("GET", "/metrics").body, "the engine was stopped")
        return f"the stream finished ({len(events)} events), then 404; engine stopped"

    def check_tenant(self):
        with open(self.synth("mine.gguf", 23), "rb") as f:
            gguf = f.read()
        fid = self.upload(self.a_key, gguf, "model", "mine.gguf").json()["id"]
        r = self.c.ok("POST", "/v1/models", self.a_key, {"file_id": fid, "name": "mine"}, status=(201,))
        self.mine = r["id"]
        check(self.mine == f"{self.a.id}/mine" and r["organization_id"] == self.a.id, f"deployed: {r}")
        check(self.mine in self.ids(self.a_key) and self.mine not in self.ids(self.b_key), "listed for A only")
        self.chat(self.a_key, self.mine)
        expect_error(self.chat(self.b_key, self.mine, status=404), 404, "model_not_found", what="B calls it")
        expect_error(self.c.call("GET", f"/v1/models/{self.mine}", self.b_key), 404, "model_not_found", what="B reads it")
        expect_error(self.c.call("DELETE", f"/v1/models/{self.mine}", self.b_key), 404, "model_not_found", what="B deletes it")
        self.c.ok("DELETE", f"/v1/files/{fid}", self.a_key)
        self.chat(self.a_key, self.mine)
        fid2 = self.upload(self.a_key, gguf, "model", "again.gguf").json()["id"]
        expect_error(self.c.call("POST", "/v1/models", self.a_key, {"file_id": fid2, "name": "second"}), 429,
                     "model_limit_reached", what="past --tenant-models")
        ft = self.upload(self.a_key, b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n',
                         "fine-tune", "t.jsonl").json()["id"]
        expect_error(self.c.call("POST", "/v1/models", self.b_key, {"file_id": ft, "name": "x"}), 404, "file_not_found",
                     what="another org's file")
        self.c.ok("DELETE", f"/v1/files/{fid2}", self.a_key)
        return f"{self.mine}: A only; survives the upload's deletion; 429 past the limit"

    def check_price(self):
        self.c.ok("POST", "/v1/admin/prices", self.op, {"item": "tenant-models", "input_per_mtok": 200_000_000,
                                                         "output_per_mtok": 200_000_000, "cached_per_mtok": 0,
                                                         "per_unit": 0, "effective_from": 0}, status=(201,))

        def spent():
            j = self.c.ok("GET", f"/v1/organization/costs?start_time={self.t0}&end_time={int(time.time()) + 120}", self.a.admin)
            return sum(round(r["amount"]["value"] * 1_000_000) for b in j["data"] for r in b["results"])
        before = spent()
        u = self.chat(self.a_key, self.mine).json()["usage"]
        want = before + (u["prompt_tokens"] + u["completion_tokens"]) * 200
        deadline = time.time() + 10
        while spent() != want and time.time() < deadline:
            time.sleep(0.1)
        check(spent() == want, f"billed {spent() - before}, want {want - before} ({u})")
        return f"{want - before} micro-USD at the tenant-models price"

    def check_restart(self):
        self.server.stop()
        self.server.port = None
        self.c = self.server_client = self.server.start()
        deadline = time.time() + 30
        while not ("runtime" in self.ids(self.a_key) and self.mine in self.ids(self.a_key)) and time.time() < deadline:
            time.sleep(0.2)
        check("runtime" in self.ids(self.a_key) and self.mine in self.ids(self.a_key), f"after a restart: {self.ids(self.a_key)}")
        check(self.mine not in self.ids(self.b_key), "still A's only")
        self.chat(self.a_key, self.mine)
        self.chat(self.b_key, "runtime")
        return "both served again"

    def check_delete(self):
        path = [m for m in self.c.ok("GET", "/v1/admin/models", self.op)["data"] if m["id"] == self.mine][0]["path"]
        r = self.c.ok("DELETE", f"/v1/models/{self.mine}", self.a_key)
        check(r == {"id": self.mine, "object": "model", "deleted": True}, f"delete: {r}")
        self.chat(self.a_key, self.mine, status=404)
        check(not os.path.exists(path), f"its file is gone: {path}")
        # A model the operator placed for the organization: the organization may delete it, never its file.
        self.c.ok("POST", "/v1/admin/models", self.op, {"id": "placed", "path": self.runtime_path,
                                                         "organization_id": self.a.id}, status=(201,))
        self.chat(self.a_key, "placed")
        self.chat(self.b_key, "placed", status=404)
        self.c.ok("DELETE", "/v1/models/placed", self.a_key)
        check(os.path.exists(self.runtime_path), "the operator's file stays")
        return "404 after; its file removed; an operator-placed model's file stays"

    def run(self):
        self.t0 = int(time.time()) - 60
        self.setup()
        return run_steps([("operator", self.check_operator), ("inflight", self.check_inflight), ("tenant", self.check_tenant),
                          ("price", self.check_price), ("restart", self.check_restart), ("delete", self.check_delete)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--neocloud", required=True)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--tmp", required=True)
    args = ap.parse_args()
    args.db = "sqlite"
    shutil.rmtree(args.tmp, ignore_errors=True)
    os.makedirs(args.tmp)
    args.serve_args = ["--tenant-models", "1"]
    return run_server_suite(DeployTest(args))


if __name__ == "__main__":
    sys.exit(main())
