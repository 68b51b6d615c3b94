"""Access logs with real HAProxy: ``logging.enabled`` turns them on and off, ``lbaas logs`` reads them.

One lbaas with the haproxy provider for the module (the ``dataplane`` fixture); its receiver
binds ``<run_dir>/logs.sock`` and writes under ``<data_dir>/logs``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import httpx
import pytest

from lbaas.accesslogs import AccessLogReceiver, LogStore
from lbaas.cli import main as lbaas_main
from tests.dataplane.conftest import DataPlane, wait_for

HTTP_FIELDS = {
    "time",
    "ts",
    "lb",
    "listener",
    "client_ip",
    "client_port",
    "pool",
    "member",
    "bytes_in",
    "bytes_out",
    "t_queue",
    "t_connect",
    "status",
    "t_response",
    "t_total",
    "termination",
}


def receiver(dp: DataPlane) -> AccessLogReceiver:
    rx = dp.server.app.state.runner.access_logs
    assert rx is not None and rx.running
    return rx


def store(dp: DataPlane) -> LogStore:
    return LogStore(dp.server.app.state.settings.data_dir / "logs")


def lines(dp: DataPlane, lb_id: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in store(dp).read(lb_id)]


def idle(dp: DataPlane, lb_id: str) -> bool:
    """No task of the LB (internal ones included) is queued or running."""
    import sqlalchemy as sa

    from lbaas.db import queue as task_queue
    from lbaas.db import tables

    t = tables.tasks
    with dp.server.db.read() as conn:
        busy = conn.execute(
            sa.select(t.c.id).where(t.c.lock_key == lb_id, t.c.state.in_(task_queue.ACTIVE_STATES))
        ).first()
    return busy is None


def at_least(dp: DataPlane, lb_id: str, n: int) -> list[dict[str, Any]]:
    """The LB's lines once there are ``n`` of them (the receiver writes every 0.5 s)."""
    return wait_for(lambda: (got := lines(dp, lb_id)) and len(got) >= n and got, what=f"{n} lines of {lb_id}")


def pool_listener(name: str, protocol: str, port: int, member: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": f"{name}-{protocol.lower()}",
        "protocol": protocol,
        "protocol_port": port,
        "pools": [
            {
                "name": f"{name}-{protocol.lower()}-pool",
                "protocol": protocol,
                "lb_algorithm": "ROUND_ROBIN",
                "members": [member],
            }
        ],
    }


def wait_active(client, *task_ids: str) -> None:
    for task_id in task_ids:
        wait_for(
            lambda t=task_id: client.cloud.tasks.get(t).state == "FINISHED",
            timeout=30,
            what=f"task {task_id}",
        )


def http_get(url: str, n: int = 1) -> None:
    with httpx.Client(headers={"Connection": "close"}) as http:
        for _ in range(n):
            assert http.get(url).status_code == 200


def tcp_exchange(address: str, port: int) -> None:
    with socket.create_connection((address, port), timeout=5) as s:
        s.sendall(b"GET /tcp HTTP/1.0\r\n\r\n")
        got = b""
        while chunk := s.recv(4096):
            got += chunk
    assert got.startswith(b"HTTP/1.1 200 ")


def run_cli(capsysbinary, dp: DataPlane, *args: str) -> tuple[int, bytes, str]:
    """``lbaas ...`` in this process, against the module's server; (status, stdout, stderr)."""
    settings = dp.server.app.state.settings
    saved = os.environ.get("LBAAS_DATA_DIR")
    os.environ["LBAAS_DATA_DIR"] = str(settings.data_dir)
    try:
        with pytest.raises(SystemExit) as exc:
            lbaas_main([*args, "--database-url", settings.database_url], prog_name="lbaas")
    finally:
        if saved is None:
            os.environ.pop("LBAAS_DATA_DIR", None)
        else:
            os.environ["LBAAS_DATA_DIR"] = saved
    out = capsysbinary.readouterr()
    return exc.value.code, out.out, out.err.decode()


@pytest.fixture(scope="module")
def lbs(dataplane: DataPlane) -> dict[str, Any]:
    """LB ``a`` (HTTP and TCP listeners, topic ``web.access``, 3 days) and ``b`` (HTTP, no topic)."""
    web = dataplane.backend("logs-web")
    client = dataplane.client()
    lbapi = client.cloud.load_balancers
    a = lbapi.create(
        name="logs-a",
        logging={"enabled": True, "topic_name": "web.access", "retention_policy": {"period": 3}},
        listeners=[pool_listener("a", "HTTP", 8080, web.member), pool_listener("a", "TCP", 9090, web.member)],
    )
    b = lbapi.create(
        name="logs-b", logging={"enabled": True}, listeners=[pool_listener("b", "HTTP", 8080, web.member)]
    )
    wait_active(client, a.tasks[0], b.tasks[0])
    ids = [
        t.created_resources.loadbalancers[0]
        for t in (client.cloud.tasks.get(a.tasks[0]), client.cloud.tasks.get(b.tasks[0]))
    ]
    return {"client": client, "a": lbapi.get(ids[0]), "b": lbapi.get(ids[1]), "web": web}


def test_http_and_tcp_lines_with_their_fields_per_topic_and_per_lb(
    dataplane: DataPlane, lbs: dict[str, Any]
) -> None:
    client, a, b = lbs["client"], lbs["a"], lbs["b"]
    http_get(f"http://{a.vip_address}:8080/a", 3)
    tcp_exchange(a.vip_address, 9090)
    http_get(f"http://{b.vip_address}:8080/b", 2)
    got_a = at_least(dataplane, a.id, 4)
    at_least(dataplane, b.id, 2)

    listeners = {
        li.protocol: li for li in client.cloud.load_balancers.listeners.list(load_balancer_id=a.id).results
    }
    pools = {
        p.listeners[0].id: p
        for p in client.cloud.load_balancers.pools.list(load_balancer_id=a.id, details=True).results
    }
    http_line = next(x for x in got_a if x["listener"] == listeners["HTTP"].id)
    tcp_line = next(x for x in got_a if x["listener"] == listeners["TCP"].id)
    for x, protocol in ((http_line, "HTTP"), (tcp_line, "TCP")):
        assert set(x) == HTTP_FIELDS
        pool = pools[listeners[protocol].id]
        assert x["lb"] == a.id and x["pool"] == pool.id and x["member"] == pool.members[0].id
        assert x["client_ip"] == "127.0.0.1" and 0 < x["client_port"] < 65536
        assert x["bytes_in"] > 0 and x["bytes_out"] > len("logs-web")
        assert x["t_total"] >= 0 and x["t_connect"] >= 0 and x["t_queue"] >= 0
        assert abs(x["ts"] - time.time()) < 60
    assert http_line["status"] == 200 and http_line["t_response"] >= 0 and http_line["termination"] == "----"
    assert tcp_line["status"] is None and tcp_line["t_response"] is None and tcp_line["termination"] == "--"
    assert sum(x["listener"] == listeners["HTTP"].id for x in got_a) == 3

    # Where they are: a topic stream of the project (with LB a's retention), b's own stream.
    root = store(dataplane).root
    project = str(client.cloud_project_id)
    day = dt.datetime.fromtimestamp(http_line["ts"], dt.UTC).date().isoformat()
    topic_file = root / project / "topic" / "web.access" / f"{day}.jsonl"
    own_file = root / project / "lb" / b.id / f"{day}.jsonl"
    assert a.id.encode() in topic_file.read_bytes() and b.id.encode() not in topic_file.read_bytes()
    assert b.id.encode() in own_file.read_bytes()
    index = json.loads((topic_file.parent / "stream.json").read_text())
    assert index["load_balancers"][a.id] == {"retention_days": 3}
    assert {oct(p.stat().st_mode & 0o777) for p in (topic_file, own_file)} == {"0o600"}
    assert oct(os.stat(receiver(dataplane).socket_path).st_mode & 0o777) == "0o600"


def test_seed_patch_off_stops_the_stream_at_once_then_v2_patch_turns_it_back_on(
    dataplane: DataPlane, lbs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, a = lbs["client"], lbs["a"]
    rx = receiver(dataplane)
    url = f"http://{a.vip_address}:8080/off"
    http_get(url)
    wait_for(lambda: any(x["ts"] > time.time() - 30 for x in lines(dataplane, a.id)), what="a line")

    config = dataplane.provider.paths(a.id).config
    worker = dataplane.server.app.state.worker
    with monkeypatch.context() as held:
        # Hold the worker, so the internal apply (the reload without log lines) waits: HAProxy
        # keeps sending after the answer, and the receiver must drop what it sends.
        held.setattr(worker, "run_once", lambda: False)
        time.sleep(0.3)  # a claim already under way ends
        answer = client.cloud.load_balancers.update(a.id, logging={"enabled": False})  # the seed PATCH
        after = time.time()
        assert answer.logging.enabled is False and answer.provisioning_status == "ACTIVE"
        dropped = rx.stats["logging_off"]
        http_get(url, 5)
        wait_for(lambda: rx.stats["logging_off"] >= dropped + 5, what="the receiver to drop 5 lines")
        assert "log-format" in config.read_text()  # still the old configuration
        time.sleep(0.7)  # one more write cycle
        assert [x for x in lines(dataplane, a.id) if x["ts"] >= after] == []
    wait_for(lambda: idle(dataplane, a.id), what="the internal apply (a reload without log lines)")
    assert "log-format" not in config.read_text()
    flow = rx.stats["written"] + rx.stats["logging_off"]
    http_get(url, 3)
    time.sleep(0.7)
    # Reloaded: HAProxy sends no flow line any more (the old worker's own "proxy stopped"
    # messages may still arrive; they are not access-log lines).
    assert rx.stats["written"] + rx.stats["logging_off"] == flow

    # The v2 PATCH (a task) turns it on again, now without a topic: a's own stream.
    path = f"/cloud/v2/loadbalancers/{client.cloud_project_id}/1/{a.id}"
    res = client.patch(path, body={"logging": {"enabled": True}}, cast_to=object)
    wait_active(client, *res["tasks"])
    again = time.time()
    http_get(url, 2)
    wait_for(
        lambda: len([x for x in lines(dataplane, a.id) if x["ts"] >= again]) == 2, what="lines after v2 PATCH"
    )
    own = store(dataplane).root / str(client.cloud_project_id) / "lb" / a.id
    assert own.is_dir() and a.id in {p.parent.name for p in own.glob("*.jsonl")}


def test_lbaas_logs_prints_since_and_follows(dataplane: DataPlane, lbs: dict[str, Any], capsysbinary) -> None:
    b = lbs["b"]
    http_get(f"http://{b.vip_address}:8080/cli")
    wait_for(lambda: len(lines(dataplane, b.id)) >= 1, what="b's lines")
    status, out, err = run_cli(capsysbinary, dataplane, "logs", b.id)
    assert status == 0, err
    printed = [json.loads(x) for x in out.splitlines()]
    assert printed and {x["lb"] for x in printed} == {b.id}
    assert [x["ts"] for x in printed] == sorted(x["ts"] for x in printed)
    status, out, _ = run_cli(capsysbinary, dataplane, "logs", b.id, "--since", "10m")
    assert status == 0 and len(out.splitlines()) == len(printed)
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    status, out, _ = run_cli(capsysbinary, dataplane, "logs", b.id, "--since", future)
    assert status == 0 and out == b""
    status, _, err = run_cli(capsysbinary, dataplane, "logs", b.id, "--since", "yesterday")
    assert status == 2 and err.count("\n") == 1 and "--since" in err and err.startswith("lbaas: error:")
    unknown = "5f0c1a2b-0000-4000-8000-000000000000"
    status, out, err = run_cli(capsysbinary, dataplane, "logs", unknown)
    assert status == 1 and out == b"" and err.count("\n") == 1
    assert err.startswith(f"lbaas: error: no load balancer {unknown}")

    # --follow, as a user runs it: what is kept, then new lines as they come.
    settings = dataplane.server.app.state.settings
    env = {
        **os.environ,
        "LBAAS_DATA_DIR": str(settings.data_dir),
        "LBAAS_DATABASE_URL": settings.database_url,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "lbaas", "logs", b.id, "--follow", "--since", "1m"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    printed: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: [printed.put(x) for x in proc.stdout], daemon=True).start()
    try:
        assert json.loads(printed.get(timeout=15))["lb"] == b.id  # a kept line
        started = time.time()
        http_get(f"http://{b.vip_address}:8080/follow")
        while (got := json.loads(printed.get(timeout=15)))["ts"] < started:
            pass
        assert got["lb"] == b.id
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_deleted_lbs_logs_are_kept_until_their_retention(
    dataplane: DataPlane, lbs: dict[str, Any], capsysbinary
) -> None:
    client, b = lbs["client"], lbs["b"]
    http_get(f"http://{b.vip_address}:8080/last")
    wait_for(lambda: any(x.get("ts", 0) > time.time() - 30 for x in lines(dataplane, b.id)), what="b's line")
    before = lines(dataplane, b.id)
    res = client.cloud.load_balancers.delete(b.id)
    wait_active(client, *res.tasks)
    status, out, err = run_cli(capsysbinary, dataplane, "logs", b.id)
    assert status == 0, err
    assert [json.loads(x) for x in out.splitlines()] == before
    # Pruning past the default retention (b gave none: 7 days) removes them; then b is unknown.
    today = dt.datetime.now(dt.UTC).date()
    pruned = store(dataplane).prune(today + dt.timedelta(days=7))
    assert [p.parent.name for p in pruned] == ["web.access"]  # LB a's topic keeps 3 days only
    assert b.id in {p.parent.name for p in store(dataplane).prune(today + dt.timedelta(days=8))}
    status, out, err = run_cli(capsysbinary, dataplane, "logs", b.id)
    assert status == 1 and out == b"" and "no load balancer" in err


def test_lines_logged_while_lbaas_is_down_arrive_when_it_is_back(
    dataplane: DataPlane, lbs: dict[str, Any]
) -> None:
    a = lbs["a"]
    old = receiver(dataplane)
    old.stop()  # as lbaas stops: HAProxy keeps serving, its ring keeps the lines
    assert not old.socket_path.exists()
    began = time.time()
    http_get(f"http://{a.vip_address}:8080/while-down", 2)
    new = AccessLogReceiver(dataplane.server.db, old.socket_path, old.store)
    dataplane.server.app.state.runner.access_logs = new  # stopped with the server
    assert new.start()
    got = wait_for(
        lambda: len(x := [y for y in lines(dataplane, a.id) if y["ts"] >= began]) == 2 and x,
        what="the lines HAProxy kept while nothing received",
    )
    assert all(x["status"] == 200 for x in got)
