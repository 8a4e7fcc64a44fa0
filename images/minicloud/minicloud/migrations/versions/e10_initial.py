"""expand 1.0: the initial schema (services.topic, instances.floating_address).

Revision ID: e10
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "e10"
down_revision = None
branch_labels = ("expand",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "services",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(255), nullable=True),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("disabled_reason", sa.String(255)),
        sa.Column("forced_down", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("release", sa.String(32)),
        sa.Column("last_seen_up", sa.DateTime),
        sa.Column("rpc_url", sa.String(255)),
        sa.Column("created_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime),
    )
    op.create_table(
        "instances",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255)),
        sa.Column("project_id", sa.String(64)),
        sa.Column("user_id", sa.String(64)),
        sa.Column("flavor_id", sa.String(36)),
        sa.Column("image_ref", sa.String(255)),
        sa.Column("host", sa.String(255)),
        sa.Column("vm_state", sa.String(32), nullable=False),
        sa.Column("task_state", sa.String(32)),
        sa.Column("power_state", sa.Integer, nullable=False, server_default="0"),
        sa.Column("floating_address", sa.String(64)),
        sa.Column("workload_port", sa.Integer),
        sa.Column("fault", sa.Text),
        sa.Column("created_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime),
        sa.Column("launched_at", sa.DateTime),
        sa.Column("deleted_at", sa.DateTime),
    )
    op.create_index("ix_instances_project", "instances", ["project_id"])
    op.create_index("ix_instances_host", "instances", ["host"])
    op.create_table(
        "migrations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("instance_uuid", sa.String(36), nullable=False, index=True),
        sa.Column("source_host", sa.String(255)),
        sa.Column("dest_host", sa.String(255)),
        sa.Column("migration_type", sa.String(32)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime),
    )
    flavors = op.create_table(
        "flavors",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("vcpus", sa.Integer, nullable=False),
        sa.Column("ram", sa.Integer, nullable=False),
        sa.Column("disk", sa.Integer, nullable=False),
    )
    op.bulk_insert(flavors, [
        {"id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1},
        {"id": "2", "name": "m1.small", "vcpus": 1, "ram": 2048, "disk": 20},
        {"id": "3", "name": "m1.medium", "vcpus": 2, "ram": 4096, "disk": 40},
    ])


def downgrade() -> None:
    for name in ("flavors", "migrations", "instances", "services"):
        op.drop_table(name)
