"""Alembic environment: always runs on a connection handed over by minicloud.db.

minicloud never runs alembic from an ini file; ``minicloud.db.upgrade`` builds
the config in code and passes its open connection, so SQLite pragmas (WAL,
busy timeout) and the URL handling are the same as in the services.
"""
from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
