"""What an LB create carries besides the LB: floating IP, nested listeners and their pool trees."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.db import tables
from lbaas.errors import ValidationFailed
from lbaas.services import floating_ips, listeners, pools, quotas
from lbaas.services.common import Ctx

FIP = tables.floating_ips


def create_children(
    conn: Connection, ctx: Ctx, lb_id: str, body: dict[str, Any], task_id: str, created: dict[str, list[str]]
) -> None:
    """Write the nested objects of an LB create under the same task."""
    if not body.get("listeners") and not body.get("floating_ip"):
        return  # most creates: nothing below the LB, so its row need not be read back
    lb = conn.execute(sa.select(tables.load_balancers).where(tables.load_balancers.c.id == lb_id)).first()
    if body.get("listeners"):
        create_listeners(conn, ctx, lb, body["listeners"], task_id, created)
    fip = body.get("floating_ip")
    if fip:
        fip_id = attach_floating_ip(conn, ctx, lb, fip, task_id)
        if fip.get("source") == "new":
            created["floatingips"] = [fip_id]


@contextmanager
def _prefixed(prefix: str) -> Iterator[None]:
    """Re-raise a validation error with its fields under ``prefix`` (``listeners.1.protocol_port``)."""
    try:
        yield
    except ValidationFailed as exc:
        fields = {f"{prefix}.{k}": m for k, m in exc.invalid_fields.items()}
        raise ValidationFailed(fields=fields) from None


def create_listeners(
    conn: Connection, ctx: Ctx, lb: Any, raw: list[Any], task_id: str, created: dict[str, list[str]]
) -> None:
    """Listeners, each with its optional pool tree, PENDING_CREATE under the LB create task.

    Every listener is checked before any is written; a pool tree is checked as it is
    written, and an error there rolls the whole request back.
    """
    bodies = raw  # validated by the request schema (lbaas.api.schemas.listeners.NestedListenerCreate)
    bound: list[tuple[str, int]] = []
    prepared = []
    for i, body in enumerate(bodies):
        with _prefixed(f"listeners.{i}"):
            prepared.append(listeners.prepare(conn, ctx, lb, body, bound))
        bound.append((body["protocol"], body["protocol_port"]))
    quotas.check(conn, ctx.project_id, "listeners_per_lb", len(bodies), lb.id)
    for key in ("listeners", "pools", "members", "healthmonitors"):
        created.setdefault(key, [])
    for i, (body, values) in enumerate(zip(bodies, prepared, strict=True)):
        listener = listeners.insert(conn, values, task_id)
        created["listeners"].append(listener["id"])
        for j, pool_body in enumerate(body.get("pools") or []):
            with _prefixed(f"listeners.{i}.pools.{j}"):
                tree = pools.insert_pool_tree(conn, ctx, lb, listener, pool_body, task_id)
            for key, ids in tree.items():
                created.setdefault(key, []).extend(ids)


def attach_floating_ip(conn: Connection, ctx: Ctx, lb: Any, fip: dict[str, Any], task_id: str) -> str:
    """Attach a new or an existing floating IP to an LB's VIP port."""
    if fip["source"] == "new":
        return floating_ips.insert(conn, ctx, lb, task_id=None, creator_task_id=task_id, field="floating_ip")
    fip_id = str(fip["existing_floating_id"])
    floating_ips.attach_existing(conn, ctx, lb, fip_id, "floating_ip.existing_floating_id")
    return fip_id
