#!/usr/bin/env bash
# Checks the README's first command as a newcomer runs it: `make run` (install, build, start) in this
# checkout, before anything else has run here, must answer GET /health with 200 within
# ${MAKE_RUN_TIMEOUT:-2400} seconds (the build included); then it is stopped. Its data goes to a
# temporary directory, on port ${PORT:-18080}.
set -uo pipefail
cd "$(dirname "$0")/.."
export PORT=${PORT:-18080}
export NEOCLOUD_DATA
NEOCLOUD_DATA=$(mktemp -d)
LOG=$NEOCLOUD_DATA/make-run.log
limit=${MAKE_RUN_TIMEOUT:-2400}
if curl -s -o /dev/null "http://127.0.0.1:$PORT/health"; then
  echo "make run: something already answers on port $PORT; set PORT to a free one"
  exit 1
fi
setsid make run >"$LOG" 2>&1 &
pid=$!
stop() {
  kill -TERM -- "-$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL -- "-$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}
start=$(date +%s)
while :; do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")" = 200 ]; then
    echo "make run: /health answered 200 after $(($(date +%s) - start)) s"
    models=$(curl -s "http://127.0.0.1:$PORT/v1/models" -o /dev/null -w '%{http_code}')
    echo "make run: /v1/models without a key answered $models (the gateway is on: 401 expected)"
    stop
    rm -rf "$NEOCLOUD_DATA"
    [ "$models" = 401 ] || exit 1
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "make run: exited before /health answered; last lines:"
    tail -40 "$LOG"
    exit 1
  fi
  if [ $(($(date +%s) - start)) -ge "$limit" ]; then
    echo "make run: no /health 200 within $limit s; last lines:"
    tail -40 "$LOG"
    stop
    exit 1
  fi
  sleep 1
done
