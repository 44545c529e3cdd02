#!/usr/bin/env bash
# Runs the test suite (or, with --smoke, scripts/smoke.mjs) under each supported Node: 20, 22 and 24 by default.
#
#   scripts/node-matrix.sh [--smoke] [20 22 24] [-- <vitest arguments, e.g. test files>]
#
# A Node other than the machine's comes from the npm package `node@<major>` (a real Node binary plus its headers),
# installed once into $NODE_MATRIX_CACHE (default ~/.cache/yoi-node-matrix) from the npm cache when it has it.
#
# better-sqlite3 (deps/better-sqlite3) is 13.x wherever Node has Node-API 10 (22.14+, 24): Node-API, prebuilt, one
# binary for every version, nothing to build. Elsewhere (Node 20) it is 12.x, compiled against the Node that ran
# `npm ci`; if that was another Node, this script compiles 12.x offline in a scratch copy of the repo against the
# target Node's headers (the `node` package's include/node, or the machine's /usr/include/node) and runs there.
#
# NODE_MATRIX_SCRATCH=1 takes the scratch-copy path even when better-sqlite3 already loads (to check that path).
# Exit status: 0 when every version passed; the summary names each version's result.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${NODE_MATRIX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/yoi-node-matrix}"
MODE=full
VERSIONS=()
VITEST_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) MODE=smoke ;;
    --) shift; VITEST_ARGS=("$@"); break ;;
    [0-9]*) VERSIONS+=("$1") ;;
    *) echo "usage: $0 [--smoke] [20 22 24] [-- <vitest arguments>]" >&2; exit 2 ;;
  esac
  shift
done
[ ${#VERSIONS[@]} -eq 0 ] && VERSIONS=(20 22 24)

machine_major="$(node -p 'process.versions.node.split(".")[0]')"
mkdir -p "$CACHE"

# Prints the path of a Node binary of major version $1, installing `node@$1` into the cache if needed.
node_for() {
  if [ "$1" = "$machine_major" ]; then command -v node; return; fi
  local prefix="$CACHE/node$1" bin="$CACHE/node$1/node_modules/node/bin/node"
  if [ ! -x "$bin" ]; then
    echo "installing node@$1 into $prefix" >&2
    npm install --prefix "$prefix" "node@$1" --prefer-offline --no-audit --no-fund --loglevel=error >&2 || return 1
  fi
  echo "$bin"
}

# Prints the directory holding include/node for the Node binary $1 (node-gyp's --nodedir).
nodedir_for() {
  local platform_pkg
  platform_pkg="$(ls -d "$(dirname "$(dirname "$1")")"/node_modules/node-*-* 2>/dev/null | head -1)"
  if [ -n "$platform_pkg" ] && [ -d "$platform_pkg/include/node" ]; then echo "$platform_pkg"; return; fi
  # The machine's Node: Debian's nodejs-dev puts the headers under /usr/include/node.
  [ -d /usr/include/node ] && echo /usr
}

# Does better-sqlite3 load and open a database under Node $1, from directory $2?
sqlite_loads() {
  (cd "$2" && "$1" -e 'const D = require("better-sqlite3"); new D(":memory:").prepare("select 1").get()' \
    >/dev/null 2>&1)
}

# Prints the directory to run in under Node $1 and $2 (major): the repo, or a scratch copy with better-sqlite3 12.x
# compiled for that Node.
workdir_for() {
  if [ -z "${NODE_MATRIX_SCRATCH:-}" ] && sqlite_loads "$1" "$ROOT"; then echo "$ROOT"; return; fi
  local scratch="$CACHE/repo-node$2" nodedir
  nodedir="$(nodedir_for "$1")"
  [ -n "$nodedir" ] || { echo "no Node headers for $1" >&2; return 1; }
  echo "copying the repo to $scratch to compile better-sqlite3 12.x against $nodedir" >&2
  rm -rf "$scratch" && mkdir -p "$scratch"
  tar -C "$ROOT" --exclude=./.git --exclude=./.yoi -cf - . | tar -C "$scratch" -xf -
  # prebuild-install fails offline (no github.com), then node-gyp builds against the given headers.
  (cd "$scratch" && rm -rf node_modules/better-sqlite3-v12/build \
    && PATH="$(dirname "$1"):$PATH" npm_config_nodedir="$nodedir" \
      npm rebuild better-sqlite3-v12 --foreground-scripts >&2) || return 1
  sqlite_loads "$1" "$scratch" || { echo "better-sqlite3 still does not load under $1" >&2; return 1; }
  echo "$scratch"
}

(cd "$ROOT" && npm run build --silent) || { echo "npm run build failed" >&2; exit 1; }

declare -A RESULT
status=0
for v in "${VERSIONS[@]}"; do
  echo "=== Node $v: $MODE ==="
  if ! bin="$(node_for "$v")"; then RESULT[$v]="no Node $v (npm install node@$v failed)"; status=1; continue; fi
  echo "node $("$bin" --version) at $bin"
  if ! dir="$(workdir_for "$bin" "$v")"; then RESULT[$v]="better-sqlite3 could not be built"; status=1; continue; fi
  started=$SECONDS
  if [ "$MODE" = smoke ]; then
    (cd "$dir" && PATH="$(dirname "$bin"):$PATH" "$bin" scripts/smoke.mjs)
  else
    (cd "$dir" && PATH="$(dirname "$bin"):$PATH" "$bin" node_modules/vitest/vitest.mjs run "${VITEST_ARGS[@]}")
  fi
  code=$?
  RESULT[$v]="$([ $code -eq 0 ] && echo passed || echo "FAILED (exit $code)") in $((SECONDS - started)) s ($("$bin" --version))"
  [ $code -eq 0 ] || status=1
done

echo "=== node matrix ($MODE) ==="
for v in "${VERSIONS[@]}"; do echo "Node $v: ${RESULT[$v]}"; done
exit $status
