"""Projects (admin) and regions."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.clock import fmt_resource, utcnow
from lbaas.db import queue, tables
from lbaas.errors import Conflict, NotFound, ValidationFailed
from lbaas.services.auth import Principal
from lbaas.services.common import fetch_page, page

P = tables.projects
R = tables.regions


def view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "client_id": row.client_id,
        "name": row.name,
        "description": row.description,
        "is_default": row.is_default,
        "state": row.state,
        "created_at": fmt_resource(row.created_at),
        "deleted_at": fmt_resource(row.deleted_at),
        "task_id": row.task_id,
    }


def _row(conn: Connection, principal: Principal, project_id: int) -> Any:
    principal.check_project(project_id)
    row = conn.execute(sa.select(P).where(P.c.id == project_id, P.c.deleted_at.is_(None))).first()
    if row is None:
        raise NotFound.of("Project", project_id)
    return row


def get(conn: Connection, principal: Principal, project_id: int) -> dict[str, Any]:
    return view(_row(conn, principal, project_id))


def list_(
    conn: Connection,
    principal: Principal,
    *,
    limit: int,
    offset: int,
    name: str | None,
    include_deleted: bool,
    order_by: str | None,
) -> dict[str, Any]:
    where = []
    if not principal.is_admin:
        where.append(P.c.id == principal.project_id)
    if not include_deleted:
        where.append(P.c.deleted_at.is_(None))
    if name is not None:
        where.append(P.c.name == name)
    field, _, direction = (order_by or "created_at.desc").partition(".")
    cols = {"created_at": P.c.created_at, "name": P.c.name}
    if field not in cols or direction not in ("asc", "desc"):  # Gcore: order_by is an enum
        raise ValidationFailed.field(
            "order_by", "one of created_at.asc, created_at.desc, name.asc, name.desc"
        )
    order = [cols[field].asc(), P.c.id.asc()] if direction == "asc" else [cols[field].desc(), P.c.id.desc()]
    total, rows = fetch_page(conn, P, where, order, limit, offset)
    return page(total, [view(r) for r in rows])


def create(conn: Connection, principal: Principal, name: str, description: str | None) -> dict[str, Any]:
    principal.require_admin()
    pid = conn.execute(
        P.insert()
        .values(
            client_id=1,
            name=name,
            description=description,
            is_default=False,
            state="ACTIVE",
            created_at=utcnow(),
        )
        .returning(P.c.id)
    ).scalar_one()
    return get(conn, principal, pid)


def update(
    conn: Connection, principal: Principal, project_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    principal.require_admin()
    _row(conn, principal, project_id)
    values = {
        k: v for k, v in changes.items() if k in ("name", "description") and (k != "name" or v is not None)
    }
    if values:
        conn.execute(P.update().where(P.c.id == project_id).values(**values))
    return get(conn, principal, project_id)


def delete(conn: Connection, principal: Principal, project_id: int) -> str:
    principal.require_admin()
    row = _row(conn, principal, project_id)
    if row.is_default:  # Gcore: "default project cannot be deleted" (spec/API.md §12.1)
        raise ValidationFailed.field("project_id", "the default project cannot be deleted")
    lbs = conn.execute(
        sa.select(sa.func.count()).where(tables.load_balancers.c.project_id == project_id)
    ).scalar_one()
    # Stricter than Gcore, whose delete removes "all its associated cloud resources": the
    # cascade would need the task engine to delete the LBs first. A known gap.
    if lbs:
        raise Conflict(f"Project {project_id} still has {lbs} load balancer(s); delete them first")
    scope = queue.Scope(project_id, None, principal.user_id)
    task_id = queue.enqueue(
        conn, scope, "delete_project", lock_key=f"project:{project_id}", args={"project_id": project_id}
    )
    conn.execute(P.update().where(P.c.id == project_id).values(task_id=task_id))
    return task_id


def region_view(row: Any) -> dict[str, Any]:
    slug = row.name.lower().replace(" ", "-")
    return {
        "id": row.id,
        "display_name": row.name,
        "slug": slug,
        "keystone_id": row.id,
        "keystone_name": slug,
        "country": "LU",
        "access_level": "core",
        "endpoint_type": "public",
        "state": "ACTIVE",
        "created_at": fmt_resource(row.created_at),
        "created_on": fmt_resource(row.created_at),
        "vlan_physical_network": "",
        "has_ai": False,
        "has_ai_gpu": False,
        "has_baremetal": False,
        "has_basic_vm": False,
        "has_dbaas": False,
        "has_ddos": False,
        "has_k8s": False,
        "has_kvm": False,
        "has_sfs": False,
        "available_volume_types": None,
        "coordinates": None,
        "external_network_id": None,
        "file_share_types": None,
        "metrics_database_id": None,
        "task_id": None,
        "zone": "EMEA",
        "ddos_endpoint_id": None,
    }


def get_region(conn: Connection, region_id: int) -> dict[str, Any]:
    row = conn.execute(sa.select(R).where(R.c.id == region_id)).first()
    if row is None:
        raise NotFound.of("Region", region_id)
    return region_view(row)


def list_regions(
    conn: Connection, *, limit: int, offset: int, display_name: str | None, order_by: str | None
) -> dict[str, Any]:
    where = []
    if display_name is not None:
        where.append(sa.func.lower(R.c.name) == display_name.lower())
    field, _, direction = (order_by or "created_at.desc").partition(".")
    cols = {"created_at": R.c.created_at, "display_name": R.c.name}
    if field not in cols or direction not in ("asc", "desc"):  # Gcore: order_by is an enum
        raise ValidationFailed.field("order_by", "one of created_at.asc|desc, display_name.asc|desc")
    col = cols[field].asc() if direction == "asc" else cols[field].desc()
    total, rows = fetch_page(conn, R, where, (col, R.c.id), limit, offset)
    return page(total, [region_view(r) for r in rows])
