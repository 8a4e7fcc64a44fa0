"""contract 1.1: drop instances.floating_address (1.0 code stops working).

``minicloud.db.contract`` refuses to run this while a service older than 1.1 is
registered or ``split_floating_address`` has rows left.

Revision ID: c11
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c11"
down_revision = "c10"
branch_labels = None
depends_on = "e11"


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("floating_address")


def downgrade() -> None:
    op.add_column("instances", sa.Column("floating_address", sa.String(64)))
