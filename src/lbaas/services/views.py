"""Rows to wire dicts: the response shapes of SDK 0.59.0, in one module."""

from __future__ import annotations

from typing import Any

from lbaas.clock import fmt_resource, fmt_task
from lbaas.domain.tags import Tag, to_wire
from lbaas.services.common import flavor_view


def floating_ip(row: Any, tags: dict[str, Tag], region: str) -> dict[str, Any]:
    """``FloatingIP``."""
    return {
        "id": row.id,
        "project_id": row.project_id,
        "region_id": row.region_id,
        "region": region,
        "floating_ip_address": row.floating_ip_address,
        "fixed_ip_address": row.fixed_ip_address,
        "port_id": row.port_id,
        "router_id": row.router_id,
        "status": row.status,
        "tags": to_wire(tags),
        "task_id": row.task_id,
        "creator_task_id": row.creator_task_id,
        "created_at": fmt_resource(row.created_at),
        "updated_at": fmt_resource(row.updated_at),
        "dns_domain": None,
        "dns_name": None,
        "subnet_id": None,
    }


def load_balancer(
    row: Any,
    tags: dict[str, Tag],
    listener_ids: list[str],
    fips: list[dict[str, Any]],
    region: str,
    stats: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``LoadBalancer``: every field the SDK declares, lists never null."""
    return {
        "id": row.id,
        "name": row.name,
        "project_id": row.project_id,
        "region_id": row.region_id,
        "region": region,
        "created_at": fmt_resource(row.created_at),
        "updated_at": fmt_resource(row.updated_at),
        "creator_task_id": row.creator_task_id,
        "task_id": row.task_id,
        "provisioning_status": row.provisioning_status,
        "operating_status": row.operating_status,
        "admin_state_up": row.admin_state_up,
        "vip_address": row.vip_address,
        "vip_port_id": row.vip_port_id,
        "vip_ip_family": row.vip_ip_family,
        "vip_fqdn": None,
        "additional_vips": [],
        "vrrp_ips": [],
        "listeners": [{"id": i} for i in listener_ids],
        "floating_ips": fips,
        "flavor": flavor_view(row.flavor),
        "logging": row.logging,
        "preferred_connectivity": row.preferred_connectivity,
        "stats": stats,
        "ddos_profile": None,
        "tags_v2": to_wire(tags),
    }


def task(row: Any) -> dict[str, Any]:
    """``Task``."""
    return {
        "id": row.id,
        "task_type": row.task_type,
        "state": row.state,
        "project_id": row.project_id,
        "region_id": row.region_id,
        "user_id": row.user_id,
        "client_id": row.client_id,
        "user_client_id": None,
        "request_id": row.request_id,
        "created_on": fmt_task(row.created_on),
        "updated_on": fmt_task(row.updated_on),
        "finished_on": fmt_task(row.finished_on),
        "acknowledged_at": fmt_task(row.acknowledged_at),
        "acknowledged_by": row.acknowledged_by,
        "created_resources": row.created_resources,
        "data": row.data,
        "error": row.error,
        "detailed_state": None,
        "job_id": None,
        "lifecycle_policy_id": None,
        "schedule_id": None,
    }
