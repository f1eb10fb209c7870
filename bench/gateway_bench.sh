#!/usr/bin/env bash
# Gateway benchmark (docs/benchmarks.md, "Gateway overhead and usage ingest"):
#  (a) the latency the multi-tenant gateway adds to one inference request: POST /v1/completions,
#      max_tokens 1, a 2-token prompt, on a micro synthetic model, against two servers of the same
#      binary started side by side: tenancy OFF (no --db, no key) and tenancy ON (--db sqlite:...,
#      an inference key whose project has a price, a budget (so every request takes a budget hold
#      and settles in the ledger, group commit, synchronous=FULL) and generous rpm/tpm limits (checked,
#      never refusing)). Open-loop load at increasing rates (bench/gateway_load.cpp: latency from each
#      request's due time, so queueing counts), OFF and ON interleaved at every rate, REPEAT times;
#      then each server's closed-loop capacity. The ON server's /metrics histogram of ledger writes
#      (submit to durable commit) is read around each ON run: its p99 shows what the disk gave meanwhile.
#  (b) usage-event ingest: POST /v1/usage/events with arrays of 1000 CloudEvents (200 = durable), and
#      nc::gateway::Ledger::ingest directly (group commit) vs one event per transaction.
#
#   bench/gateway_bench.sh      Env: RATES ("250 500 1000 2000 3000 4000"), SECS (8, measured window
#                               per run), WARMUP (2), REPEAT (3), CONNS (256), PARALLEL (32), THREADS (1,
#                               engine threads: the other core is left to the load generator, the I/O
#                               thread and the ledger), BIN (build/bench/bin), OUT (.cache/bench/gateway-*),
#                               KEEP_DB (0: the ON server's SQLite file, several GB by the end, is deleted)
# Build first: cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DNC_TESTS=OFF &&
#              cmake --build build/bench --target gateway_load neocloud
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-"$ROOT/build/bench/bin"}
NC="$BIN/neocloud"
GL="$BIN/gateway_load"
RATES=${RATES:-"250 500 1000 2000 3000 4000"}
SECS=${SECS:-8}
WARMUP=${WARMUP:-2}
REPEAT=${REPEAT:-3}
CONNS=${CONNS:-256}
PARALLEL=${PARALLEL:-32}
THREADS=${THREADS:-1}
OUT=${OUT:-"$ROOT/.cache/bench/gateway-$(date +%Y%m%d-%H%M%S)"}
VOCAB=${VOCAB:-"$ROOT/.cache/ref/llama.cpp/models/ggml-vocab-llama-spm.gguf"}
PORT_OFF=${PORT_OFF:-18471}
PORT_ON=${PORT_ON:-18472}
for f in "$NC" "$GL"; do [ -x "$f" ] || { echo "missing $f (build it first, see the header)" >&2; exit 1; }; done
mkdir -p "$OUT"
echo "results in $OUT" >&2

M="$OUT/micro.gguf"
"$NC" model synth --vocab "$VOCAB" --shape micro --type f16 --seed 5 --out "$M" >/dev/null
BODY='{"model":"micro","prompt":"Hi","max_tokens":1,"temperature":0}'

wait_up() { for _ in $(seq 300); do curl -sf "http://127.0.0.1:$1/health" >/dev/null && return 0; sleep 0.1; done; return 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # a process's user + system, in clock ticks
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }  # the whole machine's
disk_probe() {  # 4 KiB O_DSYNC appends: what one fsync costs on this disk right now
  local t0 t1
  t0=$(date +%s%N)
  dd if=/dev/zero of="$OUT/dsync.probe" bs=4k count=200 oflag=dsync 2>/dev/null
  t1=$(date +%s%N)
  rm -f "$OUT/dsync.probe"
  echo "$(( (t1 - t0) / 200000 ))"  # microseconds per synced write
}

# Tenancy OFF and ON: the same binary, model, engine settings.
"$NC" serve -m "$M:micro" --port "$PORT_OFF" --parallel "$PARALLEL" -t "$THREADS" 2>"$OUT/server-off.log" &
POFF=$!
"$NC" serve -m "$M:micro" --port "$PORT_ON" --parallel "$PARALLEL" -t "$THREADS" --db "sqlite:$OUT/gateway.db" \
  --admin-key-file "$OUT/admin.key" 2>"$OUT/server-on.log" &
PON=$!
trap 'kill $POFF $PON 2>/dev/null || true; wait $POFF $PON 2>/dev/null || true' EXIT
wait_up "$PORT_OFF" && wait_up "$PORT_ON"

# Tenancy ON: a project, its inference key, a price for the model, a budget and limits on the project.
U="http://127.0.0.1:$PORT_ON"
ADMIN=$(cat "$OUT/admin.key")
api() { curl -sf -X "$1" "$U$2" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' -d "$3"; }
jget() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
PROJECT=$(api POST /v1/organization/projects '{"name":"bench"}' | jget id)
KEY=$(api POST /v1/organization/api_keys "{\"project_id\":\"$PROJECT\",\"name\":\"bench\"}" | jget value)
api POST /v1/admin/prices '{"item":"micro","input_per_mtok":1000000,"output_per_mtok":1000000}' >/dev/null
api PUT /v1/organization/budgets "{\"scope\":\"project\",\"scope_id\":\"$PROJECT\",\"monthly_limit_micros\":1000000000000}" >/dev/null
api PUT /v1/organization/limits "{\"scope\":\"project\",\"scope_id\":\"$PROJECT\",\"rpm\":100000000,\"tpm\":1000000000}" >/dev/null
# Smoke: OFF answers without a key; ON answers with the key (rate-limit headers: the limiter ran) and
# refuses without one.
curl -sf "http://127.0.0.1:$PORT_OFF/v1/completions" -H 'Content-Type: application/json' -d "$BODY" >/dev/null
curl -sfi "$U/v1/completions" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d "$BODY" \
  | grep -qi '^x-ratelimit-remaining-requests:' || { echo "tenancy ON: no rate-limit headers" >&2; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' "$U/v1/completions" -H 'Content-Type: application/json' -d "$BODY")" = 401 ]

{
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) x $(nproc)"
  echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "dsync_us_start=$(disk_probe)"
  echo "rates=$RATES secs=$SECS warmup=$WARMUP repeat=$REPEAT conns=$CONNS parallel=$PARALLEL threads=$THREADS"
} > "$OUT/env.txt"

# (a) open loop, OFF then ON at each rate. Per run, CPU ticks of: the server under load, the whole
# machine, and the wall time (with the load generator's own CPU from its JSON, what is left is the
# CPU other processes of this shared machine took meanwhile: reported, as it disturbs latencies).
run_http() {  # mode rate rep
  local port=$PORT_OFF pid=$POFF key=""
  if [ "$1" = on ]; then port=$PORT_ON; pid=$PON; key=$KEY; fi
  local c0 c1 b0 b1 t0 t1
  # The ON server's ledger write-latency histogram before and after (what the disk gave it meanwhile).
  [ "$1" = on ] && curl -sf "http://127.0.0.1:$port/metrics" | grep '^neocloud:ledger_write_seconds_bucket' > "$OUT/http-$1-$2-$3.m0"
  c0=$(cpu_ticks "$pid"); b0=$(busy_ticks); t0=$(date +%s%N)
  "$GL" http --url "http://127.0.0.1:$port/v1/completions" ${key:+--key "$key"} --rate "$2" --seconds "$SECS" \
    --warmup "$WARMUP" --connections "$CONNS" --body "$BODY" > "$OUT/http-$1-$2-$3.json"
  c1=$(cpu_ticks "$pid"); b1=$(busy_ticks); t1=$(date +%s%N)
  [ "$1" = on ] && curl -sf "http://127.0.0.1:$port/metrics" | grep '^neocloud:ledger_write_seconds_bucket' > "$OUT/http-$1-$2-$3.m1"
  echo "$((c1 - c0)) $((b1 - b0)) $((t1 - t0))" > "$OUT/http-$1-$2-$3.cpu"
}
for r in $RATES; do
  for rep in $(seq "$REPEAT"); do
    run_http off "$r" "$rep"
    run_http on "$r" "$rep"
  done
  # Past the rate the engine alone (OFF) cannot sustain, higher rates only measure the queue.
  if ! python3 - "$OUT" "$r" "$REPEAT" <<'PY'
import json, sys, statistics
out, r, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
runs = [json.load(open(f"{out}/http-off-{sys.argv[2]}-{i}.json")) for i in range(1, n + 1)]
ok = statistics.median(x["achieved_rps"] for x in runs) >= 0.97 * r and all(x["errors"] + x["incomplete"] == 0 for x in runs)
sys.exit(0 if ok else 1)
PY
  then
    echo "tenancy OFF does not sustain $r req/s: stopping the rate sweep here" >&2
    break
  fi
done
# Closed loop (each connection sends again as soon as it is answered): the capacity of each mode.
for rep in 1 2; do
  run_http off 0 "$rep"
  run_http on 0 "$rep"
done

# (b1) ingest over HTTP into the ON server (arrays of 1000 events, 1 / 4 / 8 connections).
for rep in $(seq "$REPEAT"); do
  for c in 1 4 8; do
    "$GL" ingest-http --url "$U/v1/usage/events" --key "$KEY" --batch 1000 --connections "$c" --seconds "$SECS" \
      > "$OUT/ingest-http-$c-$rep.json"
  done
done
# Every ON completion must have left exactly one settled ledger record.
if command -v sqlite3 >/dev/null; then
  sqlite3 "$OUT/gateway.db" "SELECT count(*) FROM usage_records WHERE state = 'settled' AND status = 'completed'" \
    > "$OUT/ledger-records.txt"
fi
kill "$POFF" "$PON"
wait "$POFF" "$PON" 2>/dev/null || true
trap - EXIT
# The ON database ends up with millions of usage events (several GB): kept only with KEEP_DB=1.
[ "${KEEP_DB:-0}" = 1 ] || rm -f "$OUT/gateway.db" "$OUT/gateway.db-wal" "$OUT/gateway.db-shm"

# (b2) the ledger without HTTP, servers stopped: group commit vs one event per transaction.
"$GL" ingest-direct --dir "$OUT/ingest" --events 400000 --batch 100,1000 --submitters 8 --baseline-events 3000 \
  --single-events 20000 --single-submitters 64 > "$OUT/ingest-direct.json" 2>"$OUT/ingest-direct.log"
{
  echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "dsync_us_end=$(disk_probe)"
} >> "$OUT/env.txt"
rm -rf "$OUT/ingest"

python3 - "$OUT" "$REPEAT" "$(getconf CLK_TCK)" <<'PY' | tee "$OUT/summary.md"
import glob, json, os, re, statistics, sys
out, rep, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
env = dict(l.strip().split("=", 1) for l in open(f"{out}/env.txt") if "=" in l)
med = statistics.median

def ledger_p99(prefix):
    """p99 of the ON server's ledger writes during a run: the upper bound of the histogram bucket it falls in."""
    if not os.path.exists(prefix + ".m1"):
        return None
    def read(path):
        out = {}
        for line in open(path) if os.path.exists(path) else []:
            le = re.search(r'le="([^"]+)"', line).group(1)
            out[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
        return out
    a, b = read(prefix + ".m0"), read(prefix + ".m1")
    cum = sorted((le, n - a.get(le, 0)) for le, n in b.items())
    if not cum or cum[-1][1] <= 0:
        return None
    for le, n in cum:
        if n >= 0.99 * cum[-1][1]:
            return le * 1000

def runs(mode, rate):
    res = []
    for i in range(1, rep + 1):
        p = f"{out}/http-{mode}-{rate}-{i}.json"
        if os.path.exists(p):
            j = json.load(open(p))
            server, busy, wall_ns = (int(v) for v in open(p[:-5] + ".cpu").read().split())
            j["cpu_s"] = server / hz
            j["other_cores"] = max(0.0, (busy / hz - server / hz - j["client_cpu_s"]) / (wall_ns / 1e9))
            j["ledger_p99_ms"] = ledger_p99(p[:-5])
            res.append(j)
    return res

rates = sorted({int(float(re.match(r"http-\w+-([\d.]+)-\d+\.json", os.path.basename(p)).group(1)))
                for p in glob.glob(f"{out}/http-off-*-*.json")} - {0})
print(f"{env['date']}, {env['cpu']}; load average at start {env['loadavg_start']}, end {env['loadavg_end']}; "
      f"one 4 KiB O_DSYNC write {env['dsync_us_start']} us at start, {env['dsync_us_end']} us at end")
print(f"{env['rates']}: medians of {rep} interleaved runs per cell\n")
print("| offered req/s | mode | achieved req/s | errors | p50 ms | p99 ms | max ms | server CPU us/req | other processes, cores | send lag p99 ms | ledger write p99 ms (<=) |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
added = []
for r in rates:
    row = {}
    for mode in ("off", "on"):
        rs = runs(mode, r)
        if not rs:
            continue
        m = {k: med(x["latency_ms"][k] for x in rs) for k in ("p50", "p99", "max")}
        ach = med(x["achieved_rps"] for x in rs)
        err = sum(x["errors"] + x["incomplete"] for x in rs)
        cpu = med(x["cpu_s"] * 1e6 / max(1, x["total_answered"]) for x in rs)
        row[mode] = m
        other = med(x["other_cores"] for x in rs)
        lag = med(x["sched_lag_ms"].get("p99", 0) for x in rs)
        lp = [x["ledger_p99_ms"] for x in rs if x.get("ledger_p99_ms") is not None]
        ledger = f"{med(lp):.2f}" if lp else "-"
        print(f"| {r} | {mode} | {ach:.0f} | {err} | {m['p50']:.2f} | {m['p99']:.2f} | {m['max']:.1f} | {cpu:.0f} | {other:.2f} | {lag:.2f} | {ledger} |")
    if "off" in row and "on" in row:
        added.append((r, row["on"]["p50"] - row["off"]["p50"], row["on"]["p99"] - row["off"]["p99"]))
print("\n| offered req/s | added p50 ms (on - off) | added p99 ms (on - off) |")
print("|---:|---:|---:|")
for r, a50, a99 in added:
    print(f"| {r} | {a50:+.2f} | {a99:+.2f} |")
print("\nClosed loop (capacity), %s connections:" % runs("off", 0)[0]["connections"])
print("| mode | req/s (per run) | p50 ms | p99 ms | server CPU us/req | other processes, cores |")
print("|---|---:|---:|---:|---:|---:|")
for mode in ("off", "on"):
    rs = runs(mode, 0)
    print(f"| {mode} | {' / '.join('%.0f' % x['achieved_rps'] for x in rs)} | "
          f"{med(x['latency_ms']['p50'] for x in rs):.1f} | {med(x['latency_ms']['p99'] for x in rs):.1f} | "
          f"{med(x['cpu_s'] * 1e6 / max(1, x['total_answered']) for x in rs):.0f} | "
          f"{med(x['other_cores'] for x in rs):.2f} |")
print("\nUsage events over HTTP (POST /v1/usage/events, 1000 events per request, 200 after COMMIT):")
print("| connections | events/s acknowledged (median; each run) | requests p50 / p99 ms | errors | duplicates |")
print("|---:|---:|---:|---:|---:|")
for c in (1, 4, 8):
    js = [json.load(open(p)) for p in sorted(glob.glob(f"{out}/ingest-http-{c}-*.json"))]
    print(f"| {c} | {med(j['events_per_s'] for j in js):.0f} ({' / '.join('%.0f' % j['events_per_s'] for j in js)}) | "
          f"{med(j['latency_ms']['p50'] for j in js):.1f} / {med(j['latency_ms']['p99'] for j in js):.1f} | "
          f"{sum(j['errors'] + j['incomplete'] for j in js)} | {sum(j['duplicates'] for j in js)} |")
d = json.load(open(f"{out}/ingest-direct.json"))
b = d["baseline"]
print("\nLedger::ingest directly (SQLite, synchronous=FULL), events/s from submit to the durable callback:")
print("| case | events per call | submitters | events/s | events per commit | ack p50 / p99 ms | vs one per txn |")
print("|---|---:|---:|---:|---:|---:|---:|")
print(f"| one event per transaction | 1 | 1 | {b['events_per_s']:.0f} | 1 | "
      f"{b['ack_ms']['p50']:.2f} / {b['ack_ms']['p99']:.2f} | 1.0x |")
for x in d["ledger"]:
    print(f"| Ledger::ingest, group commit | {x['batch']} | {x['submitters']} | {x['events_per_s']:.0f} | "
          f"{x['events_per_commit']:.0f} | {x['ack_ms']['p50']:.2f} / {x['ack_ms']['p99']:.2f} | "
          f"{x['ratio_vs_baseline']:.0f}x |")
if os.path.exists(f"{out}/ledger-records.txt"):
    n_on = 1 + sum(json.load(open(p))["total_answered"] for p in glob.glob(f"{out}/http-on-*.json"))
    print(f"\nLedger check: {open(f'{out}/ledger-records.txt').read().strip()} settled 'completed' usage records in the ON "
          f"database; {n_on} completions answered by the ON server (load + smoke).")
PY
