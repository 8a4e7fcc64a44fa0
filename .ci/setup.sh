#!/usr/bin/env bash
# Prepare a fresh machine for rollgate: Debian packages the tests use
# (HAProxy for the load balancer on the process backend, Chromium for the
# report screenshot test), a venv with rollgate and its test extras, and
# (unless ROLLGATE_NO_DOCKER=1) a running Docker engine with rollgate's images built.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive

missing=()
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q -e '.[test]'
if [ "${ROLLGATE_NO_DOCKER:-0}" != 1 ]; then
  bash .ci/docker-setup.sh
  # Build every image once (cached by content: a no-op when nothing changed).
  .venv/bin/rollgate images build
  # Real OpenStack, both releases (the upgrade test rolls 2026.1 to 2026.2; cold: about 5 min,
  # most of it building the one wheel 2026.1 pins without a binary, ovs).
  .venv/bin/rollgate images build --cloud openstack
fi
