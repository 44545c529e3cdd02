#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests, benchmarks and trying the PostgreSQL stores by hand.
#
#   scripts/pg.sh install        apt-get install postgresql when initdb is missing (needs root or sudo)
#   scripts/pg.sh start          start a cluster in a new temporary directory on a free loopback port and print
#                                `export YOI_TEST_PG_URL=…` and `export YOI_PG_DIR=…` (eval the output)
#   scripts/pg.sh stop [DIR]     stop the cluster in DIR (default $YOI_PG_DIR) and remove the directory
#
# The cluster trusts local connections (user `postgres`, no password), keeps its socket in its own directory and
# listens on 127.0.0.1 only. PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user.
set -euo pipefail

pg_bin() {
  if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then pg_config --bindir; return; fi
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
  done
  return 1
}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

cmd="${1:-}"
case "$cmd" in
  install)
    if pg_bin >/dev/null; then echo "PostgreSQL is installed: $(pg_bin)" >&2; exit 0; fi
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2
    pg_bin >/dev/null || { echo "pg.sh: postgresql installed but initdb not found" >&2; exit 1; }
    ;;
  start)
    bin="$(pg_bin)" || { echo "pg.sh: PostgreSQL is not installed (run scripts/pg.sh install)" >&2; exit 1; }
    dir="$(mktemp -d "${TMPDIR:-/tmp}/yoi-pg.XXXXXX")"
    chmod 0755 "$dir"
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir"; fi
    port="$(free_port)"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c max_connections=300 -c fsync=off" \
      start >/dev/null 2>&1 || { cat "$dir/server.log" >&2; exit 1; }
    echo "export YOI_TEST_PG_URL=postgres://postgres@127.0.0.1:$port/postgres"
    echo "export YOI_PG_DIR=$dir"
    ;;
  stop)
    dir="${2:-${YOI_PG_DIR:-}}"
    [ -n "$dir" ] && [ -d "$dir/data" ] || { echo "pg.sh: no cluster directory given (or \$YOI_PG_DIR)" >&2; exit 1; }
    bin="$(pg_bin)"
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    sed -n '2,10p' "$0" >&2
    exit 2
    ;;
esac
