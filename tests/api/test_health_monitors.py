"""Health monitors through SDK 0.59.0: one per pool, addressed by the pool id; DELETE is a synchronous 204."""

from __future__ import annotations

import gcore
import httpx
import pytest


@pytest.fixture
def pool(client):
    lb = client.cloud.load_balancers.create_and_poll(name="lb-hm")
    return client.cloud.load_balancers.pools.create_and_poll(
        name="pool-hm", protocol="HTTP", lb_algorithm="ROUND_ROBIN", load_balancer_id=lb.id
    )


@pytest.fixture
def hms(client):
    return client.cloud.load_balancers.pools.health_monitors


def bad_request(exc: pytest.ExceptionInfo) -> dict:
    assert exc.value.status_code == 400
    assert exc.value.body["exception_class"] == "ValidationError"
    return exc.value.body["invalid_fields"]


def create(client, hms, pool_id: str, **kw):
    kw = {"type": "HTTP", "delay": 10, "max_retries": 3, "api_timeout": 5, **kw}
    tasks = hms.create(pool_id, **kw).tasks
    assert len(tasks) == 1
    return client.cloud.tasks.poll(tasks[0])


def test_create_and_get(client, hms, pool) -> None:
    task = create(client, hms, pool.id, url_path="/ping", expected_codes="200-204", domain_name="example.com")
    assert task.task_type == "create_lbpool_health_monitor"
    hm = hms.get(pool.id)
    assert task.created_resources.healthmonitors == [hm.id]
    assert (hm.type, hm.delay, hm.timeout, hm.max_retries, hm.max_retries_down) == ("HTTP", 10, 5, 3, 3)
    assert (hm.url_path, hm.expected_codes, hm.domain_name, hm.http_method, hm.http_version) == (
        "/ping",
        "200-204",
        "example.com",
        "GET",
        "1.0",
    )
    assert hm.provisioning_status == "ACTIVE" and hm.operating_status == "ONLINE" and hm.admin_state_up
    assert client.cloud.load_balancers.pools.get(pool.id).healthmonitor.model_dump() == hm.model_dump()


def test_create_rejects_bad_bodies(client, hms, pool) -> None:
    cases = [
        ({"api_timeout": 10}, "timeout"),  # timeout >= delay
        ({"type": "TCP", "url_path": "/x"}, "url_path"),  # HTTP-only field on a TCP monitor
        ({"type": "UDP-CONNECT"}, "type"),  # UDP-CONNECT on an HTTP pool
        ({"expected_codes": "abc"}, "expected_codes"),
        ({"url_path": "no-slash"}, "url_path"),
        ({"max_retries": 11}, "max_retries"),
        ({"delay": 0}, "delay"),
    ]
    for kw, field in cases:
        with pytest.raises(gcore.BadRequestError) as exc:
            hms.create(pool.id, **{"type": "HTTP", "delay": 10, "max_retries": 3, "api_timeout": 5, **kw})
        assert field in bad_request(exc), kw
    with pytest.raises(gcore.NotFoundError):
        hms.get(pool.id)
    assert client.cloud.tasks.list(task_type="create_lbpool_health_monitor").count == 0


def test_second_monitor_is_400(client, hms, pool) -> None:
    create(client, hms, pool.id, type="TCP")
    with pytest.raises(gcore.BadRequestError):
        hms.create(pool.id, type="PING", delay=10, max_retries=3, api_timeout=5)
    assert hms.get(pool.id).type == "TCP"


def test_patch(client, hms, pool) -> None:
    create(client, hms, pool.id, url_path="/a", http_method="HEAD")
    before = hms.get(pool.id)
    tasks = hms.update(pool.id, delay=20, api_timeout=15, url_path=None, http_version="1.1").tasks
    assert len(tasks) == 1
    task = client.cloud.tasks.poll(tasks[0])
    assert task.task_type == "update_lbpool_health_monitor"
    hm = hms.get(pool.id)
    assert (hm.id, hm.delay, hm.timeout, hm.url_path, hm.http_method, hm.http_version) == (
        before.id,
        20,
        15,
        "/",
        "HEAD",
        "1.1",
    )
    assert hm.provisioning_status == "ACTIVE"
    assert hms.update(pool.id, delay=20, api_timeout=15).tasks == []
    assert hms.update(pool.id).tasks == []
    with pytest.raises(gcore.BadRequestError) as exc:
        hms.update(pool.id, api_timeout=20)  # == delay
    assert "timeout" in bad_request(exc)
    with pytest.raises(gcore.BadRequestError) as exc:
        hms.update(pool.id, delay=15)  # now below the stored timeout
    assert "timeout" in bad_request(exc)
    assert hms.get(pool.id).model_dump() == hm.model_dump()


def test_delete_is_synchronous_204(server, project, client, hms, pool) -> None:
    create(client, hms, pool.id, type="TCP")
    assert hms.delete(pool.id) is None
    with pytest.raises(gcore.NotFoundError):
        hms.get(pool.id)
    assert client.cloud.load_balancers.pools.get(pool.id).healthmonitor is None
    url = f"{server.url}/cloud/v1/lbpools/{project[0]}/1/{pool.id}/healthmonitor"
    create(client, hms, pool.id, type="TCP")
    r = httpx.delete(url, headers={"Authorization": f"APIKey {project[1]}", "Accept": "*/*"})
    assert r.status_code == 204 and r.content == b""
    # The data plane follows through an internal task that the client never polls.
    internal = client.cloud.tasks.list(task_type="delete_lbpool_health_monitor").results
    assert len(internal) == 2
    assert {client.cloud.tasks.poll(t.id).state for t in internal} == {"FINISHED"}
    assert client.cloud.load_balancers.get(pool.loadbalancers[0].id).provisioning_status == "ACTIVE"


def test_missing_monitor_and_pool_are_404(server, client, hms, pool) -> None:
    with pytest.raises(gcore.NotFoundError):
        hms.get(pool.id)
    with pytest.raises(gcore.NotFoundError):
        hms.update(pool.id, delay=5)
    with pytest.raises(gcore.NotFoundError):
        hms.delete(pool.id)
    from tests.conftest import make_client

    other = make_client(server).cloud.load_balancers.pools.health_monitors
    create(client, hms, pool.id)
    for call in (
        lambda: other.get(pool.id),
        lambda: other.delete(pool.id),
        lambda: other.update(pool.id, delay=30),
        lambda: other.create(pool.id, type="TCP", delay=10, max_retries=3, api_timeout=5),
    ):
        with pytest.raises(gcore.NotFoundError):
            call()
    assert hms.get(pool.id).delay == 10


async def test_async_monitor(aclient) -> None:
    lb = await aclient.cloud.load_balancers.create_and_poll(name="lb-async-hm")
    pool = await aclient.cloud.load_balancers.pools.create_and_poll(
        name="pool-async", protocol="UDP", lb_algorithm="ROUND_ROBIN", load_balancer_id=lb.id
    )
    ahms = aclient.cloud.load_balancers.pools.health_monitors
    tasks = (await ahms.create(pool.id, type="UDP-CONNECT", delay=5, max_retries=2, api_timeout=2)).tasks
    await aclient.cloud.tasks.poll(tasks[0])
    assert (await ahms.get(pool.id)).url_path is None
    await aclient.cloud.tasks.poll((await ahms.update(pool.id, max_retries_down=5)).tasks[0])
    assert (await ahms.get(pool.id)).max_retries_down == 5
    await ahms.delete(pool.id)
    with pytest.raises(gcore.NotFoundError):
        await ahms.get(pool.id)
