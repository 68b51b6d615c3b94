"""Per-project quotas, with Gcore's ``QuotaLimitExceed`` error.

A limit of -1 (``UNLIMITED``) means no limit, as in Gcore's quota API.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.db import tables
from lbaas.errors import NotFound, QuotaExceeded

UNLIMITED = -1

DEFAULTS: dict[str, int] = {
    "loadbalancer_count": 20000,
    "listeners_per_lb": 50,
    "pool_count": 100000,
    "members_per_pool": 1000,
    "floating_count": 1000,
    "external_ip_count": 20000,
    "laas_topic_count": 100,
}


def _usage_query(name: str, project_id: int, parent_id: str | None) -> sa.Select | None:
    t = tables
    if name in ("loadbalancer_count", "external_ip_count"):
        return sa.select(sa.func.count()).where(t.load_balancers.c.project_id == project_id)
    if name == "listeners_per_lb":
        return sa.select(sa.func.count()).where(t.listeners.c.lb_id == parent_id)
    if name == "pool_count":
        return sa.select(sa.func.count()).where(t.pools.c.project_id == project_id)
    if name == "members_per_pool":
        return sa.select(sa.func.count()).where(t.members.c.pool_id == parent_id)
    if name == "floating_count":
        return sa.select(sa.func.count()).where(t.floating_ips.c.project_id == project_id)
    return None


def limit_of(conn: Connection, project_id: int, name: str) -> int:
    """The project's limit (an operator's override, or the default)."""
    q = tables.quotas
    row = conn.execute(sa.select(q.c.limit).where(q.c.project_id == project_id, q.c.name == name)).first()
    return row.limit if row else DEFAULTS[name]


def usage(conn: Connection, project_id: int, name: str, parent_id: str | None = None) -> tuple[int, int]:
    """(limit, current usage)."""
    query = _usage_query(name, project_id, parent_id)
    used = conn.execute(query).scalar_one() if query is not None else 0
    return limit_of(conn, project_id, name), used


def check(conn: Connection, project_id: int, name: str, requested: int, parent_id: str | None = None) -> None:
    """Raise QuotaLimitExceed if ``requested`` more would pass the limit."""
    if requested <= 0:
        return
    limit, used = usage(conn, project_id, name, parent_id)
    if limit != UNLIMITED and used + requested > limit:  # Gcore: QuotaLimitExceed
        raise QuotaExceeded(
            f"Quota exceeded: {name} limit {limit}, in use {used}, requested {requested}",
            info={"attribute": name, "current_usage": used, "requested_usage": requested, "limit": limit},
        )


def require_project(conn: Connection, project_id: int) -> None:
    """404 unless the project exists (and is not deleted)."""
    p = tables.projects
    if conn.execute(sa.select(p.c.id).where(p.c.id == project_id, p.c.deleted_at.is_(None))).first() is None:
        raise NotFound.of("Project", project_id)


def show_limit(limit: int) -> str:
    return "unlimited" if limit == UNLIMITED else str(limit)


def set_limit(conn: Connection, project_id: int, name: str, limit: int) -> None:
    """An operator's override: an integer >= 0, or -1 for no limit; 404 for an unknown project."""
    if name not in DEFAULTS:
        raise KeyError(name)
    if limit < UNLIMITED:
        raise ValueError(f"a quota limit is -1 (unlimited) or more, not {limit}")
    require_project(conn, project_id)
    q = tables.quotas
    conn.execute(q.delete().where(q.c.project_id == project_id, q.c.name == name))
    conn.execute(q.insert().values(project_id=project_id, name=name, limit=limit))
