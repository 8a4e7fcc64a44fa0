"""The database: engine set-up, schema state and schema upgrades.

Several processes share one SQLite file (compute-api, conductor, manage), so
SQLite runs in WAL mode with a busy timeout, and write transactions take the
write lock up front (``BEGIN IMMEDIATE``): a deferred transaction that reads and
then writes fails at once with SQLITE_BUSY under WAL instead of waiting.

The schema changes under running code (expand adds columns, contract drops
them). ``columns()`` tells the data-access layer which columns exist right now;
it is cached for a few seconds and invalidated when a statement fails.
"""
from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from minicloud.releases import Release

EXPAND_REVISIONS = ("e10", "e11", "e20")
CONTRACT_REVISIONS = ("c10", "c11", "c20")
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
COLUMN_CACHE_SECONDS = 2.0
SQLITE_BUSY_TIMEOUT_MS = 30000


class SchemaTooNew(RuntimeError):
    """The database was upgraded past what this release can work with."""

    def __init__(self, revision: str, release: Release) -> None:
        super().__init__(f"database schema {revision} is newer than this release "
                         f"({release.label}) knows")
        self.revision = revision


class SchemaError(RuntimeError):
    """A schema operation cannot run; the message names the problem."""


def connect(url: str, release: Release | None = None) -> Engine:
    """Create an engine for ``url``; with ``release``, refuse a schema too new for it.

    Runs no migration. A schema is too new for release R when its contract
    branch is past R's contract head (columns R needs were dropped) or its expand
    branch is more than one release ahead (N+2 was never promised to work).
    """
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                                     "check_same_thread": False})
        _configure_sqlite(engine)
    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    if release is not None:
        check_not_too_new(engine, release)
        _engine_release[engine] = release
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        readonly = conn.get_execution_options().get("minicloud_readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction (never takes SQLite's write lock)."""
    with engine.connect() as plain:
        conn = plain.execution_options(minicloud_readonly=True)
        with conn.begin():
            yield conn


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction, committed on success."""
    with engine.begin() as conn:
        yield conn


# -- which columns exist right now -------------------------------------------

# engine -> the release whose code uses it (unset: manage/tests, all columns)
_engine_release: weakref.WeakKeyDictionary[Engine, Release] = weakref.WeakKeyDictionary()

_column_cache: weakref.WeakKeyDictionary[Engine, dict[str, tuple[float, frozenset[str]]]] = \
    weakref.WeakKeyDictionary()
_column_lock = threading.Lock()


def columns(engine: Engine, table: str) -> frozenset[str]:
    """The columns of ``table`` that exist now and that this engine's release knows."""
    present = present_columns(engine, table)
    release = _engine_release.get(engine)
    if release is None:
        return present
    from minicloud.db.models import KNOWN_SINCE

    return frozenset(c for c in present
                     if KNOWN_SINCE.get((table, c), 0) <= release.service_version)


def present_columns(engine: Engine, table: str) -> frozenset[str]:
    """The columns ``table`` has now (cached ``COLUMN_CACHE_SECONDS``)."""
    now = time.monotonic()
    with _column_lock:
        cached = _column_cache.get(engine, {}).get(table)
        if cached and now - cached[0] < COLUMN_CACHE_SECONDS:
            return cached[1]
    with reading(engine) as conn:
        found = frozenset(c["name"] for c in sa.inspect(conn).get_columns(table))
    with _column_lock:
        _column_cache.setdefault(engine, {})[table] = (now, found)
    return found


def invalidate_columns(engine: Engine | None = None) -> None:
    """Forget cached columns (after a schema change or a failed statement)."""
    with _column_lock:
        if engine is None:
            _column_cache.clear()
        else:
            _column_cache.pop(engine, None)


# -- schema revisions ---------------------------------------------------------

def current_revisions(engine: Engine) -> tuple[str | None, str | None]:
    """(expand revision, contract revision) recorded in ``alembic_version``."""
    with reading(engine) as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None, None
        rows = [r[0] for r in conn.execute(sa.text("SELECT version_num FROM alembic_version"))]
    expand = next((r for r in rows if r in EXPAND_REVISIONS), None)
    contract = next((r for r in rows if r in CONTRACT_REVISIONS), None)
    if contract is not None:
        # Alembic stores heads only: cN depends on eN, so once cN is applied eN
        # may vanish from alembic_version although it is applied.
        implied = EXPAND_REVISIONS[CONTRACT_REVISIONS.index(contract)]
        if expand is None or EXPAND_REVISIONS.index(expand) < EXPAND_REVISIONS.index(implied):
            expand = implied
    unknown = [r for r in rows if r not in EXPAND_REVISIONS + CONTRACT_REVISIONS]
    if unknown:
        # A revision from a release this source tree has never heard of.
        return unknown[0], contract
    return expand, contract


def _index(revision: str | None, chain: tuple[str, ...]) -> int:
    if revision is None:
        return -1
    return chain.index(revision) if revision in chain else len(chain) + 1


def check_not_too_new(engine: Engine, release: Release) -> None:
    """Raise SchemaTooNew if the schema is past what ``release`` can use."""
    expand, contract = current_revisions(engine)
    if _index(contract, CONTRACT_REVISIONS) > CONTRACT_REVISIONS.index(release.contract_head):
        raise SchemaTooNew(str(contract), release)
    if _index(expand, EXPAND_REVISIONS) > EXPAND_REVISIONS.index(release.expand_head) + 1:
        raise SchemaTooNew(str(expand), release)


def schema_behind(engine: Engine, release: Release) -> bool:
    """True when the expand branch has not reached ``release``'s expand head."""
    expand, _ = current_revisions(engine)
    return _index(expand, EXPAND_REVISIONS) < EXPAND_REVISIONS.index(release.expand_head)


def _alembic_upgrade(engine: Engine, target: str) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)
    invalidate_columns()


def expand(engine: Engine, release: Release) -> str:
    """Upgrade the expand branch to ``release``'s head; return the new revision."""
    check_not_too_new(engine, release)
    _alembic_upgrade(engine, release.expand_head)
    return release.expand_head


def contract(engine: Engine, release: Release) -> str:
    """Upgrade the contract branch to ``release``'s head, if it is safe.

    Refuses (SchemaError) while a registered service is older than the release
    a pending contract belongs to, or while online data migrations have rows
    left: dropping the old column then would break running code or lose data.
    """
    from minicloud.db import online_migrations
    from minicloud.releases import service_version_release

    check_not_too_new(engine, release)
    if schema_behind(engine, release):
        raise SchemaError(f"expand branch is behind {release.expand_head}: run 'db expand' first")
    _, current = current_revisions(engine)
    start = _index(current, CONTRACT_REVISIONS) + 1
    stop = CONTRACT_REVISIONS.index(release.contract_head)
    for revision in CONTRACT_REVISIONS[start:stop + 1]:
        needed = _release_of_contract(revision)
        if needed is None:
            continue
        older = _services_older_than(engine, needed.service_version)
        if older:
            names = ", ".join(
                f"{row['host']}/{row['binary']} {service_version_release(row['version']).series}"
                if row["version"] in (10, 11, 20) else f"{row['host']}/{row['binary']} v{row['version']}"
                for row in older)
            raise SchemaError(f"contract needs every service at >= {needed.series}; "
                              f"still older: {names}")
        pending = online_migrations.pending(engine, revision)
        if pending:
            raise SchemaError(
                f"contract {revision} needs online data migrations finished; rows left: "
                + ", ".join(f"{name} {count}" for name, count in pending.items())
                + " (run 'db online-data-migrations')")
    _alembic_upgrade(engine, release.contract_head)
    return release.contract_head


def _release_of_contract(revision: str) -> Release | None:
    from minicloud.releases import get_release

    return {"c10": None, "c11": get_release("1.1.1"), "c20": get_release("2.0")}[revision]


def _services_older_than(engine: Engine, version: int) -> list[dict[str, Any]]:
    from minicloud.db import api

    return [s for s in api.service_list(engine) if s["version"] < version]
