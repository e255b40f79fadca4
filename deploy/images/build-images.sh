#!/usr/bin/env bash
# Build every image deploy/compose.yaml needs, on a machine that may reach no registry:
#
#   deploy/images/build-images.sh [ENV_FILE]
#
#  - debian:bookworm-slim: pulled, or made with debootstrap (build-debian-base.sh);
#  - redisgate:0.1.0 from deploy/Dockerfile, with a host-built wheelhouse (build-wheelhouse.sh);
#  - PostgreSQL and Prometheus: the upstream images when they can be pulled, else look-alikes
#    from Debian packages (deploy/images/postgres, deploy/images/prometheus).
# With ENV_FILE (e.g. deploy/.env), its REDISGATE_IMAGE, POSTGRES_IMAGE and PROMETHEUS_IMAGE
# lines are set to the images to use. Grafana is not a Debian package: nothing is built for it
# (its Compose profile needs the upstream image). Needs a running Docker daemon.
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
env_file=${1:-}
python=${PYTHON:-$here/.venv/bin/python}

log() { echo "==> $*" >&2; }
have() { docker image inspect "$1" >/dev/null 2>&1; }
pullable() { timeout 60 docker pull -q "$1" >/dev/null 2>&1; }

if ! have debian:bookworm-slim && ! pullable debian:bookworm-slim; then
  log "no registry: building debian:bookworm-slim with debootstrap"
  deploy/images/build-debian-base.sh debian:bookworm-slim
fi
log "wheelhouse (host pip; the image installs with --no-index)"
deploy/images/build-wheelhouse.sh "$python"
revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
redisgate_image=redisgate:0.1.0
log "building $redisgate_image (deploy/Dockerfile)"
nice -n 10 docker build -q --network host -f deploy/Dockerfile --build-arg REVISION="$revision" \
  -t "$redisgate_image" . >/dev/null

postgres_image=postgres:15-bookworm
prometheus_image=prom/prometheus:v2.53.0
if ! have "$postgres_image" && ! pullable "$postgres_image"; then
  postgres_image=redisgate-local/postgres:15
  log "no registry: building $postgres_image from Debian's postgresql-15"
  nice -n 10 docker build -q --network host -t "$postgres_image" deploy/images/postgres >/dev/null
fi
if ! have "$prometheus_image" && ! pullable "$prometheus_image"; then
  prometheus_image=redisgate-local/prometheus:2.42
  log "no registry: building $prometheus_image from Debian's prometheus"
  nice -n 10 docker build -q --network host -t "$prometheus_image" deploy/images/prometheus >/dev/null
fi
log "$redisgate_image: $(( $(docker image inspect -f '{{.Size}}' "$redisgate_image") / 1000000 )) MB"

if [ -n "$env_file" ]; then
  for line in "REDISGATE_IMAGE=$redisgate_image" "POSTGRES_IMAGE=$postgres_image" \
    "PROMETHEUS_IMAGE=$prometheus_image"; do
    name=${line%%=*}
    if grep -q "^$name=" "$env_file"; then
      sed -i "s|^$name=.*|$line|" "$env_file"
    else
      echo "$line" >>"$env_file"
    fi
  done
  log "$env_file: REDISGATE_IMAGE, POSTGRES_IMAGE and PROMETHEUS_IMAGE set"
fi
