"""Schema migrations and first-start seeding, safe when processes start together.

PostgreSQL: the upgrade runs under a session advisory lock. SQLite: under an
exclusive ``flock`` on a file beside the database. Whoever comes second finds
the schema at head and does nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from lbaas.db import tables
from lbaas.db.engine import Database

_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK_ID = 0x1BAA5


def _alembic_config(conn: sa.Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


@contextlib.contextmanager
def _migration_lock(db: Database) -> Iterator[None]:
    if db.is_sqlite:
        path = sa.engine.make_url(db.url).database or "lbaas"
        with open(os.open(f"{path}.migrate.lock", os.O_RDWR | os.O_CREAT, 0o600), "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    else:
        with db.writer.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_ID})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_ID})
                conn.commit()


def upgrade(db: Database, *, region_name: str = "Luxembourg-2", project_name: str = "default") -> None:
    """Bring the schema to head and make sure region 1 and project 1 exist."""
    with _migration_lock(db):
        with db.writer.connect() as conn:
            command.upgrade(_alembic_config(conn), "head")
            conn.commit()
        _seed(db, region_name, project_name)


def _seed(db: Database, region_name: str, project_name: str) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with db.write() as conn:
        if conn.execute(sa.select(tables.regions.c.id).where(tables.regions.c.id == 1)).first() is None:
            conn.execute(tables.regions.insert().values(id=1, name=region_name, created_at=now))
        else:
            conn.execute(tables.regions.update().where(tables.regions.c.id == 1).values(name=region_name))
        if conn.execute(sa.select(tables.projects.c.id).where(tables.projects.c.id == 1)).first() is None:
            conn.execute(
                tables.projects.insert().values(
                    id=1,
                    client_id=1,
                    name=project_name,
                    description=None,
                    is_default=True,
                    state="ACTIVE",
                    created_at=now,
                )
            )
            if not db.is_sqlite:
                # An explicit id does not move the sequence on PostgreSQL.
                conn.execute(
                    sa.text("SELECT setval('projects_id_seq', GREATEST(1, (SELECT max(id) FROM projects)))")
                )
