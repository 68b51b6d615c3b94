"""Bad input and bad credentials: Gcore's error body, a 4xx, never a 5xx, nothing changed."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, make_client


@pytest.fixture
def http(server, project):
    """Plain httpx against the server, with the project's key."""
    with httpx.Client(base_url=server.url, headers={"Authorization": f"APIKey {project[1]}"}) as c:
        yield c, project[0]


def assert_error(resp: httpx.Response, status: int, exception_class: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) >= {"exception_class", "message", "request_id"}
    assert body["request_id"] == resp.headers["x-request-id"]
    if exception_class:
        assert body["exception_class"] == exception_class
    return body


def lb_count(http_client, project_id: int) -> int:
    return http_client.get(f"/cloud/v1/loadbalancers/{project_id}/1").json()["count"]


@pytest.mark.parametrize("content", [b"{not json", b"[1,2]", b'{"name": 5}', b'"str"', b"null"])
def test_malformed_bodies(http, content) -> None:
    c, pid = http
    r = c.post(
        f"/cloud/v1/loadbalancers/{pid}/1", content=content, headers={"content-type": "application/json"}
    )
    body = assert_error(r, 400, "ValidationError")
    assert body["invalid_fields"]
    assert lb_count(c, pid) == 0


@pytest.mark.parametrize(
    "path",
    [
        "/cloud/v1/loadbalancers/abc/1",
        "/cloud/v1/loadbalancers/{pid}/1/not-a-uuid",
        "/cloud/v1/loadbalancers/{pid}/1?limit=-1",
        "/cloud/v1/loadbalancers/{pid}/1?limit=1001",
        "/cloud/v1/loadbalancers/{pid}/1?offset=-3",
        "/cloud/v1/loadbalancers/{pid}/1?show_stats=maybe",
        "/cloud/v1/tasks/not-a-uuid",
        "/cloud/v1/loadbalancers/{pid}/1?operating_status=GREAT",
    ],
)
def test_bad_path_and_query(http, path) -> None:
    c, pid = http
    assert_error(c.get(path.format(pid=pid)), 400, "ValidationError")


def test_unknown_ids_are_404(http) -> None:
    c, pid = http
    lb = "8f6f1c1e-25f4-4d4f-bb5e-30f3d2a9f2a1"
    assert_error(c.get(f"/cloud/v1/loadbalancers/{pid}/1/{lb}"), 404, "NotFoundError")
    assert_error(c.get(f"/cloud/v1/loadbalancers/{pid}/77/{lb}"), 404, "NotFoundError")
    assert_error(c.get(f"/cloud/v1/tasks/{lb}"), 404, "NotFoundError")
    assert_error(c.get("/cloud/v1/nothing/here"), 404)


def test_method_not_allowed(http) -> None:
    c, pid = http
    assert_error(c.put(f"/cloud/v1/loadbalancers/{pid}/1", json={}), 405, "HTTPError")


def test_oversized_body_is_413(http) -> None:
    c, pid = http
    big = b'{"name": "' + b"a" * (2 << 20) + b'"}'
    r = c.post(f"/cloud/v1/loadbalancers/{pid}/1", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["exception_class"]
    assert lb_count(c, pid) == 0


@pytest.mark.parametrize(
    "header, message",
    [
        (None, "Authentication credentials were not provided."),
        ("Bearer abc", "Given token not valid for any token type"),
        ("APIKey 123", "Bad permanent token: 123"),
        ("APIKey 1$" + "0" * 64, "Token is invalid or expired"),
    ],
)
def test_auth_errors(server, header, message) -> None:
    headers = {"Authorization": header} if header else {}
    r = httpx.get(f"{server.url}/cloud/v1/loadbalancers/1/1", headers=headers)
    assert assert_error(r, 401)["message"] == message


def test_scheme_is_case_insensitive(server, project) -> None:
    for scheme in ("apikey", "APIKEY", "ApiKey"):
        r = httpx.get(
            f"{server.url}/cloud/v1/loadbalancers/{project[0]}/1",
            headers={"Authorization": f"{scheme} {project[1]}"},
        )
        assert r.status_code == 200


def test_project_isolation(server, client) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="mine-lb")
    other_pid, other_token = server.new_project()
    other = make_client(server, other_token, other_pid)
    # The other key naming my project: 403. My ids under its own project: 404.
    r = httpx.get(
        f"{server.url}/cloud/v1/loadbalancers/{client.cloud_project_id}/1",
        headers={"Authorization": f"APIKey {other_token}"},
    )
    assert_error(r, 403, "ForbiddenError")
    with pytest.raises(Exception) as exc:
        other.cloud.load_balancers.get(lb.id)
    assert getattr(exc.value, "status_code", None) == 404
    task_id = client.cloud.load_balancers.list().results[0].creator_task_id
    with pytest.raises(Exception) as exc:
        other.cloud.tasks.get(task_id)
    assert getattr(exc.value, "status_code", None) == 404
    assert other.cloud.tasks.list().count == 0
    admin = make_client(server, ADMIN_TOKEN, client.cloud_project_id)
    assert admin.cloud.load_balancers.get(lb.id).id == lb.id


def test_revoked_key_stops_at_once(server) -> None:
    from lbaas.services import auth

    pid, token = server.new_project()
    c = make_client(server, token, pid)
    assert c.cloud.load_balancers.list().count == 0
    with server.db.write() as conn:
        key_id = auth.authenticate(conn, token).key_id
        auth.revoke(conn, key_id)
    r = httpx.get(
        f"{server.url}/cloud/v1/loadbalancers/{pid}/1", headers={"Authorization": f"APIKey {token}"}
    )
    assert assert_error(r, 401)["message"] == "Token is invalid or expired"


def test_healthz_and_request_id(server) -> None:
    r = httpx.get(f"{server.url}/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok" and len(r.headers["x-request-id"]) == 32
