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
    return serve(build_router(app), config.bind, config.port, "compute-api", config.shutdown_timeout)
