"""Pool members through SDK 0.59.0: create, list, get, PATCH, delete, PUT replace-all, deprecated v1 calls."""

from __future__ import annotations

import time

import gcore
import httpx
import pytest


@pytest.fixture
def lb(client):
    return client.cloud.load_balancers.create_and_poll(name="lb-members")


@pytest.fixture
def pool(client, lb):
    return client.cloud.load_balancers.pools.create_and_poll(
        name="pool-m", protocol="HTTP", lb_algorithm="ROUND_ROBIN", load_balancer_id=lb.id
    )


@pytest.fixture
def members(client):
    return client.cloud.load_balancers.pools.members


def bad_request(exc: pytest.ExceptionInfo) -> dict:
    assert exc.value.status_code == 400
    assert exc.value.body["exception_class"] == "ValidationError"
    return exc.value.body["invalid_fields"]


def test_create_and_poll_get_list(client, members, pool) -> None:
    m = members.create_and_poll(
        pool.id,
        address="10.0.0.9",
        protocol_port=8080,
        weight=3,
        backup=True,
        monitor_address="10.0.1.9",
        monitor_port=9090,
    )
    assert (m.address, m.protocol_port, m.weight, m.backup) == ("10.0.0.9", 8080, 3, True)
    assert (m.monitor_address, m.monitor_port, m.subnet_id) == ("10.0.1.9", 9090, None)
    assert m.provisioning_status == "ACTIVE" and m.operating_status == "NO_MONITOR"
    assert "instance_id" not in m.model_dump()
    task = client.cloud.tasks.list(task_type="create_lbmember").results[0]
    assert task.created_resources.members == [m.id]
    members.create_and_poll(pool.id, address="10.0.0.10", protocol_port=80, admin_state_up=False)
    members.create_and_poll(pool.id, address="10.0.0.1", protocol_port=80)
    listed = members.list(pool.id)
    assert listed.count == 3
    assert [x.address for x in listed.results] == ["10.0.0.1", "10.0.0.10", "10.0.0.9"]
    assert [x.address for x in members.list(pool.id, order_by="created_at.asc")] == [
        "10.0.0.9",
        "10.0.0.10",
        "10.0.0.1",
    ]
    assert [x.address for x in members.list(pool.id, order_by="address.desc", limit=1).results] == [
        "10.0.0.9"
    ]
    assert members.get(m.id, pool_id=pool.id).model_dump() == m.model_dump()
    down = [x for x in listed.results if x.address == "10.0.0.10"][0]
    assert down.operating_status == "OFFLINE"


def test_create_rejects_bad_members(client, members, pool) -> None:
    members.create_and_poll(pool.id, address="10.0.0.1", protocol_port=80)
    cases = [
        ({"address": "10.0.0.1", "protocol_port": 80}, "address"),  # duplicate
        ({"address": "10.0.0.2", "protocol_port": 80, "weight": 0}, "weight"),
        ({"address": "10.0.0.2", "protocol_port": 80, "weight": 257}, "weight"),
        ({"address": "10.0.0.2", "protocol_port": 0}, "protocol_port"),
        ({"address": "not-an-ip", "protocol_port": 80}, "address"),
        ({"address": "0.0.0.0", "protocol_port": 80}, "address"),
        ({"address": "10.0.0.2", "protocol_port": 80, "monitor_address": "224.0.0.1"}, "monitor_address"),
    ]
    for body, field in cases:
        with pytest.raises(gcore.BadRequestError) as exc:
            members.create(pool.id, **body)
        assert field in bad_request(exc), body
    assert members.list(pool.id).count == 1
    assert client.cloud.tasks.list(task_type="create_lbmember").count == 1


def test_update_and_poll_and_noop(client, members, pool) -> None:
    m = members.create_and_poll(pool.id, address="10.0.0.1", protocol_port=80, monitor_port=81)
    updated = members.update_and_poll(m.id, pool_id=pool.id, weight=10, backup=True, monitor_port=None)
    assert (updated.weight, updated.backup, updated.monitor_port) == (10, True, None)
    assert updated.provisioning_status == "ACTIVE"
    assert members.update(m.id, pool_id=pool.id, weight=10, backup=True).tasks == []
    assert members.update(m.id, pool_id=pool.id).tasks == []
    with pytest.raises(gcore.BadRequestError) as exc:
        members.update(m.id, pool_id=pool.id, monitor_address="0.0.0.0")
    assert "monitor_address" in bad_request(exc)
    with pytest.raises(gcore.BadRequestError):
        members.update(m.id, pool_id=pool.id, weight=300)
    assert members.get(m.id, pool_id=pool.id).weight == 10
    assert client.cloud.tasks.list(task_type="update_lbmember").count == 1


def test_delete_and_poll(client, members, pool) -> None:
    m = members.create_and_poll(pool.id, address="10.0.0.1", protocol_port=80)
    members.delete_and_poll(m.id, pool_id=pool.id)
    with pytest.raises(gcore.NotFoundError):
        members.get(m.id, pool_id=pool.id)
    with pytest.raises(gcore.NotFoundError):
        members.delete(m.id, pool_id=pool.id)
    assert members.list(pool.id).count == 0


def test_replace_and_poll_keeps_unchanged_ids(client, members, pool) -> None:
    desired = [{"address": f"10.1.{i // 250}.{i % 250 + 1}", "protocol_port": 80} for i in range(100)]
    first = members.replace_and_poll(pool.id, body=desired)
    assert len(first) == 100
    ids = {(m.address, m.protocol_port): m.id for m in first}
    task = client.cloud.tasks.list(task_type="patch_lbpool").results[0]
    assert sorted(task.created_resources.members) == sorted(ids.values())
    assert members.replace(pool.id, body=desired).tasks == []
    changed = desired[10:] + [{"address": "10.2.0.1", "protocol_port": 81}]
    changed[0] = {**changed[0], "weight": 9}
    second = members.replace_and_poll(pool.id, body=changed)
    got = {(m.address, m.protocol_port): m for m in second}
    assert len(got) == 91
    for key, member in got.items():
        if key != ("10.2.0.1", 81):
            assert member.id == ids[key]
    assert got[("10.1.0.11", 80)].weight == 9
    assert ("10.1.0.1", 80) not in got
    assert all(m.provisioning_status == "ACTIVE" for m in second)
    assert members.replace_and_poll(pool.id, body=[]) == []


def test_replace_rejects_bad_bodies(server, project, client, members, pool) -> None:
    members.create_and_poll(pool.id, address="10.0.0.1", protocol_port=80)
    with pytest.raises(gcore.BadRequestError) as exc:
        members.replace(pool.id)  # the SDK sends an empty body
    assert bad_request(exc) == {"body": ["body must be a JSON array"]}
    url = f"{server.url}/cloud/v1/loadbalancers/{project[0]}/1/pools/{pool.id}/members"
    headers = {"Authorization": f"APIKey {project[1]}"}
    for raw in (b'{"address": "10.0.0.1"}', b"[", b'[{"address": "10.0.0.2"}]'):
        r = httpx.put(url, content=raw, headers={**headers, "Content-Type": "application/json"})
        assert r.status_code == 400, raw
    assert "0.protocol_port" in r.json()["invalid_fields"]
    dup = [{"address": "10.0.0.5", "protocol_port": 80}] * 2
    with pytest.raises(gcore.BadRequestError) as exc:
        members.replace(pool.id, body=dup)
    assert "1.address" in bad_request(exc)
    with pytest.raises(gcore.BadRequestError):
        members.replace(pool.id, body=[{"address": "ff02::1", "protocol_port": 80}])
    assert [m.address for m in members.list(pool.id)] == ["10.0.0.1"]


def test_member_family_binds_only_udp_pools(client, members, lb, pool) -> None:
    # Octavia refuses IPv6 members behind an IPv4 VIP only on UDP/SCTP (LVS) pools.
    v6 = members.create_and_poll(pool.id, address="2001:db8::1", protocol_port=80, monitor_address="::1")
    assert (v6.address, v6.monitor_address) == ("2001:db8::1", "::1")
    udp = client.cloud.load_balancers.pools.create_and_poll(
        name="pool-udp", protocol="UDP", lb_algorithm="ROUND_ROBIN", load_balancer_id=lb.id
    )
    for body, field in (
        ({"address": "2001:db8::1", "protocol_port": 53}, "address"),
        ({"address": "10.0.0.1", "protocol_port": 53, "monitor_address": "2001:db8::2"}, "monitor_address"),
    ):
        with pytest.raises(gcore.BadRequestError) as exc:
            members.create(udp.id, **body)
        assert field in bad_request(exc), body
    with pytest.raises(gcore.BadRequestError):
        members.replace(udp.id, body=[{"address": "2001:db8::1", "protocol_port": 53}])
    # Turning the HTTP pool (with its IPv6 member) into a UDP pool is refused too.
    with pytest.raises(gcore.BadRequestError) as exc:
        client.cloud.load_balancers.pools.update(pool.id, protocol="UDP")
    assert "members.0.address" in bad_request(exc)
    assert members.list(udp.id).count == 0


def test_deprecated_v1_member_calls(server, project, client, members, pool) -> None:
    base = f"{server.url}/cloud/v1/lbpools/{project[0]}/1/{pool.id}/member"
    headers = {"Authorization": f"APIKey {project[1]}"}
    r = httpx.post(base, json={"address": "10.0.0.7", "protocol_port": 80}, headers=headers)
    assert r.status_code == 200 and len(r.json()["tasks"]) == 1
    client.cloud.tasks.poll(r.json()["tasks"][0])
    [m] = members.list(pool.id).results
    assert m.address == "10.0.0.7" and m.provisioning_status == "ACTIVE"
    r = httpx.delete(f"{base}/{m.id}", headers=headers)
    assert r.status_code == 200 and len(r.json()["tasks"]) == 1
    client.cloud.tasks.poll(r.json()["tasks"][0])
    assert members.list(pool.id).count == 0


def test_other_projects_pool_is_404(server, members, pool) -> None:
    from tests.conftest import make_client

    other = make_client(server).cloud.load_balancers.pools.members
    with pytest.raises(gcore.NotFoundError):
        other.create(pool.id, address="10.0.0.1", protocol_port=80)
    with pytest.raises(gcore.NotFoundError):
        other.list(pool.id)
    with pytest.raises(gcore.NotFoundError):
        other.replace(pool.id, body=[])
    assert members.list(pool.id).count == 0


def test_monitor_rolls_up_member_status(client, members, pool) -> None:
    m = members.create_and_poll(pool.id, address="10.0.0.1", protocol_port=80)
    assert m.operating_status == "NO_MONITOR"
    hms = client.cloud.load_balancers.pools.health_monitors
    client.cloud.tasks.poll(hms.create(pool.id, type="TCP", delay=5, max_retries=2, api_timeout=3).tasks[0])
    assert members.get(m.id, pool_id=pool.id).operating_status == "ONLINE"


def test_queued_member_creates(slow_client) -> None:
    lb = slow_client.cloud.load_balancers.create_and_poll(name="lb-slow")
    pool = slow_client.cloud.load_balancers.pools.create_and_poll(
        name="pool-slow", protocol="TCP", lb_algorithm="ROUND_ROBIN", load_balancer_id=lb.id
    )
    smembers = slow_client.cloud.load_balancers.pools.members
    first = smembers.create(pool.id, address="10.0.0.1", protocol_port=80).tasks[0]
    second = smembers.create(pool.id, address="10.0.0.2", protocol_port=80).tasks[0]
    deadline = time.time() + 5
    while slow_client.cloud.tasks.get(first).state == "NEW" and time.time() < deadline:
        time.sleep(0.02)
    assert slow_client.cloud.tasks.get(first).state == "RUNNING"
    assert slow_client.cloud.tasks.get(second).state == "NEW"
    assert slow_client.cloud.load_balancers.get(lb.id).provisioning_status == "PENDING_UPDATE"
    pending = {m.address: m.provisioning_status for m in smembers.list(pool.id)}
    assert pending == {"10.0.0.1": "PENDING_CREATE", "10.0.0.2": "PENDING_CREATE"}
    for task_id in (first, second):
        assert slow_client.cloud.tasks.poll(task_id).state == "FINISHED"
    assert {m.provisioning_status for m in smembers.list(pool.id)} == {"ACTIVE"}
    assert slow_client.cloud.load_balancers.get(lb.id).provisioning_status == "ACTIVE"


async def test_async_member_lifecycle(aclient) -> None:
    lb = await aclient.cloud.load_balancers.create_and_poll(name="lb-async-m")
    pool = await aclient.cloud.load_balancers.pools.create_and_poll(
        name="pool-async", protocol="TCP", lb_algorithm="ROUND_ROBIN", load_balancer_id=lb.id
    )
    amembers = aclient.cloud.load_balancers.pools.members
    m = await amembers.create_and_poll(pool.id, address="10.0.0.1", protocol_port=80)
    assert (await amembers.update_and_poll(m.id, pool_id=pool.id, weight=2)).weight == 2
    page = await amembers.replace_and_poll(
        pool.id,
        body=[{"address": "10.0.0.1", "protocol_port": 80}, {"address": "10.0.0.2", "protocol_port": 80}],
    )
    assert len(page) == 2 and m.id in {x.id for x in page}
    await amembers.delete_and_poll(m.id, pool_id=pool.id)
    assert (await amembers.list(pool.id)).count == 1
