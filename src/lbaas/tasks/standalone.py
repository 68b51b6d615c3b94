"""Tasks of resources that live outside a load balancer: floating IPs and secrets.

Their tasks queue on the resource's own id. None of them reaches the data plane
(a floating IP is an address on the LB's VIP port; a certificate is read by the
provider when a listener that uses it is applied), so each only settles rows.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.db import ipam, lifecycle, queue, tables
from lbaas.tasks.worker import Context, Finalize, handler

FIP = tables.floating_ips
S = tables.secrets


def _release_fip(conn: Connection, fip_id: str, **values: Any) -> None:
    conn.execute(
        FIP.update().where(FIP.c.id == fip_id).values(task_id=queue.queue_head(conn, fip_id), **values)
    )


def _remove_fip(conn: Connection, fip_id: str) -> None:
    row = conn.execute(sa.select(FIP.c.floating_ip_address, FIP.c.lb_id).where(FIP.c.id == fip_id)).first()
    if row is None:
        return
    conn.execute(tables.tags.delete().where(tables.tags.c.resource_id == fip_id))
    conn.execute(FIP.delete().where(FIP.c.id == fip_id))
    ipam.release(conn, "fip", row.floating_ip_address)
    lifecycle.request_apply(conn, row.lb_id)  # its LB stops serving the address


def _fail_fip_create(conn: Connection, task: dict[str, Any], _error: str) -> None:
    _remove_fip(conn, task["lock_key"])  # a failed create leaves nothing behind


def _fail_fip_change(conn: Connection, task: dict[str, Any], _error: str) -> None:
    _release_fip(conn, task["lock_key"], status="ERROR")


@handler("create_fip", fail=_fail_fip_create)
@handler("update_floating_ip", fail=_fail_fip_change)
def settle_fip(_ctx: Context, task: dict[str, Any]) -> Finalize:
    return lambda conn: _release_fip(conn, task["lock_key"])


@handler("delete_fip", fail=_fail_fip_change)
def delete_fip(_ctx: Context, task: dict[str, Any]) -> Finalize:
    return lambda conn: _remove_fip(conn, task["lock_key"])


def _release_secret(conn: Connection, secret_id: str, **values: Any) -> None:
    conn.execute(
        S.update().where(S.c.id == secret_id).values(task_id=queue.queue_head(conn, secret_id), **values)
    )


def _remove_secret(conn: Connection, task: dict[str, Any], _error: str = "") -> None:
    conn.execute(S.delete().where(S.c.id == task["lock_key"]))


def _fail_secret_delete(conn: Connection, task: dict[str, Any], _error: str) -> None:
    _release_secret(conn, task["lock_key"], status="ERROR")


@handler("create_secret", fail=_remove_secret)
def create_secret(_ctx: Context, task: dict[str, Any]) -> Finalize:
    return lambda conn: _release_secret(conn, task["lock_key"], status="ACTIVE")


@handler("delete_secret", fail=_fail_secret_delete)
def delete_secret(_ctx: Context, task: dict[str, Any]) -> Finalize:
    return lambda conn: _remove_secret(conn, task)
