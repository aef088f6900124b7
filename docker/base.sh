#!/usr/bin/env bash
# A Debian bookworm base image with Python 3.11 and venv, built with debootstrap from Debian's mirror and
# `docker import`ed as $1 (default distill-base:bookworm): for machines that reach Debian's packages but
# no image registry. docker/Dockerfile builds on it with --build-arg BASE_IMAGE=$1.
set -euo pipefail
tag="${1:-distill-base:bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
root="$(mktemp -d "${TMPDIR:-/tmp}/base.XXXXXX")"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "$mirror" >/dev/null
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
echo "deb $mirror bookworm main" > "$root/etc/apt/sources.list"
tar -C "$root" -c . | docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "built $tag"
