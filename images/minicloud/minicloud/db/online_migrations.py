"""Online data migrations: move data to the new schema form in batches, live.

Run by ``manage db online-data-migrations`` between expand and contract, while
every service keeps serving (nova-manage semantics). Each migration is a
function ``(engine, max_count) -> (found, done)``: ``found`` rows still needed
migrating when the batch started (up to max_count), ``done`` rows it migrated.
A migration whose columns are absent (schema not expanded yet, or already
contracted) has nothing to do.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from minicloud.db import present_columns as columns
from minicloud.db import writing
from minicloud.db.models import table
from minicloud.defects import has_defect

#: (engine, max_count, release running the migration or None) -> (found, done)
Migration = Callable[[Engine, int, Any], tuple[int, int]]


def split_floating_address(engine: Engine, max_count: int, release: Any = None) -> tuple[int, int]:
    """Fill instances.floating_ip/floating_port from floating_address "ip:port" (a copy: 1.0 code
    reads floating_address until contract drops it, also after a rollback)."""
    present = columns(engine, "instances")
    if not {"floating_address", "floating_ip", "floating_port"} <= present:
        return 0, 0
    instances = table("instances", {"uuid", "floating_address", "floating_ip", "floating_port"})
    done = 0
    with writing(engine) as conn:
        rows = conn.execute(
            sa.select(instances.c.uuid, instances.c.floating_address)
            .where(instances.c.floating_address.is_not(None))
            .where(instances.c.floating_port.is_(None))
            .limit(max_count)).all()
        for uuid, address in rows:
            ip, _, port = str(address).rpartition(":")
            if not port.isdigit():
                continue  # unparseable: left for an operator, counted as found not done
            update = sa.update(instances)
            if not has_defect(release, "migration-unscoped-update"):
                update = update.where(instances.c.uuid == uuid)
            values: dict[str, Any] = {"floating_ip": ip, "floating_port": int(port)}
            if has_defect(release, "migration-clears-legacy"):
                values["floating_address"] = None  # "moved" to the new columns
            conn.execute(update.values(**values))
            done += 1
    return len(rows), done


def copy_service_topic(engine: Engine, max_count: int, release: Any = None) -> tuple[int, int]:
    """Fill services.binary from services.topic."""
    if not {"topic", "binary"} <= columns(engine, "services"):
        return 0, 0
    services = table("services", {"id", "topic", "binary"})
    with writing(engine) as conn:
        rows = conn.execute(sa.select(services.c.id, services.c.topic)
                            .where(services.c.topic.is_not(None))
                            .where(services.c.binary.is_(None)).limit(max_count)).all()
        for service_id, topic in rows:
            conn.execute(sa.update(services).where(services.c.id == service_id)
                         .values(binary=topic))
    return len(rows), len(rows)


# name -> (function, the contract revision that needs it finished)
MIGRATIONS: dict[str, tuple[Migration, str]] = {
    "split_floating_address": (split_floating_address, "c11"),
    "copy_service_topic": (copy_service_topic, "c20"),
}


def run(engine: Engine, max_count: int, release: Any = None) -> dict[str, tuple[int, int]]:
    """One batch: at most ``max_count`` rows in total; (found, done) per migration. ``release``
    is the release of the code running it (manage's)."""
    results: dict[str, tuple[int, int]] = {}
    budget = max_count
    for name, (migration, _) in MIGRATIONS.items():
        if budget <= 0:
            results[name] = (0, 0)
            continue
        found, done = migration(engine, budget, release)
        budget -= done
        results[name] = (found, done)
    return results


def remaining(engine: Engine) -> dict[str, int]:
    """Rows each migration still has to do (counted, nothing changed)."""
    counts: dict[str, int] = {}
    present_i = columns(engine, "instances")
    present_s = columns(engine, "services")
    with engine.connect() as conn:
        if {"floating_address", "floating_port"} <= present_i:
            inst = table("instances", {"floating_address", "floating_port"})
            counts["split_floating_address"] = conn.execute(
                sa.select(sa.func.count()).select_from(inst)
                .where(inst.c.floating_address.is_not(None))
                .where(inst.c.floating_port.is_(None))).scalar_one()
        else:
            counts["split_floating_address"] = 0
        if {"topic", "binary"} <= present_s:
            svc = table("services", {"topic", "binary"})
            counts["copy_service_topic"] = conn.execute(
                sa.select(sa.func.count()).select_from(svc).where(svc.c.topic.is_not(None))
                .where(svc.c.binary.is_(None))).scalar_one()
        else:
            counts["copy_service_topic"] = 0
    return counts


def pending(engine: Engine, contract_revision: str) -> dict[str, int]:
    """Migrations with rows left that ``contract_revision`` needs finished."""
    left = remaining(engine)
    return {name: left[name] for name, (_, rev) in MIGRATIONS.items()
            if rev == contract_revision and left[name]}
