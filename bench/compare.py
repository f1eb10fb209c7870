#!/usr/bin/env python3
"""Summarises bench/engine_vs_llamacpp.sh output: median tokens/s per (type, test) over the rounds for
both engines, the ratio neocloud / llama.cpp, and decode as a fraction of the memory-bandwidth
roofline. Bandwidth is measured right before every round (membw.txt: one initial line, then one per
type and round, in run order) and each round's decode speed is divided by that round's roofline:
the machine's bandwidth moves between rounds, so only same-round ratios mean anything."""
import glob, json, os, re, statistics, sys

out, shape, threads, types = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
bws = [float(x) for x in re.findall(r"read_gbps=([0-9.]+)", open(os.path.join(out, "membw.txt")).read())]
round_bw = bws[1:]  # per (type, round)


def load(prefix, t):
    """{test: [avg_ts per round]}, weight bytes per token."""
    res, bpt = {}, None
    files = sorted(glob.glob(os.path.join(out, f"{prefix}-{t}-*.json")),
                   key=lambda f: int(re.search(r"-(\d+)\.json$", f).group(1)))
    for f in files:
        for r in json.load(open(f)):
            key = f"pp{r['n_prompt']}" if r["n_prompt"] > 0 else f"tg{r['n_gen']}"
            res.setdefault(key, []).append(r["avg_ts"])
            bpt = r.get("weight_bytes_per_token", bpt)
    return res, bpt, len(files)


print(f"shape={shape} threads={threads}; read bandwidth per round (bench/membw.c): "
      f"median {statistics.median(round_bw):.1f} GB/s, range {min(round_bw):.1f}-{max(round_bw):.1f}\n")
print("| type | test | llama.cpp t/s | neocloud t/s | ratio | neocloud % of same-round roofline |")
print("|---|---|---:|---:|---:|---:|")
for ti, t in enumerate(types):
    ll, _, _ = load("llama", t)
    nc, bpt, rounds = load("nc", t)
    for test in sorted(ll, key=lambda k: (k[:2] != "pp", k)):
        a, b = statistics.median(ll[test]), statistics.median(nc.get(test, [0]))
        pct = ""
        if test.startswith("tg") and bpt:
            fr = [nc[test][r] / (round_bw[ti * rounds + r] * 1e9 / bpt)
                  for r in range(rounds) if ti * rounds + r < len(round_bw)]
            pct = f"{100 * statistics.median(fr):.0f}%"
        print(f"| {t} | {test} | {a:.2f} | {b:.2f} | {b / a:.2f}x | {pct} |")
