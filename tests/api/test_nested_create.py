"""An LB create that carries listeners, each with a pool, its members and a health monitor."""

from __future__ import annotations

import gcore
import pytest


def members(first: int, n: int = 5) -> list[dict]:
    return [{"address": f"127.0.0.{first + i}", "protocol_port": 8000 + i} for i in range(n)]


def listener(name: str, port: int, first_member: int, protocol: str = "HTTP") -> dict:
    return {
        "name": name,
        "protocol": protocol,
        "protocol_port": port,
        "insert_x_forwarded": protocol == "HTTP",
        "pools": [
            {
                "name": f"{name}-pool",
                "protocol": "HTTP" if protocol == "HTTP" else "TCP",
                "lb_algorithm": "ROUND_ROBIN",
                "members": members(first_member),
                "healthmonitor": {"type": "TCP", "delay": 5, "timeout": 3, "max_retries": 2},
            }
        ],
    }


def base(client) -> str:
    return f"/cloud/v1/loadbalancers/{client.cloud_project_id}/1"


def test_nested_create_and_poll(client) -> None:
    lbs = client.cloud.load_balancers
    lb = lbs.create_and_poll(
        name="lb-nested", listeners=[listener("web", 80, 10), listener("api", 8080, 20, "TCP")]
    )
    assert lb.provisioning_status == "ACTIVE" and lb.operating_status == "ONLINE"
    task = client.cloud.tasks.get(lb.creator_task_id)
    res = task.created_resources
    assert res.loadbalancers == [lb.id]
    assert len(res.listeners) == 2 and len(res.pools) == 2
    assert len(res.members) == 10 and len(res.healthmonitors) == 2
    assert sorted(x.id for x in lb.listeners) == sorted(res.listeners)
    listeners = {x.name: x for x in client.cloud.load_balancers.listeners.list(load_balancer_id=lb.id)}
    assert set(listeners) == {"web", "api"}
    assert listeners["web"].insert_headers and listeners["api"].insert_headers == {}
    assert all(x.pool_count == 1 and x.provisioning_status == "ACTIVE" for x in listeners.values())
    assert all(x.creator_task_id == task.id and x.task_id is None for x in listeners.values())
    tree = lbs.statuses.get(lb.id)
    assert tree.provisioning_status == "ACTIVE" and len(tree.listeners) == 2
    pool_ids, member_ids, hm_ids = [], [], []
    for li in tree.listeners:
        assert li.provisioning_status == "ACTIVE" and len(li.pools) == 1
        pool = li.pools[0]
        assert pool.name == f"{li.name}-pool" and pool.provisioning_status == "ACTIVE"
        assert len(pool.members) == 5 and all(m.provisioning_status == "ACTIVE" for m in pool.members)
        assert pool.health_monitor is not None and pool.health_monitor.provisioning_status == "ACTIVE"
        pool_ids.append(pool.id)
        member_ids += [m.id for m in pool.members]
        hm_ids.append(pool.health_monitor.id)
    assert sorted(pool_ids) == sorted(res.pools)
    assert sorted(member_ids) == sorted(res.members)
    assert sorted(hm_ids) == sorted(res.healthmonitors)
    pools = client.cloud.load_balancers.pools.list(load_balancer_id=lb.id)
    assert pools.count == 2
    web_pool = client.cloud.load_balancers.pools.list(listener_id=listeners["web"].id).results[0]
    assert web_pool.name == "web-pool"
    # The whole tree goes with the LB.
    lbs.delete_and_poll(lb.id)
    assert client.cloud.load_balancers.listeners.list().count == 0
    assert client.cloud.load_balancers.pools.list().count == 0


def test_listener_without_pool_and_with_floating_ip(client) -> None:
    lb = client.cloud.load_balancers.create_and_poll(
        name="lb-bare",
        floating_ip={"source": "new"},
        listeners=[{"name": "tcp", "protocol": "TCP", "protocol_port": 22, "connection_limit": -1}],
    )
    res = client.cloud.tasks.get(lb.creator_task_id).created_resources
    assert len(res.listeners) == 1 and res.pools == [] and res.members == [] and len(res.floatingips) == 1
    li = client.cloud.load_balancers.listeners.get(res.listeners[0])
    assert li.connection_limit == 100000 and li.pool_count == 0 and li.load_balancer_id == lb.id


async def test_async_nested_create(aclient) -> None:
    lb = await aclient.cloud.load_balancers.create_and_poll(
        name="lb-async-nested", listeners=[listener("web", 80, 30)]
    )
    task = await aclient.cloud.tasks.get(lb.creator_task_id)
    assert len(task.created_resources.members) == 5
    assert len((await aclient.cloud.load_balancers.statuses.get(lb.id)).listeners[0].pools[0].members) == 5


def _bad_member() -> list[dict]:
    body = listener("web", 80, 10)
    body["pools"][0]["members"][3]["address"] = "not-an-ip"
    return [body]


def _duplicate_ports() -> list[dict]:
    return [listener("web", 80, 10), listener("api", 80, 20, "TCP")]


def _multicast_member() -> list[dict]:
    body = listener("web", 80, 10)
    body["pools"][0]["members"][1]["address"] = "224.0.0.1"
    return [body]


def _duplicate_members() -> list[dict]:
    body = listener("web", 80, 10)
    body["pools"][0]["members"][4] = dict(body["pools"][0]["members"][0])
    return [body]


def _two_pools() -> list[dict]:
    body = listener("web", 80, 10)
    body["pools"].append(dict(body["pools"][0], name="second"))
    return [body]


def _wrong_pool_protocol() -> list[dict]:
    body = listener("web", 80, 10)
    body["pools"][0]["protocol"] = "UDP"
    return [body]


def _bad_monitor() -> list[dict]:
    body = listener("web", 80, 10)
    body["pools"][0]["healthmonitor"]["timeout"] = 10  # >= delay
    return [body]


def _pool_with_parent() -> list[dict]:
    body = listener("web", 80, 10)
    body["pools"][0]["listener_id"] = "8f6f1c1e-25f4-4d4f-bb5e-30f3d2a9f2a1"
    return [body]


def _x_forwarded_on_tcp() -> list[dict]:
    body = listener("api", 80, 10, "TCP")
    body["insert_x_forwarded"] = True
    return [listener("web", 81, 20), body]


@pytest.mark.parametrize(
    "make, field",
    [
        (_bad_member, "listeners.0.pools.0.members.3.address"),
        (_duplicate_ports, "listeners.1.protocol_port"),
        (_multicast_member, "listeners.0.pools.0.members.1.address"),
        (_duplicate_members, "listeners.0.pools.0.members.4.address"),
        (_two_pools, "listeners.0.pools"),
        (_wrong_pool_protocol, "listeners.0.pools.0.protocol"),
        (_bad_monitor, "listeners.0.pools.0.healthmonitor.timeout"),
        (_pool_with_parent, "listeners.0.pools.0.listener_id"),
        (_x_forwarded_on_tcp, "listeners.1.insert_x_forwarded"),
    ],
)
def test_nested_create_rejected(client, make, field) -> None:
    with pytest.raises(gcore.BadRequestError) as exc:
        client.cloud.load_balancers.create(name="lb-bad", listeners=make())
    assert exc.value.body["exception_class"] == "ValidationError"
    assert field in exc.value.body["invalid_fields"], exc.value.body
    assert client.cloud.load_balancers.list().count == 0
    assert client.cloud.load_balancers.listeners.list().count == 0
    assert client.cloud.load_balancers.pools.list().count == 0
    assert client.cloud.tasks.list().count == 0


def test_nested_unknown_secret_is_404(client) -> None:
    body = {
        "name": "tls",
        "protocol": "TERMINATED_HTTPS",
        "protocol_port": 443,
        "sni_secret_id": ["8f6f1c1e-25f4-4d4f-bb5e-30f3d2a9f2a1"],
    }
    with pytest.raises(gcore.NotFoundError):
        client.cloud.load_balancers.create(name="lb-tls", listeners=[body])
    assert client.cloud.load_balancers.list().count == 0


def test_nested_listener_quota(client, server) -> None:
    from lbaas.services import quotas

    with server.db.write() as conn:
        quotas.set_limit(conn, client.cloud_project_id, "listeners_per_lb", 1)
    with pytest.raises(gcore.BadRequestError) as exc:
        client.cloud.load_balancers.create(
            name="lb-q", listeners=[listener("web", 80, 10), listener("web2", 81, 20)]
        )
    assert exc.value.body["exception_class"] == "QuotaLimitExceed"
    assert client.cloud.load_balancers.list().count == 0


def test_nested_pending_states(slow_client) -> None:
    client = slow_client
    task_id = client.cloud.load_balancers.create(
        name="lb-slow-nested", listeners=[listener("web", 80, 10)]
    ).tasks[0]
    (li,) = client.cloud.load_balancers.listeners.list().results
    assert li.provisioning_status == "PENDING_CREATE" and li.task_id == task_id
    client.cloud.tasks.poll(task_id)
    tree = client.cloud.load_balancers.statuses.get(li.load_balancer_id)
    assert tree.listeners[0].pools[0].members[0].provisioning_status == "ACTIVE"
    client.cloud.load_balancers.delete_and_poll(li.load_balancer_id)
