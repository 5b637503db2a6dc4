#!/usr/bin/env bash
# Make sure the cpu image's base (python:3.11-slim-bookworm by default) exists locally.
#
#   docker/base-image.sh [IMAGE]        (DOCKER=/usr/bin/docker to pick the CLI)
#
# In order, and always saying which it did:
#   1. the image is already in the local engine: use it;
#   2. a registry answers `docker pull`: pull it;
#   3. no registry is reachable: build a stand-in with mmdebstrap (Debian bookworm, minbase,
#      Debian's python3 = 3.11) and `docker import` it under the same name. The host's CA
#      certificates (/usr/local/share/ca-certificates) go into it, so pip inside reaches the
#      package index through the same TLS-inspecting proxy the host uses.
# The stand-in is not the official image: its python is /usr/bin/python3 (with python-is-python3),
# not /usr/local/bin/python; the Dockerfile only relies on `python` and `python -m venv`.
set -euo pipefail

image=${1:-python:3.11-slim-bookworm}
docker=${DOCKER:-docker}
suite=${DEBIAN_SUITE:-bookworm}

if "$docker" image inspect "$image" >/dev/null 2>&1; then
    echo "base image: $image is already in the local engine; using it"
    exit 0
fi
if timeout "${PULL_TIMEOUT:-120}" "$docker" pull "$image" >/dev/null 2>&1; then
    echo "base image: pulled $image from its registry"
    exit 0
fi
echo "base image: $image is not local and no registry answered 'docker pull';"
echo "base image: building a stand-in with mmdebstrap ($suite minbase + python3) and importing it as $image"
if ! command -v mmdebstrap >/dev/null; then
    echo "base image: mmdebstrap is missing: apt-get install -y mmdebstrap (or pull $image on a" \
         "machine with registry access and 'docker load' it here)" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/certs"
# The host's extra CA certificates, if any (a TLS-inspecting proxy's), for pip inside.
cp /usr/local/share/ca-certificates/*.crt "$work/certs/" 2>/dev/null || true
# Single quotes: mmdebstrap expands "$1" (the rootfs) itself, not this shell.
# shellcheck disable=SC2016
ca_hook='chroot "$1" update-ca-certificates >/dev/null'
# shellcheck disable=SC2016
clean_hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*'
# No documentation, manual pages or translations: a server image reads none of them.
mmdebstrap --quiet --variant=minbase \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --include=python3,python3-venv,python-is-python3,passwd,ca-certificates \
    --customize-hook="cp $work/certs/. \"\$1/usr/local/share/ca-certificates/\" -r" \
    --customize-hook="$ca_hook" --customize-hook="$clean_hook" \
    "$suite" "$work/rootfs.tar"
"$docker" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$work/rootfs.tar" "$image" >/dev/null
echo "base image: imported $image ($(find "$work/certs" -name '*.crt' | wc -l) host CA certificate(s) added);" \
     "$("$docker" image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')"
