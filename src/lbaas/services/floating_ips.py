"""Floating IPs: addresses of the FIP pool, attached to a load balancer's VIP port.

A floating IP has no load balancer to queue behind, so its tasks use the
floating IP's own id as lock key: tasks on one floating IP run in order,
tasks on different ones in parallel. Like every change here, the new state
is written at request time; the task only releases the row (or removes it,
for a delete). The only ports this service knows are LB VIP ports.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.clock import new_id, utcnow
from lbaas.db import ipam, lifecycle, queue, tables
from lbaas.domain import tags as tags_mod
from lbaas.errors import Conflict, ValidationFailed
from lbaas.services import children, quotas, views
from lbaas.services import load_balancers as lbs
from lbaas.services.common import Ctx, fetch_page, get_row, load_tags, lock_row, page, tag_filters, write_tags

FIP = tables.floating_ips
LB = tables.load_balancers
T = tables.tasks
KIND = "Floating IP"


# -- reading -----------------------------------------------------------------
def get(conn: Connection, ctx: Ctx, fip_id: str) -> dict[str, Any]:
    """``FloatingIP`` of the caller's project and region."""
    row = get_row(conn, FIP, fip_id, ctx, KIND)
    return views.floating_ip(row, load_tags(conn, [row.id])[row.id], ctx.region_name)


def list_(
    conn: Connection,
    ctx: Ctx,
    *,
    limit: int,
    offset: int,
    port_ids: list[str] | None = None,
    status: str | None = None,
    tag_key: list[str] | None = None,
    tag_key_value: str | None = None,
) -> dict[str, Any]:
    """A page of ``FloatingIPDetailed`` (newest first) and the total number of matches."""
    where = [FIP.c.project_id == ctx.project_id, FIP.c.region_id == ctx.region_id]
    if port_ids:
        where.append(FIP.c.port_id.in_(port_ids))
    if status is not None:
        where.append(FIP.c.status == status)
    where += tag_filters(FIP.c.id, tag_key, lbs.parse_tag_key_value(tag_key_value))
    total, rows = fetch_page(conn, FIP, where, (FIP.c.created_at.desc(), FIP.c.id.desc()), limit, offset)
    tags = load_tags(conn, [r.id for r in rows])
    lb_views = lbs.get_many(conn, ctx, sorted({r.lb_id for r in rows if r.lb_id}))
    return page(
        total,
        [
            {
                **views.floating_ip(r, tags[r.id], ctx.region_name),
                "instance": None,  # only load balancer ports exist here
                "loadbalancer": lb_views.get(r.lb_id),
            }
            for r in rows
        ],
    )


# -- attaching -----------------------------------------------------------------
def _target_lb(conn: Connection, ctx: Ctx, fip_id: str | None, port_id: str, fixed_ip: Any) -> Any:
    """The LB whose VIP port is ``port_id``, locked; 400 unless the FIP may go there."""
    found = conn.execute(
        sa.select(LB.c.id)
        .where(
            LB.c.vip_port_id == port_id, LB.c.project_id == ctx.project_id, LB.c.region_id == ctx.region_id
        )
        .order_by(LB.c.created_at)
        .limit(1)
    ).first()
    # Gcore's floating IPs are Neutron's: an unknown port, an address the port does not have, and
    # a port that already has a floating IP (FloatingIPPortAlreadyAssociated) are refused there.
    if found is None:
        raise ValidationFailed.field("port_id", f"port {port_id} not found")
    lb = children.lock_lb(conn, ctx, found.id)  # 409 while the LB is being deleted
    if fixed_ip is not None and str(fixed_ip) != lb.vip_address:
        raise ValidationFailed.field("fixed_ip_address", f"{fixed_ip} is not an address of port {port_id}")
    other = conn.execute(
        sa.select(FIP.c.id).where(
            FIP.c.port_id == port_id,
            FIP.c.id != (fip_id or ""),
            FIP.c.project_id == ctx.project_id,
            FIP.c.region_id == ctx.region_id,
        )
    ).first()
    if other is not None:
        raise ValidationFailed.field("port_id", f"port {port_id} already has floating IP {other.id}")
    return lb


def _attachment(lb: Any | None) -> dict[str, Any]:
    """Column values of a floating IP attached to ``lb`` (None: detached)."""
    if lb is None:
        return {"lb_id": None, "port_id": None, "fixed_ip_address": None, "status": "DOWN"}
    return {"lb_id": lb.id, "port_id": lb.vip_port_id, "fixed_ip_address": lb.vip_address, "status": "ACTIVE"}


def _association_changes(conn: Connection, ctx: Ctx, row: Any, changes: dict[str, Any]) -> dict[str, Any]:
    """What a PATCH changes in port_id / fixed_ip_address / lb_id / status."""
    fixed = changes.get("fixed_ip_address")
    if "port_id" in changes:
        if changes["port_id"] is None:
            if fixed is not None:  # Neutron: fixed_ip_address needs a port_id
                raise ValidationFailed.field("fixed_ip_address", "cannot be set while port_id is null")
            target = _attachment(None)
        else:
            target = _attachment(_target_lb(conn, ctx, row.id, str(changes["port_id"]), fixed))
        return {k: v for k, v in target.items() if getattr(row, k) != v}
    if fixed is not None:
        # Without port_id the address must be one of the current port's (a VIP port has one).
        if row.port_id is None:
            raise ValidationFailed.field(
                "fixed_ip_address", "requires port_id: the floating IP is not attached"
            )
        if str(fixed) != row.fixed_ip_address:
            raise ValidationFailed.field(
                "fixed_ip_address", f"{fixed} is not an address of port {row.port_id}"
            )
    return {}


# -- writing -----------------------------------------------------------------
def _deleting(conn: Connection, resource_id: str, task_type: str) -> str | None:
    """The id of a queued or running ``task_type`` task on this resource, if any."""
    return conn.execute(
        sa.select(T.c.id).where(
            T.c.lock_key == resource_id, T.c.task_type == task_type, T.c.state.in_(queue.ACTIVE_STATES)
        )
    ).scalar()


def lock_mutable(conn: Connection, ctx: Ctx, fip_id: str) -> Any:
    """The floating IP row, locked; 404 if not the caller's, 409 once a delete is queued."""
    row = lock_row(conn, FIP, fip_id, ctx, KIND)
    task_id = _deleting(conn, fip_id, "delete_fip")
    if task_id is not None:
        raise Conflict(f"Floating IP {fip_id} is being deleted by task {task_id}")
    return row


def _reapply(conn: Connection, row: Any, values: dict[str, Any]) -> None:
    """A floating IP carries traffic on its LB: moving it re-applies the LBs it leaves and joins."""
    if "lb_id" in values and values["lb_id"] != row.lb_id:
        lifecycle.request_apply(conn, row.lb_id)
        lifecycle.request_apply(conn, values["lb_id"])


def _enqueue(conn: Connection, ctx: Ctx, row: Any, task_type: str, values: dict[str, Any]) -> str:
    """Queue a task on the floating IP and write the new values; the row's task_id is the queue head."""
    task_id = queue.enqueue(conn, ctx.task_scope, task_type, lock_key=row.id)
    _reapply(conn, row, values)
    conn.execute(
        FIP.update()
        .where(FIP.c.id == row.id)
        .values(**values, task_id=row.task_id or task_id, updated_at=max(utcnow(), row.updated_at))
    )
    return task_id


def insert(
    conn: Connection, ctx: Ctx, lb: Any | None, *, task_id: str | None, creator_task_id: str, field: str
) -> str:
    """A new floating IP row with a fresh address, attached to ``lb``'s VIP port if given."""
    quotas.check(conn, ctx.project_id, "floating_count", 1)
    fip_id, now = new_id(), utcnow()
    conn.execute(
        FIP.insert().values(
            id=fip_id,
            project_id=ctx.project_id,
            region_id=ctx.region_id,
            floating_ip_address=ipam.allocate(conn, "fip", field),
            router_id=None,
            task_id=task_id,
            creator_task_id=creator_task_id,
            created_at=now,
            updated_at=now,
            **_attachment(lb),
        )
    )
    return fip_id


def attach_existing(conn: Connection, ctx: Ctx, lb: Any, fip_id: str, field: str) -> None:
    """Attach one of the caller's free floating IPs to ``lb``'s VIP port."""
    row = lock_mutable(conn, ctx, fip_id)
    # Gcore: "An existing available floating IP id must be specified" (source: existing).
    if row.port_id is not None:
        raise ValidationFailed.field(field, f"Floating IP {fip_id} is already assigned to port {row.port_id}")
    conn.execute(FIP.update().where(FIP.c.id == fip_id).values(**_attachment(lb), updated_at=utcnow()))


def create(conn: Connection, ctx: Ctx, body: dict[str, Any]) -> str:
    """Allocate an address, attached to an LB VIP port if ``port_id`` names one."""
    tags = tags_mod.clean_tag_map(body.get("tags"))
    port_id, fixed = body.get("port_id"), body.get("fixed_ip_address")
    if port_id is None and fixed is not None:  # Neutron: fixed_ip_address needs a port_id
        raise ValidationFailed.field("fixed_ip_address", "requires port_id")
    lb = _target_lb(conn, ctx, None, str(port_id), fixed) if port_id is not None else None
    task_id = new_id()
    fip_id = insert(conn, ctx, lb, task_id=task_id, creator_task_id=task_id, field="floating_ip_address")
    write_tags(conn, "floatingip", fip_id, {}, {k: tags_mod.Tag(k, v) for k, v in tags.items()})
    if lb is not None:
        lifecycle.request_apply(conn, lb.id)
    return queue.enqueue(
        conn,
        ctx.task_scope,
        "create_fip",
        lock_key=fip_id,
        task_id=task_id,
        created={"floatingips": [fip_id]},
    )


def update(conn: Connection, ctx: Ctx, fip_id: str, changes: dict[str, Any]) -> list[str]:
    """PATCH v2: re-attach, detach and/or merge-patch tags; always one task (Gcore lists no empty case)."""
    row = lock_mutable(conn, ctx, fip_id)
    values = _association_changes(conn, ctx, row, changes)
    tags_changed = False
    if "tags" in changes:
        before = load_tags(conn, [fip_id])[fip_id]
        after = tags_mod.merge_patch(before, changes["tags"])
        tags_changed = after != before
        if tags_changed:
            write_tags(conn, "floatingip", fip_id, before, after)
    return [_enqueue(conn, ctx, row, "update_floating_ip", values)]


def delete(conn: Connection, ctx: Ctx, fip_id: str) -> str:
    """Queue the release of the address (an attached floating IP is detached with it)."""
    row = lock_mutable(conn, ctx, fip_id)
    return _enqueue(conn, ctx, row, "delete_fip", {})


def assign(conn: Connection, ctx: Ctx, fip_id: str, port_id: str, fixed_ip: Any = None) -> dict[str, Any]:
    """Deprecated synchronous attach."""
    row = lock_mutable(conn, ctx, fip_id)
    lb = _target_lb(conn, ctx, fip_id, port_id, fixed_ip)
    _set(conn, row, _attachment(lb))
    return get(conn, ctx, fip_id)


def unassign(conn: Connection, ctx: Ctx, fip_id: str) -> dict[str, Any]:
    """Deprecated synchronous detach."""
    row = lock_mutable(conn, ctx, fip_id)
    _set(conn, row, _attachment(None))
    return get(conn, ctx, fip_id)


def _set(conn: Connection, row: Any, values: dict[str, Any]) -> None:
    if any(getattr(row, k) != v for k, v in values.items()):
        _reapply(conn, row, values)
        conn.execute(
            FIP.update().where(FIP.c.id == row.id).values(**values, updated_at=max(utcnow(), row.updated_at))
        )


# -- task bodies -------------------------------------------------------------
# Nothing reaches a data plane: the address is NAT state of the VIP. A task
# ends by handing the row to the next task of its queue (or to nobody).
