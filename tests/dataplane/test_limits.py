"""What this host's HAProxy can and cannot serve: the default connection limits start, and what
HAProxy cannot carry (UDP, UDP-CONNECT and K8S checks) is a 400 at request time naming the
limitation, never a task that fails."""

from __future__ import annotations

import gcore
import pytest

from tests.dataplane.conftest import DataPlane, create_lb, finish, get


def test_default_and_unlimited_connection_limits_start_on_this_host(dataplane: DataPlane) -> None:
    """connection_limit defaults to 100,000 and -1 is stored as 100,000 (API.md §5), far above
    what 20,000 file descriptors allow: the listener caps it at the process's maxconn."""
    backend = dataplane.backend("limits")
    client = dataplane.client()
    member = {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": [backend.member]}
    lb = create_lb(
        client,
        name="limits",
        listeners=[
            {
                "name": "default",
                "protocol": "HTTP",
                "protocol_port": 8080,
                "pools": [{"name": "pool-1", **member}],
            },
            {
                "name": "unlimited",
                "protocol": "HTTP",
                "protocol_port": 8081,
                "connection_limit": -1,
                "pools": [{"name": "pool-2", **member}],
            },
            {
                "name": "maximum",
                "protocol": "TCP",
                "protocol_port": 8082,
                "connection_limit": 1_000_000,
                "pools": [{"name": "pool-3", **{**member, "protocol": "TCP"}}],
            },
        ],
    )
    assert lb.provisioning_status == "ACTIVE"
    limits = {
        li.name: li.connection_limit
        for li in client.cloud.load_balancers.listeners.list(load_balancer_id=lb.id).results
    }
    assert limits == {"default": 100_000, "unlimited": 100_000, "maximum": 1_000_000}
    for port in (8080, 8081, 8082):
        assert get(f"http://{lb.vip_address}:{port}/").text == "limits"
    assert dataplane.process(lb.id).state == "running"

    # and a change of the limit is a reload that takes
    listener = next(
        li
        for li in client.cloud.load_balancers.listeners.list(load_balancer_id=lb.id).results
        if li.name == "default"
    )
    reloads = dataplane.reloads(lb.id)
    finish(client, client.cloud.load_balancers.listeners.update(listener.id, connection_limit=500))
    assert dataplane.reloads(lb.id) == reloads + 1
    assert get(f"http://{lb.vip_address}:8080/").text == "limits"


def _refused(exc: pytest.ExceptionInfo, field: str) -> str:
    assert exc.value.status_code == 400
    body = exc.value.body
    assert body["exception_class"] == "ValidationError"
    (message,) = [m for k, ms in body["invalid_fields"].items() if k.endswith(field) for m in ms]
    assert "haproxy" in message.lower(), message
    return message


def test_what_haproxy_cannot_serve_is_refused_at_request_time(dataplane: DataPlane) -> None:
    client = dataplane.client()
    lbs = client.cloud.load_balancers
    lb = create_lb(client, name="refusals")
    tasks_before = client.cloud.tasks.list().count

    with pytest.raises(gcore.BadRequestError) as exc:
        lbs.listeners.create(load_balancer_id=lb.id, name="udp", protocol="UDP", protocol_port=53)
    assert "UDP" in _refused(exc, "protocol")
    with pytest.raises(gcore.BadRequestError) as exc:
        lbs.pools.create(load_balancer_id=lb.id, name="udp", protocol="UDP", lb_algorithm="ROUND_ROBIN")
    _refused(exc, "protocol")
    with pytest.raises(gcore.BadRequestError) as exc:
        lbs.create(
            name="nested-udp",
            listeners=[
                {
                    "name": "dns",
                    "protocol": "UDP",
                    "protocol_port": 53,
                    "pools": [{"name": "dns", "protocol": "UDP", "lb_algorithm": "ROUND_ROBIN"}],
                }
            ],
        )
    _refused(exc, "protocol")

    pool = finish(
        client,
        lbs.pools.create(load_balancer_id=lb.id, name="tcp", protocol="TCP", lb_algorithm="ROUND_ROBIN"),
    ).created_resources.pools[0]
    tasks_before += 1
    for hm_type in ("UDP-CONNECT", "K8S"):
        with pytest.raises(gcore.BadRequestError) as exc:
            lbs.pools.health_monitors.create(pool, type=hm_type, delay=5, max_retries=2, api_timeout=3)
        assert hm_type in _refused(exc, "type")
        with pytest.raises(gcore.BadRequestError) as exc:
            lbs.pools.update(
                pool, healthmonitor={"type": hm_type, "delay": 5, "max_retries": 2, "timeout": 3}
            )
        _refused(exc, "type")
    assert client.cloud.tasks.list().count == tasks_before  # nothing was queued
    assert client.cloud.tasks.list(state=["ERROR"]).count == 0
    assert lbs.get(lb.id).provisioning_status == "ACTIVE"

    # and a deleted LB takes its HAProxy and its sockets with it
    paths = dataplane.provider.paths(lb.id)
    assert paths.stats_socket.exists()
    finish(client, lbs.delete(lb.id))
    assert lb.id not in {p.lb_id for p in dataplane.provider.processes()}
    assert not paths.stats_socket.exists() and not paths.master_socket.exists()
