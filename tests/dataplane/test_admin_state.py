"""admin_state_up=false at every level, and back: LB serves nothing, a listener's port closes,
a pool has no backend (HTTP 503), a member takes no traffic (through the runtime API, no reload).

The SDK's listener/pool ``update_and_poll`` drop ``admin_state_up`` (API.md §7), so these use
``update`` and wait for the task; the LB's flag is only on the v2 PATCH, which SDK 0.59.0
does not wrap: it is sent with the SDK's own ``patch``.
"""

from __future__ import annotations

import pytest
from gcore.types.cloud import TaskIDList

from tests.dataplane.conftest import (
    DataPlane,
    applies_held,
    create_lb,
    finish,
    get,
    pools_of,
    refused,
    spread,
    wait_for,
)


@pytest.fixture(scope="module")
def setup(dataplane: DataPlane):
    a = [dataplane.backend(f"adm-a{i}") for i in range(2)]
    b = dataplane.backend("adm-b")
    client = dataplane.client()
    lb = create_lb(
        client,
        name="admin-state",
        listeners=[
            {
                "name": "first",
                "protocol": "HTTP",
                "protocol_port": 8080,
                "pools": [
                    {
                        "name": "pool-a",
                        "protocol": "HTTP",
                        "lb_algorithm": "ROUND_ROBIN",
                        "members": [x.member for x in a],
                        # checked: a reload carries the members' state over (runtime.filter_server_state)
                        "healthmonitor": {"type": "TCP", "delay": 2, "timeout": 1, "max_retries": 1},
                    }
                ],
            },
            {
                "name": "second",
                "protocol": "TCP",
                "protocol_port": 8081,
                "pools": [
                    {
                        "name": "pool-b",
                        "protocol": "TCP",
                        "lb_algorithm": "ROUND_ROBIN",
                        "members": [b.member],
                    }
                ],
            },
        ],
    )
    return client, lb


def _urls(lb) -> tuple[str, str]:
    return f"http://{lb.vip_address}:8080/", f"http://{lb.vip_address}:8081/"


def _serving(lb) -> None:
    first, second = _urls(lb)
    assert spread(first, 4).keys() == {"adm-a0", "adm-a1"}
    assert get(second).text == "adm-b"


def test_member(dataplane: DataPlane, setup) -> None:
    client, lb = setup
    first, _ = _urls(lb)
    pool = pools_of(client, lb.id)["pool-a"]
    member = next(m for m in pool.members if m.protocol_port == dataplane.backends[0].port)
    members = client.cloud.load_balancers.pools.members
    reloads = dataplane.reloads(lb.id)

    finish(client, members.update(member.id, pool_id=pool.id, admin_state_up=False))
    assert spread(first, 6) == {"adm-a1": 6}
    got = next(m for m in pools_of(client, lb.id)["pool-a"].members if m.id == member.id)
    assert (got.admin_state_up, got.operating_status) == (False, "OFFLINE")

    finish(client, members.update(member.id, pool_id=pool.id, admin_state_up=True))
    _serving(lb)
    assert dataplane.reloads(lb.id) == reloads  # member changes: runtime API, no reload


def test_member_disabled_across_a_reload(dataplane: DataPlane, setup) -> None:
    """A member disabled through the runtime API stays disabled across a reload (a listener
    change), and is enabled again afterwards."""
    client, lb = setup
    first, _ = _urls(lb)
    pool = pools_of(client, lb.id)["pool-a"]
    member = next(m for m in pool.members if m.protocol_port == dataplane.backends[0].port)
    members = client.cloud.load_balancers.pools.members
    listener = next(
        li
        for li in client.cloud.load_balancers.listeners.list(load_balancer_id=lb.id).results
        if li.protocol_port == 8080
    )

    finish(client, members.update(member.id, pool_id=pool.id, admin_state_up=False))
    reloads = dataplane.reloads(lb.id)
    finish(client, client.cloud.load_balancers.listeners.update(listener.id, timeout_client_data=40000))
    assert dataplane.reloads(lb.id) == reloads + 1
    assert spread(first, 6) == {"adm-a1": 6}
    finish(client, members.update(member.id, pool_id=pool.id, admin_state_up=True))
    _serving(lb)


def test_member_enabled_and_reweighted_in_a_reload(dataplane: DataPlane, setup) -> None:
    """A member disabled and another re-weighted through the runtime API, then both changed
    back together with a listener change (one apply, a reload): the configuration's admin
    state and weights win over what the runtime API had set in the old worker."""
    client, lb = setup
    first, _ = _urls(lb)
    pool = pools_of(client, lb.id)["pool-a"]
    by_port = {m.protocol_port: m for m in pool.members}
    a0, a1 = (by_port[b.port] for b in dataplane.backends[:2])
    members = client.cloud.load_balancers.pools.members
    listeners = client.cloud.load_balancers.listeners
    listener = next(li for li in listeners.list(load_balancer_id=lb.id).results if li.protocol_port == 8080)

    reloads = dataplane.reloads(lb.id)
    finish(client, members.update(a0.id, pool_id=pool.id, admin_state_up=False))
    finish(client, members.update(a1.id, pool_id=pool.id, weight=3))
    assert dataplane.reloads(lb.id) == reloads  # both through the runtime API
    assert spread(first, 4) == {"adm-a1": 4}

    # A task that changes nothing HAProxy sees (the LB's name) holds the queue meanwhile.
    path = f"/cloud/v2/loadbalancers/{client.cloud_project_id}/{client.cloud_region_id}/{lb.id}"
    with applies_held(dataplane.provider) as entered:
        held = client.patch(path, body={"name": "admin-state-renamed"}, cast_to=TaskIDList)
        wait_for(entered.is_set, timeout=10, what="the rename's apply")
        tasks = [
            members.update(a0.id, pool_id=pool.id, admin_state_up=True),
            members.update(a1.id, pool_id=pool.id, weight=1),
            listeners.update(listener.id, timeout_client_data=30000),
        ]
    for t in (held, *tasks):
        finish(client, t)
    assert dataplane.reloads(lb.id) == reloads + 1  # everything at once, in one reload
    assert spread(first, 20) == {"adm-a0": 10, "adm-a1": 10}


def test_pool(dataplane: DataPlane, setup) -> None:
    client, lb = setup
    first, second = _urls(lb)
    pool = pools_of(client, lb.id)["pool-a"]
    pools = client.cloud.load_balancers.pools

    finish(client, pools.update(pool.id, admin_state_up=False))
    assert get(first).status_code == 503  # no backend
    assert get(second).text == "adm-b"
    assert pools.get(pool.id).operating_status == "OFFLINE"

    finish(client, pools.update(pool.id, admin_state_up=True))
    _serving(lb)


def test_listener(dataplane: DataPlane, setup) -> None:
    client, lb = setup
    first, second = _urls(lb)
    listeners = client.cloud.load_balancers.listeners
    listener = next(li for li in listeners.list(load_balancer_id=lb.id).results if li.protocol_port == 8080)

    finish(client, listeners.update(listener.id, admin_state_up=False))
    assert refused(lb.vip_address, 8080)  # the port is closed
    assert get(second).text == "adm-b"
    assert listeners.get(listener.id).operating_status == "OFFLINE"

    finish(client, listeners.update(listener.id, admin_state_up=True))
    _serving(lb)


def test_load_balancer(dataplane: DataPlane, setup) -> None:
    client, lb = setup
    path = f"/cloud/v2/loadbalancers/{client.cloud_project_id}/{client.cloud_region_id}/{lb.id}"

    def set_admin(up: bool) -> None:
        finish(client, client.patch(path, body={"admin_state_up": up}, cast_to=TaskIDList))

    set_admin(False)
    assert refused(lb.vip_address, 8080) and refused(lb.vip_address, 8081)
    got = client.cloud.load_balancers.get(lb.id)
    assert (got.admin_state_up, got.operating_status) == (False, "OFFLINE")
    assert dataplane.process(lb.id).state == "running"  # the process stays, serving nothing

    set_admin(True)
    _serving(lb)
    assert client.cloud.load_balancers.get(lb.id).operating_status == "ONLINE"
