"""contract 1.0: the base of the contract branch (nothing to remove yet).

Revision ID: c10
"""
from __future__ import annotations

revision = "c10"
down_revision = None
branch_labels = ("contract",)
depends_on = "e10"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
