"""The Gcore-shaped load balancer body shared by both baseline apps (same bytes as far as possible)."""

from __future__ import annotations

import uuid


def lb_dict(lb_id: str, name: str, created_at: str, updated_at: str | None, tags: dict[str, str]) -> dict:
    return {
        "id": lb_id,
        "name": name,
        "project_id": 1,
        "region_id": 1,
        "region": "Luxembourg",
        "created_at": created_at,
        "updated_at": updated_at,
        "provisioning_status": "ACTIVE",
        "operating_status": "ONLINE",
        "admin_state_up": True,
        "vip_address": "10.0.0.5",
        "vip_port_id": "8f4b5d3e-2c1a-4d6e-9b7a-0c1d2e3f4a5b",
        "vip_ip_family": "ipv4",
        "vrrp_ips": [],
        "additional_vips": [],
        "floating_ips": [],
        "listeners": [],
        "flavor": {"flavor_id": "lb1-1-2", "flavor_name": "lb1-1-2", "vcpus": 1, "ram": 2048},
        "preferred_connectivity": "L2",
        "logging": None,
        "stats": None,
        "ddos_profile": None,
        "task_id": None,
        "creator_task_id": str(uuid.UUID(int=0)),
        "tags_v2": [{"key": k, "value": v, "read_only": False} for k, v in tags.items()],
    }


def seed_row(i: int) -> tuple[str, str, str, dict[str, str]]:
    """(id, name, created_at, tags) of the i-th seeded LB (i from 1): distinct, sortable created_at."""
    lb_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"lb-{i}"))
    created = f"2024-01-{1 + i // 86400:02d}T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}+0000"
    return lb_id, f"lb-{i:05d}", created, {"env": "bench", "team": f"t{i % 10}"}


def seeded_lb(i: int) -> dict:
    lb_id, name, created, tags = seed_row(i)
    return lb_dict(lb_id, name, created, None, tags)
