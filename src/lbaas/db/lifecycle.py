"""The provisioning state machine, applied to rows (LIFECYCLE.md as code).

A request marks the rows it touches PENDING_* and stamps them with its task
id. When the task ends, the rows it still holds move on together:
FINISHED makes them ACTIVE (or removes PENDING_DELETE ones), ERROR makes them
ERROR. The load balancer stays PENDING_UPDATE while its queue holds a task
and is settled when the queue empties.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.clock import utcnow
from lbaas.db import queue, tables
from lbaas.db.prepared import Prepared

LB = tables.load_balancers
PENDING = ("PENDING_CREATE", "PENDING_UPDATE", "PENDING_DELETE")


# Statements built once per table (bound parameters) and run as :class:`Prepared`: building Core
# expressions per call costs ~10x what executing them does, and Core's own ``execute`` ~25-50 µs
# more than SQLite's; these run for every task.
_HELD = sa.bindparam("held")
_NOW = sa.bindparam("now", type_=sa.DateTime())


def _by_table(make: Any) -> dict[str, Prepared]:
    return {t.name: Prepared(make(t)) for t in tables.LB_CHILDREN}


# Which child tables hold rows of a task, in one statement: most tasks hold rows in one table or
# none (a create without children, an internal apply), and each statement below scans its table
# (task_id has no index).
_HELD_IN = Prepared(
    sa.select(*(sa.exists().where(t.c.task_id == _HELD).label(t.name) for t in tables.LB_CHILDREN))
)
_DELETE_HELD = _by_table(
    lambda t: t.delete().where(t.c.task_id == _HELD, t.c.provisioning_status == "PENDING_DELETE")
)
# task_id = NULL as a literal (sa.null()): Prepared does not carry a bind whose value is None.
_ACTIVATE_HELD = _by_table(
    lambda t: (
        t.update()
        .where(t.c.task_id == _HELD, t.c.provisioning_status.in_(("PENDING_CREATE", "PENDING_UPDATE")))
        .values(provisioning_status="ACTIVE", task_id=sa.null(), updated_at=_NOW)
    )
)
_FAIL_HELD = _by_table(
    lambda t: (
        t.update()
        .where(t.c.task_id == _HELD)
        .values(provisioning_status="ERROR", task_id=sa.null(), updated_at=_NOW)
    )
)
_ROWS_OF_LB = _by_table(lambda t: sa.select(t).where(t.c.lb_id == sa.bindparam("lb_id")))
_LB_ROW = Prepared(sa.select(LB).where(LB.c.id == sa.bindparam("lb_id")))
_LB_STATE = Prepared(
    sa.select(LB.c.provisioning_status, LB.c.task_id).where(LB.c.id == sa.bindparam("lb_id"))
)
_LB_SET = LB.update().where(LB.c.id == sa.bindparam("b_lb"))  # SET follows the parameters given
_LB_SETTLE = Prepared(
    _LB_SET.values(
        task_id=sa.bindparam("task_id", type_=LB.c.task_id.type),
        provisioning_status=sa.bindparam("provisioning_status", type_=LB.c.provisioning_status.type),
    )
)


def _held_tables(conn: Connection, task_id: str) -> list[sa.Table]:
    """The child tables holding rows of ``task_id`` (LB_CHILDREN's order)."""
    held = _HELD_IN.first(conn, held=task_id)
    return [t for t, any_row in zip(tables.LB_CHILDREN, held, strict=True) if any_row]


def finish_children(conn: Connection, task_id: str) -> None:
    """The task's changes took effect: its rows become ACTIVE, its deletes go."""
    now = utcnow()
    # Deepest first, so a parent row is never deleted under a child we still look at. A table
    # holding none of the task's rows is skipped: deleting rows elsewhere never stamps its rows
    # (ON DELETE only removes rows or clears a reference), so both statements would change nothing.
    for table in reversed(_held_tables(conn, task_id)):
        _DELETE_HELD[table.name].execute(conn, held=task_id)
        _ACTIVATE_HELD[table.name].execute(conn, held=task_id, now=now)


def fail_children(conn: Connection, task_id: str) -> None:
    """The task failed: the rows it held are ERROR (a user may delete or fix them)."""
    now = utcnow()
    for table in _held_tables(conn, task_id):
        _FAIL_HELD[table.name].execute(conn, held=task_id, now=now)


def hold_lb(conn: Connection, lb_id: str, task_id: str, status: str = "PENDING_UPDATE") -> None:
    """A task was queued on the LB: the LB is busy until its queue empties."""
    row = _LB_STATE.first(conn, lb_id=lb_id)
    if row is None:
        return
    values: dict[str, Any] = {"provisioning_status": status}
    if row.provisioning_status in ("PENDING_CREATE", "PENDING_DELETE") and status == "PENDING_UPDATE":
        values.pop("provisioning_status")  # a create or delete in flight keeps its own status
    if row.task_id is None:
        values["task_id"] = task_id
    if values:
        conn.execute(_LB_SET, {"b_lb": lb_id, **values})


def settle_lb(conn: Connection, lb_id: str, *, final_status: str = "ACTIVE") -> None:
    """After a task ends: hand the LB to the next queued task, or settle it."""
    nxt = queue.queue_head(conn, lb_id)
    if nxt is not None:
        row = _LB_STATE.first(conn, lb_id=lb_id)
        status = "PENDING_UPDATE"
        if row is not None and row.provisioning_status == "PENDING_DELETE":
            status = "PENDING_DELETE"
        _LB_SETTLE.execute(conn, b_lb=lb_id, task_id=nxt, provisioning_status=status)
        return
    _LB_SETTLE.execute(conn, b_lb=lb_id, task_id=None, provisioning_status=final_status)


def release(conn: Connection, task_id: str, lock_key: str) -> None:
    """The generic undo of a task whose own undo failed: what it held is ERROR, its LB moves on.

    Works in every state: children already gone, the LB gone, PENDING_DELETE or ERROR.
    A load balancer being created or deleted by the task ends ERROR (deletable again).
    """
    fail_children(conn, task_id)
    row = conn.execute(sa.select(LB.c.provisioning_status).where(LB.c.id == lock_key)).first()
    if row is None:
        return
    final = "ERROR" if row.provisioning_status in ("PENDING_CREATE", "PENDING_DELETE", "ERROR") else "ACTIVE"
    settle_lb(conn, lock_key, final_status=final)


def repair_orphans(conn: Connection) -> list[str]:
    """Settle PENDING rows whose task is neither queued nor running (the backstop).

    Rows and their task are written in one transaction and settled in one, so an
    orphan only follows a task that was set aside after even its generic undo
    failed, or a hand-edited database. Children become ERROR; a load balancer
    returns to ACTIVE, or ERROR if it was being created or deleted. Returns what
    was repaired, for the log.
    """
    T = tables.tasks
    active = sa.select(T.c.id).where(T.c.state.in_(queue.ACTIVE_STATES))
    repaired: list[str] = []
    for table in tables.LB_CHILDREN:
        orphan = sa.and_(
            table.c.provisioning_status.in_(PENDING),
            sa.or_(table.c.task_id.is_(None), table.c.task_id.not_in(active)),
        )
        ids = [r[0] for r in conn.execute(sa.select(table.c.id).where(orphan))]
        if ids:
            conn.execute(
                table.update()
                .where(table.c.id.in_(ids))
                .values(provisioning_status="ERROR", task_id=None, updated_at=utcnow())
            )
            repaired += [f"{table.name} {i}" for i in ids]
    queued = sa.select(T.c.lock_key).where(T.c.state.in_(queue.ACTIVE_STATES), T.c.internal.is_(False))
    for lb_id, status in conn.execute(
        sa.select(LB.c.id, LB.c.provisioning_status).where(
            LB.c.provisioning_status.in_(PENDING), LB.c.id.not_in(queued)
        )
    ):
        final = "ACTIVE" if status == "PENDING_UPDATE" else "ERROR"
        settle_lb(conn, lb_id, final_status=final)
        repaired.append(f"load balancer {lb_id} {status} -> {final}")
    return repaired


APPLY = "apply_loadbalancer"


def request_apply(conn: Connection, lb_id: str | None) -> str | None:
    """Queue an internal task that pushes an LB's desired state to the data plane.

    For changes that reach the data plane without a client-visible task (the seed
    PATCH's ``logging``, a floating IP attached or detached). The task is invisible
    to clients: the LB's provisioning status and ``task_id`` do not move. Any task
    still waiting in the LB's queue covers this change too (every task applies the
    LB's whole state as it is when it runs), so none is added then. Returns the
    task id, or None.
    """
    if lb_id is None:
        return None
    lb = conn.execute(
        sa.select(LB.c.project_id, LB.c.region_id, LB.c.provisioning_status).where(LB.c.id == lb_id)
    ).first()
    if lb is None or lb.provisioning_status == "PENDING_DELETE":
        return None
    T = tables.tasks
    waiting = conn.execute(sa.select(T.c.id).where(T.c.lock_key == lb_id, T.c.state == "NEW")).first()
    if waiting is not None:
        return None
    scope = queue.Scope(lb.project_id, lb.region_id, user_id=0)
    return queue.enqueue(conn, scope, APPLY, lock_key=lb_id, internal=True)


def load_graph_rows(conn: Connection, lb_id: str) -> dict[str, list[dict[str, Any]]] | None:
    """Every row of one LB's tree, keyed by table name; None if the LB is gone."""
    lb = _LB_ROW.first(conn, lb_id=lb_id)
    if lb is None:
        return None
    out: dict[str, list[dict[str, Any]]] = {"load_balancers": [lb._asdict()]}
    for table in tables.LB_CHILDREN:
        out[table.name] = [r._asdict() for r in _ROWS_OF_LB[table.name].all(conn, lb_id=lb_id)]
    return out
