"""Column catalogue of minicloud's tables, as lightweight SQL constructs.

The schema changes under running code (expand adds columns, contract drops
them), so the data-access layer never binds to one fixed ``Table``: it asks
which columns exist (see ``minicloud.db.columns``) and builds statements from
this catalogue, restricted to those columns. The alembic revisions under
``minicloud/migrations/versions`` are the frozen history; this file is only the
union of every column any release knows, with its type.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import TableClause

# table -> column -> type (the union over all schema revisions)
CATALOGUE: dict[str, dict[str, sa.types.TypeEngine[Any]]] = {
    "services": {
        "id": sa.Integer(), "uuid": sa.String(36), "host": sa.String(255),
        "topic": sa.String(255),        # 1.0 form; dropped by contract c20
        "binary": sa.String(255),       # 2.0 form; added by expand e20
        "disabled": sa.Boolean(), "disabled_reason": sa.String(255),
        "forced_down": sa.Boolean(), "version": sa.Integer(), "release": sa.String(32),
        "last_seen_up": sa.DateTime(), "rpc_url": sa.String(255),
        "created_at": sa.DateTime(), "updated_at": sa.DateTime(),
    },
    "instances": {
        "uuid": sa.String(36), "name": sa.String(255), "project_id": sa.String(64),
        "user_id": sa.String(64), "flavor_id": sa.String(36), "image_ref": sa.String(255),
        "host": sa.String(255), "vm_state": sa.String(32), "task_state": sa.String(32),
        "power_state": sa.Integer(),
        "floating_address": sa.String(64),  # 1.0 form "ip:port"; dropped by contract c11
        "floating_ip": sa.String(45),       # 1.1 form; added by expand e11
        "floating_port": sa.Integer(),      # 1.1 form; added by expand e11
        "description": sa.String(255),      # added by expand e11 (Instance 1.1)
        "locked": sa.Boolean(),             # added by expand e20 (Instance 1.2)
        "workload_port": sa.Integer(), "fault": sa.Text(),
        "created_at": sa.DateTime(), "updated_at": sa.DateTime(),
        "launched_at": sa.DateTime(), "deleted_at": sa.DateTime(),
    },
    "migrations": {
        "id": sa.Integer(), "uuid": sa.String(36), "instance_uuid": sa.String(36),
        "source_host": sa.String(255), "dest_host": sa.String(255),
        "migration_type": sa.String(32), "status": sa.String(32), "error": sa.Text(),
        "created_at": sa.DateTime(), "updated_at": sa.DateTime(),
    },
    "flavors": {
        "id": sa.String(36), "name": sa.String(255), "vcpus": sa.Integer(),
        "ram": sa.Integer(), "disk": sa.Integer(),
    },
}

# Columns a release's code does not know yet: (table, column) -> first service
# version that uses it. Older code neither reads nor writes them, so rows it
# writes after an expand still need the online data migration.
KNOWN_SINCE: dict[tuple[str, str], int] = {
    ("instances", "floating_ip"): 11, ("instances", "floating_port"): 11,
    ("instances", "description"): 11, ("instances", "locked"): 20,
    ("services", "binary"): 20,
}

SEED_FLAVORS = (
    {"id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1},
    {"id": "2", "name": "m1.small", "vcpus": 1, "ram": 2048, "disk": 20},
    {"id": "3", "name": "m1.medium", "vcpus": 2, "ram": 4096, "disk": 40},
)


def table(name: str, present: frozenset[str] | set[str]) -> TableClause:
    """A ``TableClause`` with only the catalogue columns that exist right now."""
    cols = [sa.column(col, typ) for col, typ in CATALOGUE[name].items() if col in present]
    return sa.table(name, *cols)
