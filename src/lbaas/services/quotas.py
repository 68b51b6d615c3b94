"""Per-project quotas, with Gcore's ``QuotaLimitExceed`` error."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.db import tables
from lbaas.errors import QuotaExceeded

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
    if used + requested > limit:
        raise QuotaExceeded(
            f"Quota exceeded: {name} limit {limit}, in use {used}, requested {requested}",
            info={"attribute": name, "current_usage": used, "requested_usage": requested, "limit": limit},
        )


def set_limit(conn: Connection, project_id: int, name: str, limit: int) -> None:
    """An operator's override."""
    if name not in DEFAULTS:
        raise KeyError(name)
    q = tables.quotas
    conn.execute(q.delete().where(q.c.project_id == project_id, q.c.name == name))
    conn.execute(q.insert().values(project_id=project_id, name=name, limit=limit))
