"""kill -9 of ``lbaas serve`` in the middle of applying a change: traffic never stops, and after a
restart the task ends cleanly, nothing is left PENDING and HAProxy serves the desired state."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, make_client
from tests.dataplane.conftest import (
    DataPlane,
    Load,
    _require_haproxy,
    free_port,
    random_vip_pool,
    simple_lb,
    wait_for,
)

LBAAS = [sys.executable, "-m", "lbaas"]


class _Remote:
    """Enough of tests.conftest.Server for make_client with a given token: the URL."""

    def __init__(self, url: str) -> None:
        self.url = url


def _start(env: dict[str, str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [*LBAAS, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(
        lambda: httpx.get(f"{url}/healthz", timeout=1).status_code == 200, timeout=30, what="lbaas to start"
    )
    return proc


@pytest.fixture
def env(tmp_path: Path):
    _require_haproxy()
    run = Path(tempfile.mkdtemp(prefix="lcr", dir="/tmp"))
    slow = tmp_path / "slow"
    wrapper = tmp_path / "haproxy"
    # The real haproxy, except that a configuration check takes 3 s while the file "slow" exists.
    wrapper.write_text(
        "#!/bin/bash\n"
        f'for a in "$@"; do [ "$a" = "-c" ] && [ -e {slow} ] && sleep 3; done\n'
        f'exec {shutil.which("haproxy")} "$@"\n'
    )
    wrapper.chmod(0o755)
    e = {
        **os.environ,
        "LBAAS_DATA_DIR": str(tmp_path / "data"),
        "LBAAS_DATABASE_URL": f"sqlite:///{tmp_path / 'lbaas.db'}",
        "LBAAS_ADMIN_API_KEY": ADMIN_TOKEN,
        "LBAAS_PROVIDER": "haproxy",
        "LBAAS_HAPROXY_BIN": str(wrapper),
        "LBAAS_RUN_DIR": str(run),
        "LBAAS_VIP_POOL": random_vip_pool(),
        "LBAAS_LEASE_SECONDS": "2",
        "LBAAS_POLL_INTERVAL_S": "0.3",
    }
    yield e, slow
    subprocess.run([*LBAAS, "dataplane", "stop-all"], env=e, capture_output=True, timeout=60)
    shutil.rmtree(run, ignore_errors=True)


def test_kill_9_mid_apply_keeps_traffic_and_ends_consistent(env) -> None:
    e, slow = env
    port = free_port()
    dp = DataPlane(server=None)  # type: ignore[arg-type]  # only for its backends
    backends = [dp.backend(f"crash-{i}") for i in range(2)]
    proc = _start(e, port)
    try:
        client = make_client(_Remote(f"http://127.0.0.1:{port}"), ADMIN_TOKEN, 1)
        lb = simple_lb(client, backends, name="crash")
        url = f"http://{lb.vip_address}:8080/"
        listener = lb.listeners[0].id
        with Load(url) as load:
            slow.touch()
            task = client.cloud.load_balancers.listeners.update(listener, connection_limit=5000).tasks[0]
            wait_for(lambda: client.cloud.tasks.get(task).state == "RUNNING", what="the apply to start")
            time.sleep(1)  # inside the 3 s configuration check
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            slow.unlink()
            time.sleep(1)  # lbaas is down; HAProxy keeps serving
            proc = _start(e, port)
            final = wait_for(
                lambda: (
                    client.cloud.tasks.get(task).state in ("FINISHED", "ERROR")
                    and client.cloud.tasks.get(task)
                ),
                timeout=30,
                what="the interrupted task to end",
            )
        assert load.failures == [] and load.ok > 50, (load.failures[:5], load.ok)
        assert final.state == "FINISHED", final.error
        got = client.cloud.load_balancers.get(lb.id)
        assert got.provisioning_status == "ACTIVE"
        assert client.cloud.load_balancers.listeners.get(listener).provisioning_status == "ACTIVE"
        status = subprocess.run(
            [*LBAAS, "dataplane", "status"], env=e, capture_output=True, text=True, timeout=60
        )
        row = next(line for line in status.stdout.splitlines() if lb.id in line)
        assert "running" in row and "yes" in row, status.stdout  # in sync with the desired state
        cfg = Path(e["LBAAS_DATA_DIR"]) / "haproxy" / lb.id / "haproxy.cfg"
        assert "maxconn 5000" in cfg.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        for b in backends:
            b.stop()
