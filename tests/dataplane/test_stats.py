"""Traffic counters measured by HAProxy: they grow with traffic, per LB and per listener, and
never go back, also across a reload (every new worker starts its counters at zero)."""

from __future__ import annotations

import socket

from tests.dataplane.conftest import DataPlane, create_lb, finish, get, wait_for


def test_counters_grow_and_survive_a_reload(dataplane: DataPlane) -> None:
    backend = dataplane.backend("stats")
    client = dataplane.client()
    lb = create_lb(
        client,
        name="stats",
        listeners=[
            {
                "name": name,
                "protocol": "HTTP",
                "protocol_port": port,
                "pools": [
                    {
                        "name": f"{name}-pool",
                        "protocol": "HTTP",
                        "lb_algorithm": "ROUND_ROBIN",
                        "members": [backend.member],
                    }
                ],
            }
            for name, port in (("counted", 8080), ("idle", 8081))
        ],
    )
    listeners = {
        li.name: li for li in client.cloud.load_balancers.listeners.list(load_balancer_id=lb.id).results
    }
    url = f"http://{lb.vip_address}:8080/counted"

    def lb_stats():
        return client.cloud.load_balancers.get(lb.id, show_stats=True).stats

    def listener_stats(name: str):
        return client.cloud.load_balancers.listeners.get(listeners[name].id, show_stats=True).stats

    for _ in range(20):
        assert get(url).status_code == 200
    first = wait_for(
        lambda: (s := lb_stats()) and s.total_connections >= 20 and s, what="20 connections counted"
    )
    assert first.bytes_in >= 20 * len("GET /counted HTTP/1.1\r\n") and first.bytes_out >= 20 * len("stats")
    counted = listener_stats("counted")
    assert counted.total_connections >= 20 and counted.bytes_out > 0
    idle = listener_stats("idle")
    assert (idle.total_connections, idle.bytes_in, idle.bytes_out) == (0, 0, 0)

    # A request HAProxy cannot parse is a request error.
    with socket.create_connection((lb.vip_address, 8080), timeout=5) as s:
        s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    wait_for(lambda: lb_stats().request_errors >= 1, what="the request error counted")

    reloads = dataplane.reloads(lb.id)
    finish(
        client, client.cloud.load_balancers.listeners.update(listeners["idle"].id, timeout_client_data=20000)
    )
    assert dataplane.reloads(lb.id) == reloads + 1
    after_reload = lb_stats()
    assert after_reload.total_connections >= first.total_connections  # never back to zero
    assert after_reload.bytes_in >= first.bytes_in and after_reload.request_errors >= 1

    for _ in range(10):
        assert get(url).status_code == 200
    final = wait_for(
        lambda: (s := lb_stats()) and s.total_connections >= first.total_connections + 10 and s,
        what="the new worker's connections added to the old totals",
    )
    assert final.bytes_in > after_reload.bytes_in and final.bytes_out > after_reload.bytes_out
    assert listener_stats("counted").total_connections >= counted.total_connections + 10
