"""Deprecated operations of Gcore's OpenAPI that SDK 0.59.0 does not call, with their documented behaviour.

Tag ("metadata") calls of load balancers (v1 and v2) and floating IPs, the v1
floating IP PATCH, floating IP convert, the project PUT and the bulk task
acknowledge.
"""

from __future__ import annotations

import httpx
import pytest

from lbaas.services import tags as tags_svc
from tests.conftest import ADMIN_TOKEN


@pytest.fixture
def http(server, project):
    with httpx.Client(base_url=server.url, headers={"Authorization": f"APIKey {project[1]}"}) as c:
        yield c


def _tags(client, lb_id: str) -> dict[str, str]:
    return {t.key: t.value for t in client.cloud.load_balancers.get(lb_id).tags_v2}


def _wait(client, task_ids: list[str]) -> None:
    for task_id in task_ids:
        assert client.cloud.tasks.poll(task_id).state == "FINISHED"


def test_lb_metadata_v1(server, client, http) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="meta-lb", tags={"a": "1"})
    base = f"/cloud/v1/loadbalancers/{client.cloud_project_id}/1/{lb.id}"
    r = http.post(base + "/metadata", json={"b": "2", "a": "one"})
    assert r.status_code == 204 and r.content == b""
    assert _tags(client, lb.id) == {"a": "one", "b": "2"}
    listed = http.get(base + "/metadata").json()
    assert listed == {
        "count": 2,
        "results": [
            {"key": "a", "value": "one", "read_only": False},
            {"key": "b", "value": "2", "read_only": False},
        ],
    }
    assert http.get(base + "/metadata_item", params={"key": "b"}).json() == {
        "key": "b",
        "value": "2",
        "read_only": False,
    }
    with server.db.write() as conn:
        tags_svc.add_read_only(conn, lb.id, "owner", "ops")
    # PUT replaces the user tags (a null value just leaves that key out); read-only ones stay.
    assert http.put(base + "/metadata", json={"c": "3", "d": None}).status_code == 204
    assert _tags(client, lb.id) == {"c": "3", "owner": "ops"}
    assert http.delete(base + "/metadata_item", params={"key": "c"}).status_code == 204
    assert _tags(client, lb.id) == {"owner": "ops"}
    # Missing tag: 404; a read-only one: 400; no key: 400; null value on POST: 400. Nothing changes.
    assert http.get(base + "/metadata_item", params={"key": "c"}).status_code == 404
    assert http.delete(base + "/metadata_item", params={"key": "c"}).status_code == 404
    assert http.delete(base + "/metadata_item", params={"key": "owner"}).status_code == 400
    assert http.delete(base + "/metadata_item").status_code == 400
    r = http.post(base + "/metadata", json={"x": None})
    assert r.status_code == 400 and "x" in r.json()["invalid_fields"]
    assert _tags(client, lb.id) == {"owner": "ops"}
    missing = f"/cloud/v1/loadbalancers/{client.cloud_project_id}/1/8f6f1c1e-25f4-4d4f-bb5e-30f3d2a9f2a1"
    assert http.get(missing + "/metadata").status_code == 404


def test_lb_metadata_v2(client, http) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="meta-lb2", tags={"a": "1", "b": "2"})
    base = f"/cloud/v2/loadbalancers/{client.cloud_project_id}/1/{lb.id}"
    r = http.post(base + "/metadata", json={"c": "3", "a": None})
    assert r.status_code == 200 and len(r.json()["tasks"]) == 1
    _wait(client, r.json()["tasks"])
    assert client.cloud.tasks.get(r.json()["tasks"][0]).task_type == "update_loadbalancer"
    assert _tags(client, lb.id) == {"b": "2", "c": "3"}
    r = http.put(base + "/metadata", json={"z": "26"})
    _wait(client, r.json()["tasks"])
    assert _tags(client, lb.id) == {"z": "26"}
    r = http.delete(base + "/metadata_item", params={"key": "z"})
    _wait(client, r.json()["tasks"])
    assert _tags(client, lb.id) == {}
    assert http.delete(base + "/metadata_item").status_code == 400
    assert http.delete(base + "/metadata_item", params={"key": "z"}).status_code == 404


def test_floating_ip_metadata_and_v1_patch(client, http) -> None:
    fip = client.cloud.floating_ips.create_and_poll(tags={"a": "1"})
    base = f"/cloud/v1/floatingips/{client.cloud_project_id}/1/{fip.id}"

    def tags() -> dict[str, str]:
        return {t.key: t.value for t in client.cloud.floating_ips.get(fip.id).tags}

    assert http.post(base + "/metadata", json={"b": "2"}).status_code == 204
    assert tags() == {"a": "1", "b": "2"}
    assert http.get(base + "/metadata").json()["count"] == 2
    assert http.get(base + "/metadata_item", params={"key": "a"}).json()["value"] == "1"
    assert http.put(base + "/metadata", json={"c": "3"}).status_code == 204
    assert tags() == {"c": "3"}
    # PUT takes CreateTagsSerializer here: a null value is a 400.
    assert http.put(base + "/metadata", json={"c": None}).status_code == 400
    assert http.delete(base + "/metadata_item", params={"key": "c"}).status_code == 204
    assert tags() == {}
    # v1 PATCH: synchronous merge patch, answers the floating IP.
    r = http.patch(base, json={"tags": {"k": "v", "w": "x"}})
    assert r.status_code == 200 and r.json()["id"] == fip.id
    assert {t["key"] for t in r.json()["tags"]} == {"k", "w"}
    r = http.patch(base, json={"tags": {"w": None}})
    assert [t["key"] for t in r.json()["tags"]] == ["k"]
    r = http.patch(base, json={"tags": None})
    assert r.json()["tags"] == []
    assert http.patch(base, json={}).json()["id"] == fip.id


def test_floating_ip_convert_is_refused(client, http) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="conv-lb")
    free = client.cloud.floating_ips.create_and_poll()
    used = client.cloud.floating_ips.create_and_poll(port_id=lb.vip_port_id)
    pid = client.cloud_project_id
    body = {"target_type": "reserved_fixed_ip"}
    r = http.post(f"/cloud/v1/floatingips/{pid}/1/{free.id}/convert", json=body)
    assert r.status_code == 400 and "target_type" in r.json()["invalid_fields"]
    r = http.post(f"/cloud/v1/floatingips/{pid}/1/{used.id}/convert", json=body)
    assert r.status_code == 400 and "port_id" in r.json()["invalid_fields"]
    r = http.post(f"/cloud/v1/floatingips/{pid}/1/8f6f1c1e-25f4-4d4f-bb5e-30f3d2a9f2a1/convert", json=body)
    assert r.status_code == 404
    assert client.cloud.floating_ips.get(free.id).floating_ip_address == free.floating_ip_address


def test_project_put_replaces_name_and_description(server, project) -> None:
    pid, token = project
    admin = {"Authorization": f"APIKey {ADMIN_TOKEN}"}
    url = f"{server.url}/cloud/v1/projects/{pid}"
    assert httpx.patch(url, json={"description": "before"}, headers=admin).status_code == 200
    r = httpx.put(url, json={"name": "renamed-project"}, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["description"]) == ("renamed-project", None)
    r = httpx.put(url, json={"name": "again-project", "description": "d"}, headers=admin)
    assert (r.json()["name"], r.json()["description"]) == ("again-project", "d")
    assert httpx.put(url, json={"description": "x"}, headers=admin).status_code == 400
    r = httpx.put(url, json={"name": "mine-project"}, headers={"Authorization": f"APIKey {token}"})
    assert r.status_code == 403


def test_bulk_acknowledge(client, http) -> None:
    a = client.cloud.floating_ips.create_and_poll()
    b = client.cloud.floating_ips.create_and_poll()
    c = client.cloud.floating_ips.create_and_poll()
    ta, tb, tc = (client.cloud.floating_ips.get(f.id).creator_task_id for f in (a, b, c))
    unknown = "8f6f1c1e-25f4-4d4f-bb5e-30f3d2a9f2a1"
    # One unknown id: 404, and nothing is acknowledged.
    assert http.post("/cloud/v1/tasks/acknowledge", json={"task_ids": [ta, unknown]}).status_code == 404
    assert client.cloud.tasks.get(ta).acknowledged_at is None
    r = http.post("/cloud/v1/tasks/acknowledge", json={"task_ids": [ta, tb]})
    assert r.status_code == 204 and r.content == b""
    assert client.cloud.tasks.get(ta).acknowledged_at is not None
    assert client.cloud.tasks.get(tc).acknowledged_at is None
    assert http.post("/cloud/v1/tasks/acknowledge", json={"task_ids": ["nope"]}).status_code == 400
    # No ids: every task the key can see.
    assert http.post("/cloud/v1/tasks/acknowledge", json={}).status_code == 204
    assert client.cloud.tasks.get(tc).acknowledged_at is not None
