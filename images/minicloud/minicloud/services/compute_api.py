"""compute-api (:8774): the Nova v2.1 subset, with microversions.

Reads the database directly and acts through the conductor (casts), like
nova-api. Refuses to start (exit 2) without a database or on a schema newer
than this release knows. Handlers live in ``minicloud.api``.
"""
from __future__ import annotations

import logging
import sys
import threading

import sqlalchemy as sa

from minicloud.api import build_router
from minicloud.api.app import ComputeApp
from minicloud.auth import TokenValidator
from minicloud.config import Config
from minicloud.db import SchemaTooNew, connect
from minicloud.db import api as db
from minicloud.defects import has_defect
from minicloud.rpc import ConductorAPI
from minicloud.web import serve

LOG = logging.getLogger("minicloud.compute_api")

#: the 1.1+token-cache-key-kdf variant's rounds (a password hasher's, not a cache key's)
PASSWORD_HASH_ROUNDS = 100_000
#: the 1.1+ready-before-warm variant's periodic cache refresh
CACHE_REFRESH_SECONDS = 5.0


def _refresh_caches(app: ComputeApp, warm: threading.Event) -> None:
    """The 1.1+ready-before-warm variant: a periodic refresh of the flavor cache, which the API
    waits for. The bug: the loop waits one interval before its first pass (so the API refuses
    calls for 5 s after start) while ``/healthz`` answers ok at once."""
    while True:
        threading.Event().wait(CACHE_REFRESH_SECONDS)  # the periodic timer, not a wait for a condition
        try:
            db.flavor_list(app.engine)
        except sa.exc.SQLAlchemyError as exc:
            LOG.warning("cache refresh failed: %s", exc)
            continue
        if not warm.is_set():
            LOG.info("caches warm: serving the API")
            warm.set()


def main(config: Config) -> int:
    if not config.database:
        print(f"minicloud: error: {config.path}: database: missing (required by compute-api)",
              file=sys.stderr)
        return 2
    try:
        engine = connect(config.database, config.release)
    except SchemaTooNew as exc:
        print(f"minicloud: error: {exc}", file=sys.stderr)
        return 2
    except sa.exc.SQLAlchemyError as exc:
        print(f"minicloud: error: {config.path}: database: {exc}", file=sys.stderr)
        return 2
    # The 1.1+token-cache-key-kdf bug: the password hasher's rounds for a cache key.
    key_rounds = PASSWORD_HASH_ROUNDS if has_defect(config.release, "token-cache-key-kdf") else 0
    app = ComputeApp(config=config, engine=engine,
                     validator=TokenValidator(config.endpoint("identity"), key_rounds=key_rounds),
                     conductor=ConductorAPI(config))
    if has_defect(config.release, "ready-before-warm"):
        app.warm = threading.Event()
        threading.Thread(target=_refresh_caches, args=(app, app.warm), name="cache-refresh",
                         daemon=True).start()
    if config.raw.get("debug_delay") is True:
        LOG.warning("debug_delay is on: X-Minicloud-Debug-Delay is honoured (tests only)")
    drain_bound = config.shutdown_timeout
    if has_defect(config.release, "api-nodrain"):
        # The bug: 1.1 reads its drain bound from a renamed option that no config sets,
        # so a SIGTERM waits 0 s for the requests in flight.
        drain_bound = float(config.raw.get("graceful_shutdown_timeout", 0.0))
    return serve(build_router(app), config.bind, config.port, "compute-api", drain_bound)
