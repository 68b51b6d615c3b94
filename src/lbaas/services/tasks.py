"""Task read and acknowledge endpoints, scoped to the caller's projects."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.clock import utcnow
from lbaas.db import tables
from lbaas.db.prepared import Prepared
from lbaas.errors import NotFound, ValidationFailed
from lbaas.services import views
from lbaas.services.auth import Principal
from lbaas.services.common import Ctx, fetch_page, page

T = tables.tasks


def _visible(principal: Principal) -> list[sa.ColumnElement]:
    """Tasks a caller may see: never lbaas's internal ones; a project key sees its project's."""
    if principal.is_admin:
        return [T.c.internal.is_(False)]
    return [T.c.internal.is_(False), T.c.project_id == principal.project_id]


# GET of one task, built once and run as Prepared (lbaas.db.prepared): an SDK polls it after
# every task-creating request. The admin's form, then a project key's (the same conditions).
_GET_ANY = Prepared(sa.select(T).where(T.c.id == sa.bindparam("id"), T.c.internal.is_(False)))
_GET_IN_PROJECT = Prepared(
    sa.select(T).where(
        T.c.id == sa.bindparam("id"), T.c.internal.is_(False), T.c.project_id == sa.bindparam("project_id")
    )
)


def get(conn: Connection, principal: Principal, task_id: str) -> dict[str, Any]:
    """One task; another project's task is 404, as if it did not exist."""
    if principal.is_admin:
        row = _GET_ANY.first(conn, id=task_id)
    else:
        row = _GET_IN_PROJECT.first(conn, id=task_id, project_id=principal.project_id)
    if row is None:
        raise NotFound.of("Task", task_id)
    return views.task(row)


def _parse_ts(value: str | None, field: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        ts = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:  # Gcore: "ISO formatted datetime string"
        raise ValidationFailed.field(field, "must be an ISO-8601 date-time") from exc
    return ts.astimezone(dt.UTC).replace(tzinfo=None) if ts.tzinfo else ts


def list_(
    conn: Connection,
    principal: Principal,
    *,
    limit: int,
    offset: int,
    project_id: list[int] | None,
    region_id: list[int] | None,
    state: list[str] | None,
    task_type: str | None,
    is_acknowledged: bool | None,
    from_timestamp: str | None,
    to_timestamp: str | None,
    order_by: str | None,
) -> dict[str, Any]:
    """Tasks matching every given filter, newest first by default."""
    where = _visible(principal)
    if project_id:
        where.append(T.c.project_id.in_(project_id))
    if region_id:
        where.append(T.c.region_id.in_(region_id))
    if state:
        where.append(T.c.state.in_(state))
    if task_type:
        where.append(T.c.task_type == task_type)
    if is_acknowledged is not None:
        where.append(T.c.acknowledged_at.is_not(None) if is_acknowledged else T.c.acknowledged_at.is_(None))
    start, end = _parse_ts(from_timestamp, "from_timestamp"), _parse_ts(to_timestamp, "to_timestamp")
    if start:
        where.append(T.c.created_on >= start)
    if end:
        where.append(T.c.created_on <= end)
    order = T.c.seq.asc() if order_by == "asc" else T.c.seq.desc()
    total, rows = fetch_page(conn, T, where, (order,), limit, offset)
    return page(total, [views.task(r) for r in rows])


def active(
    conn: Connection, ctx: Ctx, *, limit: int, offset: int, task_type: list[str] | None
) -> dict[str, Any]:
    """NEW and RUNNING tasks of one project and region, oldest first."""
    where = [
        T.c.project_id == ctx.project_id,
        T.c.region_id == ctx.region_id,
        T.c.state.in_(("NEW", "RUNNING")),
        T.c.internal.is_(False),
    ]
    if task_type:
        where.append(T.c.task_type.in_(task_type))
    total, rows = fetch_page(conn, T, where, (T.c.seq,), limit, offset)
    return page(total, [views.task(r) for r in rows])


def acknowledge(conn: Connection, principal: Principal, task_id: str) -> dict[str, Any]:
    """Mark one task acknowledged by the caller (idempotent)."""
    row = conn.execute(sa.select(T).where(T.c.id == task_id, *_visible(principal))).first()
    if row is None:
        raise NotFound.of("Task", task_id)
    if row.acknowledged_at is None:
        conn.execute(
            T.update()
            .where(T.c.id == task_id)
            .values(acknowledged_at=utcnow(), acknowledged_by=principal.user_id)
        )
    return get(conn, principal, task_id)


def acknowledge_all(
    conn: Connection, principal: Principal, project_id: int | None, region_id: int | None
) -> None:
    """Acknowledge every visible task, optionally of one project and region."""
    where = [*_visible(principal), T.c.acknowledged_at.is_(None)]
    if project_id is not None:
        principal.check_project(project_id)
        where.append(T.c.project_id == project_id)
    if region_id is not None:
        where.append(T.c.region_id == region_id)
    conn.execute(T.update().where(*where).values(acknowledged_at=utcnow(), acknowledged_by=principal.user_id))
