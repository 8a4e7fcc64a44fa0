"""``GET /healthz`` for every data-plane service, as DESIGN.md specifies."""
from __future__ import annotations

from typing import Any

from minicloud.config import Config
from minicloud.web import Request, Router


def add_healthz(router: Router, config: Config) -> None:
    """Answer readiness probes (no token) with the service's release and version."""

    def healthz(_request: Request) -> dict[str, Any]:
        return {"service": config.service, "host": config.host, "release": config.release.label,
                "version": config.release.service_version, "status": "ok",
                # the compute RPC cap in force (changes on SIGHUP, see minicloud.reload)
                "upgrade_levels": {"compute": config.upgrade_levels_compute}}

    router.add("GET", "/healthz", healthz)
