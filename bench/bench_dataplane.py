"""Data-plane figures: an lbaas load balancer beside HAProxy started by hand, in the same run.

    .venv/bin/python bench/bench_dataplane.py [--only a,b,c,d,e] [--seconds 5]

(a) req/s and p99 through an lbaas LB (HTTP listener, 2 nginx backends) vs HAProxy started by hand
    with a minimal hand-written config on the same nginx backends, at 16 and 64 connections,
    keep-alive and a new connection per request (aim >= 0.9x);
(b) create -> ACTIVE with traffic: from the POST of a nested create (listener, pool, 2 members,
    health monitor) to the first 200 through the VIP (aim < 1 s p50);
(c) failed requests during 50 reconfigurations under load (must be 0);
(d) member add -> first request reaching it, and a member weight change, without reload (aim < 200 ms p50);
(e) the cost of basic auth with a bcrypt and a SHA-512-crypt encrypted_password, in req/s.

Everything runs on loopback: nginx and the backends on 127.0.0.1, VIPs in a random /24 of
127.0.0.0/8. Needs haproxy, nginx (nginx-light) and wrk.
"""

from __future__ import annotations

import argparse
import contextlib
import crypt  # noqa: F401  (deprecated in 3.11, still the way to make crypt(3) hashes here)
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

warnings.filterwarnings("ignore", category=DeprecationWarning)
BODY = "x" * 1024
ADMIN = "1$" + secrets.token_hex(32)


def need(tool: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None)
    if not path:
        common.fail(f"{tool} not found; apt-get install -y haproxy nginx-light wrk")
    return path


@contextlib.contextmanager
def nginx(count: int):
    """``count`` nginx servers on 127.0.0.1 answering 1 KiB; yields their ports."""
    ports = [common.free_port() for _ in range(count)]
    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as tmp:
        servers = "".join(
            f"server {{ listen 127.0.0.1:{p}; location / {{ return 200 '{BODY}'; }} }}\n" for p in ports
        )
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(
            f"worker_processes 1; daemon off; pid {tmp}/nginx.pid; error_log {tmp}/error.log;\n"
            "events { worker_connections 4096; }\n"
            f"http {{ access_log off; keepalive_requests 100000; {servers} }}\n"
        )
        proc = subprocess.Popen([need("nginx"), "-c", str(conf), "-p", tmp], stderr=subprocess.DEVNULL)
        try:
            for p in ports:
                wait_http(f"http://127.0.0.1:{p}/")
            yield ports
        finally:
            proc.terminate()
            proc.wait(10)


def wait_http(url: str, timeout: float = 20.0, status: int = 200) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        try:
            if httpx.get(url, timeout=1).status_code == status:
                return time.monotonic() - began
        except httpx.HTTPError:
            pass
        time.sleep(0.002)
    common.fail(f"{url} did not answer {status} within {timeout}s")
    return timeout


class Lbaas:
    """``lbaas serve --provider haproxy`` on a free port, with its own data dir and VIP /24."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-dp-"))
        self.run = Path(tempfile.mkdtemp(prefix="bdp", dir="/tmp"))
        self.port = common.free_port()
        self.vip_net = f"127.{secrets.randbelow(200) + 30}.{secrets.randbelow(250) + 1}"
        self.env = {
            **os.environ,
            "LBAAS_DATA_DIR": str(self.tmp),
            "LBAAS_RUN_DIR": str(self.run),
            "LBAAS_VIP_POOL": f"{self.vip_net}.0/24",
            # its own floating-IP pool too: two deployments on a host may not share one (host.register)
            "LBAAS_FIP_POOL": f"127.{secrets.randbelow(200) + 30}.{secrets.randbelow(250) + 1}.0/24",
            "LBAAS_ADMIN_API_KEY": ADMIN,
            "LBAAS_PROVIDER": "haproxy",
        }
        exe = Path(sys.executable).with_name("lbaas")
        argv = [str(exe), "serve", "--port", str(self.port)]
        self.proc = subprocess.Popen(argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_http(self.url + "/healthz", timeout=60)
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": f"APIKey {ADMIN}"}, timeout=30)
        self.names: dict[str, str] = {}

    def task_done(self, task: str, timeout: float = 60) -> float:
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            state = self.http.get(f"/cloud/v1/tasks/{task}").json()["state"]
            if state == "FINISHED":
                return time.monotonic() - began
            if state == "ERROR":
                common.fail(f"task {task} failed: {self.http.get(f'/cloud/v1/tasks/{task}').json()['error']}")
            time.sleep(0.005)
        common.fail(f"task {task} not finished in {timeout}s")
        return timeout

    def tasks(self, method: str, path: str, body=None) -> list[str]:
        r = self.http.request(method, path, json=body)
        if r.status_code != 200:
            common.fail(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r.json()["tasks"]

    def created(self, task: str, kind: str) -> str:
        """An id the task creates (waits for the task, except for the LB: its row exists at once)."""
        if kind == "loadbalancers" and task in self.names:
            found = self.http.get("/cloud/v1/loadbalancers/1/1", params={"name": self.names[task]}).json()
            return found["results"][0]["id"]
        self.task_done(task)
        return self.http.get(f"/cloud/v1/tasks/{task}").json()["created_resources"][kind][0]

    def create_lb(
        self, members: list[int], *, hm: bool = True, port: int = 8080, listener: dict | None = None
    ):
        pool = {
            "name": "pool-1",
            "protocol": "HTTP",
            "lb_algorithm": "ROUND_ROBIN",
            "members": [{"address": "127.0.0.1", "protocol_port": p} for p in members],
        }
        if hm:
            pool["healthmonitor"] = {"type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 1}
        li = {"name": "http", "protocol": "HTTP", "protocol_port": port, "pools": [pool], **(listener or {})}
        task = self.tasks(
            "POST",
            "/cloud/v1/loadbalancers/1/1",
            {"name": f"bench-{secrets.token_hex(3)}", "listeners": [li]},
        )[0]
        return task

    def lb(self, lb_id: str) -> dict:
        return self.http.get(f"/cloud/v1/loadbalancers/1/1/{lb_id}").json()

    def worker_pids(self, lb_id: str) -> tuple[int, ...]:
        from lbaas.providers.haproxy import discovery
        from lbaas.providers.haproxy.paths import Layout

        masters = [
            m for m in discovery.find_running(Layout(self.tmp / "haproxy", self.run)) if m.lb_id == lb_id
        ]
        return masters[0].worker_pids if masters else ()

    def close(self) -> None:
        self.http.close()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        subprocess.run(  # after lbaas: while it serves, its healer would start them again
            [str(Path(sys.executable).with_name("lbaas")), "dataplane", "stop-all"],
            env=self.env,
            capture_output=True,
        )
        shutil.rmtree(self.tmp, ignore_errors=True)
        shutil.rmtree(self.run, ignore_errors=True)


@contextlib.contextmanager
def hand_haproxy(vip: str, port: int, backends: list[int], extra_frontend: str = ""):
    """HAProxy started by hand with a minimal hand-written config (the baseline)."""
    with tempfile.TemporaryDirectory(prefix="bench-haproxy-") as tmp:
        servers = "".join(f"    server s{i} 127.0.0.1:{p}\n" for i, p in enumerate(backends))
        cfg = Path(tmp) / "h.cfg"
        cfg.write_text(
            "global\n    maxconn 4000\n    nbthread 1\n"
            "defaults\n    mode http\n    timeout connect 5s\n"
            "    timeout client 50s\n    timeout server 50s\n"
            f"frontend f\n    bind {vip}:{port}\n{extra_frontend}    default_backend b\n"
            f"backend b\n    balance roundrobin\n{servers}"
        )
        proc = subprocess.Popen([need("haproxy"), "-W", "-f", str(cfg)], stderr=subprocess.DEVNULL)
        try:
            wait_http(f"http://{vip}:{port}/")
            yield f"http://{vip}:{port}/"
        finally:
            proc.terminate()
            proc.wait(10)


WRK_ERR = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def wrk(
    url: str, connections: int, seconds: int, *, close: bool = False, headers: dict | None = None
) -> dict:
    argv = [need("wrk"), "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for k, v in {**({"Connection": "close"} if close else {}), **(headers or {})}.items():
        argv += ["-H", f"{k}: {v}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = common._ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errs = WRK_ERR.search(out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    failed = (sum(int(n) for n in errs.groups()) if errs else 0) + (int(non2xx.group(1)) if non2xx else 0)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "p99": p99, "failed": failed, "requests": total}


def figure_a(lb: Lbaas, ports: list[int], seconds: int) -> dict:
    lb_id = lb.created(t := lb.create_lb(ports, hm=False), "loadbalancers")
    lb.task_done(t)
    vip = lb.lb(lb_id)["vip_address"]
    out = {}
    with hand_haproxy(f"{lb.vip_net}.250", 8080, ports) as base_url:
        for close in (False, True):
            for c in (16, 64):
                mode = "new-conn" if close else "keep-alive"
                ours = wrk(f"http://{vip}:8080/", c, seconds, close=close)
                theirs = wrk(base_url, c, seconds, close=close)
                key = f"a_{mode}_c{c}"
                out[key] = {"lbaas": ours, "hand": theirs, "ratio": round(ours["rps"] / theirs["rps"], 2)}
                print(
                    f"(a) {mode:10} c{c:<3} lbaas {ours['rps']:9.0f} req/s p99 {ours['p99']:6.2f} ms | "
                    f"hand HAProxy {theirs['rps']:9.0f} req/s p99 {theirs['p99']:6.2f} ms | "
                    f"ratio {out[key]['ratio']:.2f}",
                    flush=True,
                )
    return out


def figure_b(lb: Lbaas, ports: list[int], rounds: int = 10) -> dict:
    times = []
    for _ in range(rounds):
        began = time.monotonic()
        task = lb.create_lb(ports)
        lb_id = lb.created(task, "loadbalancers")
        vip = lb.lb(lb_id)["vip_address"]
        wait_http(f"http://{vip}:8080/", timeout=30)
        times.append(time.monotonic() - began)
        lb.task_done(task)
    p50 = statistics.median(times)
    print(
        f"(b) create -> first 200 through the VIP: p50 {p50 * 1000:.0f} ms, "
        f"max {max(times) * 1000:.0f} ms ({rounds} LBs)",
        flush=True,
    )
    return {"b_create_to_traffic_ms": {"p50": round(p50 * 1000), "max": round(max(times) * 1000)}}


def figure_c(lb: Lbaas, ports: list[int], extra: list[int], seconds: int = 30) -> dict:
    task = lb.create_lb(ports)
    lb_id, pool = lb.created(task, "loadbalancers"), lb.created(task, "pools")
    listener = lb.created(task, "listeners")
    lb.task_done(task)
    vip = lb.lb(lb_id)["vip_address"]
    result: dict = {}
    load = threading.Thread(target=lambda: result.update(wrk(f"http://{vip}:8080/", 16, seconds)))
    load.start()
    time.sleep(1)
    changes, added = 0, []
    members = f"/cloud/v1/loadbalancers/1/1/pools/{pool}/members"
    while changes < 50:
        kind = changes % 5
        if kind == 0:
            t = lb.tasks(
                "POST", members, {"address": "127.0.0.1", "protocol_port": extra[len(added) % len(extra)]}
            )[0]
            lb.task_done(t)
            added.append(lb.created(t, "members"))
        elif kind == 1 and added:
            lb.task_done(lb.tasks("DELETE", f"{members}/{added.pop()}")[0])
        elif kind == 2:
            algo = "LEAST_CONNECTIONS" if changes % 10 == 2 else "ROUND_ROBIN"
            lb.task_done(lb.tasks("PATCH", f"/cloud/v2/lbpools/1/1/{pool}", {"lb_algorithm": algo})[0])
        elif kind == 3:
            lb.task_done(
                lb.tasks(
                    "PATCH", f"/cloud/v2/lblisteners/1/1/{listener}", {"timeout_client_data": 40000 + changes}
                )[0]
            )
        else:
            lb.task_done(
                lb.tasks("PATCH", f"/cloud/v2/loadbalancers/1/1/{lb_id}", {"name": f"renamed-{changes}"})[0]
            )
        changes += 1
    load.join()
    print(
        f"(c) 50 reconfigurations under load: {result['failed']} failed of {result['requests']} requests",
        flush=True,
    )
    return {"c_failed_during_50_changes": result["failed"], "c_requests": result["requests"]}


class _First(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802
        if not self.server.first.is_set():  # type: ignore[attr-defined]
            self.server.at = time.monotonic()  # type: ignore[attr-defined]
            self.server.first.set()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_a) -> None:
        pass


def figure_d(lb: Lbaas, ports: list[int], rounds: int = 10) -> dict:
    task = lb.create_lb(ports, hm=False)
    lb_id, pool = lb.created(task, "loadbalancers"), lb.created(task, "pools")
    lb.task_done(task)
    vip = lb.lb(lb_id)["vip_address"]
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(timeout=5) as c:
            while not stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    c.get(f"http://{vip}:8080/")

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    members = f"/cloud/v1/loadbalancers/1/1/pools/{pool}/members"
    add_ms, weight_ms, reloads = [], [], 0
    try:
        for _ in range(rounds):
            srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _First)
            srv.daemon_threads = True
            srv.handle_error = lambda *_a: None  # type: ignore[method-assign]  # keep-alive resets at shutdown
            srv.first = threading.Event()  # type: ignore[attr-defined]
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            pids = lb.worker_pids(lb_id)
            began = time.monotonic()
            t = lb.tasks("POST", members, {"address": "127.0.0.1", "protocol_port": srv.server_address[1]})[0]
            srv.first.wait(10)  # type: ignore[attr-defined]
            add_ms.append((srv.at - began) * 1000)  # type: ignore[attr-defined]
            lb.task_done(t)
            member = lb.created(t, "members")
            began = time.monotonic()
            lb.task_done(lb.tasks("PATCH", f"{members}/{member}", {"weight": 5})[0])
            weight_ms.append((time.monotonic() - began) * 1000)
            reloads += lb.worker_pids(lb_id) != pids
            lb.task_done(lb.tasks("DELETE", f"{members}/{member}")[0])
            srv.shutdown()
            srv.server_close()
    finally:
        stop.set()
    out = {
        "d_member_add_to_first_request_ms": round(statistics.median(add_ms)),
        "d_weight_change_live_ms": round(statistics.median(weight_ms)),
        "d_reloads": reloads,
    }
    print(
        f"(d) member add -> first request reaching it: p50 {out['d_member_add_to_first_request_ms']} ms; "
        f"weight change live: p50 {out['d_weight_change_live_ms']} ms; reloads: {reloads} ({rounds} rounds)",
        flush=True,
    )
    return out


def figure_e(lb: Lbaas, ports: list[int], seconds: int) -> dict:
    import base64

    out = {}
    auth = {"Authorization": "Basic " + base64.b64encode(b"bench:secret").decode()}
    # bcrypt's default cost is 12 (4,096 rounds); cost 4 (16 rounds) is its cheapest. HAProxy checks
    # the hash on every request, in its one thread: wrk's 2 s timeouts count as failed.
    kinds = (
        ("none", None, None),
        ("sha512", crypt.METHOD_SHA512, None),
        ("bcrypt4", crypt.METHOD_BLOWFISH, 16),
        ("bcrypt12", crypt.METHOD_BLOWFISH, 4096),
    )
    for label, method, rounds in kinds:
        listener = {}
        if method is not None:
            salt = crypt.mksalt(method, rounds=rounds)
            listener["user_list"] = [{"username": "bench", "encrypted_password": crypt.crypt("secret", salt)}]
        task = lb.create_lb(ports, hm=False, listener=listener)
        lb_id = lb.created(task, "loadbalancers")
        lb.task_done(task)
        vip = lb.lb(lb_id)["vip_address"]
        r = wrk(f"http://{vip}:8080/", 16, seconds, headers=auth)
        out[f"e_basic_auth_{label}_rps"] = round(r["rps"])
        print(
            f"(e) basic auth {label:8}: {r['rps']:9.0f} req/s, p99 {r['p99']:.1f} ms, failed {r['failed']}",
            flush=True,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="a,b,c,d,e")
    parser.add_argument("--seconds", type=int, default=common.SECONDS)
    args = parser.parse_args()
    which = set(args.only.split(","))
    print(f"nproc: {os.cpu_count()}", flush=True)
    results: dict = {}
    with nginx(5) as ports:
        lb = Lbaas()
        try:
            if "a" in which:
                results.update(figure_a(lb, ports[:2], args.seconds))
            if "b" in which:
                results.update(figure_b(lb, ports[:2]))
            if "c" in which:
                results.update(figure_c(lb, ports[:2], ports[2:]))
            if "d" in which:
                results.update(figure_d(lb, ports[:2]))
            if "e" in which:
                results.update(figure_e(lb, ports[:2], args.seconds))
        finally:
            lb.close()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
