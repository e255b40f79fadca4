#!/usr/bin/env bash
# `make deploy-test`: build RedisGate's image and run deploy/compose.yaml on this machine, for
# real, then check it (scripts/deploy_check.py) and tear it down. docs/deploy.md, "The local
# proof", says what it shows and what it leaves out (Grafana).
#
#  1. As root, install Debian's docker.io and docker-compose when missing; start dockerd when
#     it is not running (and stop it again at the end).
#  2. Images (deploy/images/build-images.sh): `debian:bookworm-slim` from debootstrap when it
#     cannot be pulled; RedisGate's from deploy/Dockerfile with a host-built wheelhouse;
#     PostgreSQL and Prometheus look-alikes from Debian packages when the upstream images
#     cannot be pulled.
#  3. `docker-compose up` with throwaway secrets and free host ports, the checks, `down -v`.
#
# DEPLOY_TEST_KEEP=1 leaves the stack running (tear down: the printed command).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
python=${PYTHON:-$here/.venv/bin/python}
project=redisgate-deploytest
work=$(mktemp -d /tmp/redisgate-deploytest.XXXXXX)
started_dockerd=0
started_at=$(date +%s)

log() { echo "==> $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  echo "deploy-test needs root (it installs docker.io and starts dockerd); run it as root" >&2
  exit 1
fi

# --- 1. Docker ---------------------------------------------------------------------------
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (log: $work/dockerd.log)"
  setsid dockerd >"$work/dockerd.log" 2>&1 </dev/null &
  echo $! >"$work/dockerd.pid"
  started_dockerd=1
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { cat "$work/dockerd.log" >&2; echo "dockerd did not start" >&2; exit 1; }
fi
compose() { docker-compose -p "$project" -f deploy/compose.yaml --env-file "$work/env" "$@"; }

cleanup() {
  status=$?
  if [ "${DEPLOY_TEST_KEEP:-0}" = "1" ]; then
    log "stack left running: docker-compose -p $project -f deploy/compose.yaml --env-file $work/env down -v"
    return
  fi
  if [ -f "$work/env" ]; then
    if [ "$status" -ne 0 ]; then
      compose ps >&2 || true
      compose logs --no-color --tail 40 >&2 || true
    fi
    log "tearing the stack down"
    compose down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  if [ "$started_dockerd" -eq 1 ]; then
    log "stopping the dockerd this test started"
    kill "$(cat "$work/dockerd.pid")" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$(cat "$work/dockerd.pid")" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -rf "$work"
  log "deploy-test: $([ "$status" -eq 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - started_at )) s"
}
trap cleanup EXIT

# --- 2. Images -----------------------------------------------------------------------------
# Upstream images where the registry answers, else look-alikes built here from Debian; the
# image variables go into the stack's env file below.
: >"$work/images.env"
PYTHON="$python" deploy/images/build-images.sh "$work/images.env"
image_size=$(docker image inspect -f '{{.Size}}' redisgate:0.1.0)

# --- 3. The stack --------------------------------------------------------------------------
secret() { "$python" -c 'import secrets; print(secrets.token_urlsafe(32))'; }
ports=($("$python" -c '
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))'))
cat >"$work/env" <<ENV
POSTGRES_PASSWORD=$(secret)
REDISGATE_JWT_SECRET=$(secret)
REDISGATE_BACKEND_SECRET_KEYS=$("$python" -m redisgate secrets new-key)
BACKEND_REDIS_PASSWORD=$(secret)
GRAFANA_ADMIN_PASSWORD=$(secret)
PUBLISH_ADDRESS=127.0.0.1
GATEWAY_1_PORT=${ports[0]}
GATEWAY_2_PORT=${ports[1]}
CONTROL_PORT=${ports[2]}
PROMETHEUS_PORT=${ports[3]}
GATEWAY_1_HTTP_PORT=${ports[4]}
GATEWAY_2_HTTP_PORT=${ports[5]}
$(cat "$work/images.env")
ENV
chmod 600 "$work/env"

log "docker-compose up (project $project; Grafana's profile off: not a Debian package)"
compose config -q
compose up -d --no-build
"$python" scripts/deploy_check.py --project "$project" --env-file "$work/env" \
  --compose-file deploy/compose.yaml --image-size "$image_size"
