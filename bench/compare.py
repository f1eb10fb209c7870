#!/usr/bin/env python3
"""Summarises bench/engine_vs_llamacpp.sh output: median tokens/s per (type, test) for both engines,
the ratio neocloud / llama.cpp, and decode as a fraction of the memory-bandwidth roofline."""
import glob, json, os, re, statistics, sys

out, shape, threads, types = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
bw = max(float(x) for x in re.findall(r"read_gbps=([0-9.]+)", open(os.path.join(out, "membw.txt")).read()))

bytes_per_token = {}

def rows(pattern):
    res = {}
    for f in sorted(glob.glob(os.path.join(out, pattern))):
        for r in json.load(open(f)):
            key = f"pp{r['n_prompt']}" if r["n_prompt"] > 0 else f"tg{r['n_gen']}"
            res.setdefault(key, []).append(r["avg_ts"])
            if "weight_bytes_per_token" in r:
                bytes_per_token[pattern] = r["weight_bytes_per_token"]
    return res

print(f"shape={shape} threads={threads} memory read bandwidth={bw:.1f} GB/s (max of the runs of bench/membw.c)\n")
print("| type | test | llama.cpp t/s | neocloud t/s | ratio | decode roofline t/s | neocloud % of roofline |")
print("|---|---|---:|---:|---:|---:|---:|")
for t in types:
    ll, nc = rows(f"llama-{t}-*.json"), rows(f"nc-{t}-*.json")
    bpt = bytes_per_token.get(f"nc-{t}-*.json")  # every matrix once + one embedding row
    for test in sorted(ll, key=lambda k: (k[:2] != "pp", k)):
        a, b = statistics.median(ll[test]), statistics.median(nc.get(test, [0]))
        roof, pct = "", ""
        if test.startswith("tg") and bpt:
            r = bw * 1e9 / bpt
            roof, pct = f"{r:.1f}", f"{100 * b / r:.0f}%"
        print(f"| {t} | {test} | {a:.2f} | {b:.2f} | {b / a:.2f}x | {roof} | {pct} |")
