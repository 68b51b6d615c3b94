"""The runtime API against a live HAProxy: traffic steering without reloads, stats, health, counters."""

from __future__ import annotations

import http.client
import threading
import time

import pytest

from lbaas.providers.haproxy import stats
from lbaas.providers.haproxy.errors import CommandFailed, SocketUnavailable
from lbaas.providers.haproxy.runtime import StatsSocket
from tests.integration.haproxy.conftest import Lab, Server, config, get, hits, wait_for


def test_weight_state_add_and_del_steer_traffic_without_reload(lab: Lab, backends) -> None:
    a, b, c, d = backends("a"), backends("b"), backends("c"), backends("d")
    lb = lab.lb()
    vip, port = lab.addresses.endpoint()
    lab.deploy(lb, config(lb, vip, port, [Server("a", a.address, a.port), Server("b", b.address, b.port)]))
    rt = StatsSocket(lb.stats_socket)
    worker = lab.process(lb).status().worker_pids
    assert set(hits(vip, port, 10)) == {"a", "b"}

    rt.set_weight("be", "a", 0)
    assert set(hits(vip, port, 10)) == {"b"}
    rt.set_weight("be", "a", 1)
    rt.set_state("be", "b", "drain")
    assert set(hits(vip, port, 10)) == {"a"}
    rt.set_state("be", "b", "maint")
    assert set(hits(vip, port, 10)) == {"a"}
    assert stats.member_health(rt.show_stat())[("be", "b")].health == "MAINT"
    rt.set_state("be", "b", "ready")
    assert set(hits(vip, port, 10)) == {"a", "b"}

    # a dynamic server gets every option from the caller and starts taking traffic
    rt.set_weight("be", "a", 0)
    rt.set_weight("be", "b", 0)
    rt.add_server("be", "c", c.address, c.port, ["weight 10"])
    assert set(hits(vip, port, 6)) == {"c"}
    health = stats.member_health(rt.show_stat())
    assert health[("be", "c")].health == "NO_CHECK"
    # with health checks: enabled too, and it goes UP on its own checks
    rt.add_server("be", "d", d.address, d.port, ["weight 10", "inter 100", "rise 1", "fall 1"], check=True)
    wait_for(lambda: rt.show_stat().servers[("be", "d")].check_status == "L4OK")
    assert set(hits(vip, port, 10)) == {"c", "d"}

    assert rt.del_server("be", "c") is False
    assert rt.del_server("be", "d") is False
    assert ("be", "c") not in rt.show_stat().servers
    rt.set_weight("be", "a", 1)
    assert set(hits(vip, port, 10)) == {"a"}
    assert rt.del_server("be", "c") is False  # already gone: not an error
    assert lab.process(lb).status().worker_pids == worker  # no reload happened


def test_runtime_refusals_are_errors_with_haproxy_words(lab: Lab, backends) -> None:
    a = backends("a")
    lb = lab.lb()
    vip, port = lab.addresses.endpoint()
    cfg = config(lb, vip, port, [Server("a", a.address, a.port)])
    cfg += f"backend bysource\n    balance source\n    server a {a.address}:{a.port}\n"
    lab.deploy(lb, cfg)
    rt = StatsSocket(lb.stats_socket)
    with pytest.raises(CommandFailed, match="dynamic load balancing") as err:
        rt.add_server("bysource", "b", a.address, a.port)
    assert err.value.retriable is False
    with pytest.raises(CommandFailed, match="cookie"):
        rt.add_server("be", "b", a.address, a.port, ["cookie b"])
    with pytest.raises(CommandFailed, match="static LB algorithm"):
        rt.set_weight("bysource", "a", 5)
    with pytest.raises(CommandFailed, match="No such server"):
        rt.set_weight("be", "nope", 5)
    with pytest.raises(CommandFailed, match="Unknown command"):
        rt.execute("no such command")
    with pytest.raises(ValueError):
        rt.execute("show info; shutdown frontend fe")
    missing = StatsSocket(lb.run_dir / "missing.sock")
    with pytest.raises(SocketUnavailable) as gone:
        missing.show_info()
    assert gone.value.retriable is True
    info = rt.show_info()
    assert int(info["Pid"]) in lab.process(lb).status().worker_pids


class _Slow(threading.Thread):
    """One request to ``/slow`` that the backend holds for ``hold`` seconds."""

    def __init__(self, vip: str, port: int) -> None:
        super().__init__(daemon=True)
        self.vip, self.port = vip, port
        self.result: str | None = None

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.vip, self.port, timeout=10)
        try:
            conn.request("GET", "/slow")
            resp = conn.getresponse()
            self.result = f"{resp.status} {resp.read().decode()}"
        except (OSError, http.client.HTTPException) as exc:
            self.result = repr(exc)
        finally:
            conn.close()


def test_del_server_waits_for_its_connections_within_a_bound(lab: Lab, backends) -> None:
    a, slow = backends("a"), backends("slow")
    slow.delay = 1.0
    lb = lab.lb()
    vip, port = lab.addresses.endpoint()
    cfg = config(
        lb, vip, port, [Server("a", a.address, a.port)], frontend=["use_backend pool2 if { path_beg /slow }"]
    )
    cfg += "backend pool2\n    balance roundrobin\n"
    lab.deploy(lb, cfg)
    rt = StatsSocket(lb.stats_socket)
    rt.add_server("pool2", "s", slow.address, slow.port)

    # a request in flight: deleting without force gives up after the bound, retriable
    request = _Slow(vip, port)
    request.start()
    wait_for(lambda: rt.show_stat().servers[("pool2", "s")].scur == 1)
    with pytest.raises(CommandFailed) as err:
        rt.del_server("pool2", "s", wait=0.2, force=False)
    assert err.value.retriable is True
    # waiting long enough lets the request finish, then the server goes
    assert rt.del_server("pool2", "s", wait=5) is False
    request.join(5)
    assert request.result == "200 slow"

    # with force, the bound ends the connection
    rt.add_server("pool2", "s", slow.address, slow.port)
    request = _Slow(vip, port)
    request.start()
    wait_for(lambda: rt.show_stat().servers[("pool2", "s")].scur == 1)
    began = time.monotonic()
    assert rt.del_server("pool2", "s", wait=0.2, force=True) is True
    assert time.monotonic() - began < 0.9
    request.join(5)
    assert request.result != "200 slow"
    assert ("pool2", "s") not in rt.show_stat().servers


def test_show_stat_reports_health_with_the_reason(lab: Lab, backends) -> None:
    a, b, c = backends("a"), backends("b"), backends("c")
    lb = lab.lb()
    vip, port = lab.addresses.endpoint()
    servers = [
        Server("a", a.address, a.port, "check inter 100 rise 1 fall 1"),
        Server("b", b.address, b.port, "check inter 100 rise 1 fall 3"),
        Server("c", c.address, c.port),
    ]
    lab.deploy(lb, config(lb, vip, port, servers, backend=["option httpchk GET /health"]))
    rt = StatsSocket(lb.stats_socket)
    wait_for(lambda: {s.check_status for s in rt.show_stat().servers.values()} == {"L7OK", None})
    poll = rt.show_stat()
    assert poll.servers[("be", "a")].check_code == 200
    assert poll.servers[("be", "c")].status == "no check"
    assert set(poll.frontends) == {"fe"} and set(poll.backends) == {"be"}

    # an HTTP check that answers 404: DOWN, L7STS, code 404
    a.health = 404
    wait_for(lambda: rt.show_stat().servers[("be", "a")].status == "DOWN")
    down = stats.member_health(rt.show_stat())[("be", "a")]
    assert (down.health, down.check_status, down.check_code) == ("DOWN", "L7STS", 404)
    assert down.check_duration_ms is not None and down.since_change_s is not None

    # a killed server: "UP 1/3", "UP 2/3" on the way, then DOWN with L4CON and the system's words
    b.stop()
    seen: set[str] = set()

    def b_down() -> bool:
        status = rt.show_stat().servers[("be", "b")].status
        seen.add(status)
        return status == "DOWN"

    wait_for(b_down, interval=0.01)
    assert seen & {"UP 1/3", "UP 2/3"}
    assert all(stats.raw_health(s) in ("UP", "DOWN") for s in seen)
    health = stats.member_health(rt.show_stat())
    assert health[("be", "b")].health == "DOWN"
    assert health[("be", "b")].check_status == "L4CON"
    assert health[("be", "b")].check_text == "Connection refused"
    assert health[("be", "c")].health == "NO_CHECK"

    # counters of the frontend (the LB's and the listener's)
    assert set(hits(vip, port, 5)) == {"c"}
    total, per = stats.lb_counters(rt.show_stat())
    assert total.total_connections >= 5 and total.bytes_in > 0 and total.bytes_out > 0
    assert per["fe"] == total

    # the poller's read: both replies in one non-interactive exchange, frontends and servers only
    info, stat = rt.read("show info", "show stat -1 5 -1")
    assert "\nPid: " in info and info.startswith("Name: HAProxy")
    read = stats.parse_show_stat(stat)
    assert set(read.frontends) == {"fe"} and read.backends == {}
    assert set(read.servers) == set(poll.servers)
    assert stats.member_health(read)[("be", "b")].check_status == "L4CON"
    assert stats.lb_counters(read)[0].total_connections >= total.total_connections
    with pytest.raises(CommandFailed, match="Unknown command"):
        rt.read("show infox", "show stat")


def test_server_state_survives_a_reload(lab: Lab, backends) -> None:
    a, b = backends("a"), backends("b")
    lb = lab.lb()
    vip, port = lab.addresses.endpoint()

    def cfg(tag: str) -> str:
        servers = [
            Server("a", a.address, a.port, "check inter 1s"),
            Server("b", b.address, b.port, "check inter 1s"),
        ]
        return config(lb, vip, port, servers, backend=[f"http-response set-header X-Tag {tag}"])

    lab.deploy(lb, cfg("one"))
    rt = StatsSocket(lb.stats_socket)
    b.stop()
    wait_for(lambda: rt.show_stat().servers[("be", "b")].status == "DOWN")
    lab.deploy(lb, cfg("two"))  # saves show servers state first
    assert rt.show_stat().servers[("be", "b")].status == "DOWN"
    assert set(hits(vip, port, 6)) == {"a"}

    # control: without the saved state, the new worker believes b is UP until its checks fail
    lb.state_file.write_text("1\n")
    lab.process(lb).reload()
    assert rt.show_stat().servers[("be", "b")].status.startswith("UP")


def test_counters_stay_monotonic_across_reloads(lab: Lab, backends) -> None:
    a = backends("a")
    lb = lab.lb()
    vip, port = lab.addresses.endpoint()
    acc = stats.CounterAccumulator()

    def poll() -> dict[str, dict[str, int]]:
        pid = lab.process(lb).status().worker_pids[0]
        total, _ = stats.lb_counters(StatsSocket(lb.stats_socket).show_stat())
        return acc.observe(pid, {"lb": total.monotonic()})

    lab.deploy(lb, config(lb, vip, port, [Server("a", a.address, a.port)]))
    hits(vip, port, 7)
    first = poll()["lb"]
    assert first["total_connections"] >= 7
    lab.deploy(lb, config(lb, vip, port, [Server("a", a.address, a.port, "weight 2")]))
    hits(vip, port, 3)
    raw, _ = stats.lb_counters(StatsSocket(lb.stats_socket).show_stat())
    assert raw.total_connections < first["total_connections"]  # HAProxy started from zero
    second = poll()["lb"]
    assert second["total_connections"] >= first["total_connections"] + 3
    assert all(second[k] >= first[k] for k in stats.MONOTONIC)
    # the state persists: a new accumulator from it continues the same totals
    again = stats.CounterAccumulator(acc.state())
    assert again.totals() == acc.totals()
    assert get(vip, port)[1] == "a"
