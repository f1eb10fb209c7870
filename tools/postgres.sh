#!/usr/bin/env bash
# A private, throwaway PostgreSQL server for tests (ctest fixture `pg`, or by hand):
#   tools/postgres.sh start DIR   initdb + pg_ctl start; prints the connection URL and writes it to DIR/url
#   tools/postgres.sh stop DIR    stops the server and deletes its data
#   tools/postgres.sh url DIR     prints the URL of the running server
# The server listens only on a unix socket in its own directory (no TCP port, so nothing else on
# the machine can collide with it or reach it), trusts local connections, and uses UTF-8.
# Its data and socket live in a short /tmp/nc-pg.XXXXXX directory (unix socket paths are limited to
# ~100 bytes), recorded in DIR/instance. `start` first stops a server left by an earlier run.
# As root (CI machines) the server runs as the `postgres` user, since initdb and postgres refuse root.
# Needs Debian's postgresql package (tools/install-deps.sh); binaries from /usr/lib/postgresql/*/bin.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop|url DIR" >&2
  exit 2
fi

die() { echo "postgres.sh: $*" >&2; exit 1; }

pg_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return; fi
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"
    return
  fi
  die "initdb/pg_ctl not found: install the postgresql package (bash tools/install-deps.sh)"
}

# Runs a command as the server's user: `postgres` when we are root, else ourselves.
as_server() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

stop_instance() {
  local inst
  [ -f "$dir/instance" ] || return 0
  inst=$(cat "$dir/instance")
  case "$inst" in
    /tmp/nc-pg.*) ;;
    *) die "refusing to remove unexpected instance directory '$inst'" ;;
  esac
  if [ -f "$inst/data/postmaster.pid" ]; then
    as_server "$BIN/pg_ctl" -D "$inst/data" -m immediate -w -t 60 stop >/dev/null 2>&1 || true
  fi
  rm -rf "$inst"
  rm -f "$dir/instance" "$dir/url"
}

BIN=$(pg_bin)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

case "$cmd" in
  start)
    stop_instance
    if [ "$(id -u)" -eq 0 ]; then
      id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' user (the postgresql package creates it)"
    fi
    inst=$(mktemp -d /tmp/nc-pg.XXXXXX)
    echo "$inst" >"$dir/instance"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$inst"; fi
    chmod 755 "$inst"  # the socket lives here; data/ itself is 0700 (initdb)
    if ! as_server "$BIN/initdb" -D "$inst/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
        >"$inst/initdb.log" 2>&1; then
      cat "$inst/initdb.log" >&2
      die "initdb failed"
    fi
    cat >>"$inst/data/postgresql.conf" <<EOF

# tools/postgres.sh: private test server
listen_addresses = ''
unix_socket_directories = '$inst'
port = 5432
max_connections = 300
shared_buffers = 64MB
EOF
    if ! as_server "$BIN/pg_ctl" -D "$inst/data" -l "$inst/server.log" -w -t 120 start >/dev/null; then
      tail -n 50 "$inst/server.log" >&2 || true
      die "pg_ctl start failed"
    fi
    url="postgresql:///postgres?host=$inst&port=5432&user=postgres"
    if [ -x "$BIN/psql" ] && ! "$BIN/psql" "$url" -qAtc 'SELECT 1' >/dev/null; then
      tail -n 50 "$inst/server.log" >&2 || true
      die "the server started but does not accept connections"
    fi
    echo "$url" >"$dir/url"
    echo "$url"
    ;;
  stop)
    stop_instance
    ;;
  url)
    [ -f "$dir/url" ] || die "no server running for $dir"
    cat "$dir/url"
    ;;
  *)
    echo "usage: $0 start|stop|url DIR" >&2
    exit 2
    ;;
esac
