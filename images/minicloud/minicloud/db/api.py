"""Data access for minicloud: plain dicts with stable keys, whatever the schema state.

Callers (compute-api, conductor, manage) never see whether the schema is at
expand 1.0, 1.1 or 2.0, contracted or not: reads prefer the new form of a value
and fall back to the old one (``floating_ip``/``floating_port`` before
``floating_address``; ``binary`` before ``topic``), and writes fill every form
whose column still exists. Timestamps are returned as ISO 8601 UTC strings
(``2026-01-01T12:00:00Z``) or None.
"""
from __future__ import annotations

import datetime as dt
import random
import time
import uuid as uuidlib
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from minicloud.db import _engine_release, columns, invalidate_columns, reading, writing
from minicloud.db.models import table
from minicloud.defects import has_defect

T = TypeVar("T")

INSTANCE_KEYS = ("uuid", "name", "project_id", "user_id", "flavor_id", "image_ref", "host",
                 "vm_state", "task_state", "power_state", "floating_ip", "floating_port",
                 "description", "locked", "created_at", "updated_at", "launched_at", "fault",
                 "workload_port")
VM_STATES = ("building", "active", "error", "deleted")
FLOATING_PORTS = range(20000, 30000)
DEFAULT_SERVICE_DOWN_TIME = 5.0


class NotFound(LookupError):
    """No such row; the message names the kind and the id."""

    def __init__(self, kind: str, ident: object) -> None:
        super().__init__(f"{kind} {ident} not found")
        self.kind = kind
        self.ident = ident


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _iso(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _to_datetime(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


#: the 1.1+db-retry-backoff-first variant's back-off (seconds)
SCHEMA_RETRY_BACKOFF = 0.05


def _retry_on_schema_change(engine: Engine, work: Callable[[], T]) -> T:
    """Run ``work``; if a column vanished under us (contract ran), re-detect once."""
    if has_defect(_engine_release.get(engine), "db-retry-backoff-first"):
        time.sleep(SCHEMA_RETRY_BACKOFF)  # the bug: the retry's back-off, before the first try
    try:
        return work()
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        text = str(exc).lower()
        if "no such column" not in text and "does not exist" not in text and "has no column" not in text:
            raise
        invalidate_columns(engine)
        return work()


# -- instances ----------------------------------------------------------------

def _reads_legacy_address(engine: Engine) -> bool:
    """Whether reads fall back to ``floating_address`` for rows not migrated yet."""
    return not has_defect(_engine_release.get(engine), "reads-new-columns-only")


def _instance_row_to_dict(row: Any, legacy_fallback: bool = True) -> dict[str, Any]:
    data = row._mapping
    ip, port = data.get("floating_ip"), data.get("floating_port")
    if port is None and legacy_fallback and data.get("floating_address"):
        ip, _, port_text = str(data["floating_address"]).rpartition(":")
        port = int(port_text) if port_text.isdigit() else None
    result = {key: data.get(key) for key in INSTANCE_KEYS}
    result.update(floating_ip=ip or None, floating_port=port,
                  locked=bool(data.get("locked") or False))
    for key in ("created_at", "updated_at", "launched_at"):
        result[key] = _iso(data.get(key))
    return result


def _instance_write_values(engine: Engine, conn: Connection, values: dict[str, Any],
                           current: dict[str, Any] | None) -> dict[str, Any]:
    present = columns(engine, "instances")
    unknown = set(values) - set(INSTANCE_KEYS) - {"deleted_at"}
    if unknown:
        raise ValueError(f"unknown instance fields: {', '.join(sorted(unknown))}")
    if "vm_state" in values and values["vm_state"] not in VM_STATES:
        raise ValueError(f"vm_state must be one of {VM_STATES}, got {values['vm_state']!r}")
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in ("floating_ip", "floating_port"):
            continue
        if key in present:
            is_time = key in ("created_at", "updated_at", "launched_at", "deleted_at")
            out[key] = _to_datetime(value) if is_time else value
    if "floating_ip" in values or "floating_port" in values:
        ip = values.get("floating_ip", (current or {}).get("floating_ip"))
        port = values.get("floating_port", (current or {}).get("floating_port"))
        if "floating_ip" in present:
            out["floating_ip"] = ip
            out["floating_port"] = port
        if "floating_address" in present and not has_defect(_engine_release.get(engine),
                                                              "legacy-address-unwritten"):
            # Keep the 1.0 form filled while 1.0 code may still read it.
            out["floating_address"] = f"{ip}:{port}" if ip and port is not None else None
    return out


def _instance_get(engine: Engine, conn: Connection, uuid: str) -> dict[str, Any]:
    instances = table("instances", columns(engine, "instances"))
    row = conn.execute(sa.select(instances).where(instances.c.uuid == uuid)).first()
    if row is None:
        raise NotFound("instance", uuid)
    return _instance_row_to_dict(row, _reads_legacy_address(engine))


def instance_create(engine: Engine, values: dict[str, Any]) -> dict[str, Any]:
    """Insert an instance (vm_state "building" unless given); return its dict."""
    now = utcnow()
    full = {"uuid": str(uuidlib.uuid4()), "vm_state": "building", "power_state": 0,
            "created_at": now, "updated_at": now, **values}

    def work() -> dict[str, Any]:
        with writing(engine) as conn:
            row = _instance_write_values(engine, conn, full, None)
            conn.execute(sa.insert(table("instances", columns(engine, "instances"))).values(**row))
            return _instance_get(engine, conn, full["uuid"])
    return _retry_on_schema_change(engine, work)


def instance_get(engine: Engine, uuid: str) -> dict[str, Any]:
    """The instance ``uuid`` (also when deleted); NotFound otherwise."""
    def work() -> dict[str, Any]:
        with reading(engine) as conn:
            return _instance_get(engine, conn, uuid)
    return _retry_on_schema_change(engine, work)


def instance_list(engine: Engine, project_id: str | None = None, host: str | None = None,
                  include_deleted: bool = False) -> list[dict[str, Any]]:
    """Instances, newest first, filtered by project and/or host."""
    def work() -> list[dict[str, Any]]:
        instances = table("instances", columns(engine, "instances"))
        query = sa.select(instances)
        if project_id is not None:
            query = query.where(instances.c.project_id == project_id)
        if host is not None:
            query = query.where(instances.c.host == host)
        if not include_deleted:
            query = query.where(instances.c.vm_state != "deleted")
        query = query.order_by(instances.c.created_at.desc(), instances.c.uuid.desc())
        with reading(engine) as conn:
            return [_instance_row_to_dict(r, _reads_legacy_address(engine)) for r in conn.execute(query)]
    return _retry_on_schema_change(engine, work)


def instance_update(engine: Engine, uuid: str, values: dict[str, Any]) -> dict[str, Any]:
    """Update the given fields (``updated_at`` is set); return the new dict."""
    def work() -> dict[str, Any]:
        with writing(engine) as conn:
            current = _instance_get(engine, conn, uuid)
            row = _instance_write_values(engine, conn, values, current)
            row.setdefault("updated_at", utcnow())
            instances = table("instances", columns(engine, "instances"))
            conn.execute(sa.update(instances).where(instances.c.uuid == uuid).values(**row))
            return _instance_get(engine, conn, uuid)
    return _retry_on_schema_change(engine, work)


def instance_count_by_host(engine: Engine) -> dict[str, int]:
    """Non-deleted instances per host (what the scheduler weighs)."""
    instances = table("instances", {"host", "vm_state"})
    query = (sa.select(instances.c.host, sa.func.count()).where(instances.c.vm_state != "deleted")
             .where(instances.c.host.is_not(None)).group_by(instances.c.host))
    with reading(engine) as conn:
        return {host: int(count) for host, count in conn.execute(query)}


def floating_port_range(raw_config: dict[str, Any]) -> range:
    """The floating ports this cloud allocates from: ``floating_ports`` [first, last]
    of the host config (a subset of 20000-29999; the docker backend publishes only
    that many), else all of 20000-29999."""
    bounds = raw_config.get("floating_ports")
    if not bounds:
        return FLOATING_PORTS
    first, last = int(bounds[0]), int(bounds[1])
    if not (FLOATING_PORTS.start <= first <= last < FLOATING_PORTS.stop):
        raise ValueError(f"floating_ports {bounds!r} outside 20000-29999")
    return range(first, last + 1)


def allocate_floating_port(engine: Engine, ports: range = FLOATING_PORTS) -> int:
    """A floating port (of ``ports``, 20000-29999 by default) no live instance uses.

    Chosen at random among the free ones so that two API workers allocating at
    the same moment practically never collide (no reservation table needed).
    """
    used = {i["floating_port"] for i in instance_list(engine) if i["floating_port"] is not None}
    free = [p for p in ports if p not in used]
    if not free:
        raise RuntimeError(f"no floating port left in {ports.start}-{ports.stop - 1}")
    return random.choice(free)


# -- flavors ------------------------------------------------------------------

def flavor_list(engine: Engine) -> list[dict[str, Any]]:
    flavors = table("flavors", {"id", "name", "vcpus", "ram", "disk"})
    with reading(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(flavors).order_by(flavors.c.id))]


def flavor_get(engine: Engine, flavor_id: str) -> dict[str, Any]:
    for flavor in flavor_list(engine):
        if flavor["id"] == str(flavor_id) or flavor["name"] == flavor_id:
            return flavor
    raise NotFound("flavor", flavor_id)


# -- services -----------------------------------------------------------------

def _service_row_to_dict(row: Any, down_time: float) -> dict[str, Any]:
    data = dict(row._mapping)
    binary = data.get("binary") or data.get("topic")
    last = data.get("last_seen_up")
    up = (last is not None and not data.get("forced_down")
          and (utcnow() - last).total_seconds() <= down_time)
    return {"id": data["id"], "uuid": data["uuid"], "host": data["host"], "binary": binary,
            "topic": binary, "disabled": bool(data.get("disabled")),
            "disabled_reason": data.get("disabled_reason"),
            "forced_down": bool(data.get("forced_down")), "version": data["version"],
            "release": data.get("release"), "last_seen_up": _iso(last), "up": up,
            "state": "up" if up else "down", "rpc_url": data.get("rpc_url"),
            "created_at": _iso(data.get("created_at")), "updated_at": _iso(data.get("updated_at"))}


def _services(engine: Engine) -> Any:
    return table("services", columns(engine, "services"))


def service_list(engine: Engine, service_down_time: float = DEFAULT_SERVICE_DOWN_TIME,
                 binary: str | None = None) -> list[dict[str, Any]]:
    """Registered services with ``up`` computed from the last heartbeat."""
    def work() -> list[dict[str, Any]]:
        services = _services(engine)
        with reading(engine) as conn:
            rows = conn.execute(sa.select(services).order_by(services.c.id)).all()
        result = [_service_row_to_dict(r, service_down_time) for r in rows]
        return [s for s in result if binary is None or s["binary"] == binary]
    return _retry_on_schema_change(engine, work)


def service_get(engine: Engine, service_id: int | str,
                service_down_time: float = DEFAULT_SERVICE_DOWN_TIME) -> dict[str, Any]:
    """A service by integer id or uuid; NotFound otherwise."""
    for service in service_list(engine, service_down_time):
        if str(service["id"]) == str(service_id) or service["uuid"] == service_id:
            return service
    raise NotFound("service", service_id)


def service_get_by_host(engine: Engine, host: str, binary: str,
                        service_down_time: float = DEFAULT_SERVICE_DOWN_TIME) -> dict[str, Any]:
    for service in service_list(engine, service_down_time, binary=binary):
        if service["host"] == host:
            return service
    raise NotFound("service", f"{binary} on {host}")


_SERVICE_WRITABLE = {"disabled", "disabled_reason", "forced_down", "version", "release",
                     "last_seen_up", "rpc_url"}


def service_update(engine: Engine, service_id: int | str, values: dict[str, Any]) -> dict[str, Any]:
    """Update disabled/forced_down/version/...; return the new dict."""
    unknown = set(values) - _SERVICE_WRITABLE
    if unknown:
        raise ValueError(f"cannot update service fields: {', '.join(sorted(unknown))}")
    current = service_get(engine, service_id)

    def work() -> dict[str, Any]:
        services = _services(engine)
        row = {k: (_to_datetime(v) if k == "last_seen_up" else v) for k, v in values.items()}
        row["updated_at"] = utcnow()
        with writing(engine) as conn:
            conn.execute(sa.update(services).where(services.c.id == current["id"]).values(**row))
        return service_get(engine, current["id"])
    return _retry_on_schema_change(engine, work)


def service_create_or_update(engine: Engine, host: str, binary: str,
                             values: dict[str, Any]) -> dict[str, Any]:
    """Register (or refresh) the ``binary`` service of ``host``: a heartbeat.

    ``last_seen_up`` is set to now. Fills ``topic`` and/or ``binary``, whichever
    columns exist.
    """
    def work() -> dict[str, Any]:
        present = columns(engine, "services")
        services = _services(engine)
        now = utcnow()
        row = {k: v for k, v in values.items() if k in _SERVICE_WRITABLE}
        row["last_seen_up"] = now
        row["updated_at"] = now
        with writing(engine) as conn:
            existing = None
            for r in conn.execute(sa.select(services).where(services.c.host == host)):
                if (r._mapping.get("binary") or r._mapping.get("topic")) == binary:
                    existing = r
                    break
            for name in ("binary", "topic"):
                if name in present:
                    row[name] = binary
            if existing is None:
                row.update(uuid=str(uuidlib.uuid4()), host=host, created_at=now)
                row.setdefault("disabled", False)
                row.setdefault("forced_down", False)
                conn.execute(sa.insert(services).values(**row))
            else:
                conn.execute(sa.update(services).where(services.c.id == existing._mapping["id"])
                             .values(**row))
        return service_get_by_host(engine, host, binary)
    return _retry_on_schema_change(engine, work)


def service_delete(engine: Engine, service_id: int | str) -> None:
    current = service_get(engine, service_id)
    services = _services(engine)
    with writing(engine) as conn:
        conn.execute(sa.delete(services).where(services.c.id == current["id"]))


def service_min_version(engine: Engine, binary: str) -> int | None:
    """Lowest service version among registered ``binary`` services (None: none)."""
    versions = [s["version"] for s in service_list(engine, binary=binary)]
    return min(versions) if versions else None


# -- migrations (live migration records) -----------------------------------------

_MIGRATION_KEYS = ("id", "uuid", "instance_uuid", "source_host", "dest_host", "migration_type",
                   "status", "error", "created_at", "updated_at")


def _migration_row_to_dict(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    result = {key: data.get(key) for key in _MIGRATION_KEYS}
    result["created_at"] = _iso(data.get("created_at"))
    result["updated_at"] = _iso(data.get("updated_at"))
    return result


def migration_list(engine: Engine, instance_uuid: str | None = None) -> list[dict[str, Any]]:
    migrations = table("migrations", set(_MIGRATION_KEYS))
    query = sa.select(migrations).order_by(migrations.c.id)
    if instance_uuid is not None:
        query = query.where(migrations.c.instance_uuid == instance_uuid)
    with reading(engine) as conn:
        return [_migration_row_to_dict(r) for r in conn.execute(query)]


def migration_get(engine: Engine, migration_id: int) -> dict[str, Any]:
    migrations = table("migrations", set(_MIGRATION_KEYS))
    with reading(engine) as conn:
        row = conn.execute(sa.select(migrations).where(migrations.c.id == migration_id)).first()
    if row is None:
        raise NotFound("migration", migration_id)
    return _migration_row_to_dict(row)


def migration_create(engine: Engine, values: dict[str, Any]) -> dict[str, Any]:
    """Record a migration (``instance_uuid`` required; status defaults to "accepted")."""
    now = utcnow()
    row = {"uuid": str(uuidlib.uuid4()), "status": "accepted", "migration_type": "live-migration",
           "created_at": now, "updated_at": now, **values}
    migrations = table("migrations", set(_MIGRATION_KEYS))
    with writing(engine) as conn:
        conn.execute(sa.insert(migrations).values(**row))
        new_id = conn.execute(sa.select(migrations.c.id)
                              .where(migrations.c.uuid == row["uuid"])).scalar_one()
    return migration_get(engine, int(new_id))


def migration_update(engine: Engine, migration_id: int, values: dict[str, Any]) -> dict[str, Any]:
    migrations = table("migrations", set(_MIGRATION_KEYS))
    row = {k: v for k, v in values.items() if k in ("status", "error", "dest_host", "source_host")}
    row["updated_at"] = utcnow()
    with writing(engine) as conn:
        conn.execute(sa.update(migrations).where(migrations.c.id == migration_id).values(**row))
    return migration_get(engine, migration_id)
