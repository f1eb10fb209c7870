#!/usr/bin/env bash
# What `make run` starts: the whole cloud with embedded defaults — `neocloud serve` with the gateway on a
# SQLite file (${NEOCLOUD_DATA:-~/.local/share/neocloud}/neocloud.db: tenants, API keys, limits, budgets,
# the usage ledger) and no model, so it makes its small random-weight demo model on first start
# (~/.cache/neocloud) and serves it as "demo-random-weights" on http://127.0.0.1:${PORT:-8080}/v1 (its
# answers are noise: the weights are random). The first start prints the operator's admin key (also kept
# in the data directory, mode 0600); this script then creates a "demo" project with an inference key and
# prints a curl command that uses it. Serve your own GGUF with `build/release/bin/neocloud serve -m
# model.gguf --db sqlite:FILE`. GPU rental (/v1/jobs, /v1/reservations) is on too: this machine's GPUs
# when nvidia-smi finds some, else ${DEMO_GPUS:-4} simulated ones (jobs run here as processes that see
# their CUDA_VISIBLE_DEVICES, sandboxed); job logs go to the data directory (as root: /var/lib/neocloud/jobs,
# which the jobs' own users can pass through). Ctrl-C stops it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/build/release/bin/neocloud"
DATA=${NEOCLOUD_DATA:-$HOME/.local/share/neocloud}
PORT=${PORT:-8080}
mkdir -p "$DATA"
chmod 700 "$DATA"
ADMIN_FILE="$DATA/admin.key"
# Jobs run sandboxed as their organization's own user: as root, their directories go where every user
# can pass through (the data directory under root's home is closed to them).
JOBS=${NEOCLOUD_JOBS_DIR:-$DATA/jobs}
if [ "$(id -u)" = 0 ] && [ -z "${NEOCLOUD_JOBS_DIR:-}" ]; then JOBS=/var/lib/neocloud/jobs; fi
ARGS=(serve --port "$PORT" --parallel 4 --db "sqlite:$DATA/neocloud.db" --jobs-dir "$JOBS")
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  ARGS+=(--gpus auto)
else
  ARGS+=(--gpus "${DEMO_GPUS:-4}")
fi
[ -f "$DATA/neocloud.db" ] || ARGS+=(--admin-key-file "$ADMIN_FILE")
"$BIN" "${ARGS[@]}" &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' INT TERM EXIT
for _ in $(seq 600); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")" = 200 ] && break
  kill -0 $PID 2>/dev/null || exit 1
  sleep 0.2
done
INF_FILE="$DATA/demo-inference.key"
if [ -f "$ADMIN_FILE" ] && [ ! -f "$INF_FILE" ]; then
  export NEOCLOUD_URL="http://127.0.0.1:$PORT" NEOCLOUD_ADMIN_KEY
  NEOCLOUD_ADMIN_KEY=$(cat "$ADMIN_FILE")
  project=$("$BIN" admin projects create demo | sed -n 's/.*"id": "\(proj_[0-9a-f]*\)".*/\1/p' | head -1)
  (umask 077 && "$BIN" admin keys create --project "$project" --name demo |
    sed -n 's/.*"value": "\(nc-inf-[A-Za-z0-9]*\)".*/\1/p' > "$INF_FILE")
fi
KEY=$(cat "$INF_FILE" 2>/dev/null || echo YOUR_KEY)
echo
echo "admin key: $ADMIN_FILE (neocloud admin --key ... orgs|projects|keys|limits|budgets|prices|usage)"
echo "GPU jobs: NEOCLOUD_URL=http://127.0.0.1:$PORT NEOCLOUD_API_KEY=$KEY $BIN jobs submit --gpus 2 -- nvidia-smi  (then: jobs list, jobs logs -f ID)"
echo "try: curl http://127.0.0.1:$PORT/v1/chat/completions -H 'Authorization: Bearer $KEY' -d '{\"model\":\"demo-random-weights\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],\"max_tokens\":16}'"
wait $PID
