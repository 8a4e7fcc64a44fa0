#!/usr/bin/env bash
# Prepare a fresh machine for rollgate: a venv with rollgate and its test
# extras, and (unless ROLLGATE_NO_DOCKER=1) a running Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q -e '.[test]'
if [ "${ROLLGATE_NO_DOCKER:-0}" != 1 ] && [ -f .ci/docker-setup.sh ]; then
  bash .ci/docker-setup.sh
fi
