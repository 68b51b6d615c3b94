"""L7 policies and their rules: one function per API operation.

Every change takes the policy's load balancer lock (``children.lock_lb``), writes the
new values at once with a PENDING_* status, and queues one task on the LB. A policy's
``position`` is its 1-based place among the live (not PENDING_DELETE) policies of its
listener; inserting, moving or deleting one renumbers the others in the same
transaction, so positions stay 1..n without gaps.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.clock import new_id
from lbaas.db import tables
from lbaas.domain import references, validation
from lbaas.domain.enums import L7Action
from lbaas.errors import NotFound, ValidationFailed
from lbaas.services import children
from lbaas.services.common import Ctx, fetch_page, get_row, page

POLICY = tables.l7_policies
RULE = tables.l7_rules
LISTENER = tables.listeners
POOL = tables.pools
REDIRECT_FIELDS = {
    L7Action.REDIRECT_TO_URL: "redirect_url",
    L7Action.REDIRECT_PREFIX: "redirect_prefix",
    L7Action.REDIRECT_TO_POOL: "redirect_pool_id",
}


# -- views -------------------------------------------------------------------
def policy_view(row: Any, rule_ids: list[str], region: str) -> dict[str, Any]:
    """``LoadBalancerL7Policy``; ``rules`` are references, not whole rules."""
    scope = {"project_id": row.project_id, "region_id": row.region_id, "region": region}
    return {
        "id": row.id,
        "name": row.name,
        "action": row.action,
        "listener_id": row.listener_id,
        "position": row.position,
        "redirect_url": row.redirect_url,
        "redirect_prefix": row.redirect_prefix,
        "redirect_pool_id": row.redirect_pool_id,
        "redirect_http_code": row.redirect_http_code,
        "rules": [{"id": i, **scope} for i in rule_ids],
        "tags": list(row.tags or []),
        "provisioning_status": row.provisioning_status,
        "operating_status": row.operating_status,
        "task_id": row.task_id,
        **scope,
    }


def rule_view(row: Any, region: str) -> dict[str, Any]:
    """``LoadBalancerL7Rule``."""
    return {
        "id": row.id,
        "type": row.type,
        "compare_type": row.compare_type,
        "key": row.key,
        "value": row.value,
        "invert": row.invert,
        "tags": list(row.tags or []),
        "provisioning_status": row.provisioning_status,
        "operating_status": row.operating_status,
        "task_id": row.task_id,
        "project_id": row.project_id,
        "region_id": row.region_id,
        "region": region,
    }


def _policy_views(conn: Connection, rows: list[Any], ctx: Ctx) -> list[dict[str, Any]]:
    rule_ids: dict[str, list[str]] = {r.id: [] for r in rows}
    if rows:
        q = sa.select(RULE.c.policy_id, RULE.c.id).where(RULE.c.policy_id.in_(list(rule_ids)))
        for r in conn.execute(q.order_by(RULE.c.created_at, RULE.c.id)):
            rule_ids[r.policy_id].append(r.id)
    return [policy_view(r, rule_ids[r.id], ctx.region_name) for r in rows]


def _scoped(table: sa.Table, ctx: Ctx) -> list[sa.ColumnElement]:
    return [table.c.project_id == ctx.project_id, table.c.region_id == ctx.region_id]


# -- reading -----------------------------------------------------------------
def list_policies(conn: Connection, ctx: Ctx, *, limit: int, offset: int) -> dict[str, Any]:
    """A page of the caller's L7 policies, oldest first."""
    where = _scoped(POLICY, ctx)
    total, rows = fetch_page(conn, POLICY, where, (POLICY.c.created_at, POLICY.c.id), limit, offset)
    return page(total, _policy_views(conn, list(rows), ctx))


def get_policy(conn: Connection, ctx: Ctx, policy_id: str) -> dict[str, Any]:
    """One L7 policy of the caller's project and region."""
    return _policy_views(conn, [get_row(conn, POLICY, policy_id, ctx, "L7 policy")], ctx)[0]


def list_rules(conn: Connection, ctx: Ctx, policy_id: str, *, limit: int, offset: int) -> dict[str, Any]:
    """A page of one policy's rules, oldest first."""
    get_row(conn, POLICY, policy_id, ctx, "L7 policy")
    where = [RULE.c.policy_id == policy_id]
    total, rows = fetch_page(conn, RULE, where, (RULE.c.created_at, RULE.c.id), limit, offset)
    return page(total, [rule_view(r, ctx.region_name) for r in rows])


def _rule_row(conn: Connection, ctx: Ctx, policy_id: str, rule_id: str) -> Any:
    get_row(conn, POLICY, policy_id, ctx, "L7 policy")
    row = conn.execute(
        sa.select(RULE).where(RULE.c.id == rule_id, RULE.c.policy_id == policy_id, *_scoped(RULE, ctx))
    ).first()
    if row is None:
        raise NotFound.of("L7 rule", rule_id)
    return row


def get_rule(conn: Connection, ctx: Ctx, policy_id: str, rule_id: str) -> dict[str, Any]:
    """One rule of one policy."""
    return rule_view(_rule_row(conn, ctx, policy_id, rule_id), ctx.region_name)


# -- policy helpers ----------------------------------------------------------
def _lock_listener(conn: Connection, ctx: Ctx, listener_id: str) -> Any:
    """The listener, with its LB locked; 404 if not the caller's, 409 if being deleted."""
    listener = get_row(conn, LISTENER, listener_id, ctx, "Listener")
    children.lock_lb(conn, ctx, listener.lb_id)
    listener = get_row(conn, LISTENER, listener_id, ctx, "Listener")  # as of the lock
    children.ensure_not_deleting(listener, "Listener")
    return listener


def _lock_policy(conn: Connection, ctx: Ctx, policy_id: str) -> Any:
    """The policy, with its LB locked and as of that lock; 409 if being deleted."""
    policy = get_row(conn, POLICY, policy_id, ctx, "L7 policy")
    children.lock_lb(conn, ctx, policy.lb_id)
    policy = get_row(conn, POLICY, policy_id, ctx, "L7 policy")
    children.ensure_not_deleting(policy, "L7 policy")
    return policy


def _redirect_values(
    conn: Connection, ctx: Ctx, listener: Any, body: dict[str, Any], stored_code: int | None = None
) -> dict[str, Any]:
    """Check the action's fields; return every redirect column (the unused ones null)."""
    action = L7Action(body["action"])
    validation.check_l7_policy(
        action,
        listener_protocol=listener.protocol,
        redirect_url=body.get("redirect_url"),
        redirect_prefix=body.get("redirect_prefix"),
        redirect_pool_id=body.get("redirect_pool_id"),
        redirect_http_code=body.get("redirect_http_code"),
    )
    values: dict[str, Any] = {name: None for name in REDIRECT_FIELDS.values()}
    own = REDIRECT_FIELDS.get(action)
    if own is not None:
        values[own] = str(body[own])
    if action is L7Action.REDIRECT_TO_POOL:
        _check_pool(conn, ctx, listener, values["redirect_pool_id"])
    default = validation.default_redirect_code(action)
    given = body.get("redirect_http_code")
    values["redirect_http_code"] = None if default is None else (given or stored_code or default)
    return {"action": str(action), **values}


def _check_pool(conn: Connection, ctx: Ctx, listener: Any, pool_id: str) -> None:
    """A REDIRECT_TO_POOL target: a live pool of the listener's LB that it can carry."""
    pool = get_row(conn, POOL, pool_id, ctx, "Pool")
    field = "redirect_pool_id"
    references.check_same_load_balancer(pool_id, pool.lb_id, listener.lb_id, field)
    # A pool whose delete is queued cannot be a target (Octavia: 409 on a PENDING_DELETE pool).
    if pool.provisioning_status == "PENDING_DELETE":
        raise ValidationFailed.field(field, f"Pool {pool_id} is being deleted")
    validation.check_listener_pool_protocol(listener.protocol, pool.protocol, field=field)  # Octavia


def _live_order(conn: Connection, listener_id: str, exclude: str | None = None) -> list[str]:
    """Ids of the listener's live policies, in evaluation order."""
    q = sa.select(POLICY.c.id).where(
        POLICY.c.listener_id == listener_id, POLICY.c.provisioning_status != "PENDING_DELETE"
    )
    if exclude is not None:
        q = q.where(POLICY.c.id != exclude)
    q = q.order_by(POLICY.c.position, POLICY.c.created_at, POLICY.c.id)
    return [r.id for r in conn.execute(q)]


def _renumber(conn: Connection, ordered: list[str]) -> None:
    """Store positions 1..n in the given order (only rows whose position moves)."""
    for position, policy_id in enumerate(ordered, start=1):
        conn.execute(
            POLICY.update()
            .where(POLICY.c.id == policy_id, POLICY.c.position != position)
            .values(position=position)
        )


def _place(conn: Connection, listener_id: str, policy_id: str, position: int | None) -> int:
    """Put a policy at ``position`` among the others (append when None); return where it landed."""
    others = _live_order(conn, listener_id, exclude=policy_id)
    landed = validation.insert_position(len(others), position)
    others.insert(landed - 1, policy_id)
    _renumber(conn, others)
    return landed


# -- policy writes -----------------------------------------------------------
def create_policy(conn: Connection, ctx: Ctx, body: dict[str, Any]) -> str:
    """Accept a new L7 policy on a listener; its task lists it under ``l7polices``."""
    listener = _lock_listener(conn, ctx, str(body["listener_id"]))
    validation.check_string_tags(body.get("tags"))
    values = _redirect_values(conn, ctx, listener, body)
    policy_id, task_id = new_id(), children.new_task_id()
    # Decision: an unnamed policy gets a readable generated name (the wire field is a non-null str).
    conn.execute(
        POLICY.insert().values(
            id=policy_id,
            listener_id=listener.id,
            lb_id=listener.lb_id,
            project_id=ctx.project_id,
            region_id=ctx.region_id,
            name=body.get("name") or f"policy-{policy_id[:8]}",
            position=0,  # set by _place below
            tags=list(body.get("tags") or []),
            **values,
            **children.lifecycle_columns(task_id),
        )
    )
    _place(conn, listener.id, policy_id, body.get("position"))
    return children.begin(
        conn, ctx, listener.lb_id, "create_l7policy", task_id=task_id, created={"l7polices": [policy_id]}
    )


def update_policy(conn: Connection, ctx: Ctx, policy_id: str, changes: dict[str, Any]) -> str:
    """Replace the action (and its redirect field) and the fields sent; always one task."""
    policy = _lock_policy(conn, ctx, policy_id)
    listener = get_row(conn, LISTENER, policy.listener_id, ctx, "Listener")
    validation.check_string_tags(changes.get("tags"))
    values = _redirect_values(conn, ctx, listener, changes, stored_code=policy.redirect_http_code)
    for field in ("name", "tags"):
        if changes.get(field) is not None:
            values[field] = changes[field]
    task_id = children.new_task_id()
    children.mark(conn, POLICY, [policy_id], "PENDING_UPDATE", task_id, values)
    if changes.get("position") is not None:
        _place(conn, policy.listener_id, policy_id, changes["position"])
    return children.begin(conn, ctx, policy.lb_id, "update_l7policy", task_id=task_id)


def delete_policy(conn: Connection, ctx: Ctx, policy_id: str) -> str:
    """Queue the removal of a policy and its rules; the policies after it move up."""
    policy = _lock_policy(conn, ctx, policy_id)
    task_id = children.new_task_id()
    children.mark(conn, POLICY, [policy_id], "PENDING_DELETE", task_id)
    rule_ids = [r.id for r in conn.execute(sa.select(RULE.c.id).where(RULE.c.policy_id == policy_id))]
    children.mark(conn, RULE, rule_ids, "PENDING_DELETE", task_id)
    _renumber(conn, _live_order(conn, policy.listener_id))
    return children.begin(conn, ctx, policy.lb_id, "delete_l7policy", task_id=task_id)


# -- rule writes -------------------------------------------------------------
def _check_rule(rule: dict[str, Any]) -> None:
    validation.check_string_tags(rule.get("tags"))
    validation.check_l7_rule(
        rule["type"], rule["compare_type"], rule.get("key"), rule["value"], bool(rule.get("invert"))
    )


def create_rule(conn: Connection, ctx: Ctx, policy_id: str, body: dict[str, Any]) -> str:
    """Accept a new rule on a policy (the policy itself stays as it is)."""
    policy = _lock_policy(conn, ctx, policy_id)
    _check_rule(body)
    rule_id, task_id = new_id(), children.new_task_id()
    conn.execute(
        RULE.insert().values(
            id=rule_id,
            policy_id=policy_id,
            lb_id=policy.lb_id,
            project_id=ctx.project_id,
            region_id=ctx.region_id,
            type=body["type"],
            compare_type=body["compare_type"],
            key=body.get("key"),
            value=body["value"],
            invert=bool(body.get("invert")),
            tags=list(body.get("tags") or []),
            **children.lifecycle_columns(task_id),
        )
    )
    return children.begin(
        conn, ctx, policy.lb_id, "create_l7rule", task_id=task_id, created={"l7rules": [rule_id]}
    )


def _lock_rule(conn: Connection, ctx: Ctx, policy_id: str, rule_id: str) -> tuple[Any, Any]:
    policy = _lock_policy(conn, ctx, policy_id)
    rule = _rule_row(conn, ctx, policy_id, rule_id)
    children.ensure_not_deleting(rule, "L7 rule")
    return policy, rule


def replace_rule(conn: Connection, ctx: Ctx, policy_id: str, rule_id: str, changes: dict[str, Any]) -> str:
    """Set the given fields, check the merged rule; always one task (``replace_and_poll`` needs it)."""
    policy, rule = _lock_rule(conn, ctx, policy_id, rule_id)
    fields = ("type", "compare_type", "key", "value", "invert", "tags")
    merged = {f: getattr(rule, f) for f in fields}
    merged.update({f: v for f, v in changes.items() if v is not None or f == "key"})
    # Decision: a new type that takes no key drops the stored one unless a key is sent.
    if "key" not in changes and merged["type"] not in validation.L7_KEYED_RULE_TYPES:
        merged["key"] = None
    _check_rule(merged)
    task_id = children.new_task_id()
    children.mark(conn, RULE, [rule_id], "PENDING_UPDATE", task_id, merged)
    return children.begin(conn, ctx, policy.lb_id, "put_l7rule", task_id=task_id)


def delete_rule(conn: Connection, ctx: Ctx, policy_id: str, rule_id: str) -> str:
    """Queue the removal of one rule."""
    policy, _rule = _lock_rule(conn, ctx, policy_id, rule_id)
    task_id = children.new_task_id()
    children.mark(conn, RULE, [rule_id], "PENDING_DELETE", task_id)
    return children.begin(conn, ctx, policy.lb_id, "delete_l7rule", task_id=task_id)
