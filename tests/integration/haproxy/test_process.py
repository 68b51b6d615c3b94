"""The master process for real: start, hitless reload under load, failed reloads, stop, discovery."""

from __future__ import annotations

import http.client
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lbaas.providers.haproxy import files, limits
from lbaas.providers.haproxy.discovery import alive, find_running, find_strays, kill_strays
from lbaas.providers.haproxy.errors import ConfigInvalid, NotRunning, ReloadFailed, StartFailed
from lbaas.providers.haproxy.runtime import MasterSocket
from tests.integration.haproxy.conftest import Lab, Server, config, get, wait_for

REPO = Path(__file__).resolve().parents[3]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_start_serves_then_stop_leaves_nothing(lab: Lab, backends) -> None:
    a = backends("a")
    lb = lab.lb()
    vip, port = lab.addresses.endpoint()
    done = lab.deploy(lb, config(lb, vip, port, [Server("a", a.address, a.port)]))
    assert done.action == "started"
    status = done.status
    assert status.running and status.master_pid and len(status.worker_pids) == 1
    assert status.config_sha256 == done.installed.config_sha256
    assert get(vip, port)[1] == "a"

    # files 0600 in a 0700 directory, sockets 0600 in a 0700 run directory
    assert _mode(lb.dir) == 0o700 and _mode(lb.run_dir) == 0o700
    for path in (lb.config, lb.state_file, lb.log_file, lb.pid_file, lb.master_socket, lb.stats_socket):
        assert _mode(path) == 0o600, path
    assert int(lb.pid_file.read_text()) == status.master_pid

    # deploying the same bundle again changes nothing
    again = lab.deploy(lb, config(lb, vip, port, [Server("a", a.address, a.port)]))
    assert again.action == "unchanged" and again.status.master_pid == status.master_pid

    pids = [status.master_pid, *status.worker_pids]
    assert lab.process(lb).stop(grace=2) is True
    assert not any(alive(p) for p in pids)
    assert find_running(lab.layout) == []
    assert not lb.master_socket.exists() and not lb.stats_socket.exists() and not lb.pid_file.exists()
    assert lab.process(lb).status().running is False
    assert lab.process(lb).stop() is False


class Hammer(threading.Thread):
    """Keep-alive GETs as fast as possible; every exception or non-200 is a failure."""

    def __init__(self, vip: str, port: int) -> None:
        super().__init__(daemon=True)
        self.vip, self.port = vip, port
        self.ok = 0
        self.failures: list[str] = []
        self.bodies: set[str] = set()
        self.stopping = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.vip, self.port, timeout=5)
        while not self.stopping.is_set():
            try:
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read().decode()
                if resp.status == 200:
                    self.ok += 1
                    self.bodies.add(resp.getheader("X-Config", "") + body)
                else:
                    self.failures.append(f"HTTP {resp.status}")
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection(self.vip, self.port, timeout=5)
        conn.close()


def test_reload_under_keepalive_load_loses_no_request(lab: Lab, backends) -> None:
    a = backends("a")
    lb = lab.lb()
    vip, port = lab.addresses.endpoint()

    def cfg(generation: int) -> str:
        servers = [Server("a", a.address, a.port, f"weight {generation % 7 + 1}")]
        return config(lb, vip, port, servers, frontend=[f"http-response set-header X-Config g{generation}"])

    lab.deploy(lb, cfg(0))
    hammers = [Hammer(vip, port) for _ in range(2)]
    for h in hammers:
        h.start()
    reloads = []
    try:
        wait_for(lambda: all(h.ok > 20 for h in hammers))
        for generation in range(1, 6):
            before = lab.process(lb).status()
            done = lab.deploy(lb, cfg(generation))
            assert done.action == "reloaded"
            after = done.status
            assert after.reloads == before.reloads + 1 and after.failed_reloads == 0
            assert after.worker_pids and not set(after.worker_pids) & set(before.worker_pids)
            reloads.append(done.seconds)
            time.sleep(0.15)
        wait_for(lambda: any("g5a" in h.bodies for h in hammers))
    finally:
        for h in hammers:
            h.stopping.set()
        for h in hammers:
            h.join(10)
    assert [f for h in hammers for f in h.failures] == []
    assert sum(h.ok for h in hammers) > 200
    assert max(reloads) < 5


def test_reload_that_fails_at_start_is_reported_and_old_worker_keeps_serving(lab: Lab, backends) -> None:
    hard = limits.fd_limit().hard
    if hard > 4_000_000:
        pytest.skip(f"descriptor limit {hard} too high to provoke a start failure by maxconn")
    a = backends("a")
    lb = lab.lb()
    vip, port = lab.addresses.endpoint()
    good = config(
        lb, vip, port, [Server("a", a.address, a.port)], frontend=["http-response set-header X-Gen good"]
    )
    started = lab.deploy(lb, good).status
    # passes haproxy -c, cannot start: needs 2 * maxconn descriptors, more than the hard limit
    bad = config(lb, vip, port, [Server("a", a.address, a.port)], maxconn=hard)
    with pytest.raises(ReloadFailed) as err:
        lab.deploy(lb, bad)
    assert err.value.retriable is False  # HAProxy alerts: the same again cannot help
    assert "Cannot raise FD limit" in str(err.value)
    status = lab.process(lb).status()
    assert status.worker_pids == started.worker_pids
    assert status.failed_reloads == 1
    assert status.config_sha256 == started.config_sha256
    assert get(vip, port)[2].get("x-gen") == "good"
    # the previous bundle is back on disk: a later reload (or restart) serves the good config
    assert lb.config.read_text() == good
    redo = lab.process(lb).reload()
    assert redo.new_worker_pid not in started.worker_pids
    assert get(vip, port)[2].get("x-gen") == "good"


def test_invalid_config_changes_nothing(lab: Lab, backends) -> None:
    a = backends("a")
    lb = lab.lb()
    vip, port = lab.addresses.endpoint()
    good = config(lb, vip, port, [Server("a", a.address, a.port)])
    pid = lab.deploy(lb, good).status.master_pid
    with pytest.raises(ConfigInvalid) as err:
        lab.deploy(lb, good + "backend broken\n    balance nonsense\n")
    assert "balance only supports" in str(err.value) and err.value.retriable is False
    assert lb.config.read_text() == good
    assert (lb.dir / "haproxy.cfg.failed").exists()
    status = lab.process(lb).status()
    assert status.master_pid == pid and status.reloads == 0


def test_start_failure_is_reported_and_leaves_no_process(lab: Lab, backends) -> None:
    a = backends("a")
    lb = lab.lb()
    vip, port = lab.addresses.endpoint()
    hard = limits.fd_limit().hard
    if hard > 4_000_000:
        pytest.skip(f"descriptor limit {hard} too high to provoke a start failure by maxconn")
    with pytest.raises(StartFailed) as err:
        lab.deploy(lb, config(lb, vip, port, [Server("a", a.address, a.port)], maxconn=hard))
    assert "Cannot raise FD limit" in str(err.value)
    assert find_running(lab.layout) == []
    assert not lb.config.exists()  # rolled back: there was no previous bundle
    with pytest.raises(NotRunning):
        lab.process(lb).reload()


_START_IN_CHILD = """
import sys
from pathlib import Path
from lbaas.providers.haproxy.paths import Layout
from lbaas.providers.haproxy.process import HaproxyProcess
layout = Layout(Path(sys.argv[1]), Path(sys.argv[2]))
print(HaproxyProcess(layout.lb(sys.argv[3])).start().status.master_pid)
"""


def test_find_running_adopts_a_previous_lbaas_master_and_finds_a_stray(lab: Lab, backends) -> None:
    a = backends("a")
    lb = lab.lb()
    vip, port = lab.addresses.endpoint()
    files.install(lb, {"haproxy.cfg": config(lb, vip, port, [Server("a", a.address, a.port)]).encode()})
    # a previous lbaas: another Python process starts the master and exits
    out = subprocess.run(
        [sys.executable, "-c", _START_IN_CHILD, str(lab.layout.data_dir), str(lab.layout.run_dir), lb.lb_id],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        check=True,
    )
    master = int(out.stdout.strip())
    found = find_running(lab.layout)
    assert [(m.pid, m.lb_id) for m in found] == [(master, lb.lb_id)]
    assert len(found[0].worker_pids) == 1
    adopted = lab.process(lb).start()
    assert adopted.adopted and adopted.status.master_pid == master
    assert get(vip, port)[1] == "a"

    # a stray: a second master on the same configuration (its own pid file, e.g. left by a crash)
    stray = subprocess.Popen(
        [
            lab.haproxy_bin,
            "-W",
            "-S",
            f"{lab.layout.run_dir}/stray.master.sock,mode,600",
            "-p",
            f"{lb.dir}/stray.pid",
            "-f",
            str(lb.config),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: len(find_running(lab.layout)) == 2)
        assert [s.pid for s in find_strays(lab.layout)] == [stray.pid]
        assert kill_strays(lab.layout) == [stray.pid]
        stray.wait(5)
        assert [m.pid for m in find_running(lab.layout)] == [master]
        assert get(vip, port)[1] == "a"
    finally:
        if stray.poll() is None:
            stray.kill()
            stray.wait(5)


def test_stop_is_bounded_with_a_connection_open(lab: Lab, backends) -> None:
    a = backends("a")
    lb = lab.lb()
    vip, port = lab.addresses.endpoint()
    status = lab.deploy(lb, config(lb, vip, port, [Server("a", a.address, a.port)])).status
    conn = http.client.HTTPConnection(vip, port, timeout=5)
    conn.request("GET", "/")
    conn.getresponse().read()  # a keep-alive connection stays open on the worker
    try:
        began = time.monotonic()
        assert lab.process(lb).stop(grace=1.0)
        assert time.monotonic() - began < 8
        assert not any(alive(p) for p in (status.master_pid, *status.worker_pids))
    finally:
        conn.close()


def test_master_socket_replies_and_reload_of_an_adopted_master(lab: Lab, backends) -> None:
    a, b = backends("a"), backends("b")
    lb = lab.lb()
    vip, port = lab.addresses.endpoint()
    lab.deploy(lb, config(lb, vip, port, [Server("a", a.address, a.port)]))
    info = MasterSocket(lb.master_socket).show_proc()
    assert info.master.pid == int(lb.pid_file.read_text()) and info.failed_reloads == 0
    worker_info = MasterSocket(lb.master_socket).worker_command(info.workers[0].pid, "show info")
    assert f"Pid: {info.workers[0].pid}" in worker_info
    # a master with no running record (started by someone else): reload still verifies
    lb.running_file.unlink()
    files.install(lb, {"haproxy.cfg": config(lb, vip, port, [Server("b", b.address, b.port)]).encode()})
    done = lab.process(lb).reload()
    assert done.status.reloads == 1 and done.new_worker_pid != info.workers[0].pid
    assert get(vip, port)[1] == "b"
    assert os.stat(lb.running_file).st_size > 0


def test_a_master_on_our_config_with_another_cli_socket_makes_way(lab: Lab, backends) -> None:
    """LBAAS_RUN_DIR changed between two lbaas runs: the old master cannot be driven, so start()
    replaces it rather than running a second master beside it."""
    a = backends("a")
    lb = lab.lb()
    vip, port = lab.addresses.endpoint()
    files.install(lb, {"haproxy.cfg": config(lb, vip, port, [Server("a", a.address, a.port)]).encode()})
    elsewhere = lab.layout.run_dir.parent / "old-run"
    elsewhere.mkdir(mode=0o700)
    foreign = subprocess.Popen(
        [lab.haproxy_bin, "-W", "-S", f"{elsewhere}/m.sock,mode,600", "-f", str(lb.config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: (elsewhere / "m.sock").exists())
        assert find_running(lab.layout) == []  # not under our run directory
        assert lab.process(lb).master_pid() is None
        started = lab.process(lb).start()
        assert not started.adopted and started.status.master_pid != foreign.pid
        foreign.wait(10)
        assert get(vip, port)[1] == "a"
    finally:
        if foreign.poll() is None:
            foreign.kill()
            foreign.wait(5)


def test_the_master_log_is_trimmed(lab: Lab) -> None:
    lb = lab.lb()
    lb.prepare()
    lines = b"".join(b"[NOTICE]   (1) : line %d\n" % i for i in range(100_000))
    lb.log_file.write_bytes(lines)
    assert len(lines) > 1 << 20
    lab.process(lb)._trim_log()
    kept = lb.log_file.read_bytes()
    assert 0 < len(kept) <= 64 << 10
    assert kept.startswith(b"[NOTICE]") and kept.endswith(b"line 99999\n")
