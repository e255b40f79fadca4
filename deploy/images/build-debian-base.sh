#!/usr/bin/env bash
# Build `debian:bookworm-slim` locally when no container registry is reachable: a minimal
# Debian 12 root file system from Debian's own mirror (debootstrap --variant=minbase), trimmed
# the way the official slim image is (no docs, man pages or locales), then `docker import`ed
# under the same name, so every `FROM debian:bookworm-slim` in deploy/ builds on it unchanged.
#
#   deploy/images/build-debian-base.sh [TAG]     (as root; TAG defaults to debian:bookworm-slim)
#
# Uses the mirror of this machine's apt sources (DEBIAN_MIRROR overrides it).
set -euo pipefail

tag=${1:-debian:bookworm-slim}
mirror=${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' \
  /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)}
mirror=${mirror:-http://deb.debian.org/debian}

if [ "$(id -u)" -ne 0 ]; then
  echo "build-debian-base.sh must run as root (debootstrap makes device nodes and chowns)" >&2
  exit 1
fi
command -v debootstrap >/dev/null || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
}

root=$(mktemp -d /tmp/redisgate-rootfs.XXXXXX)
cleanup() { rm -rf "$root"; }
trap cleanup EXIT

echo "==> debootstrap --variant=minbase bookworm from $mirror" >&2
debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null

# What the official slim image leaves out, and apt settings it ships.
rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
  "$root"/usr/share/locale/* "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
cat > "$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
CFG
cat > "$root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
printf 'Acquire::Languages "none";\n' > "$root/etc/apt/apt.conf.d/docker-no-languages"
printf 'APT::Install-Recommends "false";\n' > "$root/etc/apt/apt.conf.d/docker-no-recommends"
cat > "$root/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
rm -f "$root/etc/apt/sources.list"
: > "$root/etc/hostname"
: > "$root/etc/resolv.conf"

echo "==> docker import as $tag" >&2
tar -C "$root" --numeric-owner -c . |
  docker import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$tag" >/dev/null
docker image ls "$tag"
