#!/usr/bin/env python3
"""Soak: N requests (default 1000) against a running `neocloud serve`, 16 client threads, random prompt
and output lengths, half streamed; a third of the clients hang up at a random moment. Afterwards the
server must still answer, every request that was read to the end must be complete (finish_reason set,
usage consistent), and the KV cache must be empty. Usage: soak_test.py BASE_URL MODEL [N]"""
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse

base, model = sys.argv[1], sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
u = urllib.parse.urlparse(base)
lock = threading.Lock()
stats = {"complete": 0, "dropped": 0, "errors": []}
next_i = [0]


def one(i, rng):
    words = ["alpha", "beta", "gamma", "delta", "é", "日本", "🦙", "42", "\n"]
    prompt = " ".join(rng.choice(words) for _ in range(rng.randint(1, 60)))
    stream = rng.random() < 0.5
    drop = rng.random() < 0.33
    body = {"model": model, "prompt": prompt, "max_tokens": rng.randint(1, 48), "stream": stream,
            "temperature": rng.choice([0, 0.7, 1.0]), "seed": i}
    if stream:
        body["stream_options"] = {"include_usage": True}
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"status {resp.status}: {resp.read()[:200]}")
    if drop:
        resp.read(rng.randint(0, 200) if stream else 0)
        conn.sock.close()  # hang up mid-answer
        conn.close()
        return "dropped"
    data = resp.read().decode("utf-8")
    conn.close()
    if stream:
        events = [l[6:] for l in data.split("\n") if l.startswith("data: ")]
        assert events[-1] == "[DONE]", events[-3:]
        chunks = [json.loads(e) for e in events[:-1]]
        finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
        assert finishes[-1] in ("length", "stop"), finishes
        usage = chunks[-1]["usage"]
        assert usage["completion_tokens"] <= body["max_tokens"]
    else:
        r = json.loads(data)
        assert r["choices"][0]["finish_reason"] in ("length", "stop")
        assert r["usage"]["total_tokens"] == r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"]
    return "complete"


def worker(seed):
    rng = random.Random(seed)
    while True:
        with lock:
            if next_i[0] >= N:
                return
            i = next_i[0]
            next_i[0] += 1
        try:
            kind = one(i, rng)
            with lock:
                stats[kind] += 1
        except Exception as e:  # noqa: BLE001
            with lock:
                stats["errors"].append(f"request {i}: {e!r}")


t0 = time.time()
threads = [threading.Thread(target=worker, args=(s,)) for s in range(16)]
for t in threads:
    t.start()
for t in threads:
    t.join()


def metric(name):
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    for line in text.splitlines():
        if line.startswith(f"neocloud:{name}{{"):
            return float(line.split()[-1])
    raise KeyError(name)


deadline = time.time() + 30
while time.time() < deadline and (metric("kv_blocks_used") != 0 or metric("num_requests_running") != 0):
    time.sleep(0.1)
print(f"{N} requests in {time.time() - t0:.1f}s: {stats['complete']} complete, {stats['dropped']} dropped, "
      f"{len(stats['errors'])} errors; kv_blocks_used={metric('kv_blocks_used')}")
for e in stats["errors"][:5]:
    print(e)
assert not stats["errors"], "client errors"
assert metric("kv_blocks_used") == 0 and metric("num_requests_running") == 0, "KV blocks or requests left over"
print("soak ok")
