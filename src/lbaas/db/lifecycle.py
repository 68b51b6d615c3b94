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
from lbaas.db import tables
from lbaas.tasks import queue

LB = tables.load_balancers
PENDING = ("PENDING_CREATE", "PENDING_UPDATE", "PENDING_DELETE")


def finish_children(conn: Connection, task_id: str) -> None:
    """The task's changes took effect: its rows become ACTIVE, its deletes go."""
    now = utcnow()
    # Deepest first, so a parent row is never deleted under a child we still look at.
    for table in reversed(tables.LB_CHILDREN):
        held = table.c.task_id == task_id
        conn.execute(table.delete().where(held, table.c.provisioning_status == "PENDING_DELETE"))
        conn.execute(
            table.update()
            .where(held, table.c.provisioning_status.in_(("PENDING_CREATE", "PENDING_UPDATE")))
            .values(provisioning_status="ACTIVE", task_id=None, updated_at=now)
        )


def fail_children(conn: Connection, task_id: str) -> None:
    """The task failed: the rows it held are ERROR (a user may delete or fix them)."""
    for table in tables.LB_CHILDREN:
        conn.execute(
            table.update()
            .where(table.c.task_id == task_id)
            .values(provisioning_status="ERROR", task_id=None, updated_at=utcnow())
        )


def hold_lb(conn: Connection, lb_id: str, task_id: str, status: str = "PENDING_UPDATE") -> None:
    """A task was queued on the LB: the LB is busy until its queue empties."""
    row = conn.execute(sa.select(LB.c.provisioning_status, LB.c.task_id).where(LB.c.id == lb_id)).first()
    if row is None:
        return
    values: dict[str, Any] = {"provisioning_status": status}
    if row.provisioning_status in ("PENDING_CREATE", "PENDING_DELETE") and status == "PENDING_UPDATE":
        values.pop("provisioning_status")  # a create or delete in flight keeps its own status
    if row.task_id is None:
        values["task_id"] = task_id
    if values:
        conn.execute(LB.update().where(LB.c.id == lb_id).values(**values))


def settle_lb(conn: Connection, lb_id: str, *, final_status: str = "ACTIVE") -> None:
    """After a task ends: hand the LB to the next queued task, or settle it."""
    nxt = queue.queue_head(conn, lb_id)
    if nxt is not None:
        row = conn.execute(sa.select(LB.c.provisioning_status).where(LB.c.id == lb_id)).first()
        status = "PENDING_UPDATE"
        if row is not None and row.provisioning_status == "PENDING_DELETE":
            status = "PENDING_DELETE"
        conn.execute(LB.update().where(LB.c.id == lb_id).values(task_id=nxt, provisioning_status=status))
        return
    conn.execute(LB.update().where(LB.c.id == lb_id).values(task_id=None, provisioning_status=final_status))


def load_graph_rows(conn: Connection, lb_id: str) -> dict[str, list[dict[str, Any]]] | None:
    """Every row of one LB's tree, keyed by table name; None if the LB is gone."""
    lb = conn.execute(sa.select(LB).where(LB.c.id == lb_id)).mappings().first()
    if lb is None:
        return None
    out: dict[str, list[dict[str, Any]]] = {"load_balancers": [dict(lb)]}
    for table in tables.LB_CHILDREN:
        out[table.name] = [
            dict(r) for r in conn.execute(sa.select(table).where(table.c.lb_id == lb_id)).mappings()
        ]
    return out
