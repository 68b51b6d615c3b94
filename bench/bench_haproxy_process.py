"""Times of the HAProxy host layer: ``haproxy -c``, start, verified reload, runtime calls, stop.

    .venv/bin/python bench/bench_haproxy_process.py [--rounds 20] [--servers 50]

One LB on a random 127.a.b.c address with ``--servers`` servers (health checks on) pointing at
one Python backend; every round installs a changed bundle (check), reloads and verifies, and
times runtime API calls over the stats socket. Prints p50/p95/max in milliseconds.
"""

from __future__ import annotations

import argparse
import http.server
import random
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

from lbaas.providers.haproxy import files
from lbaas.providers.haproxy.discovery import find_running, terminate
from lbaas.providers.haproxy.paths import Layout
from lbaas.providers.haproxy.process import HaproxyProcess
from lbaas.providers.haproxy.runtime import StatsSocket


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def _config(lb, vip: str, port: int, backend_port: int, servers: int, generation: int) -> bytes:
    lines = [
        "global",
        "    maxconn 4000",
        "    nbthread 1",
        f"    stats socket {lb.stats_socket} mode 600 level admin",
        f"    server-state-file {lb.state_file}",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 10s",
        "    timeout server 10s",
        "    option idle-close-on-response",
        "    load-server-state-from-file global",
        "frontend fe",
        f"    bind {vip}:{port}",
        f"    http-response set-header X-Generation {generation}",
        "    default_backend be",
        "backend be",
        "    balance roundrobin",
        *(f"    server s{i} 127.0.0.1:{backend_port} check inter 2s" for i in range(servers)),
    ]
    return ("\n".join(lines) + "\n").encode()


def _summary(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    p50 = statistics.median(ms)
    return f"{name:<16} n={len(ms):<4} p50={p50:8.2f} ms  p95={p95:8.2f} ms  max={ms[-1]:8.2f} ms"


def _time_calls(rt: StatsSocket, backend_port: int) -> dict[str, float]:
    """One round of runtime API calls, each timed (seconds)."""

    def add_del() -> None:
        rt.add_server("be", "dyn", "127.0.0.1", backend_port, ["weight 1"])
        rt.del_server("be", "dyn")

    out = {}
    for name, action in (
        ("show stat", rt.show_stat),
        ("show info", rt.show_info),
        ("set weight", lambda: rt.set_weight("be", "s0", 2)),
        ("add+del server", add_del),
    ):
        began = time.perf_counter()
        action()
        out[name] = time.perf_counter() - began
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--servers", type=int, default=50)
    args = parser.parse_args()

    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    root = Path(tempfile.mkdtemp(prefix="lbb-", dir="/tmp"))
    layout = Layout(root / "data" / "haproxy", root / "run")
    vip = f"127.{random.randrange(3, 255)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    times: dict[str, list[float]] = {k: [] for k in ("check", "start", "reload", "stop")}
    calls: dict[str, list[float]] = {"show stat": [], "show info": [], "set weight": [], "add+del server": []}
    try:
        for round_ in range(args.rounds):
            lb = layout.lb(str(uuid.uuid4()))
            port = 20000 + random.randrange(20000)
            proc = HaproxyProcess(lb)
            done = files.install(
                lb, {"haproxy.cfg": _config(lb, vip, port, backend.server_port, args.servers, 0)}
            )
            times["check"].append(done.check_seconds)
            times["start"].append(proc.start().seconds)
            rt = StatsSocket(lb.stats_socket)
            for generation in range(1, 4):
                cfg = _config(lb, vip, port, backend.server_port, args.servers, generation)
                done = files.install(lb, {"haproxy.cfg": cfg})
                times["check"].append(done.check_seconds)
                rt.save_server_state(lb.state_file)
                times["reload"].append(proc.reload().seconds)
            for _ in range(20):
                for name, seconds in _time_calls(rt, backend.server_port).items():
                    calls[name].append(seconds)
            began = time.perf_counter()
            proc.stop(grace=2)
            times["stop"].append(time.perf_counter() - began)
            print(f"round {round_ + 1}/{args.rounds}", end="\r", flush=True)
    finally:
        for master in find_running(layout):
            terminate(master.pid, master.worker_pids, grace=0.5)
        shutil.rmtree(root, ignore_errors=True)
        backend.shutdown()
    print(f"HAProxy host layer, {args.servers} servers with checks, {args.rounds} LBs")
    for name, values in {**times, **calls}.items():
        print(_summary(name, values))


if __name__ == "__main__":
    main()
