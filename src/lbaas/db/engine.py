"""Engines and transactions for SQLite and PostgreSQL.

Two kinds of transaction: ``read()`` and ``write()``. On SQLite a write
transaction starts with ``BEGIN IMMEDIATE`` so that a read-modify-write
never fails half way on a lock upgrade, and concurrent writers simply queue
on the database lock (``busy_timeout``); on PostgreSQL writers lock the rows
they change (``SELECT ... FOR UPDATE``). Commits are always durable: WAL
with ``synchronous=FULL`` on SQLite, the server's default on PostgreSQL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

T = TypeVar("T")


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = sa.create_engine(url, pool_size=8, max_overflow=8, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how a transaction starts.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: an acknowledged commit survives power loss, not only a crash.
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """The database of one lbaas deployment."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = sa.engine.make_url(url).get_backend_name()
        if self.dialect == "sqlite":
            path = sa.engine.make_url(url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.writer = _sqlite_engine(url, immediate=True)
            self.reader = _sqlite_engine(url, immediate=False)
        else:
            url = url.replace("postgresql://", "postgresql+psycopg://", 1)
            self.writer = sa.create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
            self.reader = self.writer

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that may write; committed on success, rolled back on error."""
        with self.writer.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction."""
        with self.reader.begin() as conn:
            yield conn

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking database work from the event loop.

        SQLite answers in microseconds, so a thread hand-off would cost more
        than it saves; PostgreSQL waits on the network and on fsync, so it
        goes to a worker thread and the loop keeps serving.
        """
        if self.is_sqlite:
            return fn(*args, **kwargs)
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()
