"""Alembic environment and revisions (expand and contract branches)."""
