"""Listener use cases: one function per API operation, plus the row building nested creates share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.clock import fmt_resource, new_id, utcnow
from lbaas.db import dataplane, tables
from lbaas.domain import references, validation
from lbaas.errors import NotFound, ValidationFailed
from lbaas.services import children, quotas
from lbaas.services.common import Ctx, fetch_page, get_row, page

L = tables.listeners
P = tables.pools
X_FORWARDED = {"X-Forwarded-For": "true", "X-Forwarded-Port": "true", "X-Forwarded-Proto": "true"}
# Columns a PATCH v2 may change, each as stored.
PATCHABLE = (
    "admin_state_up",
    "allowed_cidrs",
    "connection_limit",
    "name",
    "secret_id",
    "sni_secret_id",
    "timeout_client_data",
    "timeout_member_connect",
    "timeout_member_data",
    "user_list",
)


# -- reading -----------------------------------------------------------------
STATS_KEYS = ("active_connections", "bytes_in", "bytes_out", "request_errors", "total_connections")


def _stats(measured: dict[str, Any] | None) -> dict[str, int]:
    """Measured counters (monotonic across reloads), or zeros where nothing was measured (noop)."""
    return {k: int((measured or {}).get(k, 0)) for k in STATS_KEYS}


def view(
    row: Any, pool_count: int, show_stats: bool = False, measured: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``LoadBalancerListenerDetail``: every field the SDK declares, lists never null."""
    return {
        "id": row.id,
        "name": row.name,
        "load_balancer_id": row.lb_id,
        "protocol": row.protocol,
        "protocol_port": row.protocol_port,
        "admin_state_up": row.admin_state_up,
        "allowed_cidrs": row.allowed_cidrs,
        "connection_limit": row.connection_limit,
        "insert_headers": dict(X_FORWARDED) if row.insert_x_forwarded else {},
        "pool_count": pool_count,
        "secret_id": row.secret_id,
        "sni_secret_id": list(row.sni_secret_id or []),
        "timeout_client_data": row.timeout_client_data,
        "timeout_member_connect": row.timeout_member_connect,
        "timeout_member_data": row.timeout_member_data,
        "user_list": [
            {"username": u["username"], "encrypted_password": u["encrypted_password"]}
            for u in row.user_list or []
        ],
        "provisioning_status": row.provisioning_status,
        "operating_status": row.operating_status,
        "task_id": row.task_id,
        "creator_task_id": row.creator_task_id,
        "created_at": fmt_resource(row.created_at),
        "updated_at": fmt_resource(row.updated_at),
        "stats": _stats(measured) if show_stats else None,
    }


def _views(conn: Connection, rows: list[Any], show_stats: bool) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    counts: dict[str, int] = {}
    if ids:
        q = (
            sa.select(P.c.listener_id, sa.func.count())
            .where(P.c.listener_id.in_(ids))
            .group_by(P.c.listener_id)
        )
        counts = {lid: n for lid, n in conn.execute(q)}
    measured: dict[str, Any] = {}
    if show_stats:
        for stats in dataplane.stats_of(conn, {r.lb_id for r in rows}).values():
            measured.update(stats.get("listeners", {}))
    return [view(r, counts.get(r.id, 0), show_stats, measured.get(r.id)) for r in rows]


def get(conn: Connection, ctx: Ctx, listener_id: str, *, show_stats: bool = False) -> dict[str, Any]:
    """One listener of the caller's project and region."""
    return _views(conn, [get_row(conn, L, listener_id, ctx, "Listener")], show_stats)[0]


def list_(
    conn: Connection,
    ctx: Ctx,
    *,
    limit: int,
    offset: int,
    load_balancer_id: str | None = None,
    name: str | None = None,
    show_stats: bool = False,
) -> dict[str, Any]:
    """A page of listeners, oldest first, and the total number of matches."""
    where = [L.c.project_id == ctx.project_id, L.c.region_id == ctx.region_id]
    if load_balancer_id is not None:
        where.append(L.c.lb_id == load_balancer_id)
    if name is not None:
        where.append(L.c.name == name)
    total, rows = fetch_page(conn, L, where, (L.c.created_at, L.c.id), limit, offset)
    return page(total, _views(conn, rows, show_stats))


# -- validation shared with nested creates -----------------------------------
def bound_ports(conn: Connection, lb_id: str) -> list[tuple[str, int]]:
    """(protocol, port) of the LB's listeners, queued creates included, deletes excluded."""
    q = sa.select(L.c.protocol, L.c.protocol_port).where(
        L.c.lb_id == lb_id, L.c.provisioning_status != "PENDING_DELETE"
    )
    return [(r.protocol, r.protocol_port) for r in conn.execute(q)]


def check_secrets(conn: Connection, ctx: Ctx, ids: Iterable[str | None]) -> None:
    """Every id names a secret of the caller's project and region (404 otherwise)."""
    wanted = {str(i) for i in ids if i}
    if not wanted:
        return
    S = tables.secrets
    found = set(
        conn.execute(
            sa.select(S.c.id).where(
                S.c.id.in_(wanted), S.c.project_id == ctx.project_id, S.c.region_id == ctx.region_id
            )
        ).scalars()
    )
    for missing in sorted(wanted - found):
        raise NotFound.of("Secret", missing)


def prepare(
    conn: Connection, ctx: Ctx, lb: Any, body: dict[str, Any], bound: list[tuple[str, int]]
) -> dict[str, Any]:
    """Check a create body against the LB and its bound ports; return the row's own columns."""
    protocol, port = body["protocol"], body["protocol_port"]
    ctx.capabilities.check_listener_protocol(protocol)
    secret_id = body.get("secret_id") or None  # "" means SNI certificates only
    sni = [str(s) for s in body.get("sni_secret_id") or []]
    user_list = body.get("user_list") or []
    validation.check_listener_fields(
        protocol,
        insert_x_forwarded=body.get("insert_x_forwarded"),
        secret_id=secret_id,
        sni_secret_id=sni,
        user_list=user_list,
        allowed_cidrs=body.get("allowed_cidrs"),
        vip_family=lb.vip_ip_family,
    )
    validation.check_listener_port_unique(protocol, port, bound)
    connection_limit = validation.normalize_connection_limit(body.get("connection_limit", 100_000))
    check_secrets(conn, ctx, [secret_id, *sni])
    return {
        "lb_id": lb.id,
        "project_id": ctx.project_id,
        "region_id": ctx.region_id,
        "name": body["name"],
        "protocol": protocol,
        "protocol_port": port,
        "admin_state_up": True,
        "connection_limit": connection_limit,
        "allowed_cidrs": body.get("allowed_cidrs"),
        "insert_x_forwarded": bool(body.get("insert_x_forwarded")),
        "secret_id": secret_id,
        "sni_secret_id": sni,
        "timeout_client_data": body.get("timeout_client_data"),
        "timeout_member_connect": body.get("timeout_member_connect"),
        "timeout_member_data": body.get("timeout_member_data"),
        "user_list": [dict(u) for u in user_list],
    }


def insert(conn: Connection, values: dict[str, Any], task_id: str) -> dict[str, Any]:
    """Write a listener row PENDING_CREATE under ``task_id``; return its columns with the id."""
    row = {"id": new_id(), **values, **children.lifecycle_columns(task_id)}
    conn.execute(L.insert().values(**row))
    return row


# -- writing -----------------------------------------------------------------
def _default_pool(conn: Connection, ctx: Ctx, lb: Any, protocol: str, pool_id: str) -> Any:
    field = "default_pool_id"
    pool = get_row(conn, P, pool_id, ctx, "Pool")
    references.check_same_load_balancer(pool_id, pool.lb_id, lb.id, field)
    # A pool whose delete is queued is gone for every later request (Octavia: 409 on a
    # PENDING_DELETE object; here a 400 on the field, as the pool cannot be used).
    if pool.provisioning_status == "PENDING_DELETE":
        raise ValidationFailed.field(field, f"Pool {pool_id} is being deleted")
    references.check_pool_unattached(pool_id, pool.listener_id, field)
    validation.check_listener_pool_protocol(protocol, pool.protocol, field=field)
    return pool


def create(conn: Connection, ctx: Ctx, body: dict[str, Any]) -> str:
    """Accept a new listener (optionally taking over an existing pool) and queue its task."""
    lb = children.lock_lb(conn, ctx, body["load_balancer_id"])
    values = prepare(conn, ctx, lb, body, bound_ports(conn, lb.id))
    pool = None
    if body.get("default_pool_id"):
        pool = _default_pool(conn, ctx, lb, body["protocol"], str(body["default_pool_id"]))
    quotas.check(conn, ctx.project_id, "listeners_per_lb", 1, lb.id)
    task_id = children.new_task_id()
    listener = insert(conn, values, task_id)
    if pool is not None:
        children.mark(
            conn, P, [pool.id], _pending(pool, "PENDING_UPDATE"), task_id, {"listener_id": listener["id"]}
        )
    return children.begin(
        conn, ctx, lb.id, "create_lblistener", task_id=task_id, created={"listeners": [listener["id"]]}
    )


def _pending(row: Any, status: str) -> str:
    # A row whose create is still queued stays PENDING_CREATE: the later task creates it.
    return "PENDING_CREATE" if row.provisioning_status == "PENDING_CREATE" else status


def _locked(conn: Connection, ctx: Ctx, listener_id: str) -> tuple[Any, Any]:
    """The LB (locked) and the listener, re-read under the lock; 404/409 as due."""
    lb_id = get_row(conn, L, listener_id, ctx, "Listener").lb_id
    lb = children.lock_lb(conn, ctx, lb_id)
    row = get_row(conn, L, listener_id, ctx, "Listener")
    children.ensure_not_deleting(row, "Listener")
    return lb, row


def _changes(row: Any, changes: dict[str, Any]) -> dict[str, Any]:
    """The PATCH fields in stored form that differ from the row."""
    values: dict[str, Any] = {}
    for name in PATCHABLE:
        if name not in changes:
            continue
        value = changes[name]
        if name == "connection_limit":
            value = validation.normalize_connection_limit(value)
        elif name in ("sni_secret_id", "user_list"):
            value = [v if isinstance(v, dict) else str(v) for v in value or []]
        elif name == "secret_id" and value is not None:
            value = str(value)
        current = getattr(row, name)
        if name in ("sni_secret_id", "user_list"):
            current = list(current or [])
        if value != current:
            values[name] = value
    return values


def update(conn: Connection, ctx: Ctx, listener_id: str, changes: dict[str, Any]) -> list[str]:
    """PATCH v2: check the merged listener, write the new values and queue a task.

    Gcore documents an empty task list only for pool, member and health-monitor
    updates; a listener PATCH always answers one task, even when nothing changes.
    """
    lb, row = _locked(conn, ctx, listener_id)
    values = _changes(row, changes)
    merged = {name: values.get(name, getattr(row, name)) for name in PATCHABLE}
    validation.check_listener_fields(
        row.protocol,
        insert_x_forwarded=row.insert_x_forwarded,
        secret_id=merged["secret_id"],
        sni_secret_id=merged["sni_secret_id"],
        user_list=merged["user_list"],
        allowed_cidrs=merged["allowed_cidrs"],
        vip_family=lb.vip_ip_family,
    )
    check_secrets(conn, ctx, [values.get("secret_id"), *values.get("sni_secret_id", [])])
    task_id = children.new_task_id()
    children.mark(conn, L, [row.id], _pending(row, "PENDING_UPDATE"), task_id, values)
    return [children.begin(conn, ctx, lb.id, "patch_lblistener", task_id=task_id)]


def rename(conn: Connection, ctx: Ctx, listener_id: str, name: str) -> dict[str, Any]:
    """The deprecated v1 PATCH: a synchronous rename (names do not reach the data plane)."""
    _, row = _locked(conn, ctx, listener_id)
    if name != row.name:
        conn.execute(L.update().where(L.c.id == row.id).values(name=name, updated_at=utcnow()))
    return get(conn, ctx, listener_id)


def _pool_subtree(conn: Connection, pool_ids: list[str]) -> tuple[list[str], list[str]]:
    """(member ids, health monitor ids) of some pools."""
    M, H = tables.members, tables.health_monitors
    members = list(conn.execute(sa.select(M.c.id).where(M.c.pool_id.in_(pool_ids))).scalars())
    monitors = list(conn.execute(sa.select(H.c.id).where(H.c.pool_id.in_(pool_ids))).scalars())
    return members, monitors


def _default_pools_to_delete(conn: Connection, listener_id: str) -> list[str]:
    """The listener's pools, refused (400) while another listener's policy redirects to one."""
    pool_ids = list(
        conn.execute(
            sa.select(P.c.id).where(
                P.c.listener_id == listener_id, P.c.provisioning_status != "PENDING_DELETE"
            )
        ).scalars()
    )
    if not pool_ids:
        return []
    pol = tables.l7_policies
    users = conn.execute(
        sa.select(pol.c.id, pol.c.redirect_pool_id).where(
            pol.c.redirect_pool_id.in_(pool_ids),
            pol.c.listener_id != listener_id,
            pol.c.provisioning_status != "PENDING_DELETE",
        )
    ).all()
    for pool_id in pool_ids:
        references.check_default_pool_deletable(
            pool_id, [u.id for u in users if u.redirect_pool_id == pool_id]
        )
    return pool_ids


def delete(conn: Connection, ctx: Ctx, listener_id: str, *, delete_default_pool: bool = False) -> str:
    """Mark the listener, its L7 policies and rules (and, if asked, its pool tree) for deletion."""
    lb, row = _locked(conn, ctx, listener_id)
    pol, rule = tables.l7_policies, tables.l7_rules
    policy_ids = list(conn.execute(sa.select(pol.c.id).where(pol.c.listener_id == row.id)).scalars())
    rule_ids = []
    if policy_ids:
        rule_ids = list(conn.execute(sa.select(rule.c.id).where(rule.c.policy_id.in_(policy_ids))).scalars())
    pool_ids = _default_pools_to_delete(conn, row.id) if delete_default_pool else []
    task_id = children.new_task_id()
    children.mark(conn, L, [row.id], "PENDING_DELETE", task_id)
    children.mark(conn, pol, policy_ids, "PENDING_DELETE", task_id)
    children.mark(conn, rule, rule_ids, "PENDING_DELETE", task_id)
    if pool_ids:
        member_ids, monitor_ids = _pool_subtree(conn, pool_ids)
        children.mark(conn, P, pool_ids, "PENDING_DELETE", task_id)
        children.mark(conn, tables.members, member_ids, "PENDING_DELETE", task_id)
        children.mark(conn, tables.health_monitors, monitor_ids, "PENDING_DELETE", task_id)
    return children.begin(conn, ctx, lb.id, "delete_lblistener", task_id=task_id)
