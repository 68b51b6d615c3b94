"""Helpers every service uses: scope checks, tags, paging, flavors."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.db import tables
from lbaas.db.prepared import Prepared
from lbaas.db.queue import Scope
from lbaas.domain.capabilities import EVERYTHING, Capabilities
from lbaas.domain.flavors import FLAVORS
from lbaas.domain.tags import Tag
from lbaas.errors import NotFound, ValidationFailed
from lbaas.services.auth import Principal, authenticate, digest


@dataclass(frozen=True, slots=True)
class Ctx:
    """One request's caller and place: principal, project, region."""

    principal: Principal
    project_id: int
    region_id: int
    region_name: str
    request_id: str | None = None
    #: What the deployment's data plane can serve (request-time refusals of the rest).
    capabilities: Capabilities = EVERYTHING

    @property
    def task_scope(self) -> Scope:
        return Scope(self.project_id, self.region_id, self.principal.user_id, self.request_id)


def flavor_view(name: str | None) -> dict[str, Any] | None:
    """The ``flavor`` object of a load balancer (null = default flavor)."""
    if name is None:
        return None
    vcpus, ram = FLAVORS[name]
    return {"flavor_id": name, "flavor_name": name, "ram": ram, "vcpus": vcpus}


def check_flavor(name: str, field: str = "flavor") -> str:
    """A flavor named by GET /lbflavors (Gcore: an unknown flavor name is a 400, errors.md §2)."""
    if name not in FLAVORS:
        raise ValidationFailed.field(field, f"Unknown flavor {name!r}; known: {', '.join(FLAVORS)}")
    return name


_AUTH_SCOPE = (
    sa.select(
        tables.api_keys.c.id,
        tables.api_keys.c.user_id,
        tables.api_keys.c.project_id,
        tables.api_keys.c.revoked_at,
        tables.regions.c.name.label("region_name"),
        tables.projects.c.id.label("project_found"),
    )
    .select_from(tables.api_keys)
    .outerjoin(tables.regions, tables.regions.c.id == sa.bindparam("region_id"))
    .outerjoin(
        tables.projects,
        sa.and_(tables.projects.c.id == sa.bindparam("project_id"), tables.projects.c.deleted_at.is_(None)),
    )
    .where(tables.api_keys.c.digest == sa.bindparam("digest"))
)


_AUTH_SCOPE_FAST = Prepared(_AUTH_SCOPE)


def authorize(
    conn: Connection,
    token: str,
    project_id: int,
    region_id: int,
    request_id: str | None,
    capabilities: Capabilities = EVERYTHING,
) -> Ctx:
    """Authenticate and resolve the scope in one query (the hot path of every request)."""
    row = _AUTH_SCOPE_FAST.first(conn, digest=digest(token), project_id=project_id, region_id=region_id)
    if row is None or row.revoked_at is not None:
        authenticate(conn, token)  # raises, with Gcore's wording for this token
    principal = Principal(row.id, row.user_id, row.project_id)
    principal.check_project(project_id)
    if row.region_name is None:
        raise NotFound.of("Region", region_id)
    if row.project_found is None:
        raise NotFound.of("Project", project_id)
    return Ctx(principal, project_id, region_id, row.region_name, request_id, capabilities)


_T = tables.tags
_TAGS = sa.select(_T.c.resource_id, _T.c.key, _T.c.value, _T.c.read_only).where(
    _T.c.resource_id.in_(sa.bindparam("ids", expanding=True))
)


_TAGS_OF_ONE = Prepared(
    sa.select(_T.c.resource_id, _T.c.key, _T.c.value, _T.c.read_only).where(
        _T.c.resource_id == sa.bindparam("id")
    )
)
_TAG_DELETE = Prepared(
    _T.delete().where(_T.c.resource_id == sa.bindparam("rid"), _T.c.key == sa.bindparam("k"))
)
_TAG_INSERT = Prepared(
    _T.insert().values(
        resource_id=sa.bindparam("rid"),
        key=sa.bindparam("k"),
        value=sa.bindparam("v"),
        read_only=sa.bindparam("ro", type_=sa.Boolean()),
        resource_type=sa.bindparam("rt"),
    )
)
_TAG_UPDATE = Prepared(
    _T.update()
    .where(_T.c.resource_id == sa.bindparam("rid"), _T.c.key == sa.bindparam("k"))
    .values(value=sa.bindparam("v"), read_only=sa.bindparam("ro", type_=sa.Boolean()))
)


def load_tags(conn: Connection, ids: Sequence[str]) -> dict[str, dict[str, Tag]]:
    """Tags of many resources in one query: ``{resource_id: {key: Tag}}``."""
    out: dict[str, dict[str, Tag]] = {i: {} for i in ids}
    if not ids:
        return out
    rows = _TAGS_OF_ONE.all(conn, id=ids[0]) if len(ids) == 1 else conn.execute(_TAGS, {"ids": list(ids)})
    for r in rows:
        out[r.resource_id][r.key] = Tag(r.key, r.value, r.read_only)
    return out


def write_tags(
    conn: Connection, resource_type: str, resource_id: str, before: dict[str, Tag], after: dict[str, Tag]
) -> None:
    """Store the difference between two tag sets."""
    for key in before:
        if key not in after:
            _TAG_DELETE.execute(conn, rid=resource_id, k=key)
    for key, tag in after.items():
        old = before.get(key)
        if old == tag:
            continue
        if old is None:
            _TAG_INSERT.execute(conn, rid=resource_id, k=key, v=tag.value, ro=tag.read_only, rt=resource_type)
        else:
            _TAG_UPDATE.execute(conn, rid=resource_id, k=key, v=tag.value, ro=tag.read_only)


def tag_filters(
    column: sa.ColumnElement, tag_key: Iterable[str] | None, tag_key_value: dict[str, str] | None
) -> list[sa.ColumnElement]:
    """WHERE clauses: the resource has every key, and every key=value pair."""
    t = tables.tags
    clauses = []
    for key in tag_key or ():
        clauses.append(sa.exists().where(t.c.resource_id == column, t.c.key == key))
    for key, value in (tag_key_value or {}).items():
        clauses.append(sa.exists().where(t.c.resource_id == column, t.c.key == key, t.c.value == value))
    return clauses


def fetch_page(
    conn: Connection,
    table: sa.Table,
    where: Sequence[Any],
    order: Sequence[Any],
    limit: int,
    offset: int,
    query: sa.Select | None = None,
) -> tuple[int, list[Any]]:
    """The total number of matches and one page of rows (no page query past the end).

    ``query`` selects the rows (default: the table's columns); ``where`` and ``order`` apply to it.
    """
    total = conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()
    if total <= offset:
        return total, []
    q = (
        (sa.select(table) if query is None else query)
        .where(*where)
        .order_by(*order)
        .limit(limit)
        .offset(offset)
    )
    return total, conn.execute(q).all()


def page(total: int, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``{count, results}`` envelope; count is the total of all pages."""
    return {"count": total, "results": results}


@functools.cache
def _by_id(table: sa.Table, for_update: bool) -> Prepared:
    """The statement reading one row of a project and region (built once per table)."""
    q = sa.select(table).where(
        table.c.id == sa.bindparam("id"),
        table.c.project_id == sa.bindparam("project_id"),
        table.c.region_id == sa.bindparam("region_id"),
    )
    return Prepared(q.with_for_update() if for_update else q)


def lock_row(conn: Connection, table: sa.Table, ident: str, ctx: Ctx, kind: str) -> Any:
    """Read one row of the caller's project and region for update, or 404."""
    statement = _by_id(table, conn.dialect.name != "sqlite")
    row = statement.first(conn, id=str(ident), project_id=ctx.project_id, region_id=ctx.region_id)
    if row is None:
        raise NotFound.of(kind, ident)
    return row


def get_row(conn: Connection, table: sa.Table, ident: str, ctx: Ctx, kind: str) -> Any:
    """Read one row of the caller's project and region, or 404."""
    row = _by_id(table, False).first(conn, id=str(ident), project_id=ctx.project_id, region_id=ctx.region_id)
    if row is None:
        raise NotFound.of(kind, ident)
    return row
