"""expand 2.0: services.topic -> services.binary (added here), instances.locked.

Revision ID: e20
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "e20"
down_revision = "e11"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("services", sa.Column("binary", sa.String(255)))
    op.add_column("instances", sa.Column("locked", sa.Boolean))


def downgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("locked")
    with op.batch_alter_table("services") as batch:
        batch.drop_column("binary")
