"""Every response body validates against the schema Gcore's OpenAPI subset gives for it.

One scenario drives every operation of ``tests/data/gcore-lb-openapi.json`` to
a success (an LB with listener, pool, members, health monitor, L7 policy and
rule; a floating IP; secrets; tasks; projects; regions; statuses; metrics;
flavors), in both their shapes where a flag changes the shape (``show_stats``,
``details``), and checks each answer against the documented schema for its
status (see ``conformance.py``). The operations the scenario reaches are
counted: every operation of the file but the refused floating IP convert.
"""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.api import conformance
from tests.api.graph import build_graph, tls_payload
from tests.conftest import ADMIN_TOKEN

V1 = "/cloud/v1/{kind}/{project_id}/{region_id}"


class Driver:
    """Sends requests by OpenAPI path, checks each answer, and remembers what failed and what ran."""

    def __init__(self, server, ids: dict[str, Any]) -> None:
        self.http = httpx.Client(base_url=server.url, headers={"Authorization": f"APIKey {ADMIN_TOKEN}"})
        self.ids = ids
        self.problems: list[str] = []
        self.covered: set[tuple[str, str]] = set()

    def __call__(self, method: str, path: str, *, expect: int = 200, **kwargs: Any) -> Any:
        url = re.sub(r"\{(\w+)\}", lambda m: str(self.ids[m[1]]), path)
        r = self.http.request(method, url, timeout=30, **kwargs)
        where = f"{method} {path}"
        if r.status_code != expect:
            self.problems.append(f"{where}: {r.status_code} (expected {expect}) {r.text[:300]}")
            return None
        self.covered.add((method, path))
        self.problems += [f"{where}: {e}" for e in conformance.errors(method, path, r.status_code, r.content)]
        return r.json() if r.content else None

    def wait(self, answer: Any) -> dict[str, list[str]]:
        """Poll the answer's tasks (checking the Task schema too); the resources they created."""
        created: dict[str, list[str]] = {}
        for task_id in (answer or {}).get("tasks", []):
            deadline = time.monotonic() + 30
            task = self.task(task_id)
            while task["state"] in ("NEW", "RUNNING") and time.monotonic() < deadline:
                time.sleep(0.05)
                task = self.task(task_id)
            assert task["state"] == "FINISHED", task
            for kind, ids in (task.get("created_resources") or {}).items():
                created.setdefault(kind, []).extend(ids or [])
        return created

    def task(self, task_id: str) -> dict[str, Any]:
        self.ids["task_id"] = task_id
        return self("GET", "/cloud/v1/tasks/{task_id}")


def _pkcs12() -> str:
    pem = tls_payload()
    key = serialization.load_pem_private_key(pem["private_key"].encode(), None)
    cert = x509.load_pem_x509_certificate(pem["certificate"].encode())
    blob = pkcs12.serialize_key_and_certificates(b"c", key, cert, None, serialization.NoEncryption())
    return base64.b64encode(blob).decode()


LB = "/cloud/v1/loadbalancers/{project_id}/{region_id}"
LB2 = "/cloud/v2/loadbalancers/{project_id}/{region_id}/{load_balancer_id}"
LI = "/cloud/v1/lblisteners/{project_id}/{region_id}"
PO = "/cloud/v1/lbpools/{project_id}/{region_id}"
L7 = "/cloud/v1/l7policies/{project_id}/{region_id}"
FIP = "/cloud/v1/floatingips/{project_id}/{region_id}"
SEC = "/cloud/v1/secrets/{project_id}/{region_id}"


def _reads(d: Driver) -> None:
    for flag in ("true", "false"):
        d("GET", LB, params={"show_stats": flag})
        d("GET", LB + "/{load_balancer_id}", params={"show_stats": flag})
        d("GET", LI, params={"show_stats": flag})
        d("GET", LI + "/{listener_id}", params={"show_stats": flag})
        d("GET", PO, params={"details": flag})
    d("GET", LB + "/status")
    d("GET", LB + "/{load_balancer_id}/status")
    d("GET", PO + "/{pool_id}")
    d("GET", L7)
    d("GET", L7 + "/{l7policy_id}")
    d("GET", L7 + "/{l7policy_id}/rules")
    d("GET", L7 + "/{l7policy_id}/rules/{l7rule_id}")
    d("GET", FIP)
    d("GET", FIP + "/{floating_ip_id}")
    d("GET", SEC)
    d("GET", SEC + "/{secret_id}")
    d("GET", "/cloud/v1/lbflavors/{project_id}/{region_id}", params={"include_prices": "true"})
    d("GET", "/cloud/v1/lbflavors/{project_id}/{region_id}")
    d("GET", "/cloud/v1/tasks", params={"project_id": d.ids["project_id"], "limit": 100})
    d("GET", "/cloud/v1/tasks/{project_id}/{region_id}/active")
    d("GET", "/cloud/v1/projects")
    d("GET", "/cloud/v1/projects/{project_id}")
    d("GET", "/cloud/v1/regions")
    d("GET", "/cloud/v1/regions/{region_id}")
    for unit in ("hour", "day"):
        d("POST", LB + "/{load_balancer_id}/metrics", json={"time_interval": 2, "time_unit": unit})


def _load_balancer_writes(d: Driver) -> None:
    d("POST", LB + "/check_limits", json={"floating_ip": {"source": "new"}})
    d("PATCH", LB + "/{load_balancer_id}", json={"name": "graph-lb-2", "tags": {"x": "1"}})
    d.wait(d("PATCH", LB2, json={"admin_state_up": True, "tags": {"x": None}}))
    d.wait(d("POST", LB + "/{load_balancer_id}/failover", json={"force": False}))
    d.wait(d("POST", LB + "/{load_balancer_id}/resize", json={"flavor": "lb1-2-4"}))
    meta = LB + "/{load_balancer_id}/metadata"
    d("POST", meta, json={"m": "1"}, expect=204)
    d("PUT", meta, json={"m": "2", "team": "graph"}, expect=204)
    d("GET", meta)
    d("GET", LB + "/{load_balancer_id}/metadata_item", params={"key": "m"})
    d("DELETE", LB + "/{load_balancer_id}/metadata_item", params={"key": "m"}, expect=204)
    d.wait(d("POST", LB2 + "/metadata", json={"n": "1"}))
    d.wait(d("PUT", LB2 + "/metadata", json={"n": "2", "team": "graph"}))
    d.wait(d("DELETE", LB2 + "/metadata_item", params={"key": "n"}))


def _children(d: Driver) -> None:
    made = d.wait(
        d(
            "POST",
            LI,
            json={
                "name": "extra",
                "protocol": "TCP",
                "protocol_port": 9000,
                "load_balancer_id": d.ids["load_balancer_id"],
            },
        )
    )
    d.ids["listener_id"] = made["listeners"][0]
    d("PATCH", LI + "/{listener_id}", json={"name": "extra-renamed"})
    d.wait(
        d(
            "PATCH",
            "/cloud/v2/lblisteners/{project_id}/{region_id}/{listener_id}",
            json={"connection_limit": 500},
        )
    )
    body = {
        "name": "extra-pool",
        "protocol": "TCP",
        "lb_algorithm": "LEAST_CONNECTIONS",
        "listener_id": d.ids["listener_id"],
    }
    d.ids["pool_id"] = d.wait(d("POST", PO, json=body))["pools"][0]
    d.wait(d("PATCH", PO + "/{pool_id}", json={"name": "extra-pool-2"}))
    d.wait(
        d(
            "PATCH",
            "/cloud/v2/lbpools/{project_id}/{region_id}/{pool_id}",
            json={"lb_algorithm": "ROUND_ROBIN"},
        )
    )
    hm = {"type": "TCP", "delay": 10, "max_retries": 2, "timeout": 5}
    d.wait(d("POST", PO + "/{pool_id}/healthmonitor", json=hm))
    d("DELETE", PO + "/{pool_id}/healthmonitor", expect=204)
    d.ids["member_id"] = d.wait(
        d("POST", PO + "/{pool_id}/member", json={"address": "127.0.4.9", "protocol_port": 81})
    )["members"][0]
    d.wait(d("DELETE", PO + "/{pool_id}/member/{member_id}"))
    d.ids["l7policy_id"] = d.wait(
        d("POST", L7, json={"listener_id": d.ids["graph_listener_id"], "action": "REJECT"})
    )["l7polices"][0]
    d.wait(d("PATCH", L7 + "/{l7policy_id}", json={"action": "REJECT", "name": "reject-all"}))
    rule = {"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "example.org"}
    d.ids["l7rule_id"] = d.wait(d("POST", L7 + "/{l7policy_id}/rules", json=rule))["l7rules"][0]
    d.wait(d("PUT", L7 + "/{l7policy_id}/rules/{l7rule_id}", json={"invert": True}))
    _reads(d)  # the new objects, in every shape
    d.wait(d("DELETE", L7 + "/{l7policy_id}/rules/{l7rule_id}"))
    d.wait(d("DELETE", L7 + "/{l7policy_id}"))
    d.wait(d("DELETE", LI + "/{listener_id}"))
    d.wait(d("DELETE", PO + "/{pool_id}"))


def _floating_ips_and_secrets(d: Driver) -> None:
    d("POST", FIP + "/{floating_ip_id}/unassign")  # the graph's, so the VIP port is free for the new one
    fip = d.wait(d("POST", FIP, json={"tags": {"a": "1"}}))["floatingips"][0]
    d.ids["floating_ip_id"] = fip
    d("PATCH", FIP + "/{floating_ip_id}", json={"tags": {"b": "2"}})
    d.wait(
        d(
            "PATCH",
            "/cloud/v2/floatingips/{project_id}/{region_id}/{floating_ip_id}",
            json={"tags": {"a": None}},
        )
    )
    d("POST", FIP + "/{floating_ip_id}/assign", json={"port_id": d.ids["vip_port_id"]})
    d("GET", FIP, params={"limit": 10})
    d("POST", FIP + "/{floating_ip_id}/unassign")
    meta = FIP + "/{floating_ip_id}/metadata"
    d("POST", meta, json={"c": "3"}, expect=204)
    d("PUT", meta, json={"c": "4"}, expect=204)
    d("GET", meta)
    d("GET", FIP + "/{floating_ip_id}/metadata_item", params={"key": "c"})
    d("DELETE", FIP + "/{floating_ip_id}/metadata_item", params={"key": "c"}, expect=204)
    d.wait(d("DELETE", FIP + "/{floating_ip_id}"))
    v2 = d.wait(
        d(
            "POST",
            "/cloud/v2/secrets/{project_id}/{region_id}",
            json={"name": "v2-cert", "payload": tls_payload()},
        )
    )
    v1 = {
        "name": "v1-cert",
        "payload": _pkcs12(),
        "payload_content_encoding": "base64",
        "payload_content_type": "application/octet-stream",
        "secret_type": "certificate",
    }
    v1 = d.wait(d("POST", SEC, json=v1))
    for secret_id in v2["secrets"] + v1["secrets"]:
        d.ids["secret_id"] = secret_id
        d("GET", SEC + "/{secret_id}")
        d.wait(d("DELETE", SEC + "/{secret_id}"))


def _tasks_and_projects(d: Driver) -> None:
    task_id = d("GET", "/cloud/v1/tasks", params={"project_id": d.ids["project_id"]})["results"][0]["id"]
    d.ids["task_id"] = task_id
    d("POST", "/cloud/v1/tasks/{task_id}/acknowledge")
    d("POST", "/cloud/v1/tasks/acknowledge", json={"task_ids": [task_id]}, expect=204)
    scope = {"project_id": d.ids["project_id"], "region_id": 1}
    d("POST", "/cloud/v1/tasks/acknowledge_all", params=scope, expect=204)
    d("POST", "/cloud/v1/tasks/acknowledge", params=scope, json={}, expect=204)
    project = d(
        "POST", "/cloud/v1/projects", json={"name": "conformance-project", "description": "d"}, expect=201
    )
    own = d.ids["project_id"]
    d.ids["project_id"] = project["id"]
    d("PATCH", "/cloud/v1/projects/{project_id}", json={"description": "e"})
    d("PUT", "/cloud/v1/projects/{project_id}", json={"name": "conformance-2"})
    d.wait(d("DELETE", "/cloud/v1/projects/{project_id}"))
    d.ids["project_id"] = own


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_every_response_conforms(server) -> None:
    graph = build_graph(server)
    lb = graph.client.cloud.load_balancers.get(graph.ids["load_balancer_id"])
    ids = {**graph.path_ids(), "graph_listener_id": graph.ids["listener_id"], "vip_port_id": lb.vip_port_id}
    d = Driver(server, ids)
    _reads(d)
    _load_balancer_writes(d)
    _children(d)
    _floating_ips_and_secrets(d)
    _tasks_and_projects(d)
    d.ids.update(graph.path_ids())
    d.wait(d("DELETE", LB + "/{load_balancer_id}"))
    made = d.wait(
        d(
            "POST",
            LB,
            json={
                "name": "second-lb",
                "listeners": [{"name": "web", "protocol": "HTTP", "protocol_port": 80}],
            },
        )
    )
    assert d.problems == [], "\n".join(d.problems)
    assert made["loadbalancers"] and made["listeners"]
    documented = {(m.upper(), p) for p, ops in conformance.SPEC["paths"].items() for m in ops}
    left = documented - d.covered
    assert left == {("POST", FIP + "/{floating_ip_id}/convert")}, sorted(left)


def test_the_check_can_fail() -> None:
    """A negative control: a wrong shape and a wrong timestamp are reported."""
    path = LB + "/{load_balancer_id}"
    assert conformance.errors("GET", path, 200, b"{}")
    assert conformance.errors("GET", "/cloud/v1/regions/{region_id}", 200, b'{"id": "one"}')
    assert conformance.errors("POST", "/cloud/v1/tasks/acknowledge", 204, b"{}")
    assert not conformance.errors("GET", path, 404, b"{}")  # errors are not in the file
