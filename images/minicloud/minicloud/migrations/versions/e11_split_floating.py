"""expand 1.1: split instances.floating_address into floating_ip + floating_port.

Additive only, so 1.0 code keeps running against it. The online data migration
``split_floating_address`` fills the new columns; contract c11 drops the old one.
Also adds ``instances.description`` (Instance 1.1).

Revision ID: e11
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "e11"
down_revision = "e10"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("instances", sa.Column("floating_ip", sa.String(45)))
    op.add_column("instances", sa.Column("floating_port", sa.Integer))
    op.add_column("instances", sa.Column("description", sa.String(255)))


def downgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        for name in ("description", "floating_port", "floating_ip"):
            batch.drop_column(name)
