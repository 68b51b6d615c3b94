"""What an LB create carries besides the LB: floating IP, nested listeners."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.clock import new_id, utcnow
from lbaas.db import ipam, tables
from lbaas.errors import NotFound, ValidationFailed
from lbaas.services import quotas
from lbaas.services.common import Ctx

FIP = tables.floating_ips
_FIP_POOL = {"cidr": "127.2.0.0/16"}


def configure(fip_pool: str) -> None:
    _FIP_POOL["cidr"] = fip_pool


def fip_pool() -> str:
    return _FIP_POOL["cidr"]


def create_children(
    conn: Connection, ctx: Ctx, lb_id: str, body: dict[str, Any], task_id: str, created: dict[str, list[str]]
) -> None:
    """Write the nested objects of an LB create under the same task."""
    if body.get("listeners"):
        raise ValidationFailed.field("listeners", "nested listeners are not supported yet")
    fip = body.get("floating_ip")
    if fip:
        lb = conn.execute(sa.select(tables.load_balancers).where(tables.load_balancers.c.id == lb_id)).first()
        fip_id = attach_floating_ip(conn, ctx, lb, fip, task_id)
        if fip.get("source") == "new":
            created["floatingips"] = [fip_id]


def attach_floating_ip(conn: Connection, ctx: Ctx, lb: Any, fip: dict[str, Any], task_id: str) -> str:
    """Attach a new or an existing floating IP to an LB's VIP port."""
    now = utcnow()
    if fip["source"] == "new":
        quotas.check(conn, ctx.project_id, "floating_count", 1)
        fip_id = new_id()
        conn.execute(
            FIP.insert().values(
                id=fip_id,
                project_id=ctx.project_id,
                region_id=ctx.region_id,
                floating_ip_address=ipam.allocate(conn, "fip", fip_pool(), "floating_ip"),
                fixed_ip_address=lb.vip_address,
                port_id=lb.vip_port_id,
                lb_id=lb.id,
                router_id=None,
                status="ACTIVE",
                task_id=None,
                creator_task_id=task_id,
                created_at=now,
                updated_at=now,
            )
        )
        return fip_id
    fip_id = str(fip["existing_floating_id"])
    row = conn.execute(
        sa.select(FIP).where(
            FIP.c.id == fip_id, FIP.c.project_id == ctx.project_id, FIP.c.region_id == ctx.region_id
        )
    ).first()
    if row is None:
        raise NotFound.of("Floating IP", fip_id)
    if row.port_id is not None:
        raise ValidationFailed.field(
            "floating_ip.existing_floating_id",
            f"Floating IP {fip_id} is already assigned to port {row.port_id}",
        )
    conn.execute(
        FIP.update()
        .where(FIP.c.id == fip_id)
        .values(
            lb_id=lb.id,
            port_id=lb.vip_port_id,
            fixed_ip_address=lb.vip_address,
            status="ACTIVE",
            updated_at=now,
        )
    )
    return fip_id
