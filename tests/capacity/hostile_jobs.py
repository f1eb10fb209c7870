#!/usr/bin/env python3
"""A hostile tenant's jobs against `neocloud serve --gpus 4` (local executor, sandbox required when this
machine can: root and bubblewrap). Each job tries the attacks of issue 15 and prints what it could do
(`RESULT name value` lines in its log); the test asserts on them and on the server afterwards:
  1 confine   org A's job cannot read the admin key file, the SQLite database, org B's job log or working
              files, nor list the jobs directory; cannot write the host's files (aimed at the test's own
              directory); runs as an unprivileged uid of its own; sees only its own processes; its `kill -9`
              of the server and `kill -9 -1` reach nothing outside it; the server is alive afterwards
  2 gpus      a 2-GPU job sees exactly its two GPU device nodes (and the shared control node) and its
              CUDA_VISIBLE_DEVICES; setting CUDA_VISIBLE_DEVICES / RANK itself is a 400 naming it
  3 escape    a job's `setsid` and double-forked children are gone within the grace period, both when
              the job ends by itself and when it is cancelled (the job itself gets SIGTERM and its grace
              period first); no zombie stays under the server
  4 forge     a tenant's usage event under neocloud's own sources is refused; a job's working_dir, an env
              value with NUL, are 400s; a job killed at its time limit reports a non-zero exit status
  5 budget    jobs are held against the organization's budget for GPUs x max duration: the second job that
              does not fit is a 429 insufficient_quota; chats sent while the first job runs are admitted only
              while the budget has room; at the end the budget's spend is within its limit (the documented
              bound for SQLite's in-process budgets: 0). A budget lowered under a running job stops it
              after --job-budget-grace, billed for what it ran.
  6 limits    where cgroups are on (v2, or this machine's v1): a fork bomb stops at --job-pids-max and an
              allocation past the job's memory_mib fails; the server is unharmed
  7 logs      a job's 20 MB of output is cut at --job-log-max-bytes, with a line saying so (both executors)
  8 image     where podman is (local executor, root): a job naming a container image (one this test builds
              from busybox and imports into the server's image storage) runs with the image's file system,
              Env, Entrypoint and WorkingDir, as its organization's uid, and the step 1 attacks fail in it;
              its GPU device nodes and escaped children are as in steps 2 and 3; its container is removed
              after its end and after its cancel; an image that is not there fails the job, naming the fix;
              a malformed reference is a 400. Without images (Slurm here) a job naming one is a 400.
The kill attacks are only tried when the job is in a PID namespace of its own and not root (they are
aimed at the server this test started and at the job's own namespace, never at this machine).
The same attacks run on the Slurm executor with --executor slurm (the ctest fixture's one-node Slurm).
Usage: hostile_jobs.py --neocloud BIN --vocab VOCAB.gguf --tmp DIR [--executor slurm --slurm-dir DIR]
"""
import argparse
import json
import threading
import os
import shutil
import tempfile
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gateway"))
from gateway_e2e import Backend, Fail, Org, Server, check, report_result, run_steps, slurm_conf_of  # noqa: E402

ATTACK = r'''
r() { echo "RESULT $1 $2"; }
cat "$KEYFILE" >/dev/null 2>&1 && r keyfile READ || r keyfile denied
head -c 16 "$DBFILE" 2>/dev/null | grep -q SQLite && r db READ || r db denied
cat "$VICTIM_LOG" 2>/dev/null | grep -q B-SECRET && r victim_log READ || r victim_log denied
cat "$VICTIM_WORK/secret" 2>/dev/null | grep -q B-SECRET && r victim_work READ || r victim_work denied
ls "$JOBS_DIR" 2>/dev/null | grep -q job_ && r jobs_dir LISTED || r jobs_dir denied
touch "$TESTDIR/pwned" 2>/dev/null && r write_testdir WROTE || r write_testdir denied
echo mine > "$HOME/own-file" && r write_home ok || r write_home FAILED
r uid "$(id -u)"
r procs "$(ls /proc | grep -c '^[0-9]')"
kill -0 "$SERVER_PID" 2>/dev/null && r see_server YES || r see_server no
if [ "$(readlink /proc/self/ns/pid)" != "$HOST_PIDNS" ] && [ "$(id -u)" != 0 ]; then
  kill -9 "$SERVER_PID" 2>/dev/null && r kill_server SENT || r kill_server refused
  kill -9 "$PPID" 2>/dev/null
  kill -9 -1 2>/dev/null
  r kill_all contained
else
  r kill_server skipped-not-isolated
  r kill_all skipped-not-isolated
fi
'''

ESCAPE = r'''
setsid sh -c "sleep 300; : $MARK-setsid" </dev/null >/dev/null 2>&1 &
( sh -c "sleep 301; : $MARK-dfork" </dev/null >/dev/null 2>&1 & )
sleep 0.3
echo RESULT escapes started
'''


def passable_by_others(path):
    """Whether every directory from / down to path lets other users through (o+x)."""
    path = os.path.abspath(path)
    while True:
        if not os.stat(path).st_mode & 0o001:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def results(log):
    out = {}
    for line in log.splitlines():
        if line.startswith("RESULT "):
            parts = line.split(" ", 2)
            out[parts[1]] = parts[2] if len(parts) > 2 else ""
    return out


def marked(mark):
    r = subprocess.run(["pgrep", "-f", mark], capture_output=True, text=True)
    return r.stdout.split()


class HostileJobs:
    def __init__(self, args):
        self.args = args
        self.backend = Backend(args)
        self.server = Server(args, self.backend)

    def start(self):
        self.c = self.server.start()
        self.op = self.server.admin_key
        log = self.server.log_tail(200)
        self.features = [line.split("neocloud: ", 1)[1] for line in log.splitlines()
                         if line.startswith("neocloud: job ") or "NOT SANDBOXED" in line]
        print(f"host features ({self.args.executor} executor): " + " | ".join(self.features), flush=True)
        self.gpu_type = self.c.ok("GET", "/v1/admin/nodes", self.op, status=(200,))["data"][0]["gpu_type"]

    def submit(self, key, body, status=(200,)):
        return self.c.ok("POST", "/v1/jobs", key, body, status=status)

    def done(self, key, jid, timeout=60):
        deadline = time.time() + timeout
        while True:
            j = self.c.ok("GET", f"/v1/jobs/{jid}", key, status=(200,))
            if j["status"] not in ("queued", "running"):
                return j
            check(time.time() < deadline, f"job {jid} did not end in {timeout} s: {json.dumps(j)}")
            time.sleep(0.1)

    def running(self, key, jid, timeout=60):
        deadline = time.time() + timeout
        while self.c.ok("GET", f"/v1/jobs/{jid}", key, status=(200,))["status"] != "running":
            check(time.time() < deadline, f"job {jid} did not start")
            time.sleep(0.1)

    def logs(self, key, jid):
        return self.c.ok("GET", f"/v1/jobs/{jid}/logs", key, status=(200,))["data"]

    def setup(self):
        self.a = Org(self, "hostile-a")
        self.b = Org(self, "victim-b")
        self.a_key, _ = self.a.key(self.a.project("p"), "a")
        self.b_key, _ = self.b.key(self.b.project("p"), "b")

    def server_alive(self):
        check(self.server.proc.poll() is None, f"the server died: {self.server.log_tail()}")
        check(self.c.call("GET", "/health", timeout=5).status == 200, "the server answers /health")

    # ---------------------------------------------------------------------------------------------
    def check_confine(self):
        jobs_dir = self.args.jobs_dir
        v = self.submit(self.b_key, {"command": "sh", "args": ["-c", "echo B-SECRET-LOG; echo B-SECRET-WORK > secret"],
                                     "gpus": 1})
        check(self.done(self.b_key, v["id"])["status"] == "succeeded", "the victim's job ran")
        victim_dir = os.path.join(jobs_dir, v["id"])
        check("B-SECRET-WORK" in open(os.path.join(victim_dir, "work", "secret")).read(), "the victim's file is there")
        env = {"KEYFILE": self.server.key_file, "DBFILE": self.backend.url.split(":", 1)[1],
               "VICTIM_LOG": os.path.join(victim_dir, "output.log"), "VICTIM_WORK": os.path.join(victim_dir, "work"),
               "JOBS_DIR": jobs_dir, "TESTDIR": self.args.tmp, "SERVER_PID": str(self.server.proc.pid),
               "HOST_PIDNS": os.readlink("/proc/self/ns/pid")}
        check(os.path.exists(env["DBFILE"]), f"the database file is {env['DBFILE']}")
        j = self.submit(self.a_key, {"command": "sh", "args": ["-c", ATTACK], "gpus": 1, "env": env})
        d = self.done(self.a_key, j["id"])
        log = self.logs(self.a_key, j["id"])
        r = results(log)
        check(d["status"] == "succeeded", f"the attack job ran to its end: {d['status']} {log!r}")
        for name in ("keyfile", "db", "victim_log", "victim_work", "jobs_dir", "write_testdir"):
            check(r.get(name) == "denied", f"{name}: {r.get(name)!r} (log: {log!r})")
        check(not os.path.exists(os.path.join(self.args.tmp, "pwned")), "nothing was written in the test's directory")
        check(r.get("write_home") == "ok", f"the job can write its own directory: {log!r}")
        check(r.get("uid", "0") != "0", f"the job ran as root: {log!r}")
        b_uid = os.stat(os.path.join(victim_dir, "work")).st_uid
        a_uid = os.stat(os.path.join(jobs_dir, j["id"], "work")).st_uid
        check(str(a_uid) == r["uid"] and a_uid != b_uid, f"each organization has its own uid: A {a_uid}, B {b_uid}")
        check(int(r.get("procs", "99")) <= 5, f"the job sees only its own processes: {r.get('procs')}")
        check(r.get("see_server") == "no", f"the job sees the server process: {log!r}")
        check(r.get("kill_server") == "refused" and r.get("kill_all") == "contained", f"kill attempts: {log!r}")
        self.server_alive()
        return f"uid {r['uid']} (victim {b_uid}); {r['procs']} processes visible; every read/write/kill denied"

    def check_gpus(self):
        j = self.submit(self.a_key, {"command": "sh", "args": ["-c", "echo devs=$(ls /dev | grep nvidia | tr '\\n' ,) "
                                                               "cuda=$CUDA_VISIBLE_DEVICES"], "gpus": 2})
        d = self.done(self.a_key, j["id"])
        gpus = d["segments"][0]["nodes"][0]["gpus"]
        log = self.logs(self.a_key, j["id"]).strip()
        want = ",".join(sorted([f"nvidia{g}" for g in gpus] + ["nvidiactl"])) + ","
        check(log == f"devs={want} cuda={gpus[0]},{gpus[1]}", f"GPUs {gpus}: the job saw {log!r}, want devs={want}")
        for var in ("CUDA_VISIBLE_DEVICES", "RANK", "NVIDIA_VISIBLE_DEVICES"):
            e = self.submit(self.a_key, {"command": "true", "gpus": 1, "env": {var: "0,1,2,3"}}, status=(400,))
            check(var in e["error"]["message"], f"the 400 names {var}: {e}")
        return f"saw {log}"

    def check_escape(self):
        server_pid = self.server.proc.pid
        grace = 2  # --jobs-grace
        # Ends by itself, leaving children behind.
        mark = f"hostile-{os.getpid()}-a"
        j = self.submit(self.a_key, {"command": "sh", "args": ["-c", ESCAPE], "gpus": 1, "env": {"MARK": mark}})
        d = self.done(self.a_key, j["id"])
        check(d["status"] == "succeeded", f"the escaping job ran: {d['status']} {self.logs(self.a_key, j['id'])!r}")
        deadline = time.time() + grace + 1
        while marked(mark) and time.time() < deadline:
            time.sleep(0.1)
        check(not marked(mark), f"children outlived the job's end: {marked(mark)}")
        # Cancelled while its escaped children run.
        mark2 = f"hostile-{os.getpid()}-b"
        trap = "trap 'echo got TERM; sleep 0.5; echo graceful exit; exit 0' TERM\n"
        j = self.submit(self.a_key, {"command": "sh", "args": ["-c", trap + ESCAPE + "sleep 600"], "gpus": 1,
                                     "env": {"MARK": mark2}})
        self.running(self.a_key, j["id"])
        deadline = time.time() + 10
        while len(marked(mark2)) < 2 and time.time() < deadline:
            time.sleep(0.1)
        check(len(marked(mark2)) >= 2, f"the escapes started: {marked(mark2)} {self.logs(self.a_key, j['id'])!r}")
        t0 = time.time()
        self.c.ok("POST", f"/v1/jobs/{j['id']}/cancel", self.a_key, {}, status=(200,))
        while marked(mark2) and time.time() < t0 + grace + 1:
            time.sleep(0.1)
        check(not marked(mark2), f"children outlived the cancel: {marked(mark2)}")
        gone_s = time.time() - t0
        check(self.done(self.a_key, j["id"])["status"] == "cancelled", "cancelled")
        log = self.logs(self.a_key, j["id"])
        check("graceful exit" in log, f"the cancelled job had its grace period (SIGTERM, then time to exit): {log!r}")
        def zombies():
            out = []
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        stat = open(f"/proc/{pid}/stat").read()
                    except OSError:
                        continue
                    fields = stat.rsplit(")", 1)[1].split()
                    if fields[0] == "Z" and int(fields[1]) == server_pid:
                        out.append(pid)
            return out
        deadline = time.time() + 3  # the executor reaps on its next polls (every 0.2 s)
        while zombies() and time.time() < deadline:
            time.sleep(0.1)
        check(not zombies(), f"zombies stay under the server: {zombies()}")
        self.server_alive()
        return f"escaped children gone at the job's end and {gone_s:.1f} s after the cancel; no zombies"

    def check_forge(self):
        ev = {"source": "neocloud/capacity", "id": "job_x/0", "type": "gpu", "item": f"gpu-seconds/{self.gpu_type}/on-demand",
              "quantity": 0}
        r = self.c.call("POST", "/v1/usage/events", self.a_key, ev)
        check(r.status in (400, 403), f"a tenant's event under neocloud/capacity: {r.status} {r.body[:200]!r}")
        e = self.submit(self.a_key, {"command": "pwd", "gpus": 1, "working_dir": "/"}, status=(400,))
        check("working_dir" in e["error"]["message"], f"working_dir: {e}")
        e = self.submit(self.a_key, {"command": "true", "gpus": 1, "env": {"X": "a\u0000b"}}, status=(400,))
        check("X" in e["error"]["message"], f"NUL in env: {e}")
        j = self.submit(self.a_key, {"command": "sleep", "args": ["30"], "gpus": 1, "max_duration_seconds": 1})
        d = self.done(self.a_key, j["id"])
        check(d["status"] == "timed_out" and d["exit_code"] not in (0, None), f"time limit: {d['status']} {d['exit_code']}")
        return f"forged event {r.status}; time-limited job exit_code {d['exit_code']}"

    def budgets(self, org):
        return {(b["scope"], b["scope_id"]): b for b in self.c.ok("GET", "/v1/organization/budgets", org.admin,
                                                                   status=(200,))["data"]}

    def check_budget(self):
        c_org, d_org = Org(self, "budget-c"), Org(self, "budget-d")
        c_key, _ = c_org.key(c_org.project("p"), "c")
        d_key, _ = d_org.key(d_org.project("p"), "d")
        for cls in ("on-demand", "spot"):
            self.c.ok("POST", "/v1/admin/prices", self.op, {"item": f"gpu-seconds/{self.gpu_type}/{cls}", "per_unit": 1000,
                                                         "effective_from": 0}, status=(201,))
        # 100 micro-USD per token: a 5-token chat holds a few thousand.
        self.c.ok("POST", "/v1/admin/prices", self.op, {"item": "tiny", "input_per_mtok": 100_000_000,
                                                     "output_per_mtok": 100_000_000, "effective_from": 0}, status=(201,))
        limit = 50_000
        self.c.ok("PUT", f"/v1/admin/organizations/{c_org.id}/budget", self.op, {"monthly_limit_micros": limit},
                  status=(200,))
        # 1 GPU x 30 s x 1000 = 30,000 held; a second such job does not fit in 50,000.
        j1 = self.submit(c_key, {"command": "sleep", "args": ["3"], "gpus": 1, "max_duration_seconds": 30})
        e = self.submit(c_key, {"command": "true", "gpus": 1, "max_duration_seconds": 30}, status=(429,))
        check(e["error"]["code"] == "insufficient_quota" and e["error"]["type"] == "insufficient_quota",
              f"the job over budget: {e}")
        self.running(c_key, j1["id"])
        answers = []

        def chat():
            r = self.c.call("POST", "/v1/chat/completions", c_key,
                            {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5})
            answers.append(r.status)
        threads = [threading.Thread(target=chat) for _ in range(12)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        check(self.done(c_key, j1["id"])["status"] == "succeeded", "the first job ran")
        check(200 in answers and 429 in answers, f"chats while the job ran: some admitted, some refused: {answers}")
        deadline = time.time() + 10
        while True:
            b = self.budgets(c_org)[("org", c_org.id)]
            if b["spent_micros"] >= 3000 or time.time() > deadline:
                break
            time.sleep(0.2)
        check(3000 <= b["spent_micros"] <= limit, f"spent within the budget, the job's GPU-seconds included: {b}")
        # A budget lowered under a running job: stopped after the grace period, billed for its run.
        self.c.ok("PUT", f"/v1/admin/organizations/{d_org.id}/budget", self.op, {"monthly_limit_micros": 1_000_000},
                  status=(200,))
        j3 = self.submit(d_key, {"command": "sleep", "args": ["60"], "gpus": 1, "max_duration_seconds": 60})
        self.running(d_key, j3["id"])
        t0 = time.time()
        self.c.ok("PUT", f"/v1/admin/organizations/{d_org.id}/budget", self.op, {"monthly_limit_micros": 10_000},
                  status=(200,))
        d = self.done(d_key, j3["id"], timeout=20)
        stopped_s = time.time() - t0
        check(d["status"] == "cancelled" and any("budget" in ev["detail"] for ev in d["events"]),
              f"the job over its lowered budget was stopped: {d['status']} {d['events']}")
        check(stopped_s < 6, f"stopped {stopped_s:.1f} s after the budget was lowered (heartbeat 1 s, grace 1 s)")
        deadline = time.time() + 10
        while self.budgets(d_org)[("org", d_org.id)]["spent_micros"] == 0 and time.time() < deadline:
            time.sleep(0.2)
        spent_d = self.budgets(d_org)[("org", d_org.id)]["spent_micros"]
        check(spent_d >= 1000, f"the stopped job was billed: {spent_d}")
        return (f"org C: 2nd job 429, chats {answers.count(200)} admitted / {answers.count(429)} refused, spent "
                f"{b['spent_micros']} of {limit}; org D's job stopped {stopped_s:.1f} s after its budget was lowered, "
                f"billed {spent_d}")

    def check_limits(self):
        """Where cgroups are on: a fork bomb stops at --job-pids-max, memory beyond memory_mib is refused."""
        cg = next((f for f in self.features if f.startswith("job cgroups")), "job cgroups: (not reported)")
        if self.args.executor == "slurm" or " on:" not in cg:
            return f"skipped: {cg if self.args.executor == 'local' else 'Slurm enforces its own limits'}"
        bomb = ("sh -c 'i=0; while [ $i -lt 300 ]; do sleep 30 & i=$((i+1)); done'; echo bomb_rc=$?; "
                "python3 -c 'x = bytearray(300 << 20); print(\"allocated\")'; echo alloc_rc=$?")
        j = self.submit(self.a_key, {"command": "sh", "args": ["-c", bomb], "gpus": 1, "memory_mib": 64,
                                     "max_duration_seconds": 60})
        deadline = time.time() + 60
        while "alloc_rc=" not in self.logs(self.a_key, j["id"]):
            check(time.time() < deadline, f"the limits job did not get through: {self.logs(self.a_key, j['id'])!r}")
            time.sleep(0.2)
        log = self.logs(self.a_key, j["id"])
        self.c.ok("POST", f"/v1/jobs/{j['id']}/cancel", self.a_key, {}, status=(200,))
        self.done(self.a_key, j["id"])
        check("bomb_rc=0" not in log and "fork" in log.lower(), f"the fork bomb was stopped by pids.max: {log!r}")
        check("allocated" not in log and "alloc_rc=0" not in log, f"300 MiB in a 64 MiB job was refused: {log!r}")
        self.server_alive()
        return "fork bomb stopped at --job-pids-max 64; 300 MiB refused in a 64 MiB job"

    def check_logs(self):
        """A job writing 20 MB into a log capped at 1 MB: cut, with the cut said in the log."""
        j = self.submit(self.a_key, {"command": "sh", "args": ["-c", "head -c 20000000 /dev/zero | tr '\\0' x; sleep 2"],
                                     "gpus": 1, "max_duration_seconds": 60})
        self.done(self.a_key, j["id"])
        path = os.path.join(self.args.jobs_dir, j["id"], "output.log")
        deadline = time.time() + 10  # Slurm's output may land after the job's end: the executor cuts it again
        while True:
            size = os.path.getsize(path)
            tail = open(path, "rb").read()[-300:].decode(errors="replace")
            if "reached its cap" in tail or time.time() > deadline:
                break
            time.sleep(0.2)
        check(size <= 1_000_000 + 4096, f"the log is {size} bytes (cap 1,000,000)")
        check("reached its cap of 1000000 bytes" in tail, f"the cut is said: {tail!r}")
        return f"20 MB written, {size} bytes kept, the cut said at its end"

    def image_storage(self):
        """podman on the server's image storage, as `serve` says at start to add an image."""
        images = next(f for f in self.features if f.startswith("job container images"))
        cmd = images.split("add an image with: ", 1)[1].split()
        check(cmd[0] == "podman" and cmd[-2:] == ["pull", "IMAGE"], f"the command serve prints: {cmd}")
        return cmd[:-2]

    def import_image(self, ref):
        """A busybox image: /etc/nc-image, an entrypoint script that says it ran, ENV and WORKDIR."""
        root = os.path.join(self.args.tmp, "image-root")
        for d in ("bin", "etc", "app"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        shutil.copy(shutil.which("busybox"), os.path.join(root, "bin", "busybox"))
        for tool in ("sh", "cat", "ls", "id", "echo", "sleep", "touch", "grep", "head", "pwd", "readlink", "setsid",
                     "kill", "tr", "wc"):
            os.symlink("busybox", os.path.join(root, "bin", tool))
        open(os.path.join(root, "etc", "nc-image"), "w").write("IMAGE-MARKER\n")
        entry = os.path.join(root, "app", "entry.sh")
        open(entry, "w").write('#!/bin/sh\necho "RESULT entrypoint ran"\nexec "$@"\n')
        os.chmod(entry, 0o755)
        tar = os.path.join(self.args.tmp, "image.tar")
        subprocess.run(["tar", "-C", root, "-cf", tar, "."], check=True)
        subprocess.run(self.image_storage() + ["import", "--change", "ENV PATH=/bin", "--change", "ENV NC_IMAGE_VAR=from-image",
                                               "--change", "WORKDIR /app", "--change", 'ENTRYPOINT ["/app/entry.sh"]', tar,
                                               ref], check=True, capture_output=True)

    def containers(self):
        r = subprocess.run(self.image_storage() + ["ps", "-a", "-q"], capture_output=True, text=True)
        return r.stdout.split()

    def check_image(self):
        ref = "localhost/nc-hostile:1"
        images = next((f for f in self.features if f.startswith("job container images")), "")
        if self.args.executor == "slurm" or " on:" not in images:
            e = self.submit(self.a_key, {"command": "true", "gpus": 1, "image": ref}, status=(400,))
            check("image" in e["error"]["message"], f"an image where none run: {e}")
            check(self.args.executor == "slurm" or os.geteuid() != 0 or not shutil.which("podman"),
                  f"images are off on a machine that has podman and root: {images}")
            return f"a job naming an image is a 400 here ({images or 'Slurm executor'})"
        e = self.submit(self.a_key, {"command": "true", "gpus": 1, "image": "-rm everything"}, status=(400,))
        check("image" in e["error"]["message"], f"a malformed image reference: {e}")
        self.import_image(ref)
        env = {"KEYFILE": self.server.key_file, "DBFILE": self.backend.url.split(":", 1)[1],
               "VICTIM_LOG": "/nonexistent", "VICTIM_WORK": "/nonexistent", "JOBS_DIR": self.args.jobs_dir,
               "TESTDIR": self.args.tmp, "SERVER_PID": str(self.server.proc.pid),
               "HOST_PIDNS": os.readlink("/proc/self/ns/pid")}
        probe = ('r() { echo "RESULT $1 $2"; }; r marker "$(cat /etc/nc-image)"; r pwd "$(pwd)"; r var "$NC_IMAGE_VAR"; '
                 'r devs "$(ls /dev | grep nvidia | tr "\n" ,)"; touch /etc/x 2>/dev/null && r write_etc WROTE || '
                 'r write_etc denied; ls /work /usr 2>/dev/null | head -1 | grep -q . && r host_fs SEEN || r host_fs hidden\n')
        j = self.submit(self.a_key, {"command": "sh", "args": ["-c", probe + ATTACK], "gpus": 1, "env": env, "image": ref})
        d = self.done(self.a_key, j["id"])
        log = self.logs(self.a_key, j["id"])
        r = results(log)
        check(d["status"] == "succeeded" and d["image"] == ref, f"the image job ran: {d['status']} {d.get('image')} {log!r}")
        gpus = d["segments"][0]["nodes"][0]["gpus"]
        want = {"entrypoint": "ran", "marker": "IMAGE-MARKER", "pwd": "/app", "var": "from-image", "write_etc": "denied",
                "host_fs": "hidden", "devs": f"nvidia{gpus[0]},nvidiactl,", "write_home": "ok", "see_server": "no",
                "kill_server": "refused", "kill_all": "contained"}
        for name in ("keyfile", "db", "jobs_dir", "write_testdir"):
            want[name] = "denied"
        for name, value in want.items():
            check(r.get(name) == value, f"in the image, {name}: {r.get(name)!r}, want {value!r} (log: {log!r})")
        check(r.get("uid") == str(os.stat(os.path.join(self.args.jobs_dir, j["id"], "work")).st_uid) and r["uid"] != "0",
              f"the image job runs as its organization's uid: {r.get('uid')}")
        deadline = time.time() + 5
        while self.containers() and time.time() < deadline:
            time.sleep(0.2)
        check(not self.containers(), f"the ended job's container is removed: {self.containers()}")
        # Cancelled while escaped children run: they go, and so does the container.
        mark = f"hostile-{os.getpid()}-image"
        j = self.submit(self.a_key, {"command": "sh", "args": ["-c", ESCAPE + "sleep 600"], "gpus": 1,
                                     "env": {"MARK": mark}, "image": ref})
        self.running(self.a_key, j["id"])
        deadline = time.time() + 10
        while len(marked(mark)) < 2 and time.time() < deadline:
            time.sleep(0.1)
        check(len(marked(mark)) >= 2, f"the escapes started: {self.logs(self.a_key, j['id'])!r}")
        self.c.ok("POST", f"/v1/jobs/{j['id']}/cancel", self.a_key, {}, status=(200,))
        check(self.done(self.a_key, j["id"])["status"] == "cancelled", "the image job was cancelled")
        deadline = time.time() + 5
        while (marked(mark) or self.containers()) and time.time() < deadline:
            time.sleep(0.2)
        check(not marked(mark) and not self.containers(), f"after the cancel: {marked(mark)} {self.containers()}")
        # An image that is not there: the job fails, saying how an operator adds it.
        j = self.submit(self.a_key, {"command": "true", "gpus": 1, "image": "localhost/not-here:1"})
        d = self.done(self.a_key, j["id"])
        said = json.dumps(d["events"])
        check(d["status"] == "failed" and "not-here" in said and "pull" in said, f"a missing image: {d['status']} {said}")
        self.server_alive()
        return f"ran in {ref} as uid {r['uid']} (entrypoint, env, workdir; host hidden; attacks denied); containers removed"

    def run(self):
        steps = [("confine", self.check_confine), ("gpus", self.check_gpus), ("escape", self.check_escape),
                 ("forge", self.check_forge), ("budget", self.check_budget), ("limits", self.check_limits),
                 ("logs", self.check_logs), ("image", self.check_image)]
        self.setup()
        return run_steps(steps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--neocloud", required=True)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--executor", default="local", choices=["local", "slurm"])
    ap.add_argument("--slurm-dir", help="tools/slurm.sh's directory (its env file names SLURM_CONF)")
    args = ap.parse_args()
    args.db = "sqlite"
    shutil.rmtree(args.tmp, ignore_errors=True)
    os.makedirs(args.tmp)
    # The jobs' users must pass through every directory above the jobs directory and the device stand-ins
    # (job_sandbox.h). A checkout under a closed directory (mktemp -d makes 0700) gets a place of this
    # test's own under /tmp instead, removed at the end.
    shared = args.tmp
    if os.geteuid() == 0 and not passable_by_others(shared):
        shared = tempfile.mkdtemp(prefix="nc-hostile-jobs-", dir="/tmp")
        os.chmod(shared, 0o711)
    args.jobs_dir = os.path.join(shared, "jobs")
    dev = os.path.join(shared, "dev")  # stand-ins for the GPUs' device nodes
    os.makedirs(dev)
    os.chmod(dev, 0o755)
    for name in ("nvidia0", "nvidia1", "nvidia2", "nvidia3", "nvidiactl"):
        open(os.path.join(dev, name), "w").close()
    # The strongest confinement this machine offers: required where it can be had (root, bubblewrap).
    sandbox = "required" if os.geteuid() == 0 and shutil.which("bwrap") else "auto"
    sandbox = os.environ.get("HOSTILE_JOBS_SANDBOX", sandbox)  # "off": shows that the test catches an unconfined job
    args.serve_args = ["--jobs-dir", args.jobs_dir, "--jobs-heartbeat", "1", "--jobs-grace", "2",
                       "--gpus", "4", "--gpu-device-dir", dev, "--job-sandbox", sandbox, "--job-budget-grace", "1", "--job-pids-max", "64",
                       "--job-log-max-bytes", "1000000"]
    if args.executor == "slurm":
        try:
            conf = slurm_conf_of(args.slurm_dir)
        except Fail as e:
            print(f"FAIL start: {e}", flush=True)
            return 1
        args.serve_args = [a for a in args.serve_args if a not in ("--gpus", "4")] + ["--executor", "slurm",
                                                                                      "--slurm-conf", conf]
    t = HostileJobs(args)
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
        # podman's overlay storage stays mounted on itself (containers/storage makes it private): ours only.
        # (A mount of a directory on itself: os.path.ismount cannot tell, /proc/self/mountinfo can.)
        overlay = os.path.realpath(os.path.join(args.jobs_dir, ".images", "storage", "overlay"))
        if any(line.split()[4] == overlay for line in open("/proc/self/mountinfo")):
            subprocess.run(["umount", "-l", overlay], check=False)
        if shared != args.tmp:
            shutil.rmtree(shared, ignore_errors=True)
    return report_result(failures, t0, t.server)


if __name__ == "__main__":
    sys.exit(main())
