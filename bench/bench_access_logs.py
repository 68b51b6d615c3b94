"""Access logs under load: requests/s through one LB with logging off and on, lines written, lines lost.

    .venv/bin/python bench/bench_access_logs.py [--seconds 5] [--connections 16]

Runs ``lbaas serve --provider haproxy`` (its own data and run directories, VIPs in a random /24
of 127.0.0.0/8), an nginx backend on 127.0.0.1 that answers ``return 200``, and one LB with an
HTTP listener. wrk drives keep-alive GETs at the VIP, first with ``logging`` off, then on (seed
PATCH). Prints requests/s for both, the requests HAProxy's frontends took while logging was on
(``req_tot``), the lines the receiver wrote for them, and HAProxy's ``DroppedLogs``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
import httpx
import lbaas_server


def nginx(tmp: Path) -> tuple[subprocess.Popen, int]:
    port = common.free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"""daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx.err warn;
worker_processes 1;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "ok"; }} }}
}}
"""
    )
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(tmp)], start_new_session=True)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.05)
    common.fail("nginx did not start")
    raise AssertionError


def wrk(url: str, seconds: int, connections: int) -> float:
    out = subprocess.run(
        [common.require_wrk(), "-t1", f"-c{connections}", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    ).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        common.fail(f"wrk printed no rate:\n{out}")
    return float(m.group(1))


def cli(sock_path: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(sock_path))
        s.sendall(command.encode() + b"\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.decode()


def counters(sock_path: Path) -> tuple[int, int]:
    """(HTTP requests the frontends took, HAProxy's DroppedLogs)."""
    info = dict(x.split(": ", 1) for x in cli(sock_path, "show info").splitlines() if ": " in x)
    rows = cli(sock_path, "show stat").splitlines()
    head = rows[0].lstrip("# ").split(",")
    requests = sum(
        int(dict(zip(head, r.split(","), strict=False))["req_tot"] or 0)
        for r in rows[1:]
        if r and r.split(",")[1] == "FRONTEND"
    )
    return requests, int(info.get("DroppedLogs", 0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=common.SECONDS)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()
    if not shutil.which("nginx") or not shutil.which("haproxy"):
        common.fail("needs nginx and haproxy on PATH")
    tmp = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    run = Path(tempfile.mkdtemp(prefix="bl", dir="/tmp"))
    key = common.API_KEY
    backend, backend_port = nginx(tmp)
    port = common.free_port()
    vip_pool = f"127.{random.randint(30, 229)}.{random.randint(1, 250)}.0/24"
    argv = [*lbaas_server.lbaas_argv(), "serve", "--port", str(port), "--provider", "haproxy"]
    env = {
        "LBAAS_ADMIN_API_KEY": key,
        "LBAAS_DATA_DIR": str(tmp / "data"),
        "LBAAS_RUN_DIR": str(run),
        "LBAAS_VIP_POOL": vip_pool,
        "LBAAS_FIP_POOL": f"127.{random.randrange(30, 230)}.{random.randrange(1, 251)}.0/24",  # its own
    }
    try:
        with common.server("lbaas", argv, port, env=env, ready_timeout=60) as t:
            api = httpx.Client(base_url=t.base, headers=t.headers, timeout=30)
            listener = {
                "name": "web",
                "protocol": "HTTP",
                "protocol_port": 8080,
                "pools": [
                    {
                        "name": "web-pool",
                        "protocol": "HTTP",
                        "lb_algorithm": "ROUND_ROBIN",
                        "members": [{"address": "127.0.0.1", "protocol_port": backend_port}],
                    }
                ],
            }
            r = api.post(common.LB_PATH, json={"name": "bench-logs", "listeners": [listener]})
            r.raise_for_status()
            task = wait(api, r.json()["tasks"][0])
            lb_id = task["created_resources"]["loadbalancers"][0]
            lb = api.get(f"{common.LB_PATH}/{lb_id}").json()
            url = f"http://{lb['vip_address']}:8080/"
            stats_sock = run / f"{lb_id}.sock"

            wrk(url, 1, args.connections)  # warm up
            off = wrk(url, args.seconds, args.connections)
            api.patch(f"{common.LB_PATH}/{lb_id}", json={"logging": {"enabled": True}}).raise_for_status()
            deadline = time.monotonic() + 30
            while "log-format" not in (tmp / "data/haproxy" / lb_id / "haproxy.cfg").read_text():
                if time.monotonic() > deadline:
                    common.fail("logging was not applied")
                time.sleep(0.1)
            time.sleep(1.0)  # the reload
            requests_before, dropped_before = counters(stats_sock)
            on = wrk(url, args.seconds, args.connections)
            time.sleep(1.5)  # the last lines through the ring and the receiver's last write
            requests_after, dropped_after = counters(stats_sock)
            root = tmp / "data/logs"
            lines = sum(p.read_bytes().count(b"\n") for p in root.rglob("*.jsonl"))
            requests = requests_after - requests_before  # every one of them is logged
            dropped = dropped_after - dropped_before
            print(
                f"access logs: {off:,.0f} req/s logging off, {on:,.0f} req/s on ({on / off - 1:+.0%}); "
                f"{requests:,} requests, {lines:,} lines written ({1 - lines / max(1, requests):.2%} lost; "
                f"HAProxy DroppedLogs {dropped:,}); {args.connections} connections, "
                f"{args.seconds} s, {os.cpu_count()} CPUs"
            )
    finally:
        # After lbaas has stopped (while it serves, its healer would start them again).
        subprocess.run(
            [*lbaas_server.lbaas_argv(), "dataplane", "stop-all"],
            env={**os.environ, **env},
            capture_output=True,
            timeout=60,
        )
        os.killpg(backend.pid, signal.SIGTERM)
        backend.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(run, ignore_errors=True)


def wait(api: httpx.Client, task_id: str) -> dict:
    for _ in range(600):
        task = api.get(f"/cloud/v1/tasks/{task_id}").json()
        if task["state"] in ("FINISHED", "ERROR"):
            if task["state"] == "ERROR":
                common.fail(f"task failed: {task}")
            return task
        time.sleep(0.05)
    common.fail("task did not finish")
    raise AssertionError


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
