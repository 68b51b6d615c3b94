"""The data plane in operation: it heals itself, corrects drift, fails over and resizes without loss."""

from __future__ import annotations

import os
import signal
import socket
import time

import httpx
import pytest

from lbaas.providers.haproxy import discovery
from tests.dataplane.conftest import DataPlane, Load, haproxy_server, simple_lb, wait_for


@pytest.fixture(scope="module")
def dp():
    with haproxy_server(drift_interval=1.0) as d:
        d.server.app.state.runner.poller.restart_backoff = (0.0, 0.3, 0.3)
        yield d


def _master(dp: DataPlane, lb_id: str):
    found = [m for m in discovery.find_running(dp.provider.layout) if m.lb_id == lb_id]
    return found[0] if found else None


def _lb(dp: DataPlane, client, name: str, port: int = 8080):
    backends = [dp.backend(f"{name}-{i}") for i in range(2)]
    lb = simple_lb(client, backends, name=name, port=port)
    return lb, f"http://{lb.vip_address}:{port}/"


def test_the_master_is_known_from_its_pid_file_without_a_scan(dp: DataPlane) -> None:
    """process.master_pid's fast path (discovery.is_master_of) says yes to the LB's master only."""
    lb, _ = _lb(dp, dp.client(), "pidfile")
    master = _master(dp, lb.id)
    paths = dp.provider.paths(lb.id)
    assert master is not None and master.worker_pids
    assert discovery.is_master_of(master.pid, paths.config, paths.master_socket)
    assert not any(discovery.is_master_of(w, paths.config, paths.master_socket) for w in master.worker_pids)
    other = dp.provider.paths("not-this-lb")
    assert not discovery.is_master_of(master.pid, other.config, paths.master_socket)
    assert not discovery.is_master_of(os.getpid(), paths.config, paths.master_socket)
    assert dp.provider._process(paths).master_pid() == master.pid


def test_a_killed_haproxy_is_restarted_and_reads_error_meanwhile(dp: DataPlane, caplog) -> None:
    client = dp.client()
    lb, url = _lb(dp, client, "heal")
    assert httpx.get(url).status_code == 200
    master = _master(dp, lb.id)
    for pid in (master.pid, *master.worker_pids):
        os.kill(pid, signal.SIGKILL)
    began = time.monotonic()
    wait_for(lambda: client.cloud.load_balancers.get(lb.id).operating_status == "ERROR", what="LB ERROR")
    wait_for(
        lambda: _master(dp, lb.id) is not None and _master(dp, lb.id).pid != master.pid, what="a new master"
    )
    wait_for(lambda: httpx.get(url).status_code == 200, what="traffic again")
    back = time.monotonic() - began
    wait_for(lambda: client.cloud.load_balancers.get(lb.id).operating_status == "ONLINE", what="LB ONLINE")
    assert back < 10, back  # aim: 5 s; poll 0.3 s + restart
    assert any(lb.id in r.getMessage() and "restarting" in r.getMessage() for r in caplog.records)


def test_a_restart_loop_is_bounded_and_says_why(dp: DataPlane) -> None:
    client = dp.client()
    lb, url = _lb(dp, client, "doomed", port=8081)
    master = _master(dp, lb.id)
    # Something else takes the VIP:port once HAProxy is gone: every restart fails to bind.
    squatter = socket.socket()
    for pid in (master.pid, *master.worker_pids):
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: _bind(squatter, lb.vip_address, 8081), what="the port to be free for the squatter")
    squatter.listen()
    try:
        poller = dp.server.app.state.runner.poller
        wait_for(lambda: (poller.give_up_state(lb.id) or {}).get("gave_up"), timeout=30, what="giving up")
        assert client.cloud.load_balancers.get(lb.id).operating_status == "ERROR"
        from click.testing import CliRunner

        from lbaas.cli import main as cli

        settings = dp.server.app.state.settings
        env = {"LBAAS_DATA_DIR": str(settings.data_dir), "LBAAS_RUN_DIR": str(settings.run_dir)}
        out = CliRunner().invoke(cli, ["dataplane", "status", "--database-url", dp.server.db.url], env=env)
        assert lb.id in out.output and "gave up after" in out.output, out.output
        time.sleep(1.0)  # later polls of the still-down LB keep the reason
        out = CliRunner().invoke(cli, ["dataplane", "status", "--database-url", dp.server.db.url], env=env)
        assert "gave up after" in out.output, out.output
        # stop-all while lbaas serves this data dir: refused (its healer would undo it), nothing stops.
        pids = {p.lb_id: p.pid for p in dp.provider.processes()}
        out = CliRunner().invoke(cli, ["dataplane", "stop-all", "--database-url", dp.server.db.url], env=env)
        assert out.exit_code == 1 and "stop lbaas first" in out.output, out.output
        assert {p.lb_id: p.pid for p in dp.provider.processes()} == pids
        # The rest of the host is unaffected.
        other, other_url = _lb(dp, client, "unaffected", port=8082)
        assert httpx.get(other_url).status_code == 200
    finally:
        squatter.close()
    # Freed: the next change brings it back.
    client.cloud.load_balancers.failover(lb.id)
    wait_for(lambda: httpx.get(url).status_code == 200, what="the LB to serve again")


def _bind(sock: socket.socket, host: str, port: int) -> bool:
    try:
        sock.bind((host, port))
        return True
    except OSError:
        return False


def test_drift_is_detected_and_corrected(dp: DataPlane, caplog) -> None:
    client = dp.client()
    lb, url = _lb(dp, client, "drift", port=8083)
    cfg = dp.provider.paths(lb.id).config
    good = cfg.read_bytes()
    cfg.write_bytes(good.replace(b"balance roundrobin", b"balance leastconn"))
    wait_for(lambda: cfg.read_bytes() == good, timeout=15, what="the hand edit to be undone")
    assert any("drifted" in r.getMessage() and lb.id in r.getMessage() for r in caplog.records)
    assert httpx.get(url).status_code == 200


def test_failover_under_load_loses_nothing(dp: DataPlane) -> None:
    client = dp.client()
    lb, url = _lb(dp, client, "failover", port=8084)
    before = _master(dp, lb.id).pid
    with Load(url) as load:
        task = client.cloud.load_balancers.failover(lb.id).tasks[0]
        client.cloud.tasks.poll(task) if hasattr(client.cloud.tasks, "poll") else None
        wait_for(lambda: client.cloud.tasks.get(task).state == "FINISHED", what="the failover task")
        time.sleep(0.5)
    assert _master(dp, lb.id).pid != before  # a fresh master
    assert load.failures == [] and load.ok > 50, (load.failures[:5], load.ok)


def test_resize_under_load_loses_nothing_and_shows_the_flavor(dp: DataPlane) -> None:
    client = dp.client()
    lb, url = _lb(dp, client, "resize", port=8085)
    assert lb.flavor is not None and lb.flavor.flavor_name == "lb1-1-2"  # the default flavor
    cfg = dp.provider.paths(lb.id).config
    with Load(url) as load:
        task = client.cloud.load_balancers.resize(lb.id, flavor="lb1-2-4").tasks[0]
        wait_for(lambda: client.cloud.tasks.get(task).state == "FINISHED", what="the resize task")
        time.sleep(0.5)
    assert load.failures == [] and load.ok > 50, (load.failures[:5], load.ok)
    assert client.cloud.load_balancers.get(lb.id).flavor.flavor_name == "lb1-2-4"
    assert "nbthread 2" in cfg.read_text()


def test_a_stopped_lbaas_frees_its_address_pools_for_the_next() -> None:
    """Two deployments may not share address pools while both run (host.register), but one that
    has stopped holds nothing: the next may take the same pools at once, in the same process too."""
    pools = {"vip_pool": "127.251.7.0/24", "fip_pool": "127.252.7.0/24"}
    with haproxy_server(**pools) as first:
        assert httpx.get(first.server.url + "/healthz").status_code == 200
    with haproxy_server(**pools) as second:  # another data dir, the same pools
        assert httpx.get(second.server.url + "/healthz").status_code == 200
