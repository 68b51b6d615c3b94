"""Alembic environment: lbaas passes its own connection in ``config.attributes``."""

from __future__ import annotations

from alembic import context

from lbaas.db.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic revision --autogenerate` from a shell
    import sqlalchemy as sa

    connection = sa.create_engine(context.config.get_main_option("sqlalchemy.url")).connect()

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
