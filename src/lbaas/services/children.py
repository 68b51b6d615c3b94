"""The common path of every change to an object below a load balancer.

A request locks the LB row (so concurrent requests on one LB serialize and
each validates against everything accepted before it), refuses only if the
LB is being deleted, writes the child rows PENDING_* stamped with a new task
id, and queues that task on the LB's lock. The task applies the LB's whole
desired state and then settles the rows it holds (see lbaas.db.lifecycle).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.clock import new_id, utcnow
from lbaas.db import lifecycle, queue, tables
from lbaas.errors import Conflict, NotFound
from lbaas.services.common import Ctx, lock_row

LB = tables.load_balancers


def lock_lb(conn: Connection, ctx: Ctx, lb_id: str, field: str | None = None) -> Any:
    """The LB row, locked; 404 if not the caller's, 409 if being deleted.

    ``field`` names the request field that carried the id, so a bad reference
    in a body reads as a 404 naming that field's value.
    """
    try:
        row = lock_row(conn, LB, str(lb_id), ctx, "Load balancer")
    except NotFound:
        raise
    # Octavia: 409 ImmutableObject on a PENDING_DELETE load balancer; lbaas queues every other
    # change instead of answering 409 (docs/adr/0002), so this is the only 409 left.
    if row.provisioning_status == "PENDING_DELETE":
        raise Conflict(f"Load balancer {lb_id} is being deleted by task {row.task_id}")
    return row


def new_task_id() -> str:
    return new_id()


def begin(
    conn: Connection,
    ctx: Ctx,
    lb_id: str,
    task_type: str,
    *,
    task_id: str | None = None,
    created: dict[str, list[str]] | None = None,
    args: dict[str, Any] | None = None,
) -> str:
    """Queue the task that will apply a child change, and mark the LB busy."""
    task_id = queue.enqueue(
        conn, ctx.task_scope, task_type, lock_key=lb_id, created=created, args=args, task_id=task_id
    )
    lifecycle.hold_lb(conn, lb_id, task_id)
    return task_id


def mark(
    conn: Connection,
    table: sa.Table,
    ids: Iterable[str],
    status: str,
    task_id: str,
    values: dict[str, Any] | None = None,
) -> None:
    """Stamp rows with a pending status and the task that holds them."""
    ids = list(ids)
    if ids:
        conn.execute(
            table.update()
            .where(table.c.id.in_(ids))
            .values(provisioning_status=status, task_id=task_id, updated_at=utcnow(), **(values or {}))
        )


def lifecycle_columns(task_id: str) -> dict[str, Any]:
    """Column values of a row being created by ``task_id``."""
    return {
        "provisioning_status": "PENDING_CREATE",
        "operating_status": "OFFLINE",
        "task_id": task_id,
        "creator_task_id": task_id,
        "created_at": utcnow(),
        "updated_at": None,
    }


def ensure_not_deleting(row: Any, kind: str) -> None:
    """A child already queued for deletion takes no more changes (409, as Octavia's ImmutableObject)."""
    if row.provisioning_status == "PENDING_DELETE":
        raise Conflict(f"{kind} {row.id} is being deleted by task {row.task_id}")
