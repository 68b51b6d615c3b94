"""The status tree: LB → listeners → pools → members and health monitor.

A pool appears under every listener that uses it: as its default pool, or as
the target of one of its REDIRECT_TO_POOL policies.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.db import tables
from lbaas.domain.tags import to_wire
from lbaas.errors import NotFound
from lbaas.services.common import Ctx, load_tags, page


def _status(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "operating_status": row.operating_status,
        "provisioning_status": row.provisioning_status,
    }


def _trees(conn: Connection, lbs: list[Any]) -> list[dict[str, Any]]:
    ids = [lb.id for lb in lbs]
    if not ids:
        return []
    t = tables
    listeners = conn.execute(
        sa.select(t.listeners)
        .where(t.listeners.c.lb_id.in_(ids))
        .order_by(t.listeners.c.created_at, t.listeners.c.id)
    ).all()
    pools = {
        p.id: p
        for p in conn.execute(
            sa.select(t.pools).where(t.pools.c.lb_id.in_(ids)).order_by(t.pools.c.created_at, t.pools.c.id)
        )
    }
    members: dict[str, list[Any]] = defaultdict(list)
    for m in conn.execute(
        sa.select(t.members)
        .where(t.members.c.lb_id.in_(ids))
        .order_by(t.members.c.address, t.members.c.protocol_port)
    ):
        members[m.pool_id].append(m)
    hms = {
        h.pool_id: h
        for h in conn.execute(sa.select(t.health_monitors).where(t.health_monitors.c.lb_id.in_(ids)))
    }
    routes: dict[str, list[str]] = defaultdict(list)
    for p in pools.values():
        if p.listener_id:
            routes[p.listener_id].append(p.id)
    for pol in conn.execute(
        sa.select(t.l7_policies).where(t.l7_policies.c.lb_id.in_(ids)).order_by(t.l7_policies.c.position)
    ):
        if pol.redirect_pool_id in pools and pol.redirect_pool_id not in routes[pol.listener_id]:
            routes[pol.listener_id].append(pol.redirect_pool_id)

    def pool_tree(pid: str) -> dict[str, Any]:
        p, hm = pools[pid], hms.get(pid)
        return {
            **_status(p),
            "name": p.name,
            "members": [
                {**_status(m), "address": m.address, "protocol_port": m.protocol_port} for m in members[pid]
            ],
            "health_monitor": None if hm is None else {**_status(hm), "type": hm.type},
        }

    by_lb: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for li in listeners:
        by_lb[li.lb_id].append(
            {**_status(li), "name": li.name, "pools": [pool_tree(pid) for pid in routes[li.id]]}
        )
    tags = load_tags(conn, ids)
    return [
        {**_status(lb), "name": lb.name, "tags": to_wire(tags[lb.id]), "listeners": by_lb[lb.id]}
        for lb in lbs
    ]


def get(conn: Connection, ctx: Ctx, lb_id: str) -> dict[str, Any]:
    lb = conn.execute(
        sa.select(tables.load_balancers).where(
            tables.load_balancers.c.id == lb_id,
            tables.load_balancers.c.project_id == ctx.project_id,
            tables.load_balancers.c.region_id == ctx.region_id,
        )
    ).first()
    if lb is None:
        raise NotFound.of("Load balancer", lb_id)
    return _trees(conn, [lb])[0]


def list_(conn: Connection, ctx: Ctx) -> dict[str, Any]:
    LB = tables.load_balancers
    lbs = conn.execute(
        sa.select(LB)
        .where(LB.c.project_id == ctx.project_id, LB.c.region_id == ctx.region_id)
        .order_by(LB.c.created_at.desc(), LB.c.id.desc())
    ).all()
    trees = _trees(conn, lbs)
    return page(len(trees), trees)
