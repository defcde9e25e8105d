"""Alembic's entry point, run by stockyard.db.migrate on the connection it locked (no alembic.ini)."""

from __future__ import annotations

from alembic import context

from stockyard.db.catalogue import metadata
from stockyard.db.migrate import VERSION_SCHEMA, include_name

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the migrations with `stockyard db upgrade` (stockyard.db.migrate.upgrade)")
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table_schema=VERSION_SCHEMA,
    include_schemas=True,
    include_name=include_name,
)
with context.begin_transaction():
    context.run_migrations()
