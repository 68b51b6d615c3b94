"""Real processes: the CLI, kill -9 of a busy server, several workers on PostgreSQL, parallel start-up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import ADMIN_TOKEN, _drop_pg, _free_port, database_url

LBAAS = [sys.executable, "-m", "lbaas"]


def env_for(tmp: Path, url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "LBAAS_DATA_DIR": str(tmp),
        "LBAAS_DATABASE_URL": url,
        "LBAAS_ADMIN_API_KEY": ADMIN_TOKEN,
        "LBAAS_PROVIDER": "noop",
    }
    env.update(extra)
    return env


def start_server(env: dict[str, str], *args: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen(
        [*LBAAS, "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not start: " + proc.stderr.read().decode()[-2000:])


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(params=["sqlite", "pg"])
def db_url(request, tmp_path):
    url = database_url(request.param, tmp_path)
    yield url
    if request.param == "pg":
        _drop_pg(url)


def task_states(url: str) -> list[tuple[str, str]]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT state, task_type FROM tasks ORDER BY seq")).all()
        pending = conn.execute(
            sa.text("SELECT count(*) FROM load_balancers WHERE provisioning_status LIKE 'PENDING%'")
        ).scalar_one()
    engine.dispose()
    return [tuple(r) for r in rows] + [("pending_lbs", str(pending))]


def test_kill_9_loses_no_accepted_work(tmp_path, db_url) -> None:
    env = env_for(tmp_path, db_url, LBAAS_NOOP_TASK_DELAY_MS="400", LBAAS_LEASE_SECONDS="2")
    proc, url = start_server(env)
    headers = {"Authorization": f"APIKey {ADMIN_TOKEN}"}
    accepted = []
    for i in range(6):
        r = httpx.post(f"{url}/cloud/v1/loadbalancers/1/1", json={"name": f"crash-{i}"}, headers=headers)
        assert r.status_code == 200
        accepted += r.json()["tasks"]
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    before = task_states(db_url)
    assert any(s in ("NEW", "RUNNING") for s, _ in before[:-1]), before  # work was in flight
    proc, url = start_server(env)
    try:
        deadline = time.time() + 40
        while time.time() < deadline:
            states = [
                httpx.get(f"{url}/cloud/v1/tasks/{t}", headers=headers).json()["state"] for t in accepted
            ]
            if all(s == "FINISHED" for s in states):
                break
            time.sleep(0.2)
        assert states == ["FINISHED"] * len(accepted)
        lbs = httpx.get(f"{url}/cloud/v1/loadbalancers/1/1", headers=headers).json()
        assert lbs["count"] == 6 and {lb["provisioning_status"] for lb in lbs["results"]} == {"ACTIVE"}
    finally:
        stop(proc)


def test_sigterm_finishes_in_flight_work(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    proc, base = start_server(env_for(tmp_path, url, LBAAS_NOOP_TASK_DELAY_MS="600"))
    headers = {"Authorization": f"APIKey {ADMIN_TOKEN}"}
    for i in range(3):
        assert (
            httpx.post(
                f"{base}/cloud/v1/loadbalancers/1/1", json={"name": f"term-{i}"}, headers=headers
            ).status_code
            == 200
        )
    time.sleep(0.3)  # let the worker start some of them
    proc.send_signal(signal.SIGTERM)
    # uvicorn re-raises the signal after its graceful shutdown.
    assert proc.wait(30) in (0, -signal.SIGTERM)
    states = {s for s, _ in task_states(url)[:-1]}
    assert "RUNNING" not in states and states <= {"NEW", "FINISHED"}, states


def test_workers_share_a_postgresql_queue(tmp_path) -> None:
    url = database_url("pg", tmp_path)
    env = env_for(tmp_path, url, LBAAS_NOOP_TASK_DELAY_MS="200")
    api, base = start_server(env, "--no-worker")
    workers = [
        subprocess.Popen(
            [*LBAAS, "worker", "--threads", "2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for w in workers:  # both must be claiming before work arrives, or one could take it all
        while "lbaas worker" not in (w.stderr.readline() or "lbaas worker (exited)"):
            pass
    headers = {"Authorization": f"APIKey {ADMIN_TOKEN}"}
    try:
        ids = []
        for i in range(12):
            ids += httpx.post(
                f"{base}/cloud/v1/loadbalancers/1/1", json={"name": f"shared-{i}"}, headers=headers
            ).json()["tasks"]
        deadline = time.time() + 40
        while time.time() < deadline:
            tasks = [httpx.get(f"{base}/cloud/v1/tasks/{t}", headers=headers).json() for t in ids]
            if all(t["state"] == "FINISHED" for t in tasks):
                break
            time.sleep(0.2)
        assert [t["state"] for t in tasks] == ["FINISHED"] * 12
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect() as conn:
            attempts = conn.execute(sa.text("SELECT attempts, worker_id FROM tasks")).all()
        engine.dispose()
        assert {a for a, _ in attempts} == {1}  # no task ran twice
        assert len({w for _, w in attempts}) >= 2  # both processes took work
    finally:
        for w in workers:
            stop(w)
        stop(api)
        _drop_pg(url)


def test_parallel_migrations(tmp_path, db_url) -> None:
    env = env_for(tmp_path, db_url)
    procs = [
        subprocess.Popen([*LBAAS, "migrate"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs


def test_cli_keys_and_read_only_tags(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    env = env_for(tmp_path, url)
    proc, base = start_server(env)
    try:
        out = subprocess.run(
            [*LBAAS, "api-key", "create", "--project-id", "1", "--name", "ci"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        token = out.stdout.strip().splitlines()[-1]
        headers = {"Authorization": f"APIKey {token}"}
        created = httpx.post(f"{base}/cloud/v1/loadbalancers/1/1", json={"name": "cli-lb"}, headers=headers)
        assert created.status_code == 200  # a key made while the server runs works at once
        lb_id = httpx.get(f"{base}/cloud/v1/loadbalancers/1/1", headers=headers).json()["results"][0]["id"]
        subprocess.run(
            [*LBAAS, "tags", "add-read-only", lb_id, "billing=ops"], env=env, check=True, capture_output=True
        )
        tags = httpx.get(f"{base}/cloud/v1/loadbalancers/1/1/{lb_id}", headers=headers).json()["tags_v2"]
        assert tags == [{"key": "billing", "value": "ops", "read_only": True}]
        listing = subprocess.run(
            [*LBAAS, "api-key", "list"], env=env, capture_output=True, text=True, check=True
        )
        assert "ci" in listing.stdout and token not in listing.stdout
        key_id = token.split("$")[0]
        subprocess.run([*LBAAS, "api-key", "revoke", key_id], env=env, check=True, capture_output=True)
        assert httpx.get(f"{base}/cloud/v1/loadbalancers/1/1", headers=headers).status_code == 401
        bad = subprocess.run([*LBAAS, "api-key", "revoke", "99999"], env=env, capture_output=True, text=True)
        assert bad.returncode != 0 and "could not be found" in bad.stderr
    finally:
        stop(proc)


def test_admin_key_from_environment_replaces_the_old_one(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    proc, base = start_server(env_for(tmp_path, url))
    stop(proc)
    new_token = "1$" + "b" * 64
    proc, base = start_server(env_for(tmp_path, url, LBAAS_ADMIN_API_KEY=new_token))
    try:
        ok = httpx.get(f"{base}/cloud/v1/loadbalancers/1/1", headers={"Authorization": f"APIKey {new_token}"})
        old = httpx.get(
            f"{base}/cloud/v1/loadbalancers/1/1", headers={"Authorization": f"APIKey {ADMIN_TOKEN}"}
        )
        assert ok.status_code == 200 and old.status_code == 401
    finally:
        stop(proc)


def test_haproxy_provider_without_haproxy_is_refused_clearly(tmp_path) -> None:
    env = env_for(tmp_path, "sqlite:///" + str(tmp_path / "x.db"), LBAAS_HAPROXY_BIN="/nonexistent/haproxy")
    out = subprocess.run(
        [*LBAAS, "serve", "--provider", "haproxy", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = out.stderr.strip().splitlines()
    assert out.returncode != 0 and len(lines) == 1, out.stderr
    assert "--provider haproxy" in lines[0] and "not found" in lines[0] and "Traceback" not in out.stderr


def test_auto_provider_without_haproxy_falls_back_to_the_emulator_and_says_so(tmp_path) -> None:
    env = env_for(tmp_path, "sqlite:///" + str(tmp_path / "x.db"), LBAAS_HAPROXY_BIN="/nonexistent/haproxy")
    env.pop("LBAAS_PROVIDER")
    proc, base = start_server(env)
    try:
        assert httpx.get(f"{base}/healthz").json()["provider"] == "noop"
    finally:
        stop(proc)
    log = proc.stderr.read().decode() if proc.stderr else ""
    assert "warning: no usable HAProxy" in log and "noop" in log


def test_cli_quota(tmp_path) -> None:
    env = env_for(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    subprocess.run(
        [*LBAAS, "quota", "set", "--project-id", "1", "loadbalancer_count", "3"],
        env=env,
        check=True,
        capture_output=True,
    )
    shown = subprocess.run(
        [*LBAAS, "quota", "show", "--project-id", "1"], env=env, check=True, capture_output=True, text=True
    ).stdout
    assert "loadbalancer_count: 0 / 3" in shown
    bad = subprocess.run(
        [*LBAAS, "quota", "set", "--project-id", "1", "bogus", "3"], env=env, capture_output=True, text=True
    )
    assert bad.returncode != 0 and "unknown quota" in bad.stderr


def test_secret_key_is_generated_at_first_start(tmp_path) -> None:
    env = env_for(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    env.pop("LBAAS_SECRET_KEY", None)
    proc, _ = start_server(env)
    stop(proc)
    key = tmp_path / "secret.key"
    assert key.exists() and oct(key.stat().st_mode & 0o777) == "0o600"
    first = key.read_bytes()
    proc, _ = start_server(env)
    stop(proc)
    assert key.read_bytes() == first  # reused, never replaced


def test_api_processes_share_the_port_and_the_worker_runs_once(tmp_path) -> None:
    env = env_for(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", LBAAS_NOOP_TASK_DELAY_MS="50")
    proc, base = start_server(env, "--api-processes", "2")
    try:
        pids = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
        # multiprocessing's spawned processes (its resource tracker is another kind of child)
        children = [p for p in pids if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(children) == 2
        headers = {"Authorization": f"APIKey {ADMIN_TOKEN}"}
        tasks = []
        with httpx.Client(
            base_url=base, headers=headers, limits=httpx.Limits(max_keepalive_connections=0)
        ) as http:
            for i in range(10):  # new connections: the kernel spreads them over both processes
                tasks += http.post("/cloud/v1/loadbalancers/1/1", json={"name": f"multi-{i}"}).json()["tasks"]
            deadline = time.time() + 30
            while time.time() < deadline:
                states = {http.get(f"/cloud/v1/tasks/{t}").json()["state"] for t in tasks}
                if states == {"FINISHED"}:
                    break
                time.sleep(0.2)
            assert states == {"FINISHED"}
            lbs = http.get("/cloud/v1/loadbalancers/1/1").json()
            assert lbs["count"] == 10
            lb = lbs["results"][0]["id"]
            patched = http.patch(f"/cloud/v1/loadbalancers/1/1/{lb}", json={"tags": {"k": "v"}}).json()
            for _ in range(6):  # whichever process answers, it reads what the other wrote
                assert http.get(f"/cloud/v1/loadbalancers/1/1/{lb}").json()["tags_v2"] == patched["tags_v2"]
        with sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}").connect() as conn:
            workers = {w for (w,) in conn.execute(sa.text("SELECT DISTINCT worker_id FROM tasks"))}
        assert all(w is not None for w in workers)
    finally:
        stop(proc)
    assert all(not Path(f"/proc/{c}").exists() for c in children)
