#!/usr/bin/env bash
# Fill deploy/wheelhouse/ with wheels of everything the image installs (RedisGate's
# dependencies at the versions of this checkout's .venv, and hatchling to build RedisGate's own
# wheel), so `docker build` installs with `pip --no-index` and never reaches an index itself.
#
# Why: on machines whose outbound TLS passes an inspecting proxy, the proxy's CA is in the
# host's CA bundle only, and pip inside a build container fails with CERTIFICATE_VERIFY_FAILED.
# The host's pip (which trusts that bundle) downloads instead; the image stays free of the CA
# and of any index settings. Air-gapped builds work the same way (copy the wheelhouse over).
#
#   deploy/images/build-wheelhouse.sh [PYTHON]      (PYTHON: default .venv/bin/python)
#
# PYTHON must be CPython 3.11, the python3 of the image's Debian 12 base, so that compiled
# wheels (uvloop, hiredis, asyncpg, cryptography…) match the image's interpreter.
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
python=${1:-$here/.venv/bin/python}
out=$here/deploy/wheelhouse

version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$version" != "3.11" ]; then
  echo "build-wheelhouse.sh: $python is Python $version; the image's Debian 12 python3 is 3.11" >&2
  exit 1
fi

constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
# The exact versions the test suite ran against (the editable RedisGate itself left out).
"$python" -m pip freeze --exclude-editable > "$constraints"

find "$out" -name '*.whl' -delete
echo "==> wheels for RedisGate's dependencies and hatchling into deploy/wheelhouse/" >&2
# async-timeout: redis-py needs it below Python 3.11.3 (a python_full_version marker), and
# Debian 12's python3 is 3.11.2 while the host's may be newer; markers are judged by the host.
"$python" -m pip wheel -q --disable-pip-version-check --wheel-dir "$out" \
  --constraint "$constraints" "$here" 'hatchling>=1.21' 'async-timeout>=4.0.3'
# The image builds RedisGate's own wheel from the source it copies (the Dockerfile's build stage).
rm -f "$out"/redisgate-*.whl
echo "==> $(find "$out" -name '*.whl' | wc -l) wheels in deploy/wheelhouse/" >&2
