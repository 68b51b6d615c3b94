"""Pools through SDK 0.59.0: create (nested members, monitor), PATCH v2 by desired state, list, delete."""

from __future__ import annotations

import gcore
import httpx
import pytest

from lbaas.clock import new_id, utcnow
from lbaas.db import tables

POOLS_V1 = "/cloud/v1/lbpools/{p}/1"
HM = {"type": "HTTP", "delay": 10, "max_retries": 3, "timeout": 5}


def add_listener(server, project_id: int, lb_id: str, protocol: str = "HTTP", port: int = 80) -> str:
    """A listener row (written directly: this file tests pools, not the listener API)."""
    lid = new_id()
    with server.db.write() as conn:
        conn.execute(
            tables.listeners.insert().values(
                id=lid,
                lb_id=lb_id,
                project_id=project_id,
                region_id=1,
                name=f"l-{port}",
                protocol=protocol,
                protocol_port=port,
                admin_state_up=True,
                connection_limit=100000,
                allowed_cidrs=None,
                insert_x_forwarded=False,
                user_list=[],
                provisioning_status="ACTIVE",
                operating_status="ONLINE",
                created_at=utcnow(),
            )
        )
    return lid


def add_redirect_policy(server, project_id: int, lb_id: str, listener_id: str, pool_id: str) -> str:
    pid = new_id()
    with server.db.write() as conn:
        conn.execute(
            tables.l7_policies.insert().values(
                id=pid,
                listener_id=listener_id,
                lb_id=lb_id,
                project_id=project_id,
                region_id=1,
                name="pol",
                action="REDIRECT_TO_POOL",
                position=1,
                redirect_pool_id=pool_id,
                tags=[],
                provisioning_status="ACTIVE",
                operating_status="ONLINE",
                created_at=utcnow(),
            )
        )
    return pid


@pytest.fixture
def lb(client):
    return client.cloud.load_balancers.create_and_poll(name="lb-pools")


@pytest.fixture
def pools(client):
    return client.cloud.load_balancers.pools


def new_pool(pools, lb_id: str, **kw):
    kw.setdefault("name", "pool-a")
    kw.setdefault("protocol", "HTTP")
    kw.setdefault("lb_algorithm", "ROUND_ROBIN")
    return pools.create_and_poll(load_balancer_id=lb_id, **kw)


def bad_request(exc: pytest.ExceptionInfo) -> dict:
    assert exc.value.status_code == 400
    assert exc.value.body["exception_class"] == "ValidationError"
    return exc.value.body["invalid_fields"]


# -- create ------------------------------------------------------------------
def test_create_and_poll_with_members_and_monitor(client, pools, lb) -> None:
    pool = new_pool(
        pools,
        lb.id,
        members=[
            {"address": "10.0.0.2", "protocol_port": 80},
            {"address": "10.0.0.1", "protocol_port": 80, "weight": 5},
        ],
        healthmonitor=HM,
        session_persistence={"type": "APP_COOKIE", "cookie_name": "sid"},
        timeout_member_connect=5000,
    )
    assert pool.provisioning_status == "ACTIVE" and pool.task_id is None
    assert pool.operating_status == "ONLINE"
    assert pool.loadbalancers[0].id == lb.id and pool.listeners == []
    assert [(m.address, m.weight) for m in pool.members] == [("10.0.0.1", 5), ("10.0.0.2", 1)]
    assert all(m.provisioning_status == "ACTIVE" and m.operating_status == "ONLINE" for m in pool.members)
    hm = pool.healthmonitor
    assert (
        hm.type,
        hm.delay,
        hm.timeout,
        hm.url_path,
        hm.http_method,
        hm.expected_codes,
        hm.http_version,
    ) == ("HTTP", 10, 5, "/", "GET", "200", "1.0")
    assert pool.session_persistence.model_dump() == {
        "type": "APP_COOKIE",
        "cookie_name": "sid",
        "persistence_granularity": None,
        "persistence_timeout": None,
    }
    assert pool.timeout_member_connect == 5000 and pool.timeout_client_data is None
    task = client.cloud.tasks.get(pool.creator_task_id)
    assert task.task_type == "create_lbpool"
    assert task.created_resources.pools == [pool.id]
    assert sorted(task.created_resources.members) == sorted(m.id for m in pool.members)
    assert task.created_resources.healthmonitors == [hm.id]
    assert client.cloud.load_balancers.get(lb.id).provisioning_status == "ACTIVE"


def test_create_on_listener_becomes_default_pool(server, project, client, pools, lb) -> None:
    lid = add_listener(server, project[0], lb.id)
    pool = pools.create_and_poll(
        name="pool-l", protocol="HTTP", lb_algorithm="LEAST_CONNECTIONS", listener_id=lid
    )
    assert [x.id for x in pool.listeners] == [lid] and pool.loadbalancers[0].id == lb.id
    with pytest.raises(gcore.BadRequestError) as exc:
        pools.create(name="pool-2", protocol="HTTP", lb_algorithm="ROUND_ROBIN", listener_id=lid)
    assert "listener_id" in bad_request(exc)
    assert pools.list().count == 1


def test_create_rejects_bad_references_and_bodies(server, project, client, pools, lb) -> None:
    lid = add_listener(server, project[0], lb.id, protocol="HTTP", port=8080)
    cases = [
        ({"listener_id": lid, "protocol": "UDP"}, "protocol"),  # UDP pool behind an HTTP listener
        ({}, "load_balancer_id"),  # no parent at all
        ({"listener_id": lid, "load_balancer_id": new_id()}, "load_balancer_id"),
        (
            {"load_balancer_id": lb.id, "members": [{"address": "10.0.0.1", "protocol_port": 80}] * 2},
            "members.1.address",
        ),
        ({"load_balancer_id": lb.id, "healthmonitor": {**HM, "timeout": 10}}, "healthmonitor.timeout"),
        ({"load_balancer_id": lb.id, "healthmonitor": {**HM, "type": "UDP-CONNECT"}}, "healthmonitor.type"),
        (
            {"load_balancer_id": lb.id, "session_persistence": {"type": "APP_COOKIE"}},
            "session_persistence.cookie_name",
        ),
        ({"load_balancer_id": lb.id, "name": "x"}, "name"),
    ]
    for extra, field in cases:
        body = {"name": "pool-bad", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", **extra}
        with pytest.raises(gcore.BadRequestError) as exc:
            pools.create(**body)
        assert field in bad_request(exc), (extra, exc.value.body)
    assert pools.list().count == 0
    assert client.cloud.tasks.list(task_type="create_lbpool").count == 0


def test_other_projects_objects_are_404(server, client, pools, lb) -> None:
    from tests.conftest import make_client

    other = make_client(server)
    other_lb = other.cloud.load_balancers.create_and_poll(name="lb-other")
    other_pool = new_pool(other.cloud.load_balancers.pools, other_lb.id)
    other_listener = add_listener(server, other_lb.project_id, other_lb.id)
    with pytest.raises(gcore.NotFoundError):
        pools.get(other_pool.id)
    with pytest.raises(gcore.NotFoundError):
        pools.update(other_pool.id, name="stolen")
    with pytest.raises(gcore.NotFoundError):
        pools.delete(other_pool.id)
    with pytest.raises(gcore.NotFoundError):
        pools.create(name="pool-x", protocol="HTTP", lb_algorithm="ROUND_ROBIN", load_balancer_id=other_lb.id)
    with pytest.raises(gcore.NotFoundError):
        pools.create(name="pool-x", protocol="HTTP", lb_algorithm="ROUND_ROBIN", listener_id=other_listener)
    with pytest.raises(gcore.NotFoundError):
        new_pool(pools, lb.id, ca_secret_id=new_id())  # no such secret in this project
    assert other.cloud.load_balancers.pools.get(other_pool.id).name == "pool-a"
    assert pools.list().count == 0


# -- read --------------------------------------------------------------------
def test_list_filters_and_details(server, project, pools, lb, client) -> None:
    lb2 = client.cloud.load_balancers.create_and_poll(name="lb-pools-2")
    lid = add_listener(server, project[0], lb.id)
    a = pools.create_and_poll(
        name="pool-a",
        protocol="HTTP",
        lb_algorithm="ROUND_ROBIN",
        listener_id=lid,
        members=[{"address": "10.0.0.1", "protocol_port": 80}],
        healthmonitor=HM,
    )
    b = new_pool(pools, lb2.id, name="pool-b")
    assert [p.id for p in pools.list()] == [a.id, b.id]
    assert [p.id for p in pools.list(load_balancer_id=lb2.id)] == [b.id]
    assert [p.id for p in pools.list(listener_id=lid)] == [a.id]
    assert [p.id for p in pools.list(name="pool-b")] == [b.id]
    brief = pools.list(load_balancer_id=lb.id).results[0]
    assert [m.model_dump(exclude_none=True) for m in brief.members] == [{"id": a.members[0].id}]
    full = pools.list(load_balancer_id=lb.id, details=True).results[0]
    assert full.members[0].address == "10.0.0.1" and full.healthmonitor.id == a.healthmonitor.id
    page = pools.list(limit=1, offset=1)
    assert page.count == 2 and [p.id for p in page.results] == [b.id]
    assert pools.get(a.id).model_dump() == full.model_dump()


# -- update ------------------------------------------------------------------
def test_update_and_poll_scalars_and_noop(client, pools, lb) -> None:
    pool = new_pool(pools, lb.id)
    updated = pools.update_and_poll(
        pool.id, name="pool-renamed", lb_algorithm="SOURCE_IP", timeout_member_data=100
    )
    assert (updated.name, updated.lb_algorithm, updated.timeout_member_data) == (
        "pool-renamed",
        "SOURCE_IP",
        100,
    )
    assert updated.provisioning_status == "ACTIVE" and updated.task_id is None
    assert pools.update(pool.id, name="pool-renamed", lb_algorithm="SOURCE_IP").tasks == []
    assert pools.update(pool.id).tasks == []
    assert client.cloud.tasks.list(task_type="patch_lbpool").count == 1


def test_update_members_by_set(client, pools, lb) -> None:
    pool = new_pool(
        pools,
        lb.id,
        members=[{"address": "10.0.0.1", "protocol_port": 80}, {"address": "10.0.0.2", "protocol_port": 80}],
    )
    ids = {m.address: m.id for m in pool.members}
    task = pools.update(
        pool.id,
        members=[
            {"address": "10.0.0.1", "protocol_port": 80, "weight": 7},
            {"address": "10.0.0.3", "protocol_port": 80},
        ],
    ).tasks
    done = client.cloud.tasks.poll(task[0])
    after = pools.get(pool.id)
    got = {m.address: m for m in after.members}
    assert set(got) == {"10.0.0.1", "10.0.0.3"}
    assert got["10.0.0.1"].id == ids["10.0.0.1"] and got["10.0.0.1"].weight == 7
    assert done.created_resources.members == [got["10.0.0.3"].id]
    same = [{"address": m.address, "protocol_port": 80, "weight": m.weight} for m in after.members]
    assert pools.update(pool.id, members=same).tasks == []
    pools.update_and_poll(pool.id, members=[])
    assert pools.get(pool.id).members == []


def test_update_health_monitor_and_session_persistence(client, pools, lb) -> None:
    pool = new_pool(pools, lb.id, healthmonitor=HM)
    hm_id = pool.healthmonitor.id
    updated = pools.update_and_poll(
        pool.id,
        healthmonitor={"delay": 20, "max_retries": 2, "timeout": 4, "url_path": "/health"},
        session_persistence={"type": "HTTP_COOKIE"},
    )
    hm = updated.healthmonitor
    assert (hm.id, hm.delay, hm.max_retries, hm.timeout, hm.url_path) == (hm_id, 20, 2, 4, "/health")
    assert updated.session_persistence.type == "HTTP_COOKIE"
    with pytest.raises(gcore.BadRequestError) as exc:
        pools.update(pool.id, healthmonitor={**HM, "type": "TCP"})
    assert "healthmonitor.type" in bad_request(exc)
    assert pools.get(pool.id).healthmonitor.url_path == "/health"
    removed = pools.update_and_poll(pool.id, healthmonitor=None, session_persistence=None)
    assert removed.healthmonitor is None and removed.session_persistence is None
    with pytest.raises(gcore.BadRequestError) as exc:
        pools.update(pool.id, healthmonitor={"delay": 5, "max_retries": 2, "timeout": 1})
    assert "healthmonitor.type" in bad_request(exc)
    created = pools.update(pool.id, healthmonitor={**HM, "type": "TCP"}).tasks
    task = client.cloud.tasks.poll(created[0])
    assert task.created_resources.healthmonitors == [pools.get(pool.id).healthmonitor.id]
    assert pools.get(pool.id).healthmonitor.type == "TCP"


def test_update_protocol_checked_against_listener(server, project, pools, lb) -> None:
    lid = add_listener(server, project[0], lb.id, protocol="TCP", port=9000)
    pool = pools.create_and_poll(name="pool-t", protocol="TCP", lb_algorithm="ROUND_ROBIN", listener_id=lid)
    assert pools.update_and_poll(pool.id, protocol="PROXY").protocol == "PROXY"
    with pytest.raises(gcore.BadRequestError) as exc:
        pools.update(pool.id, protocol="UDP")
    assert "protocol" in bad_request(exc)
    assert pools.get(pool.id).protocol == "PROXY"


def test_deprecated_v1_patch(server, project, client, pools, lb) -> None:
    pool = new_pool(pools, lb.id)
    url = server.url + POOLS_V1.format(p=project[0]) + f"/{pool.id}"
    headers = {"Authorization": f"APIKey {project[1]}"}
    r = httpx.patch(url, json={"name": "pool-v1"}, headers=headers)
    assert r.status_code == 200 and len(r.json()["tasks"]) == 1
    client.cloud.tasks.poll(r.json()["tasks"][0])
    assert pools.get(pool.id).name == "pool-v1"
    assert httpx.patch(url, json={"name": "pool-v1"}, headers=headers).json() == {"tasks": []}


# -- delete ------------------------------------------------------------------
def test_delete_and_poll(client, pools, lb) -> None:
    pool = new_pool(pools, lb.id, members=[{"address": "10.0.0.1", "protocol_port": 80}], healthmonitor=HM)
    pools.delete_and_poll(pool.id)
    with pytest.raises(gcore.NotFoundError):
        pools.get(pool.id)
    assert client.cloud.tasks.list(task_type="delete_lbpool").results[0].state == "FINISHED"
    assert client.cloud.load_balancers.get(lb.id).provisioning_status == "ACTIVE"
    with pytest.raises(gcore.NotFoundError):
        pools.delete(pool.id)


def test_delete_redirect_target_is_400(server, project, pools, lb) -> None:
    lid = add_listener(server, project[0], lb.id)
    target = new_pool(pools, lb.id, name="pool-r")
    add_redirect_policy(server, project[0], lb.id, lid, target.id)
    with pytest.raises(gcore.BadRequestError):
        pools.delete(target.id)
    assert {p.provisioning_status for p in pools.list()} == {"ACTIVE"}


async def test_async_pool_lifecycle(aclient) -> None:
    lb = await aclient.cloud.load_balancers.create_and_poll(name="lb-async-pools")
    apools = aclient.cloud.load_balancers.pools
    pool = await apools.create_and_poll(
        name="pool-async", protocol="TCP", lb_algorithm="ROUND_ROBIN", load_balancer_id=lb.id
    )
    assert pool.provisioning_status == "ACTIVE"
    assert (await apools.update_and_poll(pool.id, name="pool-async-2")).name == "pool-async-2"
    assert (await apools.list(details=True)).count == 1
    await apools.delete_and_poll(pool.id)
    assert (await apools.list()).count == 0
