"""compute-api (:8774): the Nova v2.1 subset, with microversions.

Reads the database directly and acts through the conductor (casts), like
nova-api. Refuses to start (exit 2) without a database or on a schema newer
than this release knows. Handlers live in ``minicloud.api``.
"""
from __future__ import annotations

import logging
import sys

import sqlalchemy as sa

from minicloud.api import build_router
from minicloud.api.app import ComputeApp
from minicloud.auth import TokenValidator
from minicloud.config import Config
from minicloud.db import SchemaTooNew, connect
from minicloud.defects import has_defect
from minicloud.rpc import ConductorAPI
from minicloud.web import serve

LOG = logging.getLogger("minicloud.compute_api")


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
    app = ComputeApp(config=config, engine=engine, validator=TokenValidator(config.endpoint("identity")),
                     conductor=ConductorAPI(config))
    if config.raw.get("debug_delay") is True:
        LOG.warning("debug_delay is on: X-Minicloud-Debug-Delay is honoured (tests only)")
    drain_bound = config.shutdown_timeout
    if has_defect(config.release, "api-nodrain"):
        # The bug: 1.1 reads its drain bound from a renamed option that no config sets,
        # so a SIGTERM waits 0 s for the requests in flight.
        drain_bound = float(config.raw.get("graceful_shutdown_timeout", 0.0))
    return serve(build_router(app), config.bind, config.port, "compute-api", drain_bound)
