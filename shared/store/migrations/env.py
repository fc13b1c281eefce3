"""Alembic environment: runs on the connection `shared.store.database.migrate` hands over."""

from __future__ import annotations

from alembic import context

from shared.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through shared.store.database.migrate(), which provides the connection"
    )

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
