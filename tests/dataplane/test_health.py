"""Health: a member dies and comes back under traffic; monitors added, changed and removed.

Timing bounds: delay x (max_retries_down + 1) + timeout + poll interval, with slack for a
shared 2-core machine (never a measure of speed: that is bench/'s business).
"""

from __future__ import annotations

import time

from tests.dataplane.conftest import (
    DataPlane,
    create_lb,
    finish,
    get,
    http_client,
    member_statuses,
    pools_of,
    spread,
    wait_for,
)

MONITOR = {
    "type": "HTTP",
    "delay": 2,
    "timeout": 1,
    "max_retries": 1,
    "max_retries_down": 1,
    "url_path": "/health",
}
DETECT = 20  # 2 s x 2 + 1 s + 0.3 s poll, generously


def _lb(client, name: str, backends, members: list | None = None, **pool) -> object:
    return create_lb(
        client,
        name=name,
        listeners=[
            {
                "name": "http",
                "protocol": "HTTP",
                "protocol_port": 8080,
                "pools": [
                    {
                        "name": "pool",
                        "protocol": "HTTP",
                        "lb_algorithm": "ROUND_ROBIN",
                        "members": members or [b.member for b in backends],
                        **pool,
                    }
                ],
            }
        ],
    )


def test_member_killed_between_requests(dataplane: DataPlane) -> None:
    backends = [dataplane.backend(f"kill-{i}") for i in range(3)]
    client = dataplane.client()
    lb = _lb(client, "killed", backends, healthmonitor=MONITOR)
    url = f"http://{lb.vip_address}:8080/"
    wait_for(
        lambda: set(member_statuses(client, lb.id, "pool").values()) == {"ONLINE"},
        timeout=DETECT,
        what="every member ONLINE",
    )
    with http_client() as keepalive:
        assert {keepalive.get(url).text for _ in range(9)} == {"kill-0", "kill-1", "kill-2"}
        backends[0].stop()  # its listening socket and every connection (HAProxy's idle ones too)
        # Before any check noticed: a connection to the dead member fails and is redispatched.
        began = time.monotonic()
        answers = [keepalive.get(url) for _ in range(6)] + [get(url) for _ in range(6)]
        took = time.monotonic() - began
    assert [r.status_code for r in answers] == [200] * 12
    assert {r.text for r in answers} == {"kill-1", "kill-2"}
    assert took < 15, took  # retries wait at most min(timeout connect, 1 s) each

    dead = backends[0].port
    wait_for(lambda: member_statuses(client, lb.id, "pool")[dead] == "ERROR", timeout=DETECT, what="ERROR")
    member = next(m for m in pools_of(client, lb.id)["pool"].members if m.protocol_port == dead)
    detail = member.model_extra["health_detail"]
    assert detail["health"] == "DOWN" and detail["check_status"] in ("L4CON", "SOCKERR"), detail
    assert "refused" in (detail["check_desc"] or "").lower(), detail
    assert client.cloud.load_balancers.get(lb.id).operating_status == "DEGRADED"
    status = client.cloud.load_balancers.statuses.get(lb.id)
    assert status.listeners[0].pools[0].operating_status == "DEGRADED"
    assert spread(url, 10).keys() == {"kill-1", "kill-2"}

    backends[0].start()
    wait_for(lambda: member_statuses(client, lb.id, "pool")[dead] == "ONLINE", timeout=DETECT, what="ONLINE")
    assert client.cloud.load_balancers.get(lb.id).operating_status == "ONLINE"
    assert spread(url, 9).keys() == {"kill-0", "kill-1", "kill-2"}


def test_monitor_added_changed_removed(dataplane: DataPlane) -> None:
    backends = [dataplane.backend(f"hm-{i}") for i in range(2)]
    client = dataplane.client()
    lb = _lb(client, "monitored", backends)
    url = f"http://{lb.vip_address}:8080/"
    pool = pools_of(client, lb.id)["pool"]
    hms = client.cloud.load_balancers.pools.health_monitors

    def statuses() -> list[str]:
        return [member_statuses(client, lb.id, "pool")[b.port] for b in backends]

    # No monitor: nothing is checked, members read NO_MONITOR and all take traffic.
    assert statuses() == ["NO_MONITOR", "NO_MONITOR"]
    backends[1].health_status = 500
    assert spread(url, 4).keys() == {"hm-0", "hm-1"}
    assert not any(p.startswith("/health") for p, _ in backends[0].requests)

    # Added: the failing one goes ERROR with the status it answered.
    finish(client, hms.create(pool.id, **{k: v for k, v in MONITOR.items() if k != "timeout"}, api_timeout=1))
    wait_for(lambda: statuses() == ["ONLINE", "ERROR"], timeout=DETECT, what="ONLINE / ERROR")
    member = next(m for m in pools_of(client, lb.id)["pool"].members if m.protocol_port == backends[1].port)
    detail = member.model_extra["health_detail"]
    assert detail["check_status"] == "L7STS" and detail["check_code"] == 500, detail
    assert spread(url, 4).keys() == {"hm-0"}
    assert client.cloud.load_balancers.get(lb.id).operating_status == "DEGRADED"

    # Changed: 500 is now expected, so both pass (and the checks use the new path).
    finish(client, hms.update(pool.id, expected_codes="200,500", url_path="/health/deep"))
    wait_for(lambda: statuses() == ["ONLINE", "ONLINE"], timeout=DETECT, what="both ONLINE")
    assert "/health/deep" in {p for p, _ in backends[0].requests}
    assert spread(url, 4).keys() == {"hm-0", "hm-1"}

    # Changed again: the failing status no longer expected.
    finish(client, hms.update(pool.id, expected_codes="200"))
    wait_for(lambda: statuses() == ["ONLINE", "ERROR"], timeout=DETECT, what="ERROR again")

    # Removed: no checks, NO_MONITOR, traffic to everyone.
    hms.delete(pool.id)
    wait_for(lambda: statuses() == ["NO_MONITOR", "NO_MONITOR"], timeout=DETECT, what="NO_MONITOR")
    assert client.cloud.load_balancers.get(lb.id).operating_status == "ONLINE"
    assert spread(url, 4).keys() == {"hm-0", "hm-1"}
    checks = sum(p.startswith("/health") for p, _ in backends[0].requests)
    time.sleep(MONITOR["delay"] + 0.5)
    assert sum(p.startswith("/health") for p, _ in backends[0].requests) == checks  # checks stopped


def test_monitor_address_and_port_are_what_is_checked(dataplane: DataPlane) -> None:
    """A member's checks go to its monitor_address / monitor_port, its traffic to its own port."""
    served = [dataplane.backend(f"mon-{i}") for i in range(3)]
    healthy = dataplane.backend("checker-ok")
    failing = dataplane.backend("checker-500")
    failing.health_status = 500
    members = [
        {**served[0].member, "monitor_port": healthy.port},  # its own /health would say 500
        {**served[1].member, "monitor_port": failing.port},  # itself fine, its checker says 500
        # Nothing listens on this address: refused, though the member's own port answers.
        {**served[2].member, "monitor_address": "127.254.254.254", "monitor_port": healthy.port},
    ]
    served[0].health_status = 500
    client = dataplane.client()
    lb = _lb(client, "monitor-port", served, members=members, healthmonitor=MONITOR)
    want = {served[0].port: "ONLINE", served[1].port: "ERROR", served[2].port: "ERROR"}
    wait_for(lambda: member_statuses(client, lb.id, "pool") == want, timeout=DETECT, what=str(want))
    details = {
        m.protocol_port: m.model_extra["health_detail"] for m in pools_of(client, lb.id)["pool"].members
    }
    assert details[served[1].port]["check_code"] == 500, details
    assert details[served[2].port]["check_status"] in ("L4CON", "SOCKERR"), details
    # The checks reached the checkers, never the members' own ports.
    assert any(p.startswith("/health") for p, _ in healthy.requests)
    assert any(p.startswith("/health") for p, _ in failing.requests)
    assert not any(p.startswith("/health") for b in served for p, _ in b.requests)
    assert spread(f"http://{lb.vip_address}:8080/", 4).keys() == {"mon-0"}


def test_ping_monitor_checks_reachability(dataplane: DataPlane) -> None:
    """PING runs HAProxy's external check (one echo request): on loopback every address answers,
    so it shows reachability only (docs/haproxy-mapping.md); members read ONLINE with PROCOK."""
    backends = [dataplane.backend(f"ping-{i}") for i in range(2)]
    client = dataplane.client()
    lb = _lb(
        client, "pinged", backends, healthmonitor={"type": "PING", "delay": 2, "timeout": 1, "max_retries": 1}
    )

    # HAProxy starts its servers UP before their first check: wait for each check's own verdict.
    def checks() -> set:
        return {
            (m.model_extra["health_detail"] or {}).get("check_status")
            for m in pools_of(client, lb.id)["pool"].members
        }

    wait_for(lambda: checks() == {"PROCOK"}, timeout=DETECT, what="every member checked by ping (PROCOK)")
    assert set(member_statuses(client, lb.id, "pool").values()) == {"ONLINE"}
    # An echo request is no HTTP request: the backends saw no check.
    assert not any(p.startswith("/health") for b in backends for p, _ in b.requests)
    assert spread(f"http://{lb.vip_address}:8080/", 4).keys() == {"ping-0", "ping-1"}
