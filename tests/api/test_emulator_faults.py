"""Emulator controls on the shared servers: injected HTTP errors, latency, task failures, health flips.

Every fault here is scoped to the test's own project (the servers are shared by the whole
session), and the ``controls`` fixture clears what a test left behind.
"""

from __future__ import annotations

import threading
import time

import gcore
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from lbaas.db import tables
from lbaas.emulator.faults import rng_for
from tests.conftest import ADMIN_TOKEN, make_client


class Admin:
    """The emulator's admin API over plain HTTP."""

    def __init__(self, url: str, token: str = ADMIN_TOKEN) -> None:
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"APIKey {token}"}, timeout=30)

    def call(self, method: str, path: str, expect: int = 200, **kw) -> dict:
        r = self.http.request(method, "/lbaas/v1" + path, **kw)
        assert r.status_code == expect, (method, path, r.status_code, r.text)
        return r.json() if r.content else {}

    def fault(self, **spec) -> dict:
        return self.call("POST", "/faults", 201, json=spec)


@pytest.fixture
def admin(server):
    a = Admin(server.url)
    yield a
    a.call("DELETE", "/faults")
    a.call("PUT", "/journal", json={"size": 0})


def test_admin_api_needs_the_admin_key(server, project) -> None:
    as_project = Admin(server.url, project[1])
    for method, path in (("POST", "/reset"), ("GET", "/faults"), ("GET", "/journal"), ("POST", "/faults")):
        body = as_project.call(method, path, 403, json={"kind": "task"} if path == "/faults" else None)
        assert body["exception_class"] == "ForbiddenError"
    anonymous = httpx.post(server.url + "/lbaas/v1/reset")
    assert anonymous.status_code == 401


def test_bad_fault_bodies_are_400(admin) -> None:
    for spec, field in (
        ({"kind": "http", "status": 404}, "status"),
        ({"kind": "http", "status": 500, "path_regex": "("}, "path_regex"),
        ({"kind": "latency", "latency_ms": 100, "latency_max_ms": 50}, "latency_max_ms"),
        ({"kind": "http", "status": 500, "probability": 2}, "probability"),
        ({"kind": "chaos"}, "kind"),
        ({"kind": "health", "status": "DOWN"}, "member_id"),
    ):
        body = admin.call("POST", "/faults", 400, json=spec)
        assert body["exception_class"] == "ValidationError"
        assert any(field in k for k in body["invalid_fields"]) or field in body["message"], (spec, body)
    assert admin.call("GET", "/faults")["results"] == []


def test_injected_429_is_retried_by_the_sdk_without_side_effects(server, project, admin) -> None:
    pid, token = project
    admin.call("PUT", "/journal", json={"size": 1000})
    admin.fault(
        kind="http", status=429, method="POST", path_regex="/loadbalancers/", project_id=pid, retry_after=0.05
    )
    client = make_client(server, token, pid, max_retries=2)
    lb = client.cloud.load_balancers.create_and_poll(name="after-429")
    assert client.cloud.load_balancers.list().count == 1 and lb.provisioning_status == "ACTIVE"
    posts = admin.call("GET", "/journal", params={"method": "POST", "project_id": pid})["results"]
    assert [(p["status"], p["retry_count"], p["injected_fault"] is not None) for p in posts] == [
        (429, 0, True),
        (200, 1, False),
    ]
    [fault] = admin.call("GET", "/faults", params={"all": True})["results"]
    assert fault["remaining"] == 0 and fault["injected"] == 1


def test_injected_errors_change_nothing(server, project, admin) -> None:
    pid, token = project
    client = make_client(server, token, pid, max_retries=0)
    admin.fault(kind="http", status=429, path_regex="/loadbalancers/", project_id=pid)
    with pytest.raises(gcore.RateLimitError) as exc:
        client.cloud.load_balancers.create(name="never")
    assert exc.value.response.headers["retry-after"] == "1"  # Gcore sends Retry-After on 429
    assert exc.value.body["exception_class"] == "TooManyRequests" and exc.value.body["request_id"]
    admin.fault(kind="http", status=409, method="POST", project_id=pid, count=2, message="busy, try later")
    for _ in range(2):
        with pytest.raises(gcore.ConflictError, match="busy, try later"):
            client.cloud.load_balancers.create(name="never")
    admin.fault(kind="http", status=503, method="POST", project_id=pid)
    with pytest.raises(gcore.InternalServerError):
        client.cloud.load_balancers.create(name="never")
    assert "retry-after" not in exc.value.response.headers or exc.value.response.status_code == 429
    # Nothing was created and no task was queued; the next request is served normally.
    assert client.cloud.load_balancers.list().count == 0
    assert client.cloud.tasks.list(project_id=[pid]).count == 0
    assert client.cloud.load_balancers.create_and_poll(name="now").name == "now"


def test_faults_are_scoped(server, project, admin) -> None:
    pid, token = project
    other_pid, other_token = server.new_project()
    admin.fault(
        kind="http", status=500, path_regex=r"/loadbalancers/\d+/1$", method="GET", project_id=pid, count=None
    )
    mine = make_client(server, token, pid, max_retries=0)
    theirs = make_client(server, other_token, other_pid, max_retries=0)
    assert theirs.cloud.load_balancers.list().count == 0  # another project
    assert mine.cloud.floating_ips.list().count == 0  # another path
    for _ in range(3):  # no count: every matching request
        with pytest.raises(gcore.InternalServerError):
            mine.cloud.load_balancers.list()
    admin.call("DELETE", "/faults")
    assert mine.cloud.load_balancers.list().count == 0


def test_probability_with_a_seed_is_reproducible(server, project, admin) -> None:
    pid, token = project
    client = make_client(server, token, pid, max_retries=0)

    def run() -> list[bool]:
        admin.fault(
            kind="http", status=500, method="GET", project_id=pid, probability=0.5, seed=42, count=None
        )
        outcomes = []
        for _ in range(20):
            try:
                client.cloud.load_balancers.list()
                outcomes.append(False)
            except gcore.InternalServerError:
                outcomes.append(True)
        admin.call("DELETE", "/faults")
        return outcomes

    first, second = run(), run()
    assert first == second
    assert first == [rng_for(42, n).random() < 0.5 for n in range(1, 21)]
    assert 0 < sum(first) < 20


def test_latency(server, project, admin) -> None:
    pid, token = project
    client = make_client(server, token, pid, max_retries=0)
    admin.fault(
        kind="latency", latency_ms=300, method="GET", path_regex="/loadbalancers/", project_id=pid, count=1
    )
    started = time.monotonic()
    assert client.cloud.load_balancers.list().count == 0
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    client.cloud.load_balancers.list()
    assert time.monotonic() - started < 0.3  # count 1: spent


def test_fail_next_task(server, project, admin) -> None:
    pid, token = project
    client = make_client(server, token, pid)
    lbs = client.cloud.load_balancers
    lb = lbs.create_and_poll(name="lb-task-fault")
    admin.fault(kind="task", task_type="create_lbpool", project_id=pid, error="no room for this pool")
    with pytest.raises(ValueError, match="no room for this pool"):
        lbs.pools.create_and_poll(
            name="pool-1", lb_algorithm="ROUND_ROBIN", protocol="HTTP", load_balancer_id=lb.id
        )
    [pool] = lbs.pools.list(load_balancer_id=lb.id, details=True).results
    assert pool.provisioning_status == "ERROR"
    assert lbs.get(lb.id).provisioning_status == "ACTIVE"
    # Spent after one task: the next pool is created.
    ok = lbs.pools.create_and_poll(
        name="pool-2", lb_algorithm="ROUND_ROBIN", protocol="HTTP", load_balancer_id=lb.id
    )
    assert ok.provisioning_status == "ACTIVE"
    # A failed LB create ends in ERROR exactly as a real failure does.
    admin.fault(kind="task", task_type="create_loadbalancer", project_id=pid)
    task_id = lbs.create(name="lb-doomed").tasks[0]
    task = client.cloud.tasks.get(task_id)
    assert task.state == "ERROR" and task.error == "injected failure (lbaas emulator)"
    doomed = lbs.list(name="lb-doomed").results[0]
    assert (doomed.provisioning_status, doomed.operating_status) == ("ERROR", "ERROR")
    faults = admin.call("GET", "/faults", params={"all": True})["results"]
    assert [f["injected"] for f in faults] == [1, 1]


def _tree(client):
    return client.cloud.load_balancers.create_and_poll(
        name="lb-health",
        listeners=[
            {
                "name": "web",
                "protocol": "HTTP",
                "protocol_port": 80,
                "pools": [
                    {
                        "name": "web-pool",
                        "protocol": "HTTP",
                        "lb_algorithm": "ROUND_ROBIN",
                        "members": [
                            {"address": "127.0.0.10", "protocol_port": 8080},
                            {"address": "127.0.0.11", "protocol_port": 8080},
                        ],
                        "healthmonitor": {"type": "TCP", "delay": 5, "timeout": 3, "max_retries": 2},
                    }
                ],
            }
        ],
    )


def _statuses(client, lb_id: str) -> tuple[str, str, str, list[str]]:
    tree = client.cloud.load_balancers.statuses.get(lb_id)
    listener = tree.listeners[0]
    pool = listener.pools[0]
    members = sorted(pool.members, key=lambda m: m.address)
    return (
        tree.operating_status,
        listener.operating_status,
        pool.operating_status,
        [m.operating_status for m in members],
    )


def test_health_flips_degrade_and_recover(server, project, admin) -> None:
    pid, token = project
    client = make_client(server, token, pid)
    lb = _tree(client)
    assert _statuses(client, lb.id) == ("ONLINE", "ONLINE", "ONLINE", ["ONLINE", "ONLINE"])
    pool = client.cloud.load_balancers.pools.list(load_balancer_id=lb.id, details=True).results[0]
    first = min(pool.members, key=lambda m: m.address)
    flip = admin.fault(kind="health", member_id=first.id, status="DOWN")
    assert flip["load_balancer_id"] == lb.id and flip["project_id"] == pid
    assert _statuses(client, lb.id) == ("DEGRADED", "DEGRADED", "DEGRADED", ["ERROR", "ONLINE"])
    seen = server.provider.observe([lb.id])[lb.id].members  # what the poller reads
    assert {k: v.health for k, v in seen.items()} == {first.id: "DOWN"} and "emulator" in seen[
        first.id
    ].check_desc
    # A task that later changes the LB keeps the flip (it is stored like a measurement).
    extra = client.cloud.load_balancers.listeners.create_and_poll(
        load_balancer_id=lb.id, name="tcp-9000", protocol="TCP", protocol_port=9000
    )
    client.cloud.load_balancers.listeners.delete_and_poll(extra.id)
    assert _statuses(client, lb.id) == ("DEGRADED", "DEGRADED", "DEGRADED", ["ERROR", "ONLINE"])
    admin.fault(kind="health", pool_id=pool.id, status="DOWN")  # the whole pool: an outage
    assert _statuses(client, lb.id) == ("ERROR", "ERROR", "ERROR", ["ERROR", "ERROR"])
    assert client.cloud.load_balancers.get(lb.id).operating_status == "ERROR"
    # A member added to the flipped pool is reported DOWN too, by the poller.
    added = client.cloud.load_balancers.pools.members.create(
        pool.id, address="127.0.0.12", protocol_port=8080
    )
    client.cloud.tasks.poll(added.tasks[0])
    deadline = time.monotonic() + 15
    while _statuses(client, lb.id)[3] != ["ERROR"] * 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _statuses(client, lb.id)[3] == ["ERROR"] * 3
    kinds = [f["kind"] for f in admin.call("GET", "/faults")["results"]]
    assert kinds == ["health", "health"]
    assert admin.call("DELETE", "/faults", params={"kind": "health"}) == {"removed": 2}
    assert _statuses(client, lb.id) == ("ONLINE", "ONLINE", "ONLINE", ["ONLINE"] * 3)
    assert server.provider.observe([lb.id])[lb.id].members == {}
    admin.call("POST", "/faults", 404, json={"kind": "health", "member_id": pool.id, "status": "DOWN"})


def test_quiet_controls_cost_no_query_per_request(server, project) -> None:
    """With nothing configured, requests do not read the controls (one version read per 0.25 s)."""
    pid, token = project
    client = make_client(server, token, pid)
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        # Only the request path: task runs (inline or background) read the version on purpose.
        # (A reload after a change reads the faults too; the version check is what runs per period.)
        quiet = not threading.current_thread().name.startswith(("lbaas-", "AnyIO"))
        if "FROM emulator_state" in statement and quiet:
            seen.append(statement)

    engines = {server.db.reader, server.db.writer}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        started = time.monotonic()
        for _ in range(100):
            client.cloud.load_balancers.list()
        elapsed = time.monotonic() - started
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
    assert len(seen) <= elapsed / 0.25 + 3 and len(seen) < 20, seen[:5]


def test_journal_filters_and_size(server, project, admin) -> None:
    pid, token = project
    client = make_client(server, token, pid, max_retries=0)
    admin.call("PUT", "/journal", json={"size": 5})
    for _ in range(7):
        client.cloud.load_balancers.list()
    admin.fault(kind="http", status=502, method="GET", project_id=pid)
    with pytest.raises(gcore.InternalServerError):
        client.cloud.floating_ips.list()
    everything = admin.call("GET", "/journal")
    assert everything["size"] == 5 and everything["count"] == 5
    entries = admin.call("GET", "/journal", params={"project_id": pid})["results"]
    assert entries[-1]["status"] == 502 and entries[-1]["injected_fault"] is not None
    assert entries[-1]["latency_ms"] >= 0 and entries[-1]["user_agent"].startswith("Gcore/Python")
    assert [e["status"] for e in admin.call("GET", "/journal", params={"injected": True})["results"]] == [502]
    assert {e["path"] for e in admin.call("GET", "/journal", params={"path": "floatingips"})["results"]} == {
        f"/cloud/v1/floatingips/{pid}/1"
    }
    assert all(e["status"] == 200 for e in admin.call("GET", "/journal", params={"status": 200})["results"])
    assert admin.call("GET", "/journal", 400, params={"path": "("})["exception_class"] == "ValidationError"
    admin.call("DELETE", "/journal")
    assert admin.call("GET", "/journal")["count"] == 0
    with server.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.emulator_journal)).scalar() == 0


def test_project_api_keys(server, project, admin) -> None:
    pid, _ = project
    key = admin.call("POST", f"/projects/{pid}/api-keys", 201, json={"name": "ci"})
    assert key["project_id"] == pid
    client = make_client(server, key["token"], pid)
    assert client.cloud.load_balancers.list().count == 0
    admin.call("POST", "/projects/999999/api-keys", 404)


def test_task_faults_are_reproducible_with_a_seed(server, project, admin) -> None:
    pid, token = project
    client = make_client(server, token, pid)

    def run() -> list[bool]:
        admin.fault(
            kind="task", project_id=pid, count=None, probability=0.5, seed=9, error="flaky data plane"
        )
        failed = []
        for i in range(12):
            task = client.cloud.tasks.get(client.cloud.load_balancers.create(name=f"lb-{i}").tasks[0])
            failed.append(task.state == "ERROR" and task.error == "flaky data plane")
        admin.call("DELETE", "/faults")
        admin.call("POST", "/reset", json={"project_id": pid})
        return failed

    first, second = run(), run()
    assert first == second == [rng_for(9, n).random() < 0.5 for n in range(1, 13)]
    assert 0 < sum(first) < 12


def test_controls_are_off_unless_asked(tmp_path) -> None:
    from lbaas.config import Settings
    from tests.conftest import serve

    base = {"database_url": "sqlite://", "data_dir": tmp_path}
    assert Settings.from_env(**base).controls_for("noop")
    assert not Settings.from_env(**base).controls_for("haproxy")
    assert Settings.from_env(**base, emulator_controls=True).controls_for("haproxy")
    assert not Settings.from_env(**base, emulator_controls=False).controls_for("noop")
    with serve("sqlite", tmp_path, emulator_controls=False) as srv:
        assert srv.app.state.emulator is None
        admin = Admin(srv.url)
        assert admin.call("POST", "/reset", 404)["exception_class"] == "NotFoundError"
        assert "/lbaas/v1/reset" not in httpx.get(srv.url + "/openapi.json").text
        assert make_client(srv, ADMIN_TOKEN, 1).cloud.load_balancers.list().count == 0


def test_admin_api_is_in_the_openapi_document(server) -> None:
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    for path in (
        "/lbaas/v1/reset",
        "/lbaas/v1/faults",
        "/lbaas/v1/timing",
        "/lbaas/v1/journal",
        "/lbaas/v1/snapshot",
    ):
        assert path in paths, path
    assert "/lbaas/v1/tasks/{task_id}/release" in paths
