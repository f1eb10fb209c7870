#!/usr/bin/env python3
"""Serving load generator with vLLM benchmark_serving's definitions. Sends NUM requests to an
OpenAI-compatible /v1/completions endpoint (streamed, ignore_eos, fixed output length), prompts of
random token ids with lengths uniform in [IN_MIN, IN_MAX], Poisson arrivals at RATE req/s (inf: all at
once) with at most CONC in flight. Prints one JSON object: request throughput, output tok/s, TTFT,
TPOT, ITL and E2E (mean, p50, p99, in ms).
Usage: serving_load.py BASE_URL MODEL CONC NUM [RATE] [IN_MIN] [IN_MAX] [OUT] [SEED]"""
import http.client
import json
import random
import statistics
import sys
import threading
import time
import urllib.parse

base, model = sys.argv[1], sys.argv[2]
conc, num = int(sys.argv[3]), int(sys.argv[4])
rate = float(sys.argv[5]) if len(sys.argv) > 5 else float("inf")
in_min = int(sys.argv[6]) if len(sys.argv) > 6 else 128
in_max = int(sys.argv[7]) if len(sys.argv) > 7 else 512
out_len = int(sys.argv[8]) if len(sys.argv) > 8 else 128
seed = int(sys.argv[9]) if len(sys.argv) > 9 else 0
u = urllib.parse.urlparse(base)
rng = random.Random(seed)
prompts = [[rng.randint(100, 20000) for _ in range(rng.randint(in_min, in_max))] for _ in range(num)]
gaps = [0.0 if rate == float("inf") else rng.expovariate(rate) for _ in range(num)]
results = []
lock = threading.Lock()
sem = threading.Semaphore(conc)


def run(i):
    try:
        body = {"model": model, "prompt": prompts[i], "max_tokens": out_len, "ignore_eos": True, "stream": True,
                "temperature": 0, "stream_options": {"include_usage": True}}
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
        conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200, resp.status
        times, n_out = [], None
        buf = b""
        while True:
            line = resp.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data: "):
                continue
            data = line[6:]
            if data == b"[DONE]":
                break
            j = json.loads(data)
            if j.get("usage"):
                n_out = j["usage"]["completion_tokens"]
            for c in j.get("choices", []):
                if c.get("text"):
                    times.append(time.perf_counter())
        conn.close()
        t1 = time.perf_counter()
        n_out = n_out if n_out is not None else len(times)
        with lock:
            results.append((t0, times, t1, n_out, len(prompts[i])))
    finally:
        sem.release()


threads = []
start = time.perf_counter()
for i in range(num):
    time.sleep(gaps[i])
    sem.acquire()
    t = threading.Thread(target=run, args=(i,))
    t.start()
    threads.append(t)
for t in threads:
    t.join()
dur = time.perf_counter() - start


def summ(xs):
    xs = sorted(xs)
    if not xs:
        return {"mean": None, "p50": None, "p99": None}
    return {"mean": statistics.fmean(xs) * 1e3, "p50": xs[len(xs) // 2] * 1e3,
            "p99": xs[min(len(xs) - 1, int(round(0.99 * (len(xs) - 1))))] * 1e3}


ttft = [r[1][0] - r[0] for r in results if r[1]]
tpot = [(r[2] - r[1][0]) / (r[3] - 1) for r in results if r[1] and r[3] > 1]
itl = [b - a for r in results for a, b in zip(r[1], r[1][1:])]
e2e = [r[2] - r[0] for r in results]
out_tokens = sum(r[3] for r in results)
in_tokens = sum(r[4] for r in results)
print(json.dumps({"concurrency": conc, "requests": len(results), "duration_s": dur,
                  "input_tokens": in_tokens, "output_tokens": out_tokens,
                  "request_throughput": len(results) / dur, "output_tok_s": out_tokens / dur,
                  "ttft_ms": summ(ttft), "tpot_ms": summ(tpot), "itl_ms": summ(itl), "e2e_ms": summ(e2e)}))
