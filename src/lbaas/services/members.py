"""Pool members: validation, rows, the set-replace diff, and the member endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.clock import fmt_resource, new_id
from lbaas.db import tables
from lbaas.domain import validation as v
from lbaas.errors import NotFound, ValidationFailed
from lbaas.services import children, quotas
from lbaas.services.common import Ctx, get_row, page

M = tables.members
P = tables.pools
# Columns a member keeps across a set replace; (address, protocol_port) is its identity.
MUTABLE = (
    "weight",
    "backup",
    "admin_state_up",
    "monitor_address",
    "monitor_port",
    "subnet_id",
    "instance_id",
)
PATCHABLE = ("admin_state_up", "backup", "monitor_address", "monitor_port", "weight")
NULLABLE = ("monitor_address", "monitor_port")
ORDER = {"address": M.c.address, "created_at": M.c.created_at}


@contextmanager
def prefixed(prefix: str) -> Iterator[None]:
    """Re-raise a validation error with its fields under ``prefix`` (``members.3.address``)."""
    try:
        yield
    except ValidationFailed as exc:
        if not prefix:
            raise
        raise ValidationFailed(fields={f"{prefix}.{k}": m for k, m in exc.invalid_fields.items()}) from None


def lock_pool(conn: Connection, ctx: Ctx, pool_id: str) -> tuple[Any, Any]:
    """(pool, lb): the pool of the caller (404) with its LB locked (409 if deleting either)."""
    pool = get_row(conn, P, pool_id, ctx, "Pool")
    lb = children.lock_lb(conn, ctx, pool.lb_id)
    pool = get_row(conn, P, pool_id, ctx, "Pool")  # again, now that its LB is held
    children.ensure_not_deleting(pool, "Pool")
    return pool, lb


# -- validation --------------------------------------------------------------
def member_values(body: dict[str, Any], vip_family: str | None) -> dict[str, Any]:
    """Column values of one member body; ``vip_family`` from ``v.member_vip_family`` (None: any)."""
    ip = v.check_member_address(body["address"], vip_family)
    monitor_address = body.get("monitor_address")
    v.check_member_monitor(monitor_address, body.get("monitor_port"), vip_family=vip_family)
    weight = body.get("weight")
    weight = 1 if weight is None else weight
    v.check_member_weight(weight)
    return {
        "address": ip.compressed,
        "protocol_port": int(body["protocol_port"]),
        "weight": weight,
        "backup": bool(body.get("backup", False)),
        "admin_state_up": body.get("admin_state_up", True) is not False,
        "monitor_address": None if monitor_address is None else v.member_key(monitor_address, 1)[0],
        "monitor_port": body.get("monitor_port"),
        "subnet_id": _s(body.get("subnet_id")),
        "instance_id": _s(body.get("instance_id")),
    }


def validate_members(
    bodies: list[dict[str, Any]], vip_family: str | None, prefix: str = "members"
) -> list[dict[str, Any]]:
    """Check a list of member bodies (each, and no duplicate address/port); return column values."""
    out = []
    for i, body in enumerate(bodies):
        with prefixed(f"{prefix}.{i}" if prefix else str(i)):
            out.append(member_values(body, vip_family))
    v.check_member_unique(out, prefix=prefix)
    return out


def _s(value: Any) -> str | None:
    return None if value is None else str(value)


# -- rows --------------------------------------------------------------------
def insert_members(
    conn: Connection, ctx: Ctx, lb: Any, pool_id: str, values: list[dict[str, Any]], task_id: str
) -> list[str]:
    """Insert validated members as PENDING_CREATE rows held by ``task_id``."""
    if not values:
        return []
    quotas.check(conn, ctx.project_id, "members_per_pool", len(values), pool_id)
    return _insert_unchecked(conn, ctx, lb, pool_id, values, task_id)


def live_members(conn: Connection, pool_id: str) -> list[Any]:
    """The members of a pool that are not being deleted."""
    return conn.execute(
        sa.select(M).where(M.c.pool_id == pool_id, M.c.provisioning_status != "PENDING_DELETE")
    ).all()


def plan_sync(conn: Connection, pool_id: str, desired: list[dict[str, Any]]) -> dict[str, Any]:
    """Diff a pool's members against a desired set: ``{"create", "update", "delete"}``."""
    current = {(r.address, r.protocol_port): r for r in live_members(conn, pool_id)}
    create, update = [], []
    for vals in desired:
        row = current.pop((vals["address"], vals["protocol_port"]), None)
        if row is None:
            create.append(vals)
            continue
        changes = {k: vals[k] for k in MUTABLE if getattr(row, k) != vals[k]}
        if changes:
            update.append((row.id, changes))
    return {"create": create, "update": update, "delete": [r.id for r in current.values()]}


def apply_sync(
    conn: Connection, ctx: Ctx, lb: Any, pool_id: str, plan: dict[str, Any], task_id: str
) -> list[str]:
    """Write a plan from :func:`plan_sync`; return the ids of the new members."""
    quotas.check(conn, ctx.project_id, "members_per_pool", len(plan["create"]) - len(plan["delete"]), pool_id)
    for member_id, changes in plan["update"]:
        children.mark(conn, M, [member_id], "PENDING_UPDATE", task_id, changes)
    children.mark(conn, M, plan["delete"], "PENDING_DELETE", task_id)
    if not plan["create"]:
        return []
    # The quota was checked net of the deletes above; insert without a second check.
    return _insert_unchecked(conn, ctx, lb, pool_id, plan["create"], task_id)


def _insert_unchecked(
    conn: Connection, ctx: Ctx, lb: Any, pool_id: str, values: list[dict[str, Any]], task_id: str
) -> list[str]:
    rows = [
        {
            "id": new_id(),
            "pool_id": pool_id,
            "lb_id": lb.id,
            "project_id": ctx.project_id,
            "region_id": ctx.region_id,
            **vals,
            **children.lifecycle_columns(task_id),
        }
        for vals in values
    ]
    conn.execute(M.insert(), rows)
    return [r["id"] for r in rows]


def plan_is_empty(plan: dict[str, Any]) -> bool:
    return not (plan["create"] or plan["update"] or plan["delete"])


# -- views -------------------------------------------------------------------
MH = tables.member_health
#: A member row with its last observed health (outer join: members never observed get nulls).
WITH_HEALTH = sa.select(
    M,
    MH.c.health.label("h_health"),
    MH.c.check_status.label("h_check_status"),
    MH.c.check_code.label("h_check_code"),
    MH.c.check_desc.label("h_check_desc"),
    MH.c.check_duration_ms.label("h_check_duration_ms"),
    MH.c.changed_at.label("h_changed_at"),
).select_from(M.outerjoin(MH, MH.c.member_id == M.c.id))


def health_detail(row: Any) -> dict[str, Any] | None:
    """``health_detail`` (an lbaas extension, docs/api-compat.md): why a member reads as it does.

    ``health``: the data plane's raw verdict (UP, DOWN, DRAIN, MAINT, NO_CHECK); ``check_status``
    (HAProxy's: L4OK, L4CON, L4TOUT, L7OK, L7STS, SOCKERR...), ``check_code`` (the HTTP status
    the check got), ``check_desc`` (e.g. "Connection refused"), ``check_duration_ms``, and
    ``since``: when ``health`` last changed. Null when nothing was measured (the noop provider,
    or before the first poll).
    """
    health = getattr(row, "h_health", None)
    if health is None:
        return None
    return {
        "health": health,
        "check_status": row.h_check_status,
        "check_code": row.h_check_code,
        "check_desc": row.h_check_desc,
        "check_duration_ms": row.h_check_duration_ms,
        "since": fmt_resource(row.h_changed_at),
    }


def member_view(row: Any) -> dict[str, Any]:
    """``Member`` (no instance_id, name or created_at on the wire), plus ``health_detail``."""
    return {
        "id": row.id,
        "address": row.address,
        "protocol_port": row.protocol_port,
        "weight": row.weight,
        "backup": row.backup,
        "admin_state_up": row.admin_state_up,
        "monitor_address": row.monitor_address,
        "monitor_port": row.monitor_port,
        "subnet_id": row.subnet_id,
        "operating_status": row.operating_status,
        "provisioning_status": row.provisioning_status,
        "health_detail": health_detail(row),
    }


def members_of(conn: Connection, pool_ids: list[str]) -> dict[str, list[Any]]:
    """Member rows of many pools, by pool id, ordered by address then port."""
    out: dict[str, list[Any]] = {i: [] for i in pool_ids}
    if pool_ids:
        order = (_address(conn), M.c.protocol_port, M.c.id)
        q = WITH_HEALTH.where(M.c.pool_id.in_(pool_ids)).order_by(*order)
        for r in conn.execute(q):
            out[r.pool_id].append(r)
    return out


def _address(conn: Connection) -> Any:
    """The address column in byte order, as SQLite sorts it: the same pages on both backends."""
    return M.c.address.collate("C") if conn.dialect.name == "postgresql" else M.c.address


# -- endpoints ---------------------------------------------------------------
def _get_member(conn: Connection, pool_id: str, member_id: str) -> Any:
    row = conn.execute(WITH_HEALTH.where(M.c.id == member_id, M.c.pool_id == pool_id)).first()
    if row is None:
        raise NotFound.of("Member", member_id)
    return row


def create(conn: Connection, ctx: Ctx, pool_id: str, body: dict[str, Any]) -> str:
    """Add one member to a pool (task ``create_lbmember``)."""
    pool, lb = lock_pool(conn, ctx, pool_id)
    vals = member_values(body, v.member_vip_family(pool.protocol, lb.vip_ip_family))
    existing = [{"address": r.address, "protocol_port": r.protocol_port} for r in live_members(conn, pool_id)]
    try:  # Octavia: DuplicateMemberEntry
        v.check_member_unique([*existing, vals])
    except ValidationFailed:
        raise ValidationFailed.field(
            "address", f"{vals['address']}:{vals['protocol_port']} is already a member of pool {pool_id}"
        ) from None
    task_id = children.new_task_id()
    ids = insert_members(conn, ctx, lb, pool.id, [vals], task_id)
    return children.begin(conn, ctx, lb.id, "create_lbmember", task_id=task_id, created={"members": ids})


def get(conn: Connection, ctx: Ctx, pool_id: str, member_id: str) -> dict[str, Any]:
    """One member of one of the caller's pools."""
    get_row(conn, P, pool_id, ctx, "Pool")
    return member_view(_get_member(conn, pool_id, member_id))


def list_(
    conn: Connection, ctx: Ctx, pool_id: str, *, limit: int, offset: int, order_by: str | None
) -> dict[str, Any]:
    """A page of a pool's members (default order: address ascending)."""
    get_row(conn, P, pool_id, ctx, "Pool")
    field, _, direction = (order_by or "address.asc").partition(".")
    if field not in ORDER or direction not in ("asc", "desc"):  # Gcore: order_by is an enum
        allowed = ", ".join(f"{c}.{d}" for c in ORDER for d in ("asc", "desc"))
        raise ValidationFailed.field("order_by", f"Input should be one of: {allowed}")
    col, tie = (_address(conn) if field == "address" else ORDER[field]), M.c.id
    order = (
        [col.asc(), M.c.protocol_port.asc(), tie.asc()]
        if direction == "asc"
        else [col.desc(), M.c.protocol_port.desc(), tie.desc()]
    )
    where = M.c.pool_id == pool_id
    total = conn.execute(sa.select(sa.func.count()).select_from(M).where(where)).scalar_one()
    rows = conn.execute(WITH_HEALTH.where(where).order_by(*order).limit(limit).offset(offset)).all()
    return page(total, [member_view(r) for r in rows])


def update(conn: Connection, ctx: Ctx, pool_id: str, member_id: str, changes: dict[str, Any]) -> list[str]:
    """Change a member's mutable fields (task ``update_lbmember``; nothing changed: no task)."""
    pool, lb = lock_pool(conn, ctx, pool_id)
    row = _get_member(conn, pool_id, member_id)
    children.ensure_not_deleting(row, "Member")
    # null clears the monitor target; on the other (non-nullable) fields it reads as "unchanged".
    sent = {k: changes[k] for k in PATCHABLE if k in changes and (changes[k] is not None or k in NULLABLE)}
    merged = {
        "address": row.address,
        "protocol_port": row.protocol_port,
        **{k: getattr(row, k) for k in MUTABLE},
        **sent,
    }
    vals = member_values(merged, v.member_vip_family(pool.protocol, lb.vip_ip_family))
    diff = {k: vals[k] for k in sent if getattr(row, k) != vals[k]}
    if not diff:
        return []
    task_id = children.new_task_id()
    children.mark(conn, M, [member_id], "PENDING_UPDATE", task_id, diff)
    return [children.begin(conn, ctx, lb.id, "update_lbmember", task_id=task_id)]


def delete(conn: Connection, ctx: Ctx, pool_id: str, member_id: str) -> str:
    """Remove a member (task ``delete_lbmember``)."""
    _pool, lb = lock_pool(conn, ctx, pool_id)
    row = _get_member(conn, pool_id, member_id)
    children.ensure_not_deleting(row, "Member")
    task_id = children.new_task_id()
    children.mark(conn, M, [member_id], "PENDING_DELETE", task_id)
    return children.begin(conn, ctx, lb.id, "delete_lbmember", task_id=task_id)


def replace(conn: Connection, ctx: Ctx, pool_id: str, bodies: list[dict[str, Any]]) -> list[str]:
    """Make a pool's members exactly ``bodies`` (one ``patch_lbpool`` task; no change: no task)."""
    pool, lb = lock_pool(conn, ctx, pool_id)
    desired = validate_members(bodies, v.member_vip_family(pool.protocol, lb.vip_ip_family), prefix="")
    plan = plan_sync(conn, pool.id, desired)
    if plan_is_empty(plan):
        return []
    task_id = children.new_task_id()
    new_ids = apply_sync(conn, ctx, lb, pool.id, plan, task_id)
    children.mark(conn, P, [pool.id], "PENDING_UPDATE", task_id)
    return [children.begin(conn, ctx, lb.id, "patch_lbpool", task_id=task_id, created={"members": new_ids})]
