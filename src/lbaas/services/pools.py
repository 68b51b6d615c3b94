"""Pools: create (with nested members and monitor), PATCH by desired state, list, get, delete."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.clock import new_id
from lbaas.db import tables
from lbaas.domain import references
from lbaas.domain import validation as v
from lbaas.errors import ValidationFailed
from lbaas.services import children, quotas
from lbaas.services import health_monitors as hms
from lbaas.services import members as mem
from lbaas.services.common import Ctx, fetch_page, get_row, page

P = tables.pools
L = tables.listeners
SCALARS = (
    "name",
    "protocol",
    "lb_algorithm",
    "admin_state_up",
    "ca_secret_id",
    "crl_secret_id",
    "secret_id",
    "timeout_client_data",
    "timeout_member_connect",
    "timeout_member_data",
)
SECRET_FIELDS = ("ca_secret_id", "crl_secret_id", "secret_id")
SP_KEYS = ("type", "cookie_name", "persistence_granularity", "persistence_timeout")


# -- shared by pool create and the nested LB create --------------------------
def insert_pool_tree(
    conn: Connection,
    ctx: Ctx,
    lb_row: Any,
    listener: dict[str, Any] | None,
    pool_body: dict[str, Any],
    task_id: str,
) -> dict[str, list[str]]:
    """Validate and insert one pool with its members and monitor, PENDING_CREATE under ``task_id``.

    ``lb_row`` is the (locked) LB row; ``listener`` (``id`` and ``protocol``) makes the pool
    that listener's default pool. ``pool_body`` is a pool create body as JSON. Returns the
    ``created_resources`` entries: ``{"pools": [id], "members": [...], "healthmonitors": [...]}``.
    """
    protocol = pool_body["protocol"]
    ctx.capabilities.check_pool_protocol(protocol)
    if listener is not None:
        v.check_listener_pool_protocol(listener["protocol"], protocol)
        _check_no_default_pool(conn, listener["id"])
    sp = _session_persistence(pool_body.get("session_persistence"), protocol)
    _check_secrets(conn, ctx, pool_body)
    family = v.member_vip_family(protocol, lb_row.vip_ip_family)
    members = mem.validate_members(pool_body.get("members") or [], family)
    hm_body = pool_body.get("healthmonitor")
    hm_values = None
    if hm_body is not None:
        with mem.prefixed("healthmonitor"):
            hm_values = hms.full_values(hm_body, protocol, capabilities=ctx.capabilities)
    quotas.check(conn, ctx.project_id, "pool_count", 1)
    pool_id = _insert_pool(conn, ctx, lb_row.id, listener, pool_body, sp, task_id)
    member_ids = mem.insert_members(conn, ctx, lb_row, pool_id, members, task_id)
    hm_ids = [hms.insert(conn, ctx, lb_row, pool_id, hm_values, task_id)] if hm_values else []
    return {"pools": [pool_id], "members": member_ids, "healthmonitors": hm_ids}


def _insert_pool(
    conn: Connection,
    ctx: Ctx,
    lb_id: str,
    listener: dict[str, Any] | None,
    body: dict[str, Any],
    sp: dict[str, Any] | None,
    task_id: str,
) -> str:
    pool_id = new_id()
    scalars = {k: _s(body.get(k)) if k in SECRET_FIELDS else body.get(k) for k in SCALARS}
    # The create body has no admin_state_up; a nested body may carry one.
    scalars["admin_state_up"] = body.get("admin_state_up", True) is not False
    conn.execute(
        P.insert().values(
            id=pool_id,
            lb_id=lb_id,
            project_id=ctx.project_id,
            region_id=ctx.region_id,
            listener_id=None if listener is None else str(listener["id"]),
            session_persistence=sp,
            **scalars,
            **children.lifecycle_columns(task_id),
        )
    )
    return pool_id


def _s(value: Any) -> str | None:
    return None if value is None else str(value)


def _check_no_default_pool(conn: Connection, listener_id: str) -> None:
    q = sa.select(P.c.id).where(
        P.c.listener_id == str(listener_id), P.c.provisioning_status != "PENDING_DELETE"
    )
    other = conn.execute(q).first()
    references.check_no_default_pool(str(listener_id), None if other is None else other.id)


def _session_persistence(sp: dict[str, Any] | None, protocol: str) -> dict[str, Any] | None:
    """Checked session persistence, with every key present (null when not given)."""
    if sp is None:
        return None
    v.check_session_persistence(sp, pool_protocol=protocol)
    return {k: sp.get(k) for k in SP_KEYS}


def _check_secrets(conn: Connection, ctx: Ctx, body: dict[str, Any]) -> None:
    """Secret references must name the caller's secrets (404 otherwise)."""
    for field in SECRET_FIELDS:
        if body.get(field) is not None:
            get_row(conn, tables.secrets, str(body[field]), ctx, "Secret")


# -- views -------------------------------------------------------------------
def _views(conn: Connection, rows: list[Any], details: bool = True) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    members = mem.members_of(conn, ids)
    monitors = hms.of_pools(conn, ids) if details else {}
    out = []
    for r in rows:
        hm = monitors.get(r.id)
        ms = [mem.member_view(m) if details else {"id": m.id} for m in members[r.id]]
        out.append(_view(r, ms, hms.view(hm) if hm is not None else None))
    return out


def _view(row: Any, members: list[dict[str, Any]], hm: dict[str, Any] | None) -> dict[str, Any]:
    """``LoadBalancerPool``."""
    return {
        "id": row.id,
        "name": row.name,
        "protocol": row.protocol,
        "lb_algorithm": row.lb_algorithm,
        "admin_state_up": row.admin_state_up,
        "listeners": [] if row.listener_id is None else [{"id": row.listener_id}],
        "loadbalancers": [{"id": row.lb_id}],
        "members": members,
        "healthmonitor": hm,
        "session_persistence": row.session_persistence,
        "ca_secret_id": row.ca_secret_id,
        "crl_secret_id": row.crl_secret_id,
        "secret_id": row.secret_id,
        "timeout_client_data": row.timeout_client_data,
        "timeout_member_connect": row.timeout_member_connect,
        "timeout_member_data": row.timeout_member_data,
        "operating_status": row.operating_status,
        "provisioning_status": row.provisioning_status,
        "creator_task_id": row.creator_task_id,
        "task_id": row.task_id,
    }


def get(conn: Connection, ctx: Ctx, pool_id: str) -> dict[str, Any]:
    """One pool, with full members and its monitor."""
    return _views(conn, [get_row(conn, P, pool_id, ctx, "Pool")])[0]


def list_(
    conn: Connection,
    ctx: Ctx,
    *,
    limit: int,
    offset: int,
    details: bool = False,
    load_balancer_id: str | None = None,
    listener_id: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """A page of pools; without ``details`` members are ``[{id}]`` and the monitor is null."""
    where = [P.c.project_id == ctx.project_id, P.c.region_id == ctx.region_id]
    if load_balancer_id is not None:
        where.append(P.c.lb_id == load_balancer_id)
    if listener_id is not None:
        where.append(P.c.listener_id == listener_id)
    if name is not None:
        where.append(P.c.name == name)
    total, rows = fetch_page(conn, P, where, (P.c.created_at, P.c.id), limit, offset)
    return page(total, _views(conn, rows, details))


# -- create ------------------------------------------------------------------
def _parent(conn: Connection, ctx: Ctx, body: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
    """(locked LB, listener or None) named by ``listener_id`` and/or ``load_balancer_id``."""
    listener_id, lb_id = body.get("listener_id"), body.get("load_balancer_id")
    if listener_id is None and lb_id is None:  # Octavia: "Must provide at least one of"
        raise ValidationFailed.field("load_balancer_id", "Give listener_id, load_balancer_id or both")
    if listener_id is None:
        return children.lock_lb(conn, ctx, str(lb_id)), None
    row = get_row(conn, L, str(listener_id), ctx, "Listener")
    if lb_id is not None and str(lb_id) != row.lb_id:  # the two ids contradict each other
        raise ValidationFailed.field(
            "load_balancer_id", f"Listener {row.id} belongs to load balancer {row.lb_id}, not {lb_id}"
        )
    lb = children.lock_lb(conn, ctx, row.lb_id)
    row = get_row(conn, L, str(listener_id), ctx, "Listener")
    children.ensure_not_deleting(row, "Listener")
    return lb, {"id": row.id, "protocol": row.protocol}


def create(conn: Connection, ctx: Ctx, body: dict[str, Any]) -> str:
    """Accept a pool (task ``create_lbpool``; created: pools, members, healthmonitors)."""
    lb, listener = _parent(conn, ctx, body)
    task_id = children.new_task_id()
    created = insert_pool_tree(conn, ctx, lb, listener, body, task_id)
    return children.begin(conn, ctx, lb.id, "create_lbpool", task_id=task_id, created=created)


# -- update ------------------------------------------------------------------
def _scalar_changes(conn: Connection, ctx: Ctx, pool: Any, body: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in SCALARS:
        if key not in body:
            continue
        value = _s(body[key]) if key in SECRET_FIELDS else body[key]
        if value is None and key in ("name", "protocol", "lb_algorithm", "admin_state_up"):
            continue  # not nullable: null reads as "unchanged"
        if value != getattr(pool, key):
            values[key] = value
    _check_secrets(conn, ctx, values)
    return values


def _check_protocol_change(conn: Connection, pool: Any, protocol: str) -> None:
    """A new protocol must suit the listener and every L7 policy that routes to the pool."""
    if pool.listener_id is not None:
        listener = conn.execute(sa.select(L.c.protocol).where(L.c.id == pool.listener_id)).first()
        if listener is not None:
            v.check_listener_pool_protocol(listener.protocol, protocol)
    pol = tables.l7_policies
    q = (
        sa.select(L.c.protocol)
        .join(pol, pol.c.listener_id == L.c.id)
        .where(pol.c.redirect_pool_id == pool.id)
    )
    for row in conn.execute(q):
        v.check_listener_pool_protocol(row.protocol, protocol)


def _plan_hm(
    conn: Connection, ctx: Ctx, pool: Any, body: dict[str, Any], protocol: str
) -> tuple[str, Any, Any] | None:
    """What the PATCH does to the monitor: (create|update|delete, id, values) or None."""
    existing = hms.of_pool(conn, pool.id)
    if "healthmonitor" not in body:
        if existing is not None and protocol != pool.protocol:
            with mem.prefixed("healthmonitor"):
                hms.full_values({"type": existing.type}, protocol, existing.type)
        return None
    if body["healthmonitor"] is None:
        return None if existing is None else ("delete", existing.id, None)
    with mem.prefixed("healthmonitor"):
        values = hms.full_values(
            body["healthmonitor"],
            protocol,
            None if existing is None else existing.type,
            capabilities=ctx.capabilities,
        )
    if existing is None:
        return ("create", None, values)
    changed = hms.diff(existing, values)
    return ("update", existing.id, changed) if changed else None


def update(conn: Connection, ctx: Ctx, pool_id: str, body: dict[str, Any]) -> list[str]:
    """PATCH by desired state (task ``patch_lbpool``); nothing changed: no task."""
    pool, lb = mem.lock_pool(conn, ctx, pool_id)
    values = _scalar_changes(conn, ctx, pool, body)
    protocol = values.get("protocol", pool.protocol)
    if "protocol" in values:
        ctx.capabilities.check_pool_protocol(protocol)
        _check_protocol_change(conn, pool, protocol)
    if "session_persistence" in body:
        sp = _session_persistence(body["session_persistence"], protocol)
        if sp != pool.session_persistence:
            values["session_persistence"] = sp
    elif "protocol" in values:
        v.check_session_persistence(pool.session_persistence, pool_protocol=protocol)
    hm_plan = _plan_hm(conn, ctx, pool, body, protocol)
    plan = None
    family = v.member_vip_family(protocol, lb.vip_ip_family)
    if "members" in body:
        # Decision: `members: null` empties the pool, like `[]` (a nested null removes the object).
        plan = mem.plan_sync(conn, pool.id, mem.validate_members(body["members"] or [], family))
    elif "protocol" in values and family is not None:
        # The pool becomes family-bound (UDP): its members must now match the VIP.
        live = mem.live_members(conn, pool.id)
        mem.validate_members([{"address": m.address, "protocol_port": m.protocol_port} for m in live], family)
    if not values and hm_plan is None and (plan is None or mem.plan_is_empty(plan)):
        return []
    task_id = children.new_task_id()
    created: dict[str, list[str]] = {}
    if plan is not None:
        created["members"] = mem.apply_sync(conn, ctx, lb, pool.id, plan, task_id)
    if hm_plan is not None:
        created["healthmonitors"] = _apply_hm(conn, ctx, lb, pool.id, hm_plan, task_id)
    children.mark(conn, P, [pool.id], "PENDING_UPDATE", task_id, values)
    return [children.begin(conn, ctx, lb.id, "patch_lbpool", task_id=task_id, created=created)]


def _apply_hm(
    conn: Connection, ctx: Ctx, lb: Any, pool_id: str, plan: tuple[str, Any, Any], task_id: str
) -> list[str]:
    action, hm_id, values = plan
    if action == "create":
        return [hms.insert(conn, ctx, lb, pool_id, values, task_id)]
    if action == "update":
        children.mark(conn, hms.H, [hm_id], "PENDING_UPDATE", task_id, values)
    else:
        # As with DELETE .../healthmonitor, the row goes at once; the task applies the rest.
        conn.execute(hms.H.delete().where(hms.H.c.id == hm_id))
    return []


# -- delete ------------------------------------------------------------------
def _check_unreferenced(conn: Connection, pool: Any) -> None:
    """A pool an L7 policy still redirects to stays; a listener's default pool may go."""
    pol = tables.l7_policies
    refs = (
        conn.execute(
            sa.select(pol.c.id).where(
                pol.c.redirect_pool_id == pool.id, pol.c.provisioning_status != "PENDING_DELETE"
            )
        )
        .scalars()
        .all()
    )
    references.check_pool_deletable(pool.id, refs)


def delete(conn: Connection, ctx: Ctx, pool_id: str) -> str:
    """Queue the deletion of a pool with its members and monitor (task ``delete_lbpool``).

    A listener's default pool may go: the listener is left without one (see references.RULES).
    """
    pool, lb = mem.lock_pool(conn, ctx, pool_id)
    _check_unreferenced(conn, pool)
    task_id = children.new_task_id()
    member_ids = [r[0] for r in conn.execute(sa.select(mem.M.c.id).where(mem.M.c.pool_id == pool.id))]
    children.mark(conn, mem.M, member_ids, "PENDING_DELETE", task_id)
    children.mark(
        conn,
        hms.H,
        [r[0] for r in conn.execute(sa.select(hms.H.c.id).where(hms.H.c.pool_id == pool.id))],
        "PENDING_DELETE",
        task_id,
    )
    children.mark(conn, P, [pool.id], "PENDING_DELETE", task_id)
    return children.begin(conn, ctx, lb.id, "delete_lbpool", task_id=task_id)
