"""Write operating statuses: the shared roll-up applied to one LB's rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.db import dataplane, lifecycle, tables
from lbaas.db.prepared import Prepared
from lbaas.domain import status as st


def _view(rows: dict[str, list[dict[str, Any]]], health: Mapping[str, str | None]) -> st.LoadBalancerView:
    # Children being deleted are no longer served; the LB itself is viewed in any state.
    live = {
        k: v if k == "load_balancers" else [r for r in v if r["provisioning_status"] != "PENDING_DELETE"]
        for k, v in rows.items()
    }
    monitored = {h["pool_id"] for h in live["health_monitors"] if h["admin_state_up"]}
    members_by_pool: dict[str, list[st.MemberView]] = {}
    for m in live["members"]:
        members_by_pool.setdefault(m["pool_id"], []).append(
            st.MemberView(m["id"], m["admin_state_up"], health.get(m["id"]))
        )
    pools = tuple(
        st.PoolView(
            p["id"], p["admin_state_up"], p["id"] in monitored, tuple(members_by_pool.get(p["id"], ()))
        )
        for p in live["pools"]
    )
    pool_ids = {p.id for p in pools}
    routes: dict[str, list[str]] = {}
    for p in live["pools"]:
        if p["listener_id"]:
            routes.setdefault(p["listener_id"], []).append(p["id"])
    for pol in live["l7_policies"]:
        if pol["redirect_pool_id"] in pool_ids:
            routes.setdefault(pol["listener_id"], []).append(pol["redirect_pool_id"])
    listeners = tuple(
        st.ListenerView(li["id"], li["admin_state_up"], tuple(dict.fromkeys(routes.get(li["id"], ()))))
        for li in live["listeners"]
    )
    lb = live["load_balancers"][0]
    return st.LoadBalancerView(lb["id"], lb["admin_state_up"], lb["provisioning_status"], listeners, pools)


def refresh(conn: Connection, lb_id: str, health: Mapping[str, str | None] | None = None) -> None:
    """Recompute and store every operating status of one LB (only what changed is written).

    ``health``: raw health per member id; by default what the data plane last reported
    (``member_health``). An LB whose data plane is down reads ERROR.
    """
    rows = lifecycle.load_graph_rows(conn, lb_id)
    if rows is None:
        return
    if health is None:
        health = dataplane.member_health(conn, lb_id)
    tree = st.roll_up(_view(rows, health))
    lb = rows["load_balancers"][0]
    lb_status = "OFFLINE" if lb["provisioning_status"] == "PENDING_CREATE" else str(tree.lb)
    if lb_status not in ("OFFLINE",) and dataplane.is_running(conn, lb_id) is False:
        lb_status = "ERROR"
    _store(conn, tables.load_balancers, [lb], {lb_id: lb_status})
    for table, statuses in (
        (tables.listeners, tree.listeners),
        (tables.pools, tree.pools),
        (tables.members, tree.members),
    ):
        _store(conn, table, rows[table.name], {k: str(v) for k, v in statuses.items()})
    _store(
        conn,
        tables.health_monitors,
        rows["health_monitors"],
        {h["id"]: str(st.hm_status(h["admin_state_up"])) for h in rows["health_monitors"]},
    )
    for name, table in (("l7_policies", tables.l7_policies), ("l7_rules", tables.l7_rules)):
        _store(conn, table, rows[name], {r["id"]: "ONLINE" for r in rows[name]})


# Prepared: a refresh follows every task (lbaas.db.prepared says why).
_SET_STATUS = {
    t.name: Prepared(
        t.update().where(t.c.id == sa.bindparam("b_id")).values(operating_status=sa.bindparam("b_status"))
    )
    for t in (tables.load_balancers, *tables.LB_CHILDREN)
}


def _store(conn: Connection, table: sa.Table, rows: list[dict[str, Any]], new: Mapping[str, str]) -> None:
    for row in rows:
        value = new.get(row["id"])
        if row["provisioning_status"] == "ERROR":
            value = "ERROR"
        if value is not None and value != row["operating_status"]:
            _SET_STATUS[table.name].execute(conn, b_id=row["id"], b_status=value)
