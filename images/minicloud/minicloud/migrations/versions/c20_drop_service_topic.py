"""contract 2.0: drop services.topic (1.1 code stops working).

Revision ID: c20
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c20"
down_revision = "c11"
branch_labels = None
depends_on = "e20"


def upgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.drop_column("topic")


def downgrade() -> None:
    op.add_column("services", sa.Column("topic", sa.String(255)))
