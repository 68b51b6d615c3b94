"""How traffic is spread: least connections, weights, backup members, stickiness of every kind.

One lbaas for the module; each test has its own LB (its own VIP), so ports repeat freely.
"""

from __future__ import annotations

import concurrent.futures
from collections import Counter

from tests.dataplane.conftest import (
    DataPlane,
    create_lb,
    finish,
    get,
    http_client,
    member_statuses,
    spread,
    wait_for,
)

FAST_MONITOR = {"type": "HTTP", "delay": 2, "timeout": 1, "max_retries": 1, "max_retries_down": 1}


def _http_lb(client, name: str, members: list[dict], port: int = 8080, **pool) -> object:
    pool = {"name": f"{name}-pool", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", **pool}
    return create_lb(
        client,
        name=name,
        listeners=[
            {
                "name": f"{name}-http",
                "protocol": "HTTP",
                "protocol_port": port,
                "pools": [{**pool, "members": members}],
            }
        ],
    )


def test_least_connections_spares_the_slow_member(dataplane: DataPlane) -> None:
    fast = [dataplane.backend(f"lc-fast-{i}") for i in range(2)]
    slow = dataplane.backend("lc-slow", delay=0.6)
    client = dataplane.client()
    lb = _http_lb(client, "leastconn", [b.member for b in (*fast, slow)], lb_algorithm="LEAST_CONNECTIONS")
    url = f"http://{lb.vip_address}:8080/"

    def worker(_: int) -> list[str]:
        with http_client(headers={"Connection": "close"}) as http:
            return [http.get(url).text for _ in range(8)]

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        seen = Counter(answer for answers in pool.map(worker, range(4)) for answer in answers)
    assert sum(seen.values()) == 32
    # Round robin would send it a third (about 11); least connections only when it is idle.
    assert seen["lc-slow"] <= 4, seen
    assert seen["lc-fast-0"] + seen["lc-fast-1"] >= 28, seen


def test_weights_one_to_three(dataplane: DataPlane) -> None:
    light, heavy = dataplane.backend("w-1"), dataplane.backend("w-3")
    client = dataplane.client()
    lb = _http_lb(client, "weights", [{**light.member, "weight": 1}, {**heavy.member, "weight": 3}])
    seen = spread(f"http://{lb.vip_address}:8080/", 200)
    assert abs(seen["w-3"] / 200 - 0.75) <= 0.10 * 0.75, seen
    assert abs(seen["w-1"] / 200 - 0.25) <= 0.10 * 0.25, seen


def test_backup_member_serves_only_when_the_others_are_down(dataplane: DataPlane) -> None:
    primaries = [dataplane.backend(f"bk-primary-{i}") for i in range(2)]
    backup = dataplane.backend("bk-backup")
    client = dataplane.client()
    lb = _http_lb(
        client,
        "backup",
        [*(b.member for b in primaries), {**backup.member, "backup": True}],
        healthmonitor={**FAST_MONITOR, "url_path": "/health"},
    )
    url = f"http://{lb.vip_address}:8080/"
    assert set(spread(url, 20)) == {"bk-primary-0", "bk-primary-1"}

    for b in primaries:
        b.stop()
    # bound: delay x (max_retries_down + 1) + timeout + poll interval, with slack for a busy host
    wait_for(lambda: spread(url, 4) == {"bk-backup": 4}, timeout=20, what="the backup to take the traffic")
    ports = member_statuses(client, lb.id, "backup-pool")
    wait_for(
        lambda: (
            [member_statuses(client, lb.id, "backup-pool")[b.port] for b in primaries] == ["ERROR", "ERROR"]
        ),
        timeout=20,
        what="both primaries to read ERROR",
    )
    assert ports[backup.port] == "ONLINE"

    for b in primaries:
        b.start()
    wait_for(
        lambda: set(spread(url, 10)) == {"bk-primary-0", "bk-primary-1"},
        timeout=20,
        what="the primaries to take the traffic back",
    )


def test_source_ip_persistence_and_algorithm(dataplane: DataPlane) -> None:
    backends = [dataplane.backend(f"src-{i}") for i in range(3)]
    client = dataplane.client()
    lb = create_lb(
        client,
        name="source",
        listeners=[
            {
                "name": "sticky",
                "protocol": "HTTP",
                "protocol_port": 8080,
                "pools": [
                    {
                        "name": "sticky-pool",
                        "protocol": "HTTP",
                        "lb_algorithm": "ROUND_ROBIN",
                        "session_persistence": {"type": "SOURCE_IP"},
                        "members": [b.member for b in backends],
                    }
                ],
            },
            {
                "name": "hashed",
                "protocol": "HTTP",
                "protocol_port": 8081,
                "pools": [
                    {
                        "name": "hashed-pool",
                        "protocol": "HTTP",
                        "lb_algorithm": "SOURCE_IP",
                        "members": [b.member for b in backends],
                    }
                ],
            },
        ],
    )
    for port in (8080, 8081):
        chosen = {}
        for i in range(2, 10):
            source = f"127.0.0.{i}"
            seen = Counter(get(f"http://{lb.vip_address}:{port}/", source=source).text for _ in range(6))
            assert len(seen) == 1, (port, source, seen)  # every connection of a client: one member
            chosen[source] = next(iter(seen))
        assert len(set(chosen.values())) >= 2, (port, chosen)  # and the clients are spread


def test_http_cookie_persistence(dataplane: DataPlane) -> None:
    backends = [dataplane.backend(f"hc-{i}") for i in range(3)]
    client = dataplane.client()
    lb = _http_lb(
        client,
        "cookie",
        [b.member for b in backends],
        session_persistence={"type": "HTTP_COOKIE", "cookie_name": "LB_ROUTE"},
    )
    url = f"http://{lb.vip_address}:8080/"
    firsts = set()
    for _ in range(3):
        with http_client() as http:
            first = http.get(url)
            assert "LB_ROUTE" in first.cookies
            answers = {first.text} | {http.get(url).text for _ in range(6)}
            assert answers == {first.text}  # the cookie keeps the client on its member
            firsts.add(first.text)
    assert len(firsts) == 3  # new clients (no cookie) still go round robin
    # The cookie names the member by its id, and nothing else follows a request without it.
    pool = client.cloud.load_balancers.pools.list(load_balancer_id=lb.id).results[0]
    with http_client() as http:
        route = http.get(url).cookies["LB_ROUTE"]
    assert route in {m.id for m in pool.members}


def test_app_cookie_persistence(dataplane: DataPlane) -> None:
    backends = [dataplane.backend(f"ac-{i}", set_cookie="JSESSIONID") for i in range(3)]
    client = dataplane.client()
    lb = _http_lb(
        client,
        "appcookie",
        [b.member for b in backends],
        session_persistence={"type": "APP_COOKIE", "cookie_name": "JSESSIONID"},
    )
    url = f"http://{lb.vip_address}:8080/"
    for _ in range(3):
        first = get(url)
        session = first.cookies["JSESSIONID"]
        answers = {get(url, cookies={"JSESSIONID": session}).text for _ in range(6)}
        assert answers == {first.text}, (session, answers)  # the application's session sticks
    assert len({get(url).text for _ in range(6)}) == 3  # without the cookie: round robin


def test_tcp_pool_with_app_cookie_is_accepted_and_sticks_by_source(dataplane: DataPlane) -> None:
    """Gcore's Terraform example puts APP_COOKIE on a TCP pool: accepted, never a failed task;
    HAProxy cannot read cookies in TCP mode, so such a pool sticks by client address
    (docs/haproxy-mapping.md)."""
    backends = [dataplane.backend(f"tcpc-{i}") for i in range(3)]
    client = dataplane.client()
    lb = create_lb(client, name="tcp-cookie")
    listener = finish(
        client,
        client.cloud.load_balancers.listeners.create(
            load_balancer_id=lb.id, name="tcp", protocol="TCP", protocol_port=8000
        ),
    ).created_resources.listeners[0]
    task = finish(
        client,
        client.cloud.load_balancers.pools.create(
            load_balancer_id=lb.id,
            listener_id=listener,
            name="tcp-pool",
            protocol="TCP",
            lb_algorithm="ROUND_ROBIN",
            session_persistence={"type": "APP_COOKIE", "cookie_name": "jsessionid"},
            members=[b.member for b in backends],
        ),
    )
    assert task.state == "FINISHED"
    pool = client.cloud.load_balancers.pools.get(task.created_resources.pools[0])
    assert pool.provisioning_status == "ACTIVE"
    assert pool.session_persistence.type == "APP_COOKIE"
    chosen = {}
    for i in range(2, 8):
        source = f"127.0.0.{i}"
        seen = {get(f"http://{lb.vip_address}:8000/", source=source).text for _ in range(4)}
        assert len(seen) == 1, (source, seen)
        chosen[source] = seen.pop()
    assert len(set(chosen.values())) >= 2, chosen
