# Sourced by the server test scripts. start_server LOG ARGS...: starts `$NC serve --port 0 ARGS...`
# in the background (PID), waits until /health answers 200, and sets PORT and U (the base URL).
# Needs NC (the neocloud binary) and fail() from the caller.
start_server() {
  local log=$1; shift
  : >"$log"  # empty now, before the background shell opens it: no stale port, no missing file
  "$NC" serve --port 0 "$@" 2>"$log" &
  PID=$!
  trap 'kill $PID 2>/dev/null || true' EXIT
  PORT=""
  for _ in $(seq 100); do
    PORT=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\)\/v1.*/\1/p' "$log" || true)
    [ -n "$PORT" ] && break
    kill -0 $PID 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$PORT" ] || fail "server did not start: $(cat "$log")"
  U="http://127.0.0.1:$PORT"
  for _ in $(seq 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$U/health")" = "200" ] && return 0
    kill -0 $PID 2>/dev/null || fail "server exited while loading: $(cat "$log")"
    sleep 0.1
  done
  fail "models did not load: $(cat "$log")"
}
