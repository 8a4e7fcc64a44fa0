#!/usr/bin/env bash
# Build the root filesystem of rollgate's base image into DIR.
#
# Why: no container registry is reachable, so no image can be pulled. Every
# rollgate image is built FROM one base that is made here from Debian's
# packages (debootstrap, over HTTP from Debian's mirror), then imported with
# `docker import` by harness/images.py. The image's cache key is a hash of this
# directory, so editing this script or packages.txt rebuilds the base and,
# through their parent id, every image built from it.
#
# Usage: build-rootfs.sh DIR   (as root; DIR must not exist or be empty)
set -euo pipefail

target="${1:?usage: build-rootfs.sh DIR}"
suite="bookworm"
mirror="${ROLLGATE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
here="$(cd "$(dirname "$0")" && pwd)"
include="$(grep -v '^\s*#' "$here/packages.txt" | grep -v '^\s*$' | paste -sd, -)"

debootstrap --variant=minbase --include="$include" "$suite" "$target" "$mirror"

# Keep images small: no docs, man pages or translations, now or in any later
# `apt-get install` of an image built FROM this one; no recommends.
cat >"$target/etc/dpkg/dpkg.cfg.d/rollgate-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
cat >"$target/etc/apt/apt.conf.d/90rollgate" <<'CFG'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Retries "3";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
CFG
echo "deb $mirror $suite main" >"$target/etc/apt/sources.list"

find "$target/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$target/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$target"/usr/share/man/* "$target"/usr/share/info/* \
    "$target"/var/cache/apt/archives/*.deb "$target"/var/cache/apt/*.bin \
    "$target"/var/lib/apt/lists/* "$target"/var/log/*.log "$target"/tmp/*
find "$target/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
