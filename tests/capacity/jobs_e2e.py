#!/usr/bin/env python3
"""End-to-end test of GPU job rental over HTTP: `neocloud serve --db ... --gpus 4` (4 simulated GPUs on
this machine, the local executor) and the `neocloud jobs` CLI. Each named step prints when it passes:
  1 run        a 2-GPU job sees exactly its GPUs (CUDA_VISIBLE_DEVICES), its log and events; the CLI
               submits, follows the log, waits and lists
  2 bola       org B never sees, lists, reads the logs of or cancels org A's jobs (404 like a missing job)
  3 quota      the operator sets org B's GPU quota; B's job waits with reason "quota"; a tenant admin key
               cannot set quotas (403); B reads its own quota and use
  4 preempt    a spot job holding every GPU is preempted by an on-demand job (SIGTERM first), requeued,
               and runs again once the GPUs are free; a job that can never fit is refused at submit
  5 reserve    a reservation of 2 GPUs preempts a spot job when it starts, runs its org's job inside its GPUs
               (another org cannot use it: 404), stops that job at its end (timed_out), and is refused when
               the GPUs are already promised (409)
  6 ledger     every ended segment is in the usage ledger exactly once (source neocloud/capacity, id
               job/segment), with GPU-seconds = ceil(GPUs x run time) of the job's own segment times, and
               priced by the operator's per-GPU-second price
  7 restart    the server is killed (SIGKILL) while a job runs and started again: the job's history is
               kept, its segment is closed at its last heartbeat, metered once, and the job is held
               (queued, pending_reason "held") until `neocloud jobs release` queues it: it runs again
Usage: jobs_e2e.py --neocloud BIN --vocab VOCAB.gguf --tmp DIR [--db sqlite|postgres --pg-url-file F]
                   [--executor slurm --slurm-dir DIR]   (the ctest fixture's Slurm: 1 node, 4 fake GPUs)
"""
import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gateway"))
from gateway_e2e import Backend, Client, Fail, Org, Server, check, run_steps, slurm_conf_of  # noqa: E402


class JobsTest:
    def __init__(self, args):
        self.args = args
        self.backend = Backend(args)
        self.server = Server(args, self.backend)

    def start(self):
        self.c = self.server.start()
        self.op = self.server.admin_key

    def wait_job(self, key, jid, pred, timeout=60, what=""):
        deadline = time.time() + timeout
        while True:
            j = self.c.ok("GET", f"/v1/jobs/{jid}", key, status=(200,))
            if pred(j):
                return j
            if time.time() >= deadline:
                raise Fail(f"job {jid} did not reach {what} in {timeout} s: {json.dumps(j)}{self.slurm_state()}")
            time.sleep(0.1)

    def slurm_state(self):
        """What Slurm says about its jobs and steps, and the end of its logs (for a failure's message)."""
        if self.args.executor != "slurm":
            return ""
        env = dict(os.environ, SLURM_CONF=self.args.slurm_conf)
        out = []
        for argv in (["squeue", "--states=all", "-o", "%i %j %T %r %S %e"], ["squeue", "--states=all", "-s"]):
            r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30)
            out.append(f"$ {' '.join(argv)}\n{r.stdout}{r.stderr}")
        for name in ("slurmctld.log", "slurmd.log"):
            path = os.path.join(self.args.slurm_dir, name)
            if os.path.exists(path):
                out.append(f"$ tail -40 {path}\n" + "".join(open(path, errors="replace").readlines()[-40:]))
        return "\n" + "\n".join(out)

    def done(self, key, jid, timeout=60):
        return self.wait_job(key, jid, lambda j: j["status"] not in ("queued", "running"), timeout, "an end")

    def submit(self, key, body, status=(200,)):
        return self.c.ok("POST", "/v1/jobs", key, body, status=status)

    def logs(self, key, jid):
        return self.c.ok("GET", f"/v1/jobs/{jid}/logs", key, status=(200,))["data"]

    def cli(self, key, *argv):
        env = dict(os.environ, NEOCLOUD_URL=f"http://127.0.0.1:{self.server.port}", NEOCLOUD_API_KEY=key)
        return subprocess.run([self.args.neocloud, "jobs", *argv], capture_output=True, text=True, env=env, timeout=120)

    # ---------------------------------------------------------------------------------------------
    def setup(self):
        self.a = Org(self, "gpu-a")
        self.b = Org(self, "gpu-b")
        self.a_proj = self.a.project("train")
        self.b_proj = self.b.project("train")
        self.a_key, _ = self.a.key(self.a_proj, "a-jobs")
        self.b_key, _ = self.b.key(self.b_proj, "b-jobs")
        self.price = 1000  # micros per GPU-second (3.6 USD per GPU-hour)
        nodes = self.c.ok("GET", "/v1/admin/nodes", self.op, status=(200,))["data"]
        self.gpu_type = nodes[0]["gpu_type"]  # "sim" (local) or Slurm's gres type
        for cls in ("on-demand", "spot", "reservation", "in-reservation"):
            self.c.ok("POST", "/v1/admin/prices", self.op, {"item": f"gpu-seconds/{self.gpu_type}/{cls}", "per_unit": self.price,
                                                         "effective_from": 0})
        self.jobs = []  # (key, id) of every job made, for the ledger check
        self.reservations = []  # (key, id)

    def check_run(self):
        j = self.submit(self.a_key, {"command": "sh", "args": ["-c", "echo gpus=$CUDA_VISIBLE_DEVICES ws=$WORLD_SIZE; "
                                                               "echo err >&2; sleep 0.5"], "gpus": 2, "name": "two"})
        check(j["status"] == "queued" and j["object"] == "job", f"submit answers the queued job: {j}")
        self.jobs.append((self.a_key, j["id"]))
        d = self.done(self.a_key, j["id"])
        check(d["status"] == "succeeded" and d["exit_code"] == 0, f"the job succeeded: {d}")
        seg = d["segments"][0]
        gpus = seg["nodes"][0]["gpus"]
        log = self.logs(self.a_key, j["id"])
        check(len(gpus) == 2 and log == f"gpus={gpus[0]},{gpus[1]} ws=1\nerr\n", f"it saw exactly its GPUs {gpus}: {log!r}")
        check([e["type"] for e in d["events"]] == ["submitted", "started", "succeeded"], f"events: {d['events']}")
        # `sleep 0.5` measured within 1 s (Slurm keeps whole seconds; the executor refines them by what it saw).
        check(abs(seg["seconds"] - 0.5) <= 1.0 and abs(d["gpu_seconds"] - 2 * seg["seconds"]) < 1e-6, f"gpu_seconds: {d}")
        # The CLI: submit, follow the log, wait, list.
        r = self.cli(self.a_key, "submit", "--gpus", "1", "--name", "cli-job", "--", "sh", "-c",
                     "for i in 1 2 3; do echo line $i; sleep 0.2; done")
        check(r.returncode == 0 and r.stdout.strip().startswith("job_"), f"jobs submit: {r.stdout}{r.stderr}")
        cid = r.stdout.strip()
        self.jobs.append((self.a_key, cid))
        r = self.cli(self.a_key, "logs", "-f", cid)
        check(r.returncode == 0 and r.stdout == "line 1\nline 2\nline 3\n", f"jobs logs -f: {r.stdout!r} {r.stderr}")
        r = self.cli(self.a_key, "wait", cid)
        check(r.returncode == 0 and r.stdout.strip() == "succeeded", f"jobs wait: {r.stdout} {r.stderr}")
        r = self.cli(self.a_key, "list")
        check(r.returncode == 0 and cid in r.stdout and j["id"] in r.stdout and "cli-job" in r.stdout, f"jobs list: {r.stdout}")
        r = self.cli(self.a_key, "submit", "--gpus", "99", "--", "true")
        check(r.returncode == 1 and "can ever host" in r.stderr, f"an impossible job is refused: {r.stdout} {r.stderr}")
        return f"saw GPUs {gpus}; CLI submit/logs -f/wait/list"

    def check_bola(self):
        jid = self.jobs[0][1]
        for method, path in (("GET", f"/v1/jobs/{jid}"), ("GET", f"/v1/jobs/{jid}/logs"), ("POST", f"/v1/jobs/{jid}/cancel")):
            r = self.c.call(method, path, self.b_key, {} if method == "POST" else None)
            check(r.status == 404, f"org B {method} {path}: expected 404, got {r}")
            r2 = self.c.call(method, path.replace(jid, "job_0000000000000000"), self.b_key, {} if method == "POST" else None)
            check(r2.status == 404 and r2.json()["error"]["type"] == r.json()["error"]["type"],
                  f"another org's job looks exactly like a missing one: {r} vs {r2}")
        listed = self.c.ok("GET", "/v1/jobs", self.b_key, status=(200,))["data"]
        check(listed == [], f"org B lists none of A's jobs: {listed}")
        r = self.c.call("GET", "/v1/jobs", None)
        check(r.status == 401, f"no key: 401, got {r}")
        # Inside one organization, another project's key sees nothing of this project's job either; the
        # organization's admin key sees every project's jobs.
        other_proj = self.a.project("other")
        other_key, _ = self.a.key(other_proj, "other-jobs")
        self.a_other_key = other_key
        for method, path in (("GET", f"/v1/jobs/{jid}"), ("GET", f"/v1/jobs/{jid}/logs"), ("POST", f"/v1/jobs/{jid}/cancel")):
            r = self.c.call(method, path, other_key, {} if method == "POST" else None)
            check(r.status == 404, f"org A project 'other' {method} {path}: expected 404, got {r}")
        listed = [j["id"] for j in self.c.ok("GET", "/v1/jobs", other_key, status=(200,))["data"]]
        check(jid not in listed, f"project 'other' lists none of project 'train''s jobs: {listed}")
        seen = self.c.ok("GET", f"/v1/jobs/{jid}", self.a.admin, status=(200,))
        check(seen["id"] == jid, f"A's admin key reads the project's job: {seen}")
        # The list comes a page at a time, newest first; the pages together are the whole list.
        whole, after = [], None
        while True:
            page = self.c.ok("GET", "/v1/jobs?limit=1" + (f"&after={after}" if after else ""), self.a_key, status=(200,))
            whole += [j["id"] for j in page["data"]]
            check(len(page["data"]) <= 1, f"limit=1 gave {len(page['data'])} jobs")
            if not page["has_more"]:
                break
            after = page["last_id"]
        check(jid in whole and len(whole) == len(set(whole)) >= 2, f"paging with limit=1 gave {whole}")
        r = self.c.call("GET", "/v1/jobs?limit=1000", self.a_key)
        check(r.status == 400 and r.json()["error"]["param"] == "limit", f"limit=1000: expected 400, got {r}")
        return "B: 404 on get/logs/cancel, empty list; A's other project: 404, not listed; no key: 401"

    def check_quota(self):
        r = self.c.call("PUT", f"/v1/admin/organizations/{self.b.id}/gpu_quota", self.b.admin, {"gpus": 100})
        check(r.status == 403, f"a tenant admin cannot set its GPU quota: {r}")
        q = self.c.ok("PUT", f"/v1/admin/organizations/{self.b.id}/gpu_quota", self.op, {"gpus": 1}, status=(200,))
        check(q["data"][0]["gpus"] == 1.0, f"quota set: {q}")
        r = self.c.call("PUT", "/v1/admin/organizations/org_missing/gpu_quota", self.op, {"gpus": 1})
        check(r.status == 404, f"quota for a missing org: 404, got {r}")
        j = self.submit(self.b_key, {"command": "true", "gpus": 2})
        self.jobs.append((self.b_key, j["id"]))
        time.sleep(0.6)
        v = self.c.ok("GET", f"/v1/jobs/{j['id']}", self.b_key, status=(200,))
        check(v["status"] == "queued" and v["pending_reason"] == "quota", f"over quota: waits with reason quota: {v}")
        mine = self.c.ok("GET", "/v1/jobs/quotas", self.b_key, status=(200,))["data"]
        check(mine[0]["gpu_type"] == "" and mine[0]["gpus"] == 1.0, f"B reads its quota: {mine}")
        self.c.ok("POST", f"/v1/jobs/{j['id']}/cancel", self.b_key, {}, status=(200,))
        check(self.done(self.b_key, j["id"])["status"] == "cancelled", "the waiting job is cancelled")
        self.c.ok("PUT", f"/v1/admin/organizations/{self.b.id}/gpu_quota", self.op, {"gpus": None}, status=(200,))
        nodes = self.c.ok("GET", "/v1/admin/nodes", self.op, status=(200,))["data"]
        check(len(nodes) == 1 and nodes[0]["gpus"] == 4 and nodes[0]["status"] == "up", f"the operator sees the node: {nodes}")
        r = self.c.call("GET", "/v1/admin/nodes", self.a.admin)
        check(r.status == 403, f"a tenant admin cannot list the nodes: {r}")
        return "B's 2-GPU job waits on a 1-GPU quota; tenant admin 403; cancelled"

    def check_preempt(self):
        spot = self.submit(self.b_key, {"command": "sh", "args": ["-c", "trap 'echo got TERM; exit 0' TERM; echo start; "
                                                                  "sleep 60 & wait"], "gpus": 4, "priority": "spot"})
        self.jobs.append((self.b_key, spot["id"]))
        self.wait_job(self.b_key, spot["id"], lambda j: j["status"] == "running", what="running")
        deadline = time.time() + 30  # its tasks run (on Slurm a moment after the launch): it can trap TERM
        while "start" not in self.logs(self.b_key, spot["id"]) and time.time() < deadline:
            time.sleep(0.05)
        od = self.submit(self.a_key, {"command": "sh", "args": ["-c", "echo on-demand; sleep 0.5"], "gpus": 2})
        self.jobs.append((self.a_key, od["id"]))
        d = self.done(self.a_key, od["id"])
        check(d["status"] == "succeeded", f"the on-demand job ran: {d}")
        s = self.wait_job(self.b_key, spot["id"], lambda j: len(j["segments"]) == 2 and j["status"] == "running",
                          what="running again (segment 1)")
        types = [e["type"] for e in s["events"]]
        for t in ("preempting", "preempted", "requeued"):
            check(t in types, f"the spot job's events have {t}: {types}")
        check("got TERM" in self.logs(self.b_key, spot["id"]), "the spot job got SIGTERM before it was stopped")
        check(d["segments"][0]["started_at_us"] >= s["segments"][0]["ended_at_us"],
              "the on-demand job started only after the spot job had stopped")
        self.c.ok("POST", f"/v1/jobs/{spot['id']}/cancel", self.b_key, {}, status=(200,))
        check(self.done(self.b_key, spot["id"])["status"] == "cancelled", "the spot job is cancelled")
        return f"spot {spot['id']}: preempted, requeued, ran again; on-demand ran in between"

    def check_reserve(self):
        spot = self.submit(self.b_key, {"command": "sh", "args": ["-c", "sleep 60"], "gpus": 4, "priority": "spot"})
        self.jobs.append((self.b_key, spot["id"]))
        self.wait_job(self.b_key, spot["id"], lambda j: j["status"] == "running", what="running")
        r = self.c.ok("POST", "/v1/reservations", self.a_key, {"gpu_type": self.gpu_type, "gpus": 2, "duration_seconds": 4,
                                                                "name": "train-window"}, status=(200,))
        rid = r["id"]
        self.reservations.append((self.a_key, rid))
        check(r["status"] == "pending" and r["gpus"] == 2, f"reservation created: {r}")
        # Another project of A neither sees, cancels nor uses it.
        for method, path in (("GET", f"/v1/reservations/{rid}"), ("POST", f"/v1/reservations/{rid}/cancel")):
            r2 = self.c.call(method, path, self.a_other_key, {} if method == "POST" else None)
            check(r2.status == 404, f"A's other project {method} {path}: expected 404, got {r2}")
        listed = [x["id"] for x in self.c.ok("GET", "/v1/reservations", self.a_other_key, status=(200,))["data"]]
        check(rid not in listed, f"A's other project lists the reservation: {listed}")
        r2 = self.c.call("POST", "/v1/jobs", self.a_other_key, {"command": "true", "gpus": 1, "reservation": rid})
        check(r2.status == 404, f"A's other project runs a job in the reservation: expected 404, got {r2}")
        check(r.get("project_id") == self.a_proj, f"the reservation names its project: {r}")
        over = self.c.call("POST", "/v1/reservations", self.b_key, {"gpu_type": self.gpu_type, "gpus": 3, "duration_seconds": 60})
        check(over.status == 409, f"3 more GPUs are not free to reserve while 2 of 4 are promised: {over}")
        inside = self.submit(self.a_key, {"command": "sh", "args": ["-c", "echo in $CUDA_VISIBLE_DEVICES; sleep 60"],
                                          "gpus": 1, "reservation": rid})
        self.jobs.append((self.a_key, inside["id"]))
        r = self.c.call("POST", "/v1/jobs", self.b_key, {"command": "true", "gpus": 1, "reservation": rid})
        check(r.status == 404, f"another org cannot run in the reservation: {r}")
        act = None
        deadline = time.time() + 20
        while time.time() < deadline:
            act = self.c.ok("GET", f"/v1/reservations/{rid}", self.a_key, status=(200,))
            if act["status"] == "active":
                break
            time.sleep(0.1)
        check(act and act["status"] == "active" and len(act["nodes"]) == 1 and len(act["nodes"][0]["gpus"]) == 2,
              f"the reservation holds 2 GPUs: {act}")
        j = self.wait_job(self.a_key, inside["id"], lambda x: x["status"] == "running", what="running in the reservation")
        held = set(act["nodes"][0]["gpus"])
        check(set(j["segments"][0]["nodes"][0]["gpus"]) <= held, f"the job runs on the reserved GPUs {held}: {j['segments']}")
        sp = self.c.ok("GET", f"/v1/jobs/{spot['id']}", self.b_key, status=(200,))
        check("preempted" in [e["type"] for e in sp["events"]], f"the spot job was preempted for the reservation: {sp['events']}")
        d = self.done(self.a_key, inside["id"], timeout=30)
        check(d["status"] == "timed_out" and any(e["type"] == "stopping" for e in d["events"]),
              f"the job is stopped at the reservation's end: {d['status']} {d['events']}")
        end = self.c.ok("GET", f"/v1/reservations/{rid}", self.a_key, status=(200,))
        deadline = time.time() + 20
        while end["status"] != "ended" and time.time() < deadline:
            time.sleep(0.1)
            end = self.c.ok("GET", f"/v1/reservations/{rid}", self.a_key, status=(200,))
        check(end["status"] == "ended" and end["released_at_us"], f"the reservation ended and released its GPUs: {end}")
        r = self.c.call("GET", f"/v1/reservations/{rid}", self.b_key)
        check(r.status == 404, f"org B cannot see A's reservation: {r}")
        self.c.ok("POST", f"/v1/jobs/{spot['id']}/cancel", self.b_key, {}, status=(200,))
        self.done(self.b_key, spot["id"])
        return f"{rid}: held GPUs {sorted(held)} for {(end['released_at_us'] - end['activated_at_us']) / 1e6:.1f} s"

    def ledger_rows(self):
        return self.backend.query("SELECT org_id, id, item, quantity, cost_micros, data, api_key_id FROM usage_events "
                                  "WHERE source = 'neocloud/capacity' ORDER BY id")

    def check_ledger(self):
        time.sleep(0.5)
        rows = self.ledger_rows()
        by_id = {}
        key_of = {}
        for org, eid, item, qty, cost, data, key_id in rows:
            check(eid not in by_id, f"segment {eid} is in the ledger once: {rows}")
            by_id[eid] = (org, item, int(qty), int(cost), json.loads(data))
            key_of[eid] = key_id
        n = 0
        for key, jid in self.jobs:
            j = self.c.ok("GET", f"/v1/jobs/{jid}", key, status=(200,))
            org = self.a.id if key == self.a_key else self.b.id
            for seg in j["segments"]:
                if seg["ended_at_us"] is None:
                    continue
                eid = f"{jid}/{seg['index']}"
                check(eid in by_id, f"segment {eid} ({seg}) is in the ledger: {sorted(by_id)}")
                got_org, item, qty, cost, data = by_id[eid]
                want = math.ceil(round(seg["gpus"] * 1000) * (seg["ended_at_us"] - seg["started_at_us"]) / 1e9)
                cls = "in-reservation" if j["reservation"] else j["priority"]
                check(got_org == org and item == f"gpu-seconds/{self.gpu_type}/{cls}", f"{eid}: org/item {got_org} {item}")
                check(qty == want, f"{eid}: {qty} GPU-seconds, want ceil({seg['gpus']} x {seg['seconds']} s) = {want}")
                check(abs(qty - seg["gpus"] * seg["seconds"]) <= seg["gpus"], f"{eid}: within 1 s per GPU of the run time")
                check(cost == qty * self.price, f"{eid}: cost {cost} = {qty} x {self.price}")
                check((key_of[eid] or "").startswith("key_"), f"{eid}: billed to its submitting key, got {key_of[eid]!r}")
                check(data["started_at_us"] == seg["started_at_us"] and data["ended_at_us"] == seg["ended_at_us"], f"{eid}: {data}")
                n += 1
        for key, rid in self.reservations:
            r = self.c.ok("GET", f"/v1/reservations/{rid}", key, status=(200,))
            eid = f"{rid}/0"
            check(eid in by_id, f"reservation {rid} is in the ledger: {sorted(by_id)}")
            got_org, item, qty, cost, data = by_id[eid]
            want = math.ceil(r["gpus"] * 1000 * (r["released_at_us"] - r["activated_at_us"]) / 1e9)
            check(item == f"gpu-seconds/{self.gpu_type}/reservation" and qty == want and cost == qty * self.price,
                  f"{eid}: {item} {qty} (want {want}) {cost}")
            n += 1
        check(n == len(by_id), f"no ledger row without a segment: {n} segments, {len(by_id)} rows")
        return f"{n} segments, each once, priced at {self.price} micros per GPU-second"

    def check_restart(self):
        marker = f"echo run {os.getpid()}; sleep 60"  # unique: other tests' jobs may run the same way
        j = self.submit(self.a_key, {"command": "sh", "args": ["-c", marker], "gpus": 1})
        self.jobs.append((self.a_key, j["id"]))
        self.wait_job(self.a_key, j["id"], lambda x: x["status"] == "running", what="running")
        time.sleep(2.5)  # heartbeats saved (the server's default is every 10 s; the test runs it every 1 s)
        self.server.proc.send_signal(signal.SIGKILL)
        self.server.proc.wait(timeout=20)
        # Sandboxed local jobs die with the server (bwrap --die-with-parent); Slurm's outlive it until the
        # restarted server stops them: nothing may keep using GPUs the scheduler hands out again.
        time.sleep(0.5)
        alive = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
        sandboxed = "job sandbox on" in self.server.log_tail(200)
        check(bool(alive) != sandboxed or self.args.executor == "slurm",
              f"sandboxed jobs die with the server, others outlive it: alive={alive} sandboxed={sandboxed}")
        self.server.port = None
        self.c = self.server.start()
        before = len(self.ledger_rows())
        # Not relaunched blindly: held until released (a job that kills the server cannot loop).
        h = self.wait_job(self.a_key, j["id"], lambda x: x["status"] == "queued" and x["pending_reason"] == "held",
                          what="held after the restart")
        check("held" in [e["type"] for e in h["events"]] and len(h["segments"]) == 1, f"held: {h['events']}")
        time.sleep(1.5)
        check(self.c.ok("GET", f"/v1/jobs/{j['id']}", self.a_key, status=(200,))["status"] == "queued",
              "a held job stays queued")
        r = self.cli(self.a_key, "release", j["id"])
        check(r.returncode == 0 and "queued" in r.stdout, f"jobs release: {r.stdout}{r.stderr}")
        self.c.ok("POST", f"/v1/jobs/{j['id']}/release", self.a_key, {}, status=(409,))  # not held any more
        r = self.wait_job(self.a_key, j["id"], lambda x: len(x["segments"]) == 2 and x["status"] == "running",
                          what="running again after its release")
        seg0 = r["segments"][0]
        left = [p for p in alive if os.path.exists(f"/proc/{p}") and
                marker in open(f"/proc/{p}/cmdline", "rb").read().decode(errors="replace").replace("\0", " ")]
        check(not left, f"the restarted server stopped what the killed one left running: {left} still alive")
        check(seg0["end"] == "interrupted" and seg0["ended_at_us"] > seg0["started_at_us"], f"segment 0 closed: {seg0}")
        check("interrupted" in [e["type"] for e in r["events"]], f"events: {r['events']}")
        self.c.ok("POST", f"/v1/jobs/{j['id']}/cancel", self.a_key, {}, status=(200,))
        check(self.done(self.a_key, j["id"])["status"] == "cancelled", "cancelled after the restart")
        history = self.c.ok("GET", f"/v1/jobs/{self.jobs[0][1]}", self.a_key, status=(200,))
        check(history["status"] == "succeeded", f"history kept across the restart: {history['status']}")
        self.check_ledger()
        return (f"segment 0 interrupted at its heartbeat ({seg0['seconds']:.1f} s), metered once; {before} ledger rows; "
                f"its processes {'died with the server' if not alive else 'were stopped by the restart'}")

    def run(self):
        steps = [("run", self.check_run), ("bola", self.check_bola), ("quota", self.check_quota),
                 ("preempt", self.check_preempt), ("reserve", self.check_reserve), ("ledger", self.check_ledger),
                 ("restart", self.check_restart)]
        self.setup()
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
    args.serve_args = ["--jobs-dir", os.path.join(args.tmp, "jobs"), "--jobs-heartbeat", "1", "--jobs-grace", "2"]
    if args.executor == "slurm":
        try:
            conf = slurm_conf_of(args.slurm_dir)
        except Fail as e:
            print(f"FAIL start: {e}", flush=True)
            return 1
        args.serve_args += ["--executor", "slurm", "--slurm-conf", conf]
        args.slurm_conf = conf
    else:
        args.serve_args += ["--gpus", "4"]
    t = JobsTest(args)
    t0 = time.time()
    failures = ["start"]
    try:
        t.backend.create()
        t.start()
        failures = t.run()
    except Fail as e:
        print(f"FAIL start: {e}", flush=True)
    finally:
        t.server.stop()
        if failures:
            print(t.server.log_tail(60), flush=True)
        t.backend.drop()
    if failures:
        print(f"FAIL: {len(failures)} step(s) failed: {', '.join(failures)} ({time.time() - t0:.1f}s)", flush=True)
        return 1
    print(f"PASS: jobs end to end on {args.db}, {args.executor} executor ({time.time() - t0:.1f}s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
