"""The emulator's controls as one process sees them: an in-memory copy kept fresh cheaply.

Every control lives in the database (so every API process and worker obeys it), but the
request path must not pay a query for it. Each change bumps ``emulator_state.version`` in its
own transaction; a process re-reads that one row at most every ``max_age`` seconds (0.25 s by
default) and reloads the controls only when the number moved. The process that made a change
calls :meth:`Controls.changed` after the commit, so it sees the change at once; other processes
see it within ``max_age``. When nothing is configured the request path costs one comparison.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.db import tables
from lbaas.db.engine import Database
from lbaas.db.prepared import Prepared

F = tables.emulator_faults
STATE = tables.emulator_state
TIMING = tables.emulator_timing
# Prepared (lbaas.db.prepared): the emulated provider reads the version before every task.
_VERSION = Prepared(sa.select(STATE.c.version, STATE.c.journal_size).where(STATE.c.id == 1))


@dataclass(frozen=True)
class Fault:
    """One active injected fault (a row of ``emulator_faults`` with its regex compiled)."""

    id: int
    kind: str
    project_id: int | None = None
    task_type: str | None = None
    method: str | None = None
    path: re.Pattern[str] | None = None
    status: int | None = None
    message: str | None = None
    retry_after: float | None = None
    latency_ms: int | None = None
    latency_max_ms: int | None = None
    target_kind: str | None = None
    target_id: str | None = None
    lb_id: str | None = None
    health: str | None = None

    @classmethod
    def of(cls, row: Any) -> Fault:
        return cls(
            id=row.id,
            kind=row.kind,
            project_id=row.project_id,
            task_type=row.task_type,
            method=row.method,
            path=re.compile(row.path_regex) if row.path_regex else None,
            status=row.status,
            message=row.message,
            retry_after=row.retry_after,
            latency_ms=row.latency_ms,
            latency_max_ms=row.latency_max_ms,
            target_kind=row.target_kind,
            target_id=row.target_id,
            lb_id=row.lb_id,
            health=row.health,
        )

    def matches_request(self, method: str, path: str, project_id: int | None) -> bool:
        """An http or latency fault's scope: method, path pattern (``re.search``) and project."""
        if self.method is not None and self.method != method:
            return False
        if self.project_id is not None and self.project_id != project_id:
            return False
        return self.path is None or self.path.search(path) is not None

    def matches_task(self, task_type: str, project_id: int | None) -> bool:
        """A task fault's scope: task type and project (None matches any)."""
        if self.task_type is not None and self.task_type != task_type:
            return False
        return self.project_id is None or self.project_id == project_id


@dataclass(frozen=True)
class View:
    """Everything the hooks need, loaded at one version."""

    version: int = -1
    journal_size: int = 0
    requests: tuple[Fault, ...] = ()  # http and latency faults, oldest first
    tasks: tuple[Fault, ...] = ()
    health: tuple[Fault, ...] = ()
    timing: bool = False  # a rule other than immediate, or a held task (else every task is immediate)

    @property
    def watches_requests(self) -> bool:
        """Whether the request hook has anything to do (faults to match or a journal to write)."""
        return bool(self.requests) or self.journal_size > 0


def active_faults(conn: Connection) -> list[Any]:
    """Rows of every fault that can still fire, oldest first."""
    return list(
        conn.execute(sa.select(F).where(sa.or_(F.c.remaining.is_(None), F.c.remaining > 0)).order_by(F.c.id))
    )


def bump(conn: Connection) -> None:
    """Mark the controls changed (call in the transaction that changes them)."""
    conn.execute(STATE.update().where(STATE.c.id == 1).values(version=STATE.c.version + 1))


class Controls:
    """A process's cached :class:`View`, refreshed by version (see the module doc)."""

    def __init__(self, db: Database, *, max_age: float = 0.25) -> None:
        self.db = db
        self.max_age = max_age
        self._view = View()
        self._checked = float("-inf")
        self._changes = 0  # calls of changed(): a read that a change overtook is not kept as fresh
        self._lock = threading.Lock()

    def view(self, max_age: float | None = None, conn: Connection | None = None) -> View:
        """The current view; reads the version row when the cached one is older than ``max_age``.

        ``conn``: the caller's open transaction, read with instead of another connection (inside
        a transaction that holds row locks, a second connection may have to wait for the pool)."""
        limit = self.max_age if max_age is None else max_age
        if time.monotonic() - self._checked < limit:
            return self._view
        with self._lock:
            checked, changes = time.monotonic(), self._changes
            with contextlib.nullcontext(conn) if conn is not None else self.db.read() as c:
                row = _VERSION.first(c)
                version = row.version if row else 0
                if version != self._view.version:
                    self._view = self._load(c, version, row.journal_size if row else 0)
            # A change committed while this read ran (changed() was called meanwhile) may be
            # missing from it: then the next view() reads again instead of trusting this one for
            # max_age (an injected fault was skipped that way once, on PostgreSQL).
            if self._changes == changes:
                self._checked = checked
            return self._view

    async def view_async(self) -> View:
        """:meth:`view` from the event loop (off the loop on PostgreSQL, only when stale)."""
        if time.monotonic() - self._checked < self.max_age:
            return self._view
        return await self.db.run(self.view)

    def changed(self) -> None:
        """This process changed the controls: the next :meth:`view` re-reads them."""
        self._changes += 1
        self._checked = float("-inf")

    @staticmethod
    def _load(conn: Connection, version: int, journal_size: int) -> View:
        faults = [Fault.of(r) for r in active_faults(conn)]
        rule = sa.select(TIMING.c.mode).where(TIMING.c.mode != "immediate").limit(1)
        held = sa.select(tables.emulator_held_tasks.c.task_id).limit(1)
        timing = conn.execute(rule).first() is not None or conn.execute(held).first() is not None
        return View(
            version=version,
            journal_size=journal_size,
            requests=tuple(f for f in faults if f.kind in ("http", "latency")),
            tasks=tuple(f for f in faults if f.kind == "task"),
            health=tuple(f for f in faults if f.kind == "health"),
            timing=timing,
        )
