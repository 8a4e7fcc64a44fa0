#!/usr/bin/env bash
# Make a Docker engine available on this machine, idempotently.
#
# Why: CI starts on a fresh Debian 12 machine with no Docker engine and no
# registry reachable. rollgate builds every image offline (debootstrap + docker
# import), so it needs docker.io and debootstrap from Debian, and a running
# dockerd. Safe to call twice: it installs what is missing, starts dockerd only
# if `docker info` does not answer, and waits (bounded) until it does.
#
# Environment: DOCKER_SETUP_TIMEOUT (seconds to wait for dockerd, default 60),
# DOCKERD_LOG (default /var/log/rollgate-dockerd.log).
set -euo pipefail

timeout_s="${DOCKER_SETUP_TIMEOUT:-60}"
dockerd_log="${DOCKERD_LOG:-/var/log/rollgate-dockerd.log}"

log() { echo "docker-setup: $*" >&2; }

need_install=()
command -v dockerd >/dev/null 2>&1 || need_install+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_install+=(debootstrap)
if [ "${#need_install[@]}" -gt 0 ]; then
    log "installing ${need_install[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_install[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
    log "dockerd already answers"
    exit 0
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
    log "starting dockerd (log: $dockerd_log)"
    # setsid: dockerd outlives this script and is not in CI's process group.
    setsid nohup dockerd >"$dockerd_log" 2>&1 </dev/null &
fi

deadline=$(( $(date +%s) + timeout_s ))
until docker info >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        log "dockerd did not answer within ${timeout_s}s; last lines of $dockerd_log:"
        tail -n 30 "$dockerd_log" >&2 || true
        exit 1
    fi
    sleep 0.5
done
log "dockerd ready ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
