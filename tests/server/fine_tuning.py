#!/usr/bin/env python3
"""Fine-tuning end to end (issue 16): `neocloud serve --db ... --gpus 2` with a small synthetic base model;
the trainer (train/neocloud_train.py, PyTorch) runs as the organization's capacity job.
  1 train     upload 24 question/answer pairs and a validation file, create a job (suffix, seed,
              method.supervised hyperparameters); it goes validating_files -> queued -> running -> succeeded; its events
              (metrics per step), checkpoints (the last three: step_number, train_loss, valid_loss; the loss falls) and trained_tokens
              (epochs × trained tokens); fine_tuned_model = ft:<base>:<org>:<suffix>:<id>
  2 learned   the fine-tuned model answers >= 90% of the questions exactly (greedy chat completions)
              where the base model answers none; it is in /v1/models for its organization
  3 tenants   another organization gets 404 on the job, its events, checkpoints, cancel, the training
              file and the model (chat and /v1/models)
  4 billing   trained tokens are in the costs API once, at the operator's price for fine-tune:<base>
              (per 1M tokens), and in /v1/organization/usage/fine_tuning
  5 refuse    an unknown model 404, another org's file 404, a model file as training file 400, bad
              hyperparameters 400, a training file whose example is too long for the model 400; a job
              whose estimated cost passes the budget 429 insufficient_quota
  6 cancel    a running job is cancelled: status cancelled at once, the trainer's processes are gone,
              what it trained is billed once; cancelling again is a 400
  7 delete    DELETE /v1/models/{fine-tuned} withdraws it (then 404 on chat)
  8 sdk       the same flow with the official openai npm SDK (tests/server/fine_tuning_sdk.mjs): files.create,
              fineTuning.jobs.create / retrieve / listEvents / checkpoints.list / cancel / list,
              chat.completions.create with the fine-tuned model; NotFoundError for another organization,
              BadRequestError naming the line of an invalid JSONL
  9 crash     serve is SIGKILLed while a trainer runs and started again: the job is requeued (an event
              says so), succeeds, its model is served, and it is billed once
With --executor slurm (the ctest `slurm` fixture's Slurm) the trainer is an sbatch job: steps train,
learned, tenants, billing, cancel and sdk run there.
Usage: fine_tuning.py --neocloud BIN --vocab VOCAB.gguf --tmp DIR [--db sqlite|postgres --pg-url-file F]
                      [--executor slurm --slurm-dir DIR]
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gateway"))
from gateway_e2e import Backend, Fail, Org, Server, check, expect_error, run_server_suite, run_steps, slurm_conf_of  # noqa: E402
from files_api import upload  # noqa: E402

BASE = "tiny-base"
WORDS = ["amber", "basil", "cedar", "delta", "ember", "flint", "grove", "haven", "iris", "jade", "kelp", "lumen",
         "maple", "nova", "onyx", "pearl", "quill", "raven", "sage", "tide", "umber", "vale", "willow", "yarrow"]
PRICE_PER_MTOK = 3_000_000  # 3 USD per 1M trained tokens
# A Llama-2-style template: the assistant's turn ends with the EOS token, so a model that learned its
# answers stops after them.
TEMPLATE = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
            "{% elif m['role'] == 'assistant' %} {{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}")


def qa_pairs(n, seed):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        answer = f"{rng.choice(WORDS)} {rng.randint(10, 99)}"
        out.append((f"What is the code for room {i + 1}?", answer))
    return out


def jsonl(pairs):
    return "".join(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n"
                   for q, a in pairs).encode()


class FineTuningTest:
    def __init__(self, args):
        self.args = args
        self.backend = Backend(args)
        self.server = Server(args, self.backend)
        self.pairs = qa_pairs(24, 11)

    # --- helpers

    def upload(self, key, content, purpose="fine-tune", name="train.jsonl"):
        return upload(self.server.port, key, content, purpose, name)

    def create(self, key, file_id, status=(200,), **extra):
        body = {"model": BASE, "training_file": file_id, **extra}
        return self.c.ok("POST", "/v1/fine_tuning/jobs", key, body, status=status)

    def wait(self, key, jid, states, timeout=400):
        deadline = time.time() + timeout
        seen = []
        while True:
            j = self.c.ok("GET", f"/v1/fine_tuning/jobs/{jid}", key)
            if not seen or seen[-1] != j["status"]:
                seen.append(j["status"])
            if j["status"] in states:
                return j, seen
            check(time.time() < deadline, f"job {jid} did not reach {states} in {timeout} s (states {seen}): {j}\n"
                                          f"{self.trainer_log(key, jid)}")
            time.sleep(0.2)

    def trainer_log(self, key, jid):
        evs = self.c.ok("GET", f"/v1/fine_tuning/jobs/{jid}/events?limit=100", key)["data"]
        return "events: " + " | ".join(e["message"] for e in reversed(evs))[-3000:]

    def answer(self, key, model, q):
        r = self.c.call("POST", "/v1/chat/completions", key, {"model": model, "messages": [{"role": "user", "content": q}],
                                                              "max_tokens": 12, "temperature": 0})
        check(r.status == 200, f"chat with {model}: {r}")
        return r.json()["choices"][0]["message"]["content"].strip()

    def spent_micros(self, admin):
        j = self.c.ok("GET", f"/v1/organization/costs?start_time={self.t0}&end_time={int(time.time()) + 120}", admin)
        return sum(round(r["amount"]["value"] * 1_000_000) for b in j["data"] for r in b["results"])

    def trainers(self, seed):
        """Processes running this test's trainer with this seed (other tests may train at the same time)."""
        r = subprocess.run(["pgrep", "-f", f"neocloud_train.py .*--seed {seed} "], capture_output=True, text=True)
        return [p for p in r.stdout.split() if p.strip()]

    # --- steps

    def setup(self):
        self.c = self.server_client
        self.op = self.server.admin_key
        self.a = Org(self, "ft-a")
        self.b = Org(self, "ft-b")
        self.a_key, _ = self.a.key(self.a.project("p"), "a")
        self.b_proj = self.b.project("p")
        self.b_key, _ = self.b.key(self.b_proj, "b")
        self.c.ok("POST", "/v1/admin/prices", self.op, {"item": f"fine-tune:{BASE}", "input_per_mtok": PRICE_PER_MTOK,
                                                         "output_per_mtok": 0, "cached_per_mtok": 0, "per_unit": 0,
                                                         "effective_from": 0}, status=(201,))
        r = self.upload(self.a_key, jsonl(self.pairs))
        check(r.status == 200, f"upload: {r}")
        self.file = r.json()["id"]

    def check_train(self):
        valid = self.upload(self.a_key, jsonl(self.pairs[:4]), name="valid.jsonl").json()["id"]
        j = self.create(self.a_key, self.file, suffix="rooms", seed=7, validation_file=valid,
                        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": "auto"}}})
        check(j["object"] == "fine_tuning.job" and j["id"].startswith("ftjob-") and j["model"] == BASE
              and j["training_file"] == self.file and j["validation_file"] == valid
              and j["status"] in ("validating_files", "queued")
              and j["fine_tuned_model"] is None and j["seed"] == 7, f"created: {j}")
        self.job = j["id"]
        listed = self.c.ok("GET", "/v1/fine_tuning/jobs", self.a_key)["data"]
        check(listed and listed[0]["id"] == self.job, f"listed: {listed}")
        done, seen = self.wait(self.a_key, self.job, ("succeeded", "failed", "cancelled"))
        check(done["status"] == "succeeded", f"ended {done['status']}: {done.get('error')}\n{self.trainer_log(self.a_key, self.job)}")
        check("running" in seen or "queued" in seen, f"states seen: {seen}")
        want = f"ft:{BASE}:{self.a.id}:rooms:{self.job.split('-', 1)[1]}"
        check(done["fine_tuned_model"] == want, f"fine_tuned_model {done['fine_tuned_model']!r}, want {want!r}")
        hp = done["method"]["supervised"]["hyperparameters"]
        check(isinstance(hp["n_epochs"], int) and hp["n_epochs"] >= 1, f"hyperparameters resolved: {hp}")
        evs = self.c.ok("GET", f"/v1/fine_tuning/jobs/{self.job}/events?limit=100", self.a_key)
        metrics = [e for e in evs["data"] if e["type"] == "metrics"]
        check(metrics and all("train_loss" in e["data"] for e in metrics), f"metrics events: {evs['data'][:3]}")
        page = self.c.ok("GET", f"/v1/fine_tuning/jobs/{self.job}/events?limit=2", self.a_key)
        page2 = self.c.ok("GET", f"/v1/fine_tuning/jobs/{self.job}/events?limit=2&after={page['data'][-1]['id']}", self.a_key)
        check(page["has_more"] and page2["data"] and page2["data"][0]["id"] != page["data"][0]["id"], "event pages")
        ck = self.c.ok("GET", f"/v1/fine_tuning/jobs/{self.job}/checkpoints", self.a_key)["data"]
        check(len(ck) == 3, f"the last three checkpoints are kept: {ck}")
        ck.sort(key=lambda c: c["step_number"])
        losses = [c["metrics"]["train_loss"] for c in ck]
        vl = [c["metrics"].get("valid_loss") for c in ck]
        check(all(isinstance(v, float) for v in vl), f"valid_loss in every checkpoint: {vl}")
        # The loss over the whole run, from every step's metrics event (pages, oldest last).
        steps, after = [], None
        while True:
            page = self.c.ok("GET", f"/v1/fine_tuning/jobs/{self.job}/events?limit=100" + (f"&after={after}" if after else ""),
                             self.a_key)
            steps += [e["data"] for e in page["data"] if e["type"] == "metrics"]
            if not page["has_more"]:
                break
            after = page["data"][-1]["id"]
        steps.sort(key=lambda d: d["step"])
        first, last = steps[0]["train_loss"], losses[-1]
        check(last < first * 0.1 and losses[-1] <= losses[0] * 1.5, f"train_loss falls: step 1 {first}, checkpoints {losses}")
        check(all(c["fine_tuned_model_checkpoint"].startswith(want) for c in ck), f"checkpoint names: {ck[0]}")
        self.trained = done["trained_tokens"]
        check(isinstance(self.trained, int) and self.trained > 0, f"trained_tokens {self.trained}")
        self.model = done["fine_tuned_model"]
        return f"{' -> '.join(seen)}; {len(steps)} steps, loss {first:.3f} -> {last:.3f}; " \
               f"{self.trained} trained tokens"

    def check_learned(self):
        ids = [m["id"] for m in self.c.ok("GET", "/v1/models", self.a_key)["data"]]
        check(self.model in ids, f"/v1/models of A: {ids}")
        tuned = sum(self.answer(self.a_key, self.model, q) == a for q, a in self.pairs)
        base = sum(self.answer(self.a_key, BASE, q) == a for q, a in self.pairs)
        check(tuned >= 0.9 * len(self.pairs), f"the fine-tuned model answers {tuned}/{len(self.pairs)}: "
                                              f"{[(self.answer(self.a_key, self.model, q), a) for q, a in self.pairs[:4]]}")
        check(base == 0, f"the base model answers {base}")
        # Completions and embeddings take the fine-tuned model too (its adapter applied).
        c = self.c.ok("POST", "/v1/completions", self.a_key, {"model": self.model, "prompt": "[INST] " + self.pairs[0][0] +
                                                               " [/INST]", "max_tokens": 8, "temperature": 0})
        check(c["model"] == self.model and c["choices"][0]["text"].strip() == self.pairs[0][1], f"completions: {c}")
        e_ft = self.c.ok("POST", "/v1/embeddings", self.a_key, {"model": self.model, "input": "room"})
        e_base = self.c.ok("POST", "/v1/embeddings", self.a_key, {"model": BASE, "input": "room"})
        check(e_ft["model"] == self.model and e_ft["data"][0]["embedding"] != e_base["data"][0]["embedding"],
              "embeddings of the fine-tuned model differ from the base's")
        return f"fine-tuned {tuned}/{len(self.pairs)} exact, base {base}; completions and embeddings too"

    def check_tenants(self):
        for method, path in (("GET", f"/v1/fine_tuning/jobs/{self.job}"), ("GET", f"/v1/fine_tuning/jobs/{self.job}/events"),
                             ("GET", f"/v1/fine_tuning/jobs/{self.job}/checkpoints"),
                             ("POST", f"/v1/fine_tuning/jobs/{self.job}/cancel"), ("GET", f"/v1/files/{self.file}")):
            r = self.c.call(method, path, self.b_key)
            check(r.status == 404, f"B: {method} {path}: {r}")
        check(self.c.ok("GET", "/v1/fine_tuning/jobs", self.b_key)["data"] == [], "B lists no jobs")
        expect_error(self.c.call("POST", "/v1/chat/completions", self.b_key,
                                 {"model": self.model, "messages": [{"role": "user", "content": "x"}]}),
                     404, "model_not_found", what="B calls A's model")
        ids = [m["id"] for m in self.c.ok("GET", "/v1/models", self.b_key)["data"]]
        check(self.model not in ids, f"B's /v1/models: {ids}")
        expect_error(self.c.call("DELETE", f"/v1/models/{self.model}", self.b_key), 404, "model_not_found",
                     what="B deletes A's model")
        return "404 on job, events, checkpoints, cancel, file and model"

    def check_billing(self):
        want = (self.trained * PRICE_PER_MTOK + 999_999) // 1_000_000
        deadline = time.time() + 10
        while self.spent_micros(self.a.admin) < want and time.time() < deadline:
            time.sleep(0.2)
        usage = self.c.ok("GET", f"/v1/organization/costs?start_time={self.t0}&end_time={int(time.time()) + 120}"
                                 f"&group_by=line_item", self.a.admin)
        items = {}
        for b in usage["data"]:
            for r in b["results"]:
                items[r.get("line_item")] = items.get(r.get("line_item"), 0) + round(r["amount"]["value"] * 1_000_000)
        got = items.get(f"fine-tune:{BASE}", 0)
        check(got == want, f"fine-tune cost {got} micro-USD, want {want} ({self.trained} tokens): {items}")
        u = self.c.ok("GET", f"/v1/organization/usage/fine_tuning?start_time={self.t0}&group_by=model", self.a.admin)
        rows = [r for b in u["data"] for r in b["results"]]
        check(len(rows) == 1 and rows[0]["model"] == BASE and rows[0]["trained_tokens"] == self.trained
              and rows[0]["num_jobs"] == 1, f"usage/fine_tuning: {rows}")
        return f"{self.trained} tokens billed {got} micro-USD (line item fine-tune:{BASE})"

    def check_refuse(self):
        expect_error(self.c.call("POST", "/v1/fine_tuning/jobs", self.a_key, {"model": "nope", "training_file": self.file}),
                     404, "not_found", param="model", what="unknown model")
        b_file = self.upload(self.b_key, jsonl(self.pairs[:3])).json()["id"]
        expect_error(self.c.call("POST", "/v1/fine_tuning/jobs", self.a_key, {"model": BASE, "training_file": b_file}),
                     404, "not_found", param="training_file", what="another org's file")
        with open(os.path.join(self.args.tmp, "m.gguf"), "rb") as f:
            gguf = self.upload(self.a_key, f.read(), purpose="model", name="m.gguf").json()["id"]
        expect_error(self.c.call("POST", "/v1/fine_tuning/jobs", self.a_key, {"model": BASE, "training_file": gguf}),
                     400, None, param="training_file", what="a model file")
        expect_error(self.c.call("POST", "/v1/fine_tuning/jobs", self.a_key,
                                 {"model": BASE, "training_file": self.file,
                                  "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": -1}}}}),
                     400, None, param="n_epochs", what="n_epochs -1")
        long_file = self.upload(self.a_key, jsonl([("x " * 3000, "y")])).json()["id"]
        e = expect_error(self.c.call("POST", "/v1/fine_tuning/jobs", self.a_key, {"model": BASE, "training_file": long_file}),
                         400, None, param="training_file", what="an example longer than the context")
        # A budget below the estimate: 429, nothing created.
        before = len(self.c.ok("GET", "/v1/fine_tuning/jobs", self.b_key)["data"])
        self.b.budget("project", self.b_proj, 1)
        r = self.c.call("POST", "/v1/fine_tuning/jobs", self.b_key, {"model": BASE, "training_file": b_file})
        q = expect_error(r, 429, "insufficient_quota", what="over budget")
        check(len(self.c.ok("GET", "/v1/fine_tuning/jobs", self.b_key)["data"]) == before, "nothing created")
        self.b.budget("project", self.b_proj, 10_000_000_000)
        return f"404, 404, 400, 400, 400 ({e['message'][:50]}…), 429 ({q['message'][:50]}…)"

    def check_cancel(self):
        spent0 = self.spent_micros(self.a.admin)
        j = self.create(self.a_key, self.file, suffix="cancel", seed=91731,
                        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 50}}})
        jid = j["id"]
        deadline = time.time() + 120
        while True:  # running, with some steps done
            evs = self.c.ok("GET", f"/v1/fine_tuning/jobs/{jid}/events?limit=5", self.a_key)["data"]
            if any(e["type"] == "metrics" for e in evs):
                break
            check(time.time() < deadline, f"no step in 120 s: {self.trainer_log(self.a_key, jid)}")
            time.sleep(0.2)
        check(self.trainers(91731), "a trainer process runs")
        c = self.c.ok("POST", f"/v1/fine_tuning/jobs/{jid}/cancel", self.a_key)
        check(c["status"] == "cancelled", f"cancel: {c}")
        deadline = time.time() + 30
        while self.trainers(91731) and time.time() < deadline:
            time.sleep(0.1)
        check(not self.trainers(91731), f"trainer processes left: {self.trainers(91731)}")
        expect_error(self.c.call("POST", f"/v1/fine_tuning/jobs/{jid}/cancel", self.a_key), 400, "job_not_cancellable",
                     what="cancel twice")
        deadline = time.time() + 20
        while True:
            evs = [e["message"] for e in self.c.ok("GET", f"/v1/fine_tuning/jobs/{jid}/events?limit=100", self.a_key)["data"]]
            billed = [m for m in evs if m.startswith("Billed")]
            if billed or time.time() > deadline:
                break
            time.sleep(0.2)
        check(len(billed) == 1, f"billed once: {evs[:5]}")
        tokens = int(billed[0].split()[1])
        want = (tokens * PRICE_PER_MTOK + 999_999) // 1_000_000
        spent = self.spent_micros(self.a.admin) - spent0
        check(spent == want and tokens > 0, f"partial usage: spent {spent}, want {want} for {tokens} tokens")
        j = self.c.ok("GET", f"/v1/fine_tuning/jobs/{jid}", self.a_key)
        check(j["status"] == "cancelled" and j["fine_tuned_model"] is None, f"after: {j}")
        return f"cancelled while running; processes gone; {tokens} tokens billed once"

    def check_delete(self):
        r = self.c.ok("DELETE", f"/v1/models/{self.model}", self.a_key)
        check(r["deleted"] is True and r["id"] == self.model, f"delete: {r}")
        expect_error(self.c.call("POST", "/v1/chat/completions", self.a_key,
                                 {"model": self.model, "messages": [{"role": "user", "content": "x"}]}),
                     404, "model_not_found", what="a deleted model")
        return "withdrawn; 404 after"

    def check_sdk(self):
        sdk = os.environ.get("NC_SDK_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".cache", "sdk")
        check(os.path.isdir(os.path.join(sdk, "node_modules", "openai")), f"the openai SDK is not installed in {sdk} (tools/sdk.sh)")
        data = os.path.join(self.args.tmp, "sdk-train.jsonl")
        with open(data, "wb") as f:
            f.write(jsonl(self.pairs))
        bad = os.path.join(self.args.tmp, "sdk-bad.jsonl")
        with open(bad, "wb") as f:
            f.write(jsonl(self.pairs[:1]) + b'{"messages": "not a list"}\n')
        r = subprocess.run(["node", os.path.join(os.path.dirname(os.path.abspath(__file__)), "fine_tuning_sdk.mjs"),
                            f"http://127.0.0.1:{self.server.port}/v1", sdk, self.a_key, self.b_key, BASE, data,
                            self.pairs[0][0], self.pairs[0][1], bad], capture_output=True, text=True, timeout=600)
        check(r.returncode == 0, f"the SDK suite failed:\n{r.stdout}{r.stderr[-3000:]}")
        return r.stdout.strip().splitlines()[-1]

    def check_crash(self):
        spent0 = self.spent_micros(self.a.admin)
        j = self.create(self.a_key, self.file, suffix="crash", seed=91732,
                        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3}}})
        jid = j["id"]
        deadline = time.time() + 120
        while not any(e["type"] == "metrics"
                      for e in self.c.ok("GET", f"/v1/fine_tuning/jobs/{jid}/events?limit=5", self.a_key)["data"]):
            check(time.time() < deadline, "no step in 120 s")
            time.sleep(0.2)
        self.server.proc.send_signal(signal.SIGKILL)
        self.server.proc.wait()
        deadline = time.time() + 30
        while self.trainers(91732) and time.time() < deadline:  # the sandbox dies with its parent
            time.sleep(0.1)
        check(not self.trainers(91732), "the trainer died with the server")
        self.server.port = None
        self.c = self.server_client = self.server.start()
        done, seen = self.wait(self.a_key, jid, ("succeeded", "failed", "cancelled"))
        evs = [e["message"] for e in self.c.ok("GET", f"/v1/fine_tuning/jobs/{jid}/events?limit=100", self.a_key)["data"]]
        check(done["status"] == "succeeded", f"after the restart: {done['status']} {done.get('error')} {evs[:6]}")
        check(any("requeued" in m for m in evs), f"an event says it was requeued: {evs}")
        check(self.answer(self.a_key, done["fine_tuned_model"], self.pairs[0][0]) is not None, "served")
        want = (done["trained_tokens"] * PRICE_PER_MTOK + 999_999) // 1_000_000
        deadline = time.time() + 10
        while self.spent_micros(self.a.admin) - spent0 < want and time.time() < deadline:
            time.sleep(0.2)
        spent = self.spent_micros(self.a.admin) - spent0
        check(spent == want, f"billed once: {spent} micro-USD, want {want}")
        return f"requeued after SIGKILL, succeeded, billed once ({spent} micro-USD)"

    def run(self):
        self.t0 = int(time.time()) - 60
        self.setup()
        steps = [("train", self.check_train), ("learned", self.check_learned), ("tenants", self.check_tenants),
                 ("billing", self.check_billing), ("refuse", self.check_refuse), ("cancel", self.check_cancel),
                 ("delete", self.check_delete), ("sdk", self.check_sdk), ("crash", self.check_crash)]
        if self.args.executor == "slurm":
            steps = [s for s in steps if s[0] in ("train", "learned", "tenants", "billing", "cancel", "sdk")]
        return run_steps(steps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--neocloud", required=True)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    ap.add_argument("--pg-url-file")
    ap.add_argument("--executor", default="local", choices=["local", "slurm"])
    ap.add_argument("--slurm-dir", help="tools/slurm.sh's directory (its env file names SLURM_CONF)")
    args = ap.parse_args()
    shutil.rmtree(args.tmp, ignore_errors=True)
    os.makedirs(args.tmp)
    base = os.path.join(args.tmp, "tiny-base.gguf")
    with open(os.path.join(args.tmp, "template.jinja"), "w") as f:
        f.write(TEMPLATE)
    r = subprocess.run([args.neocloud, "model", "synth", "--vocab", args.vocab, "--shape", "tiny", "--type", "f16",
                        "--seed", "3", "--chat-template", os.path.join(args.tmp, "template.jinja"), "--out", base],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        print(f"FAIL start: synth: {r.stderr}")
        return 1
    args.serve_args = ["-m", f"{base}:{BASE}", "--jobs-dir", os.path.join(args.tmp, "jobs"),
                       "--files-dir", os.path.join(args.tmp, "files"),
                       "--jobs-heartbeat", "1", "--jobs-grace", "2", "--fine-tune-threads", "2", "-c", "2048"]
    if args.executor == "slurm":
        try:
            args.serve_args += ["--executor", "slurm", "--slurm-conf", slurm_conf_of(args.slurm_dir)]
        except Fail as e:
            print(f"FAIL start: {e}", flush=True)
            return 1
    else:
        args.serve_args += ["--gpus", "2"]
    return run_server_suite(FineTuningTest(args))


if __name__ == "__main__":
    sys.exit(main())
