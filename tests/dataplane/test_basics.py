"""The first thing a user does: an LB through the SDK, traffic spread over its members."""

from __future__ import annotations

import collections

import httpx

from tests.dataplane.conftest import DataPlane, wait_for


def test_round_robin_over_three_members_then_a_dead_one_turns_error_with_its_reason(
    dataplane: DataPlane,
) -> None:
    backends = [dataplane.backend(f"rr-{i}") for i in range(3)]
    client = dataplane.client()
    lb = client.cloud.load_balancers.create_and_poll(
        name="rr-lb",
        listeners=[
            {
                "name": "http",
                "protocol": "HTTP",
                "protocol_port": 8080,
                "pools": [
                    {
                        "name": "rr-pool",
                        "protocol": "HTTP",
                        "lb_algorithm": "ROUND_ROBIN",
                        "members": [b.member for b in backends],
                        "healthmonitor": {
                            "type": "HTTP",
                            "delay": 2,
                            "timeout": 1,
                            "max_retries": 1,
                            "max_retries_down": 1,
                            "url_path": "/health",
                        },
                    }
                ],
            }
        ],
    )
    assert lb.provisioning_status == "ACTIVE"
    url = f"http://{lb.vip_address}:8080/"
    with httpx.Client() as http:
        seen = collections.Counter(http.get(url).text for _ in range(30))
    assert seen == {"rr-0": 10, "rr-1": 10, "rr-2": 10}

    backends[0].stop()

    def dead_member():
        pools = client.cloud.load_balancers.pools.list(load_balancer_id=lb.id, details=True).results
        members = {m.protocol_port: m for m in pools[0].members}
        m = members[backends[0].port]
        return m if m.operating_status == "ERROR" else None

    # bound: delay x (max_retries_down + 1) + timeout + a poll interval, with slack for a busy host
    member = wait_for(dead_member, timeout=15, what="the stopped member to read ERROR")
    detail = member.model_extra["health_detail"]
    assert detail["health"] == "DOWN" and detail["check_status"] in ("L4CON", "SOCKERR")
    assert detail["check_desc"]  # e.g. "Connection refused"
    assert client.cloud.load_balancers.get(lb.id).operating_status == "DEGRADED"
    with httpx.Client() as http:
        answers = {http.get(url).text for _ in range(20)}
    assert answers == {"rr-1", "rr-2"}  # no failed request: the dead member is out of rotation

    # keep-alive: 2 connections; the poller reads them within a poll interval
    stats = wait_for(
        lambda: (
            (s := client.cloud.load_balancers.get(lb.id, show_stats=True).stats)
            and s.total_connections >= 2
            and s
        ),
        timeout=10,
        what="both connections counted",
    )
    assert stats.bytes_in > 50 * 30 and stats.bytes_out > 0
    client.cloud.load_balancers.delete(lb.id)
