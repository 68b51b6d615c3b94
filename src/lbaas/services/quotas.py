"""Per-project quotas, with Gcore's ``QuotaLimitExceed`` error.

A limit of -1 (``UNLIMITED``) means no limit, as in Gcore's quota API.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.db import tables
from lbaas.db.prepared import Prepared
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


def _count(table: sa.Table, column: str) -> Prepared:
    return Prepared(sa.select(sa.func.count()).where(table.c[column] == sa.bindparam("key")))


# Built once and run as Prepared (lbaas.db.prepared): every create checks a quota, and building
# the Core expression per call cost more than running it. Per quota: the statement, and whether
# it counts the project's rows (else the parent's).
_LBS_OF_PROJECT = _count(tables.load_balancers, "project_id")
_USAGE: dict[str, tuple[Prepared, bool]] = {
    "loadbalancer_count": (_LBS_OF_PROJECT, True),
    "external_ip_count": (_LBS_OF_PROJECT, True),
    "listeners_per_lb": (_count(tables.listeners, "lb_id"), False),
    "pool_count": (_count(tables.pools, "project_id"), True),
    "members_per_pool": (_count(tables.members, "pool_id"), False),
    "floating_count": (_count(tables.floating_ips, "project_id"), True),
}
_LIMIT = Prepared(
    sa.select(tables.quotas.c.limit).where(
        tables.quotas.c.project_id == sa.bindparam("project_id"), tables.quotas.c.name == sa.bindparam("name")
    )
)


def limit_of(conn: Connection, project_id: int, name: str) -> int:
    """The project's limit (an operator's override, or the default)."""
    row = _LIMIT.first(conn, project_id=project_id, name=name)
    return row.limit if row else DEFAULTS[name]


def usage(conn: Connection, project_id: int, name: str, parent_id: str | None = None) -> tuple[int, int]:
    """(limit, current usage)."""
    counted = _USAGE.get(name)
    used = 0
    if counted is not None:
        statement, by_project = counted
        used = statement.first(conn, key=project_id if by_project else parent_id)[0]
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
