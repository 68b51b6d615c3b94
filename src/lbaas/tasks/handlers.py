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

from lbaas.db import dataplane, lifecycle, snapshot, statuses, tables
from lbaas.db.ipam import release
from lbaas.domain.model import LoadBalancerSnapshot
from lbaas.tasks.worker import Context, Finalize, handler

LB = tables.load_balancers


def load_states(ctx: Context, lb_id: str) -> tuple[LoadBalancerSnapshot | None, LoadBalancerSnapshot | None]:
    """(desired, previous) of one LB: what to serve now, and what the data plane took last.

    ``desired`` is None once the LB is gone. Both carry their certificates, decrypted here
    in the worker (never logged, never stored in the clear).
    """
    with ctx.db.read() as conn:
        previous = dataplane.applied(conn, lb_id)
        desired = snapshot.load_snapshot(conn, lb_id, ctx.decrypt, applied=previous)
        if previous is not None:
            previous = snapshot.with_certificates(conn, previous, ctx.decrypt)
    return desired, previous


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


def _apply(ctx: Context, task: dict[str, Any], *, failover: bool = False) -> Finalize:
    """Push the LB's whole desired state; nothing to push once the LB is gone.

    Returns what the finalize must also do: remember the snapshot the data plane took.
    """
    desired, previous = load_states(ctx, task["lock_key"])
    if desired is None:
        return lambda conn: None
    if failover:
        ctx.provider.failover(desired)
    else:
        ctx.provider.apply(desired, previous)
    return lambda conn: dataplane.record_applied(conn, desired)


@handler("create_loadbalancer", fail=_fail_lb)
def create_loadbalancer(ctx: Context, task: dict[str, Any]) -> Finalize:
    took = _apply(ctx, task)

    def finalize(conn: Connection) -> None:
        took(conn)
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
    took = _apply(ctx, task)

    def finalize(conn: Connection) -> None:
        took(conn)
        _settle(conn, task)

    return finalize


def _apply_failed(conn: Connection, task: dict[str, Any], _error: str) -> None:
    """An internal apply held nothing: the LB keeps its values and provisioning status."""
    statuses.refresh(conn, task["lock_key"])


@handler(lifecycle.APPLY, fail=_apply_failed)
def apply_internal(ctx: Context, task: dict[str, Any]) -> Finalize:
    """Apply a change that reached the data plane without a client task (seed PATCH, floating IPs)."""
    took = _apply(ctx, task)

    def finalize(conn: Connection) -> None:
        took(conn)
        statuses.refresh(conn, task["lock_key"])

    return finalize


@handler("failover_loadbalancer", fail=_fail_lb)
def failover_loadbalancer(ctx: Context, task: dict[str, Any]) -> Finalize:
    took = _apply(ctx, task, failover=True)

    def finalize(conn: Connection) -> None:
        took(conn)
        _settle(conn, task)

    return finalize


@handler("resize_loadbalancer", fail=_fail_lb)
def resize_loadbalancer(ctx: Context, task: dict[str, Any]) -> Finalize:
    # The flavor column was set at request time; the data plane takes it like any change
    # (HAProxy: a hitless reload with the flavor's threads and connection caps).
    return apply_loadbalancer(ctx, task)


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
