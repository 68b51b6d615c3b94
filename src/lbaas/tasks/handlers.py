"""Task bodies, named after Gcore's task_type values.

Almost every task on a load balancer does the same thing: push the LB's
whole desired state (rows already written at request time) to the provider,
then settle the rows the task holds. Only create, delete, failover and
resize differ in what they do around that.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.db import lifecycle, statuses, tables
from lbaas.db.ipam import release
from lbaas.providers.base import LoadBalancerGraph
from lbaas.tasks.worker import Context, Finalize, handler

LB = tables.load_balancers


def load_graph(conn: Connection, lb_id: str) -> LoadBalancerGraph | None:
    """The desired state of one LB: every row except those being deleted; None if the LB is gone."""
    rows = lifecycle.load_graph_rows(conn, lb_id)
    if rows is None:
        return None

    def live(name: str) -> tuple[dict[str, Any], ...]:
        return tuple(r for r in rows[name] if r["provisioning_status"] != "PENDING_DELETE")

    return LoadBalancerGraph(
        lb=rows["load_balancers"][0],
        listeners=live("listeners"),
        pools=live("pools"),
        members=live("members"),
        health_monitors=live("health_monitors"),
        l7_policies=live("l7_policies"),
        l7_rules=live("l7_rules"),
    )


def _settle(conn: Connection, task: dict[str, Any]) -> None:
    lb_id = task["lock_key"]
    lifecycle.finish_children(conn, task["id"])
    lifecycle.settle_lb(conn, lb_id)
    statuses.refresh(conn, lb_id)


def _fail_child(conn: Connection, task: dict[str, Any], _error: str) -> None:
    lifecycle.fail_children(conn, task["id"])
    lifecycle.settle_lb(conn, task["lock_key"])
    statuses.refresh(conn, task["lock_key"])


def _fail_lb(conn: Connection, task: dict[str, Any], _error: str) -> None:
    lifecycle.fail_children(conn, task["id"])
    lifecycle.settle_lb(conn, task["lock_key"], final_status="ERROR")
    statuses.refresh(conn, task["lock_key"])


def _apply(ctx: Context, task: dict[str, Any]) -> None:
    """Push the LB's whole desired state; nothing to push once the LB is gone."""
    with ctx.db.read() as conn:
        graph = load_graph(conn, task["lock_key"])
    if graph is not None:
        ctx.provider.apply(graph)


@handler("create_loadbalancer", fail=_fail_lb)
def create_loadbalancer(ctx: Context, task: dict[str, Any]) -> Finalize:
    _apply(ctx, task)

    def finalize(conn: Connection) -> None:
        lifecycle.finish_children(conn, task["id"])
        lifecycle.settle_lb(conn, task["lock_key"])
        statuses.refresh(conn, task["lock_key"])

    return finalize


@handler(
    "update_loadbalancer",
    "create_lblistener",
    "patch_lblistener",
    "delete_lblistener",
    "create_lbpool",
    "patch_lbpool",
    "delete_lbpool",
    "create_lbmember",
    "update_lbmember",
    "delete_lbmember",
    "create_lbpool_health_monitor",
    "update_lbpool_health_monitor",
    "delete_lbpool_health_monitor",
    "create_l7policy",
    "update_l7policy",
    "delete_l7policy",
    "create_l7rule",
    "put_l7rule",
    "delete_l7rule",
    fail=_fail_child,
)
def apply_loadbalancer(ctx: Context, task: dict[str, Any]) -> Finalize:
    _apply(ctx, task)
    return lambda conn: _settle(conn, task)


def _apply_failed(conn: Connection, task: dict[str, Any], _error: str) -> None:
    """An internal apply held nothing: the LB keeps its values and provisioning status."""
    statuses.refresh(conn, task["lock_key"])


@handler(lifecycle.APPLY, fail=_apply_failed)
def apply_internal(ctx: Context, task: dict[str, Any]) -> Finalize:
    """Apply a change that reached the data plane without a client task (seed PATCH, floating IPs)."""
    _apply(ctx, task)
    return lambda conn: statuses.refresh(conn, task["lock_key"])


@handler("failover_loadbalancer", fail=_fail_lb)
def failover_loadbalancer(ctx: Context, task: dict[str, Any]) -> Finalize:
    ctx.provider.failover(task["lock_key"])
    _apply(ctx, task)
    return lambda conn: _settle(conn, task)


@handler("resize_loadbalancer", fail=_fail_lb)
def resize_loadbalancer(ctx: Context, task: dict[str, Any]) -> Finalize:
    # The flavor column was set at request time; the data plane restarts with it.
    ctx.provider.failover(task["lock_key"])
    _apply(ctx, task)
    return lambda conn: _settle(conn, task)


@handler("delete_loadbalancer", fail=_fail_lb)
def delete_loadbalancer(ctx: Context, task: dict[str, Any]) -> Finalize:
    lb_id = task["lock_key"]
    ctx.provider.remove(lb_id)

    def finalize(conn: Connection) -> None:
        delete_lb_rows(conn, lb_id)

    return finalize


def delete_lb_rows(conn: Connection, lb_id: str) -> None:
    """Remove an LB's whole tree, free its VIP, keep (but detach) its floating IPs."""
    lb = conn.execute(sa.select(LB.c.vip_address).where(LB.c.id == lb_id)).first()
    if lb is None:
        return
    ids = [lb_id]
    for table in tables.LB_CHILDREN:
        ids += [r[0] for r in conn.execute(sa.select(table.c.id).where(table.c.lb_id == lb_id))]
    conn.execute(tables.tags.delete().where(tables.tags.c.resource_id.in_(ids)))
    fip = tables.floating_ips
    conn.execute(
        fip.update()
        .where(fip.c.lb_id == lb_id)
        .values(lb_id=None, port_id=None, fixed_ip_address=None, status="DOWN")
    )
    for table in reversed(tables.LB_CHILDREN):
        conn.execute(table.delete().where(table.c.lb_id == lb_id))
    conn.execute(LB.delete().where(LB.c.id == lb_id))
    release(conn, "vip", lb.vip_address)


def _no_undo(conn: Connection, task: dict[str, Any], _error: str) -> None:
    """Nothing was held: the task's failure is its own record."""


@handler("delete_project", fail=_no_undo)
def delete_project(ctx: Context, task: dict[str, Any]) -> Finalize:
    from lbaas.clock import utcnow

    project_id = task["args"]["project_id"]

    def finalize(conn: Connection) -> None:
        now = utcnow()
        conn.execute(
            tables.projects.update()
            .where(tables.projects.c.id == project_id)
            .values(deleted_at=now, state="DELETED", task_id=None)
        )
        conn.execute(
            tables.api_keys.update()
            .where(tables.api_keys.c.project_id == project_id, tables.api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    return finalize


from lbaas.tasks import standalone as _standalone  # noqa: F401,E402  (registers FIP and secret tasks)
