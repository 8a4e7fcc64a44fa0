"""SIGHUP: re-read the mutable part of the host config, as Nova does for ``upgrade_levels``.

A rolling upgrade pins the compute RPC version before the first agent is
replaced and lifts the pin at the end; the services that send to compute
agents must pick the new level up without a restart (a restart would cost
in-flight orchestration). On SIGHUP the service re-reads its config file and
takes the new ``upgrade_levels.compute``; everything else keeps its start-time
value. A config that does not parse is logged and ignored: the old level stays.
``GET /healthz`` reports the level in force, so an operator (or the harness)
can verify that the reload happened.
"""
from __future__ import annotations

import logging
import signal
from typing import Any

from minicloud.config import Config, ConfigError, load_config

LOG = logging.getLogger("minicloud.reload")


def reload_upgrade_levels(config: Config) -> None:
    """Re-read ``config.path`` and apply its ``upgrade_levels.compute`` to ``config``."""
    try:
        fresh = load_config(config.path, config.service)
    except ConfigError as exc:
        LOG.error("SIGHUP: config not reloaded, keeping upgrade_levels.compute=%s: %s",
                  config.upgrade_levels_compute, exc)
        return
    old = config.upgrade_levels_compute
    config.upgrade_levels_compute = fresh.upgrade_levels_compute
    config.raw["upgrade_levels"] = fresh.raw.get("upgrade_levels")
    LOG.info("SIGHUP: upgrade_levels.compute %s -> %s", old, config.upgrade_levels_compute)


def install_sighup_reload(config: Config) -> None:
    """Reload ``upgrade_levels`` on SIGHUP (call from the main thread before serving)."""

    def _on_sighup(_signum: int, _frame: Any) -> None:
        reload_upgrade_levels(config)

    signal.signal(signal.SIGHUP, _on_sighup)
