"""Durable task queue on the main database (procrastinate-shaped).

A task row is written in the same transaction as the resource rows it will
act on, so a crash leaves either both or neither. Tasks sharing a
``lock_key`` (the load balancer id) run one at a time in ``seq`` order;
different keys run in parallel. A worker claims the head of a queue with a
compare-and-set and holds it under a lease that it renews; a lease that
expires (the worker died) puts the task back at the head of its queue.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.clock import new_id, utcnow
from lbaas.db import tables
from lbaas.db.prepared import Prepared

T = tables.tasks

# Every key Gcore returns in created_resources (empty lists for the rest).
RESOURCE_KEYS = (
    "loadbalancers",
    "listeners",
    "pools",
    "members",
    "healthmonitors",
    "l7polices",
    "l7rules",
    "secrets",
    "floatingips",
    "ports",
    "projects",
    "ddos_profiles",
)
ACTIVE_STATES = ("NEW", "RUNNING")


@dataclass(frozen=True)
class Scope:
    """Who asks: the project, region and user a task is recorded under."""

    project_id: int | None
    region_id: int | None
    user_id: int
    request_id: str | None = None


_INSERT = T.insert()


def enqueue(
    conn: Connection,
    scope: Scope,
    task_type: str,
    *,
    lock_key: str,
    args: dict[str, Any] | None = None,
    created: dict[str, list[str]] | None = None,
    task_id: str | None = None,
    data: Any = None,
    internal: bool = False,
) -> str:
    """Queue a task in the caller's transaction and return its id.

    ``internal``: lbaas queues it for itself (it never appears in the tasks API).
    """
    task_id = task_id or new_id()
    planned = {k: list((created or {}).get(k, [])) for k in RESOURCE_KEYS}
    conn.execute(
        _INSERT,
        {
            "id": task_id,
            "task_type": task_type,
            "state": "NEW",
            "lock_key": lock_key,
            "project_id": scope.project_id,
            "region_id": scope.region_id,
            "user_id": scope.user_id,
            "client_id": scope.project_id and 1,
            "request_id": scope.request_id,
            "args": args or {},
            "planned_resources": planned,
            "data": data,
            "attempts": 0,
            "internal": internal,
            "created_on": utcnow(),
        },
    )
    return task_id


# Statements are built once (module level, bound parameters): building a Core expression per
# call costs ~10x what executing it does.
# Prepared (lbaas.db.prepared): every task's finalize asks for its queue's next head.
_HEAD = Prepared(
    sa.select(T.c.id)
    .where(T.c.lock_key == sa.bindparam("lock_key"), T.c.state.in_(ACTIVE_STATES), T.c.internal.is_(False))
    .order_by(T.c.seq)
    .limit(1)
)


def queue_head(conn: Connection, lock_key: str) -> str | None:
    """The id of the client task holding a lock (running, or next to run), if any.

    Internal tasks never hold a resource as far as clients can see.
    """
    row = _HEAD.first(conn, lock_key=lock_key)
    return row[0] if row else None


def _is_head():
    older = T.alias("older")
    return ~sa.exists().where(
        older.c.lock_key == T.c.lock_key,
        older.c.state.in_(ACTIVE_STATES),
        older.c.seq < T.c.seq,
    )


def _due(now: Any) -> sa.ColumnElement[bool]:
    return sa.or_(T.c.run_after.is_(None), T.c.run_after <= now)


_DUE = _due(sa.bindparam("now", type_=sa.DateTime()))
_YOUNG_ENOUGH = T.c.created_on <= sa.bindparam("cutoff", type_=sa.DateTime())


@functools.cache
def _waiting(aged: bool) -> Prepared:
    # Prepared: a worker asks before every claim.
    q = sa.select(T.c.seq).where(T.c.state == "NEW", _DUE)
    return Prepared((q.where(_YOUNG_ENOUGH) if aged else q).limit(1))


def has_waiting(conn: Connection, min_age: float = 0.0) -> bool:
    """Whether any task waits to run (cheap, read-only; claim decides which one)."""
    now = utcnow()
    if min_age:
        return _waiting(True).first(conn, now=now, cutoff=now - dt.timedelta(seconds=min_age)) is not None
    return _waiting(False).first(conn, now=now) is not None


@functools.cache
def _pick(by_id: bool, aged: bool, skip_locked: bool) -> Prepared:
    q = sa.select(T.c.seq).where(T.c.state == "NEW", _DUE, _is_head())
    if by_id:
        q = q.where(T.c.id == sa.bindparam("task_id"))
    if aged:
        q = q.where(_YOUNG_ENOUGH)
    q = q.order_by(T.c.seq).limit(1)
    return Prepared(q.with_for_update(skip_locked=True) if skip_locked else q)


_TAKE = Prepared(
    T.update()
    .where(T.c.seq == sa.bindparam("b_seq"), T.c.state == "NEW")
    .values(
        state="RUNNING",
        worker_id=sa.bindparam("b_worker"),
        attempts=T.c.attempts + 1,
        lease_expires_at=sa.bindparam("b_lease", type_=sa.DateTime()),
        updated_on=sa.bindparam("b_now", type_=sa.DateTime()),
    )
    .returning(*T.c)
)


def claim(
    conn: Connection,
    worker_id: str,
    lease: float,
    *,
    task_id: str | None = None,
    skip_locked: bool = False,
    min_age: float = 0.0,
) -> dict[str, Any] | None:
    """Take the oldest runnable head of any queue (or one given task if it is a head).

    The final ``UPDATE ... WHERE state='NEW'`` is the compare-and-set: of two
    workers picking the same task, exactly one changes a row.
    """
    now = utcnow()
    params: dict[str, Any] = {"now": now}
    if task_id is not None:
        params["task_id"] = task_id
    if min_age:
        params["cutoff"] = now - dt.timedelta(seconds=min_age)
    picked = _pick(task_id is not None, bool(min_age), skip_locked).first(conn, **params)
    if picked is None:
        return None
    row = _TAKE.first(
        conn, b_seq=picked.seq, b_worker=worker_id, b_lease=now + dt.timedelta(seconds=lease), b_now=now
    )
    return row._asdict() if row else None


def renew(conn: Connection, task_ids: Iterable[str], worker_id: str, lease: float) -> None:
    """Extend the leases a live worker holds."""
    ids = list(task_ids)
    if ids:
        conn.execute(
            T.update()
            .where(T.c.id.in_(ids), T.c.worker_id == worker_id, T.c.state == "RUNNING")
            .values(lease_expires_at=utcnow() + dt.timedelta(seconds=lease))
        )


def expired(conn: Connection) -> list[dict[str, Any]]:
    """Running tasks whose worker stopped renewing the lease."""
    rows = conn.execute(
        sa.select(*T.c).where(T.c.state == "RUNNING", T.c.lease_expires_at < utcnow())
    ).mappings()
    return [dict(r) for r in rows]


def take_over(conn: Connection, task_id: str, worker_id: str, lease: float) -> bool:
    """Take an expired lease over (compare-and-set), so that one worker recovers the task.

    Recovery that fails in turn then waits for this new lease to expire: a broken
    task is retried once per lease period, never in a hot loop.
    """
    now = utcnow()
    res = conn.execute(
        T.update()
        .where(T.c.id == task_id, T.c.state == "RUNNING", T.c.lease_expires_at < now)
        .values(worker_id=worker_id, lease_expires_at=now + dt.timedelta(seconds=lease), updated_on=now)
    )
    return res.rowcount == 1


def requeue(conn: Connection, task_id: str, worker_id: str) -> bool:
    """Put a task whose worker died back at the head of its queue (it keeps its place)."""
    res = conn.execute(
        T.update()
        .where(T.c.id == task_id, T.c.state == "RUNNING", T.c.worker_id == worker_id)
        .values(state="NEW", worker_id=None, lease_expires_at=None, updated_on=utcnow())
    )
    return res.rowcount == 1


def reschedule(conn: Connection, task: dict[str, Any], worker_id: str, delay: float, error: str) -> bool:
    """Run the task again after ``delay`` seconds; it stays at the head of its queue.

    Other queues go on meanwhile: a claim only takes tasks whose ``run_after`` has passed.
    """
    now = utcnow()
    res = conn.execute(
        T.update()
        .where(T.c.id == task["id"], T.c.state == "RUNNING", T.c.worker_id == worker_id)
        .values(
            state="NEW",
            worker_id=None,
            lease_expires_at=None,
            run_after=now + dt.timedelta(seconds=delay),
            error=error[:2000],
            updated_on=now,
        )
    )
    return res.rowcount == 1


@functools.cache
def _finish(by_worker: bool) -> sa.Update:
    cond = [T.c.id == sa.bindparam("b_id"), T.c.state == "RUNNING"]
    if by_worker:
        cond.append(T.c.worker_id == sa.bindparam("b_worker"))
    return T.update().where(*cond).values(state="FINISHED", error=None, lease_expires_at=None)


def finish(conn: Connection, task: dict[str, Any], worker_id: str | None) -> bool:
    """Mark a task FINISHED; False if this worker no longer holds it."""
    now = utcnow()
    params = {
        "b_id": task["id"],
        "b_worker": worker_id,
        "created_resources": task["planned_resources"],
        "finished_on": now,
        "updated_on": now,
    }
    return conn.execute(_finish(worker_id is not None), params).rowcount == 1


def fail(
    conn: Connection, task: dict[str, Any], error: str, worker_id: str | None, *, set_aside: bool = False
) -> bool:
    """Mark a task ERROR with a message a user can act on.

    ``set_aside``: its undo could not run; the task is flagged for an operator
    (``lbaas tasks list --stuck``) and reads ERROR like any failed task.
    """
    now = utcnow()
    cond = [T.c.id == task["id"], T.c.state.in_(ACTIVE_STATES)]
    if worker_id is not None:
        cond.append(T.c.worker_id == worker_id)
    res = conn.execute(
        T.update()
        .where(*cond)
        .values(
            state="ERROR",
            error=error[:2000],
            created_resources=None,
            finished_on=now,
            updated_on=now,
            lease_expires_at=None,
            set_aside_at=now if set_aside else None,
        )
    )
    return res.rowcount == 1


def recent(
    conn: Connection, *, stuck: bool = False, states: Iterable[str] = (), limit: int = 100
) -> list[dict[str, Any]]:
    """Tasks newest first, internal ones included (operators): only set-aside ones with ``stuck``."""
    q = sa.select(*T.c).order_by(T.c.seq.desc()).limit(limit)
    if stuck:
        q = q.where(T.c.set_aside_at.is_not(None))
    states = list(states)
    if states:
        q = q.where(T.c.state.in_(states))
    return [dict(r) for r in conn.execute(q).mappings()]


def last_error(conn: Connection, lock_key: str, task_type: str) -> str | None:
    """The error of the newest failed ``task_type`` task of a lock (for operators' messages)."""
    return conn.execute(
        sa.select(T.c.error)
        .where(T.c.lock_key == lock_key, T.c.task_type == task_type, T.c.state == "ERROR")
        .order_by(T.c.seq.desc())
        .limit(1)
    ).scalar()
