"""Queueing behind a busy LB, 409 only while deleting, retried POSTs, VIP allocation."""

from __future__ import annotations

import time
import uuid

import gcore
import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, make_client, serve


def wait_finished(client, task_ids, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        states = [client.cloud.tasks.get(t).state for t in task_ids]
        if all(s in ("FINISHED", "ERROR") for s in states):
            return states
        time.sleep(0.05)
    raise AssertionError(f"tasks not done: {states}")


def test_mutations_queue_behind_a_busy_lb(slow_client) -> None:
    c = slow_client
    create = c.cloud.load_balancers.create(name="busy-lb").tasks[0]
    lb_id = c.cloud.load_balancers.list(name="busy-lb").results[0].id  # created_resources: null until done
    path = f"/cloud/v2/loadbalancers/{c.cloud_project_id}/1/{lb_id}"
    t1 = c.patch(path, body={"name": "busy-one"}, cast_to=object)["tasks"][0]
    t2 = c.patch(path, body={"tags": {"step": "two"}}, cast_to=object)["tasks"][0]
    lb = c.cloud.load_balancers.get(lb_id)
    assert lb.provisioning_status == "PENDING_CREATE" and lb.task_id == create
    assert lb.name == "busy-one"  # accepted changes are visible at once
    states = [c.cloud.tasks.get(t).state for t in (create, t1, t2)]
    assert states[2] == "NEW" and states.count("RUNNING") <= 1
    assert wait_finished(c, [create, t1, t2]) == ["FINISHED"] * 3
    finished = [c.cloud.tasks.get(t).finished_on for t in (create, t1, t2)]
    assert finished == sorted(finished)  # one queue, in order
    lb = c.cloud.load_balancers.get(lb_id)
    assert lb.provisioning_status == "ACTIVE" and lb.task_id is None and lb.operating_status == "ONLINE"


def test_only_a_deleting_lb_refuses_with_409(slow_client) -> None:
    c = slow_client
    lb = c.cloud.load_balancers.create_and_poll(name="doomed-lb")
    delete = c.cloud.load_balancers.delete(lb.id).tasks[0]
    assert c.cloud.load_balancers.get(lb.id).provisioning_status == "PENDING_DELETE"
    with pytest.raises(gcore.ConflictError) as exc:
        c.cloud.load_balancers.update(lb.id, name="too-late")
    assert exc.value.response.headers["x-should-retry"] == "false"
    assert exc.value.body["exception_class"] == "ConflictError"
    with pytest.raises(gcore.ConflictError):
        c.cloud.load_balancers.failover(lb.id)
    assert wait_finished(c, [delete]) == ["FINISHED"]
    with pytest.raises(gcore.NotFoundError):
        c.cloud.load_balancers.get(lb.id)


def test_retried_post_creates_nothing_twice(server, project) -> None:
    pid, token = project
    url = f"{server.url}/cloud/v1/loadbalancers/{pid}/1"
    headers = {"Authorization": f"APIKey {token}", "x-stainless-retry-count": "0"}
    body = {"name": "retried-lb"}
    first = httpx.post(url, json=body, headers=headers)
    retry = httpx.post(url, json=body, headers={**headers, "x-stainless-retry-count": "1"})
    assert first.status_code == retry.status_code == 200
    assert first.json() == retry.json()
    other = httpx.post(url, json={"name": "other-lb"}, headers={**headers, "x-stainless-retry-count": "1"})
    assert other.json() != first.json()
    fresh = httpx.post(url, json=body, headers=headers)  # not a retry: a second LB of that name is wanted
    assert fresh.json() != first.json()
    assert httpx.get(url, headers=headers).json()["count"] == 3


def test_idempotency_key_header(server, project) -> None:
    pid, token = project
    url = f"{server.url}/cloud/v1/loadbalancers/{pid}/1"
    key = str(uuid.uuid4())
    headers = {"Authorization": f"APIKey {token}", "Idempotency-Key": key}
    a = httpx.post(url, json={"name": "keyed-lb"}, headers=headers).json()
    b = httpx.post(url, json={"name": "keyed-lb"}, headers=headers).json()
    assert a == b and httpx.get(url, headers=headers).json()["count"] == 1


def test_sdk_retry_after_lost_response(server, project) -> None:
    """The SDK retries a POST whose response it lost; the retry returns the original task."""
    pid, token = project
    calls = {"n": 0}

    class DropFirstResponse(httpx.HTTPTransport):
        def handle_request(self, request):
            response = super().handle_request(request)
            calls["n"] += 1
            if request.method == "POST" and calls["n"] == 1:
                response.read()
                raise httpx.ReadTimeout("response lost", request=request)
            return response

    c = make_client(
        server, token, pid, max_retries=2, http_client=httpx.Client(transport=DropFirstResponse())
    )
    tasks = c.cloud.load_balancers.create(name="lost-response")
    assert len(tasks.tasks) == 1
    assert c.cloud.load_balancers.list().count == 1


@pytest.fixture(scope="module")
def tiny_pool(tmp_path_factory):
    with serve("sqlite", tmp_path_factory.mktemp("tiny"), vip_pool="127.1.0.0/29") as srv:
        yield srv


def test_vip_pool_exhaustion_and_reuse_last(tiny_pool) -> None:
    c = make_client(tiny_pool, ADMIN_TOKEN, 1)
    lbs = [c.cloud.load_balancers.create_and_poll(name=f"vip-{i}") for i in range(6)]
    assert [lb.vip_address for lb in lbs] == [f"127.1.0.{i}" for i in range(1, 7)]
    with pytest.raises(gcore.BadRequestError) as exc:
        c.cloud.load_balancers.create(name="one-too-many")
    assert "vip_address" in exc.value.body["invalid_fields"]
    c.cloud.load_balancers.delete_and_poll(lbs[3].id)
    c.cloud.load_balancers.delete_and_poll(lbs[1].id)
    again = [c.cloud.load_balancers.create_and_poll(name=f"again-{i}").vip_address for i in range(2)]
    assert again == ["127.1.0.4", "127.1.0.2"]  # oldest release first


def test_fresh_addresses_before_freed_ones(server) -> None:
    c = make_client(server, ADMIN_TOKEN, 1)
    a = c.cloud.load_balancers.create_and_poll(name="fresh-a")
    c.cloud.load_balancers.delete_and_poll(a.id)
    b = c.cloud.load_balancers.create_and_poll(name="fresh-b")
    assert b.vip_address != a.vip_address
    c.cloud.load_balancers.delete_and_poll(b.id)


def test_concurrent_creates_on_one_port_accept_exactly_one(client) -> None:
    """Each request is validated against every change accepted before it, even when they race."""
    import concurrent.futures

    lb = client.cloud.load_balancers.create_and_poll(name="race-lb")

    def attempt(i: int) -> int:
        try:
            client.cloud.load_balancers.listeners.create(
                load_balancer_id=lb.id, name=f"racer-{i}", protocol="TCP", protocol_port=7000
            )
            return 200
        except gcore.BadRequestError:
            return 400

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(attempt, range(8)))
    assert codes == [200] + [400] * 7
    assert client.cloud.load_balancers.listeners.list(load_balancer_id=lb.id).count == 1
