"""Engines and transactions for SQLite and PostgreSQL.

Two kinds of transaction: ``read()`` and ``write()``. On SQLite a write
transaction starts with ``BEGIN IMMEDIATE`` so that a read-modify-write
never fails half way on a lock upgrade, and concurrent writers simply queue
on the database lock (``busy_timeout``); on PostgreSQL writers lock the rows
they change (``SELECT ... FOR UPDATE``). Commits are always durable: WAL
with ``synchronous=FULL`` on SQLite, the server's default on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from lbaas import files

T = TypeVar("T")

# FULL: a commit is fsynced before it is acknowledged, so it survives power
# loss, not only a crash. NORMAL (WAL) survives a process crash only.
_SQLITE_SYNC = os.environ.get("LBAAS_SQLITE_SYNCHRONOUS", "FULL").upper()
if _SQLITE_SYNC not in ("FULL", "NORMAL", "EXTRA"):
    raise ValueError("LBAAS_SQLITE_SYNCHRONOUS must be FULL, NORMAL or EXTRA")
_BATCH = 64
# A write may run on the event loop itself (see Database.write_async) only while batches take
# less than this on average (writes and their commit): the loop is held for as long as one takes.
_INLINE_MAX_S = 0.002


class _GroupCommit:
    """One writer thread that commits many requests' writes with one fsync.

    SQLite has one writer at a time and, with ``synchronous=FULL``, one fsync
    per commit; committing requests one by one would cap the write rate at
    the disk's fsync rate. Here the queued writes run in one shared transaction
    (one that raises is left out and the others run again: see ``_run``), and
    the whole batch is committed once; nobody is answered before that commit.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.busy = threading.Lock()  # held while writes run: in the writer thread or in run_here
        # Moving average of how long a batch takes, seconds; starts at the bar, so run_here waits
        # until the writer thread has shown that commits are fast on this disk.
        self.seconds = _INLINE_MAX_S
        self.waiting = 0  # writes the event loop has asked for and not had answered yet
        self._here: Connection | None = None  # run_here's connection (never waits for a lock)
        self.thread = threading.Thread(target=self._loop, name="lbaas-group-commit", daemon=True)
        self.thread.start()

    def submit(self, fn: Callable[[Connection], T]) -> concurrent.futures.Future[T]:
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        self.queue.put((fn, fut))
        return fut

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join(10)
        if self._here is not None:
            self._here.close()
            self._here = None

    def _took(self, started: float) -> None:
        self.seconds += (time.perf_counter() - started - self.seconds) / 8

    def run_here(self, fn: Callable[[Connection], T]) -> concurrent.futures.Future[T] | None:
        """Run ``fn`` in one transaction in the calling thread, now; None when that cannot be done
        without waiting: the writer thread has work or is busy, batches have been slow, or another
        writer (a task worker, another process) holds SQLite's write lock."""
        if self.seconds >= _INLINE_MAX_S or not self.queue.empty() or not self.busy.acquire(blocking=False):
            return None
        try:
            if self._here is None:
                self._here = self.engine.connect()
                self._here.connection.dbapi_connection.execute("PRAGMA busy_timeout=0")  # type: ignore[union-attr]
            started = time.perf_counter()
            try:
                transaction = self._here.begin()  # BEGIN IMMEDIATE: fails at once when locked
            except sa.exc.OperationalError:
                return None
            done: concurrent.futures.Future[T] = concurrent.futures.Future()
            try:
                with transaction:
                    value = fn(self._here)
            except Exception as exc:  # noqa: BLE001 - handed to the caller, as the thread does
                done.set_exception(exc)
            else:
                done.set_result(value)
            self._took(started)
            return done
        finally:
            self.busy.release()

    def _loop(self) -> None:
        while True:
            first = self.queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < _BATCH:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self.queue.put(None)
                    break
                batch.append(item)
            with self.busy:
                started = time.perf_counter()
                self._run(batch)
                self._took(started)

    def _run(self, batch: list[Any]) -> None:
        # Together, without a SAVEPOINT each (a SAVEPOINT and its RELEASE were 15 % of this
        # thread's time at 16 clients): when one write raises, the transaction is rolled back and
        # run again without it (what ran before it is re-run on the same state); at most one more
        # pass per failing write. The writes are database work only, so running one twice is safe.
        # A write alone in its batch simply runs in the transaction.
        failed: dict[int, BaseException] = {}
        while True:
            values: dict[int, Any] = {}
            culprit: tuple[int, BaseException] | None = None
            try:
                with self.engine.begin() as conn:
                    for i, (fn, _fut) in enumerate(batch):
                        if i in failed:
                            continue
                        try:
                            values[i] = fn(conn)
                        except BaseException as exc:
                            culprit = (i, exc)
                            raise
            except BaseException as exc:  # noqa: BLE001 - handed to the request(s) it concerns
                if culprit is None:  # the commit itself failed: nobody's write landed
                    for i, (_fn, fut) in enumerate(batch):
                        fut.set_exception(failed.get(i, exc))
                    return
                failed[culprit[0]] = culprit[1]
                if len(failed) == len(batch):
                    break
                continue
            break
        for i, (_fn, fut) in enumerate(batch):
            if i in failed:
                fut.set_exception(failed[i])
            else:
                fut.set_result(values[i])


#: How much of the database file SQLite maps into memory for reading (per process; the pages are
#: the kernel's page cache, shared by every connection).
_SQLITE_MMAP_BYTES = 1 << 30


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = sa.create_engine(url, pool_size=8, max_overflow=8, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how a transaction starts.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: an acknowledged commit survives power loss, not only a crash.
        cur.execute(f"PRAGMA synchronous={_SQLITE_SYNC}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        # Checkpoints run in their own thread (_Checkpointer), not in whichever commit crosses the
        # WAL's 1,000 pages: with synchronous=FULL a checkpoint fsyncs the database file, which made
        # that one request wait for it (a tail of tens of milliseconds).
        cur.execute("PRAGMA wal_autocheckpoint=0")
        cur.execute("PRAGMA journal_size_limit=67108864")  # the WAL file shrinks back to 64 MiB at most
        # Reads of the database file through a memory map instead of a read() per page: every commit
        # empties the other connections' page caches, and a count or a list then read hundreds of
        # pages again (~600 pread calls per create with 10,000 LBs). Writes still go through the WAL.
        cur.execute(f"PRAGMA mmap_size={_SQLITE_MMAP_BYTES}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class _Checkpointer:
    """Moves SQLite's write-ahead log into the database file off the request path.

    Every ``interval`` seconds a PASSIVE checkpoint (it never waits for readers or writers) runs
    on a connection of its own when the WAL file holds more than ``min_bytes``, so the WAL stays
    small and no commit pays for a checkpoint. SQLite also checkpoints when the last connection
    closes.
    """

    def __init__(self, path: str, interval: float = 0.5, min_bytes: int = 64 << 10) -> None:
        self.path = path
        self.interval = interval
        self.min_bytes = min_bytes
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="lbaas-wal-checkpoint", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        import sqlite3

        conn: sqlite3.Connection | None = None
        while not self._stop.wait(self.interval):
            try:
                if os.path.getsize(self.path + "-wal") < self.min_bytes:
                    continue
                if conn is None:
                    conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                    conn.execute("PRAGMA busy_timeout=1000")
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except (OSError, sqlite3.Error):
                continue  # no WAL yet, or busy: the next round tries again
        if conn is not None:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)


#: PostgreSQL: connections in the pool, and how many of them the event loop's requests may hold at
#: once; the rest stay for a request's own second connection, the task workers, the poller, the
#: sampler and the emulator's reads.
PG_CONNECTIONS = 30
PG_LOOP_THREADS = 16


class Database:
    """The database of one lbaas deployment."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = sa.engine.make_url(url).get_backend_name()
        if self.dialect == "sqlite":
            path = sa.engine.make_url(url).database
            if path and path != ":memory:" and not path.startswith("file:"):
                # 0600 before SQLite opens it; SQLite gives -wal and -shm the same mode.
                files.prepare_sqlite_file(Path(path))
            self.writer = _sqlite_engine(url, immediate=True)
            self.reader = _sqlite_engine(url, immediate=False)
            self._group: _GroupCommit | None = None
            on_disk = path and path != ":memory:" and not path.startswith("file:")
            self._checkpointer: _Checkpointer | None = _Checkpointer(path) if on_disk else None
        else:
            url = url.replace("postgresql://", "postgresql+psycopg://", 1)
            self.writer = sa.create_engine(
                url, pool_size=10, max_overflow=PG_CONNECTIONS - 10, pool_pre_ping=True
            )
            self.reader = self.writer
            self._group = None
            self._checkpointer = None
        # The event loop's database threads (PostgreSQL), fewer than the pool's connections: when
        # every connection was taken by requests waiting on a row lock, the holder of that lock
        # could not get the one more connection it asked for (a read of the emulator's controls)
        # and everything waited for the pool's 30 s timeout (32 concurrent first creates).
        self._limiter: anyio.CapacityLimiter | None = None
        self._ambient = threading.local()  # see bound()

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that may write; committed on success, rolled back on error.

        Inside :meth:`bound`, the bound connection's transaction instead (committed by its owner).
        """
        conn = getattr(self._ambient, "conn", None)
        if conn is not None:
            yield conn
            return
        with self.writer.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (inside :meth:`bound`: the bound connection's transaction)."""
        conn = getattr(self._ambient, "conn", None)
        if conn is not None:
            yield conn
            return
        with self.reader.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def bound(self, conn: Connection) -> Iterator[None]:
        """Make :meth:`read` and :meth:`write` in this thread use ``conn``'s open transaction.

        For code written against ``db.read()``/``db.write()`` that must see, and add to, a
        transaction not yet committed: the emulator runs a new task inside the request that
        queued it (:meth:`lbaas.tasks.worker.Worker.run_in`). Not reentrant across connections.
        """
        self._ambient.conn = conn
        try:
            yield
        finally:
            self._ambient.conn = None

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking database work from the event loop.

        SQLite answers in microseconds, so a thread hand-off would cost more
        than it saves; PostgreSQL waits on the network and on fsync, so it
        goes to a worker thread and the loop keeps serving.
        """
        if self.is_sqlite:
            return fn(*args, **kwargs)
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs), limiter=self._threads())

    async def write_async(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in a write transaction without blocking the event loop.

        On SQLite writes are group-committed (see _GroupCommit); PostgreSQL
        commits concurrent transactions together by itself.
        """
        if self.is_sqlite:
            if self._group is None:
                self._group = _GroupCommit(self.writer)
            group = self._group
            # A write alone runs right here, on the event loop: the two thread hand-offs (to the
            # writer thread and back) cost more than the write and its fsync. It is alone when,
            # once the loop has run every other request that was ready (sleep(0)), no other write
            # is waiting and the writer thread is idle; writes with company go to the writer
            # thread and share its commits. See _GroupCommit.run_here for when it declines.
            group.waiting += 1
            try:
                await asyncio.sleep(0)
                done = group.run_here(fn) if group.waiting == 1 else None
                if done is None:
                    return await asyncio.wrap_future(group.submit(fn))
                return done.result()
            finally:
                group.waiting -= 1

        def work() -> T:
            with self.write() as conn:
                return fn(conn)

        return await anyio.to_thread.run_sync(work, limiter=self._threads())

    def _threads(self) -> anyio.CapacityLimiter:
        if self._limiter is None:  # made on the event loop that uses it
            self._limiter = anyio.CapacityLimiter(PG_LOOP_THREADS)
        return self._limiter

    def dispose(self) -> None:
        """Close every pooled connection."""
        if self._group is not None:
            self._group.close()
            self._group = None
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()
