"""Health monitors: one per pool, addressed by the pool id."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.clock import new_id
from lbaas.db import tables
from lbaas.domain import validation as v
from lbaas.domain.capabilities import EVERYTHING, Capabilities
from lbaas.errors import NotFound, ValidationFailed
from lbaas.services import children
from lbaas.services.common import Ctx, get_row
from lbaas.services.members import lock_pool

H = tables.health_monitors
COLUMNS = (
    "type",
    "delay",
    "timeout",
    "max_retries",
    "max_retries_down",
    "admin_state_up",
    "http_method",
    "url_path",
    "expected_codes",
    "http_version",
    "domain_name",
)
# Fields that fall back to their default when sent as null.
DEFAULTED = (*v.HTTP_MONITOR_FIELDS, "max_retries_down", "admin_state_up")


def full_values(
    body: dict[str, Any],
    pool_protocol: str,
    existing_type: str | None = None,
    capabilities: Capabilities = EVERYTHING,
) -> dict[str, Any]:
    """Column values of a complete monitor body (create, or the nested pool PATCH object).

    ``existing_type``: the stored monitor's type, which the body may omit but not change.
    ``capabilities``: what the data plane can check (a type it cannot is a 400).
    """
    hm_type = body.get("type") or existing_type
    capabilities.check_monitor_type(hm_type)
    v.check_health_monitor(
        {**body, "type": hm_type}, pool_protocol=pool_protocol, existing_type=existing_type
    )
    given = {k: body[k] for k in COLUMNS if body.get(k) is not None}
    return {**v.hm_defaults(hm_type), **given, "type": str(hm_type)}


def patch_values(row: Any, changes: dict[str, Any], pool_protocol: str) -> dict[str, Any]:
    """The monitor after a partial update: omitted = unchanged, null = back to the default."""
    defaults = v.hm_defaults(row.type)
    merged = {k: getattr(row, k) for k in COLUMNS}
    for key, value in changes.items():
        merged[key] = defaults.get(key) if value is None and key in DEFAULTED else value
    # Gcore: delay, max_retries and timeout are required and have no default.
    if any(merged[k] is None for k in ("delay", "timeout", "max_retries")):
        raise ValidationFailed.field(
            next(k for k in ("delay", "timeout", "max_retries") if merged[k] is None), "May not be null"
        )
    v.check_health_monitor(merged, pool_protocol=pool_protocol, existing_type=row.type, partial=True)
    return merged


def diff(row: Any, values: dict[str, Any]) -> dict[str, Any]:
    """The columns whose value would change."""
    return {k: values[k] for k in COLUMNS if getattr(row, k) != values[k]}


def insert(conn: Connection, ctx: Ctx, lb: Any, pool_id: str, values: dict[str, Any], task_id: str) -> str:
    """Insert a validated monitor as a PENDING_CREATE row held by ``task_id``."""
    hm_id = new_id()
    conn.execute(
        H.insert().values(
            id=hm_id,
            pool_id=pool_id,
            lb_id=lb.id,
            project_id=ctx.project_id,
            region_id=ctx.region_id,
            **values,
            **children.lifecycle_columns(task_id),
        )
    )
    return hm_id


def of_pool(conn: Connection, pool_id: str) -> Any:
    """The monitor row of a pool, or None."""
    return conn.execute(sa.select(H).where(H.c.pool_id == pool_id)).first()


def of_pools(conn: Connection, pool_ids: list[str]) -> dict[str, Any]:
    """Monitor rows of many pools, by pool id."""
    if not pool_ids:
        return {}
    return {r.pool_id: r for r in conn.execute(sa.select(H).where(H.c.pool_id.in_(pool_ids)))}


def view(row: Any) -> dict[str, Any]:
    """``HealthMonitor``."""
    return {
        "id": row.id,
        "type": row.type,
        "delay": row.delay,
        "timeout": row.timeout,
        "max_retries": row.max_retries,
        "max_retries_down": row.max_retries_down,
        "admin_state_up": row.admin_state_up,
        "http_method": row.http_method,
        "url_path": row.url_path,
        "expected_codes": row.expected_codes,
        "http_version": row.http_version,
        "domain_name": row.domain_name,
        "operating_status": row.operating_status,
        "provisioning_status": row.provisioning_status,
    }


def _require(conn: Connection, pool_id: str) -> Any:
    row = of_pool(conn, pool_id)
    if row is None:
        raise NotFound(f"Health monitor of pool {pool_id} could not be found")
    return row


# -- endpoints ---------------------------------------------------------------
def create(conn: Connection, ctx: Ctx, pool_id: str, body: dict[str, Any]) -> str:
    """Add the pool's monitor (task ``create_lbpool_health_monitor``); a second one is a 400."""
    pool, lb = lock_pool(conn, ctx, pool_id)
    if of_pool(conn, pool.id) is not None:  # Octavia: DuplicateHealthMonitor (one per pool)
        raise ValidationFailed.field("pool_id", f"Pool {pool.id} already has a health monitor")
    values = full_values(body, pool.protocol, capabilities=ctx.capabilities)
    task_id = children.new_task_id()
    hm_id = insert(conn, ctx, lb, pool.id, values, task_id)
    return children.begin(
        conn, ctx, lb.id, "create_lbpool_health_monitor", task_id=task_id, created={"healthmonitors": [hm_id]}
    )


def get(conn: Connection, ctx: Ctx, pool_id: str) -> dict[str, Any]:
    """The pool's monitor; 404 if it has none."""
    get_row(conn, tables.pools, pool_id, ctx, "Pool")
    return view(_require(conn, pool_id))


def update(conn: Connection, ctx: Ctx, pool_id: str, changes: dict[str, Any]) -> list[str]:
    """Change the monitor (task ``update_lbpool_health_monitor``; nothing changed: no task)."""
    pool, lb = lock_pool(conn, ctx, pool_id)
    row = _require(conn, pool.id)
    changed = diff(row, patch_values(row, changes, pool.protocol))
    if not changed:
        return []
    task_id = children.new_task_id()
    children.mark(conn, H, [row.id], "PENDING_UPDATE", task_id, changed)
    return [children.begin(conn, ctx, lb.id, "update_lbpool_health_monitor", task_id=task_id)]


def delete(conn: Connection, ctx: Ctx, pool_id: str) -> str:
    """Remove the monitor at once (the API answers 204); return the internal apply task."""
    pool, lb = lock_pool(conn, ctx, pool_id)
    row = _require(conn, pool.id)
    conn.execute(H.delete().where(H.c.id == row.id))
    # The row is gone now; a task still has to bring the data plane in line.
    return children.begin(conn, ctx, lb.id, "delete_lbpool_health_monitor")
