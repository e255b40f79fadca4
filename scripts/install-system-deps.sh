#!/usr/bin/env bash
# Make sure redis-server (>= 7.0) and the PostgreSQL server binaries are on this machine.
# As root: `apt-get update` once, then install what is missing from Debian's packages, without
# starting the distribution's own services (we run our own, on our own ports). Otherwise: say
# which packages to install and fail.
#
# `install-system-deps.sh --optional PKG…` installs extra packages the same way when possible
# (e.g. nutcracker for the benchmarks, nodejs and npm for the Node SDK tests) and never fails:
# what cannot be had is skipped.
set -euo pipefail

missing=()
optional=0

# An optional package counts as there when dpkg has it, or, for node and npm, when the command
# is on PATH however it came (NodeSource's nodejs package carries npm, and conflicts with
# Debian's npm package).
optional_present() {
  case "$1" in
    nodejs) command -v node >/dev/null 2>&1 && return 0 ;;
    npm) command -v npm >/dev/null 2>&1 && return 0 ;;
  esac
  dpkg -s "$1" >/dev/null 2>&1
}

if [ "${1:-}" = "--optional" ]; then
  optional=1
  shift
  for pkg in "$@"; do
    optional_present "$pkg" || missing+=("$pkg")
  done
fi

redis_ok() {
  command -v redis-server >/dev/null 2>&1 || return 1
  local v
  v=$(redis-server --version | sed -n 's/.*v=\([0-9]*\)\..*/\1/p')
  [ "${v:-0}" -ge 7 ]
}

postgres_ok() {
  if [ -n "${REDISGATE_POSTGRES_BIN_DIR:-}" ]; then
    [ -x "$REDISGATE_POSTGRES_BIN_DIR/postgres" ] && [ -x "$REDISGATE_POSTGRES_BIN_DIR/initdb" ]
    return
  fi
  local d
  if command -v pg_config >/dev/null 2>&1; then
    d=$(pg_config --bindir 2>/dev/null || true)
    [ -n "$d" ] && [ -x "$d/postgres" ] && [ -x "$d/initdb" ] && return 0
  fi
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/postgres" ] && [ -x "$d/initdb" ] && return 0
  done
  command -v postgres >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1
}

if [ "$optional" -eq 0 ]; then
  redis_ok || missing+=(redis-server)
  postgres_ok || missing+=(postgresql)
  command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  if [ "$optional" -eq 1 ]; then
    echo "optional packages not installed (not root): ${missing[*]}" >&2
    exit 0
  fi
  echo "RedisGate needs these Debian packages: ${missing[*]}" >&2
  echo "Install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "==> installing system packages with apt-get: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Keep the packages from starting their own services (a Redis on 6379, a PostgreSQL "main"
# cluster): RedisGate starts the servers it needs itself. policy-rc.d is Debian's switch for
# that; we only add it if nobody else did, and remove it afterwards.
policy=${REDISGATE_POLICY_RC:-/usr/sbin/policy-rc.d}  # (overridable for its tests)
added_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  added_policy=1
fi
createcluster=${REDISGATE_CREATECLUSTER_DIR:-/etc/postgresql-common/createcluster.d}
mkdir -p "$createcluster"
echo "create_main_cluster = false" > "$createcluster/redisgate.conf"
# (an `if`, not `&&`: the trap's status would become the script's when the file was already there)
cleanup() { if [ "$added_policy" -eq 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

if [ "$optional" -eq 1 ]; then
  { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } ||
    echo "could not install ${missing[*]}: skipping them" >&2
  exit 0
fi
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

redis_ok || { echo "redis-server >= 7.0 is still missing after apt-get" >&2; exit 1; }
postgres_ok || { echo "PostgreSQL server binaries still missing after apt-get" >&2; exit 1; }
echo "==> system packages installed: ${missing[*]}" >&2
