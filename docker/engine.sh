#!/usr/bin/env bash
# Make sure a Docker engine answers here (`make docker-engine`), for make image and
# make appliance-test on a machine that has none yet: Debian's docker.io (its CLI has
# BuildKit built in), containerd, runc and mmdebstrap (docker/base-image.sh) from apt, then
# dockerd started in the background. Needs root and apt; says what it did.
set -euo pipefail

if [ -x /usr/bin/docker ] && /usr/bin/docker info >/dev/null 2>&1; then
    echo "docker engine: already answering"
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "docker engine: none answers, and installing one needs root and apt-get" >&2
    exit 1
fi
if ! command -v dockerd >/dev/null || ! command -v mmdebstrap >/dev/null; then
    echo "docker engine: installing docker.io containerd runc mmdebstrap with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io containerd runc mmdebstrap \
        >/dev/null
fi
echo "docker engine: starting dockerd (log: /var/log/dockerd.log)"
nohup dockerd --data-root /var/lib/docker >/var/log/dockerd.log 2>&1 &
for _ in $(seq 60); do
    if /usr/bin/docker info >/dev/null 2>&1; then
        echo "docker engine: answering"
        exit 0
    fi
    sleep 1
done
echo "docker engine: dockerd did not answer within 60 s (see /var/log/dockerd.log)" >&2
exit 1
