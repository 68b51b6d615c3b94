"""Density: N load balancers on one host, each a real HAProxy (issue 8 §5).

    .venv/bin/python bench/bench_density.py --lbs 10,100,1000 [--parallel 8] [--delay 3]

Starts ``lbaas serve --provider haproxy`` (SQLite, its own data and run directories, a random
/21 of VIPs and /24 of floating IPs in 127.230-254.x.x) and two nginx backends on 127.0.0.1
shared by every LB. Each LB: one HTTP listener, one pool of the 2 members, an HTTP health
monitor (``--delay`` s, timeout delay-1, max_retries and max_retries_down 2). LBs are created
through the API, at most ``--parallel`` at a time, up to each N of ``--lbs`` in turn; at each N:

(e)  PSS per LB: the sum of ``Pss`` in ``/proc/<pid>/smaps_rollup`` over every HAProxy master
     and worker of the data dir, divided by N; and lbaas's own RSS;
     time from the first create to all ACTIVE and one 200 through every VIP;
     GET of one LB: p50/p99 of 200 sequential requests, and the ratio to the figure at the first N.
At the last N:
(h)  one backend (member of every LB) killed: per member, time from the kill to ERROR on the
     API, against the monitor's bound (delay x max_retries_down + timeout);
     freshness: per member, the time the API first showed the change minus the time HAProxy
     made it (``health_detail.since``), against 2 x delay; then the backend comes back;
(g)  requests lost across a failover of one LB under wrk load (must be 0);
(f)  restart of lbaas alone (HAProxys left running): time to serve again, masters adopted
     (same pids); host reboot: lbaas stopped, every HAProxy of the data dir killed (SIGKILL),
     lbaas started: time until every VIP answers again.

Cleanup, always: SIGTERM lbaas first (its healer restarts HAProxys it finds down), then
``lbaas dataplane stop-all``, then check that no HAProxy of the data dir is left.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import os
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_dataplane  # noqa: E402
import common  # noqa: E402

from lbaas.providers.haproxy import discovery  # noqa: E402
from lbaas.providers.haproxy.paths import Layout  # noqa: E402

ADMIN = "1$" + secrets.token_hex(32)
LBS = "/cloud/v1/loadbalancers/1/1"
LBAAS = str(Path(sys.executable).with_name("lbaas"))


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


class Nginx:
    """One nginx on 127.0.0.1:port answering 200 (``/health`` too); can be killed and restarted."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="bench-density-nginx-"))
        (self.dir / "nginx.conf").write_text(
            # one process (no master): a SIGKILL takes the listener down at once, as a crash would
            f"master_process off; daemon off; pid {self.dir}/nginx.pid; error_log {self.dir}/error.log;\n"
            "events { worker_connections 8192; }\n"
            f"http {{ access_log off; server {{ listen 127.0.0.1:{port} reuseport; "
            "location / { return 200 'ok'; } } }\n"
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> Nginx:
        argv = [bench_dataplane.need("nginx"), "-c", str(self.dir / "nginx.conf"), "-p", str(self.dir)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        bench_dataplane.wait_http(f"http://127.0.0.1:{self.port}/")
        return self

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Lbaas:
    """``lbaas serve --provider haproxy`` with a data dir, run dir and address pools of its own."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-density-"))
        self.run = Path(tempfile.mkdtemp(prefix="bdn", dir="/tmp"))
        # 127.230-254.x.x: outside the /24s the tests and the other benches pick (127.30-229)
        second, third = 230 + secrets.randbelow(25), 8 * secrets.randbelow(30)
        self.env = {
            **os.environ,
            "LBAAS_DATA_DIR": str(self.tmp),
            "LBAAS_RUN_DIR": str(self.run),
            "LBAAS_VIP_POOL": f"127.{second}.{third}.0/21",
            "LBAAS_FIP_POOL": f"127.{second}.{third + 8}.0/24",
            "LBAAS_ADMIN_API_KEY": ADMIN,
            "LBAAS_PROVIDER": "haproxy",
        }
        self.port = common.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = open(self.tmp / "lbaas.log", "a")  # noqa: SIM115 - kept for the run
        self.http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"APIKey {ADMIN}"},
            timeout=120,
            limits=httpx.Limits(max_connections=64),
        )

    @property
    def layout(self) -> Layout:
        return Layout(self.tmp / "haproxy", self.run)

    def start(self, timeout: float = 300) -> float:
        """Start lbaas; seconds until /healthz answers (its data plane is reconciled by then)."""
        began = time.monotonic()
        argv = [LBAAS, "serve", "--port", str(self.port)]
        self.proc = subprocess.Popen(argv, env=self.env, stdout=self.log, stderr=self.log)
        while time.monotonic() - began < timeout:
            if self.proc.poll() is not None:
                common.fail(f"lbaas exited with {self.proc.returncode}; see {self.tmp / 'lbaas.log'}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return time.monotonic() - began
            time.sleep(0.05)
        common.fail(f"lbaas did not answer within {timeout}s")
        return timeout

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def masters(self) -> list[discovery.MasterProcess]:
        return discovery.find_running(self.layout)

    def close(self) -> list[int]:
        """lbaas first, then every HAProxy of the data dir; the pids still found afterwards."""
        self.stop()
        began = time.monotonic()
        subprocess.run([LBAAS, "dataplane", "stop-all"], env=self.env, capture_output=True, timeout=600)
        print(f"cleanup: lbaas dataplane stop-all took {time.monotonic() - began:.1f} s", flush=True)
        left = self.masters()
        for m in left:  # stop-all missed them: say so, and still leave nothing behind
            discovery.terminate(m.pid, m.worker_pids, grace=1.0)
        self.http.close()
        self.log.close()
        shutil.copy(self.tmp / "lbaas.log", "/tmp/bench-density-last.log")  # to read after the run
        shutil.rmtree(self.tmp, ignore_errors=True)
        shutil.rmtree(self.run, ignore_errors=True)
        return [m.pid for m in left]

    def reconciled_line(self) -> str:
        lines = [ln for ln in (self.tmp / "lbaas.log").read_text().splitlines() if "reconciled in" in ln]
        return lines[-1].strip() if lines else "(no reconcile line)"

    # -- API --------------------------------------------------------------------------------
    def wait_task(self, task: str, timeout: float = 600) -> dict:
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            t = self.http.get(f"/cloud/v1/tasks/{task}").json()
            if t["state"] == "FINISHED":
                return t
            if t["state"] == "ERROR":
                common.fail(f"task {task} failed: {t.get('error')}")
            time.sleep(0.1)
        common.fail(f"task {task} not finished within {timeout}s")
        return {}

    def create_lb(self, ports: list[int], delay: int) -> str:
        monitor = {
            "type": "HTTP",
            "delay": delay,
            "timeout": max(1, delay - 1),
            "max_retries": 2,
            "max_retries_down": 2,
            "url_path": "/health",
        }
        pool = {
            "name": "pool",
            "protocol": "HTTP",
            "lb_algorithm": "ROUND_ROBIN",
            "members": [{"address": "127.0.0.1", "protocol_port": p} for p in ports],
            "healthmonitor": monitor,
        }
        body = {
            "name": f"density-{secrets.token_hex(4)}",
            "listeners": [{"name": "http", "protocol": "HTTP", "protocol_port": 8080, "pools": [pool]}],
        }
        r = self.http.post(LBS, json=body)
        if r.status_code != 200:
            raise RuntimeError(f"create: {r.status_code} {r.text[:300]}")
        task = self.wait_task(r.json()["tasks"][0])
        return task["created_resources"]["loadbalancers"][0]

    def lbs(self) -> list[dict]:
        out: list[dict] = []
        while True:
            page = self.http.get(LBS, params={"limit": 1000, "offset": len(out)}).json()["results"]
            out += page
            if len(page) < 1000:
                return out

    def members(self) -> list[dict]:
        """Every member of every pool, with its LB id."""
        out: list[dict] = []
        offset = 0
        while True:
            page = self.http.get(
                "/cloud/v1/lbpools/1/1", params={"details": "true", "limit": 1000, "offset": offset}
            ).json()["results"]
            for pool in page:
                lb_id = pool["loadbalancers"][0]["id"] if pool.get("loadbalancers") else ""
                out += [{**m, "lb_id": lb_id} for m in pool["members"]]
            offset += len(page)
            if len(page) < 1000:
                return out


def http_ok(vip: str, port: int = 8080) -> bool:
    """One HTTP/1.0 request on a new connection: True on a 200 (a plain socket: an httpx client
    per VIP costs ~20 ms of CPU for its TLS context, seconds over 1,000 VIPs)."""
    try:
        with socket.create_connection((vip, port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\r\nHost: density\r\n\r\n")
            return s.recv(64).split(b" ", 2)[1:2] == [b"200"]
    except OSError:
        return False


def answering(vips: list[str], parallel: int = 16, timeout: float = 120) -> float:
    """Seconds until one request through every VIP got a 200 (each retried until it does)."""
    began = time.monotonic()

    def one(vip: str) -> None:
        while time.monotonic() - began < timeout:
            if http_ok(vip):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{vip} did not answer within {timeout}s")

    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        list(pool.map(one, vips))
    return time.monotonic() - began


def pss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
    return total


def _entries(pids: list[int], what: str) -> int:
    """How many entries ``/proc/<pid>/<what>`` holds, summed over ``pids`` (gone ones count 0)."""
    n = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            n += len(os.listdir(f"/proc/{pid}/{what}"))
    return n


def threads_of(pids: list[int]) -> int:
    return _entries(pids, "task")


def fds_of(pids: list[int]) -> int:
    return _entries(pids, "fd")


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            raw = Path(f"/proc/{pid}/stat").read_text()
            fields = raw[raw.rfind(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def idle_cpu(haproxy: list[int], lbaas: int, seconds: float = 5.0) -> tuple[float, float]:
    """Share of one core the HAProxys (health checks) and lbaas (the poller) take while idle."""
    hz = os.sysconf("SC_CLK_TCK")
    a, b = cpu_ticks(haproxy), cpu_ticks([lbaas])
    time.sleep(seconds)
    return (cpu_ticks(haproxy) - a) / hz / seconds, (cpu_ticks([lbaas]) - b) / hz / seconds


def time_wait() -> int:
    out = subprocess.run(["ss", "-tanH", "state", "time-wait"], capture_output=True, text=True).stdout
    return len(out.splitlines())


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def get_latency(lb: Lbaas, lb_id: str, n: int = 200) -> tuple[float, float]:
    times = []
    for _ in range(n):
        began = time.perf_counter()
        r = lb.http.get(f"{LBS}/{lb_id}")
        times.append((time.perf_counter() - began) * 1000)
        if r.status_code != 200:
            common.fail(f"GET one LB: {r.status_code}")
    return statistics.median(times), pct(times, 0.99)


def figure_scale(lb: Lbaas, n: int, ports: list[int], args, state: dict) -> None:
    have = len(state["ids"])
    began = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
        futures = [pool.submit(lb.create_lb, ports, args.delay) for _ in range(n - have)]
        for f in futures:
            try:
                state["ids"].append(f.result())
            except RuntimeError as exc:
                state["refused"] = str(exc)
    created = time.monotonic() - began
    rows = lb.lbs()
    active = sum(1 for r in rows if r["provisioning_status"] == "ACTIVE")
    answering([r["vip_address"] for r in rows])
    total = time.monotonic() - began
    masters = lb.masters()
    pids = [p for m in masters for p in (m.pid, *m.worker_pids)]
    kib = pss_kib(pids)
    cpu_h, cpu_l = idle_cpu(pids, lb.proc.pid)
    p50, p99 = get_latency(lb, state["ids"][0])
    state.setdefault("get_base", (n, p50, p99))
    base_n, b50, b99 = state["get_base"]
    print(
        f"(e) N={len(rows)}: PSS {kib / 1024:.0f} MiB for {len(masters)} HAProxy masters + "
        f"{len(pids) - len(masters)} workers = {kib / 1024 / max(1, len(masters)):.2f} MiB per LB; "
        f"threads {threads_of(pids)} ({threads_of(pids) / max(1, len(masters)):.1f}/LB), "
        f"fds {fds_of(pids)} ({fds_of(pids) / max(1, len(masters)):.1f}/LB); "
        f"lbaas RSS {rss_kib(lb.proc.pid) / 1024:.0f} MiB",
        flush=True,
    )
    print(
        f"(cpu) N={len(rows)} idle: HAProxys (health checks every {args.delay} s) {cpu_h:.0%} of a core, "
        f"lbaas (poller) {cpu_l:.0%}; TCP sockets in TIME_WAIT {time_wait()}",
        flush=True,
    )
    print(
        f"(scale) N={len(rows)}: {n - have} created in {created:.1f} s ({args.parallel} at a time), "
        f"{active} ACTIVE, all answering {total:.1f} s after the first create",
        flush=True,
    )
    print(
        f"(api) N={len(rows)}: GET one LB p50 {p50:.2f} ms p99 {p99:.2f} ms; at N={base_n}: "
        f"p50 {b50:.2f} p99 {b99:.2f}; ratio p50 {p50 / b50:.2f} p99 {p99 / b99:.2f}",
        flush=True,
    )


def _since(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp()


def figure_h(lb: Lbaas, victim: Nginx, args, n: int) -> None:
    delay, timeout, fall = args.delay, max(1, args.delay - 1), 2
    # Issue 7 §5's bound: the next check comes up to one delay after the death, then max_retries_down
    # failed checks mark the server down, then one poll interval (1 s, lbaas's default) shows it.
    poll = 1
    bound = delay * (fall + 1) + timeout + poll
    ids = {m["id"] for m in lb.members() if m["protocol_port"] == victim.port}
    killed = time.monotonic()
    victim.kill()
    seen: dict[str, float] = {}
    lag: dict[str, float] = {}
    deadline = killed + bound + 4 * delay + 60
    while len(seen) < len(ids) and time.monotonic() < deadline:
        now_wall, now = time.time(), time.monotonic()
        for m in lb.members():
            if m["id"] in ids and m["id"] not in seen and m["operating_status"] == "ERROR":
                seen[m["id"]] = now - killed
                since = (m.get("health_detail") or {}).get("since")
                if since:
                    lag[m["id"]] = now_wall - _since(since)
        time.sleep(0.2)
    times = sorted(seen.values())
    late = sum(1 for t in times if t > bound)
    print(
        f"(h) N={n}: one backend killed: {len(seen)}/{len(ids)} members ERROR; kill -> ERROR p50 "
        f"{statistics.median(times):.1f} s, max {max(times):.1f} s; bound delay {delay} x (max_retries_down "
        f"{fall} + 1) + timeout {timeout} + poll {poll} = {bound} s; over the bound: {late} "
        f"(the read loop adds up to {1 + 0.2:.1f} s)"
        if times
        else f"(h) N={n}: no member turned ERROR within {deadline - killed:.0f} s",
        flush=True,
    )
    if lag:
        lags = sorted(lag.values())
        stale = sum(1 for x in lags if x > 2 * delay)
        print(
            f"(fresh) N={n}: API shows HAProxy's change (health_detail.since) after p50 "
            f"{statistics.median(lags):.1f} s, max {max(lags):.1f} s (1 s resolution); aim <= 2 x delay "
            f"= {2 * delay} s; later than that: {stale} of {len(lags)}",
            flush=True,
        )
    back = time.monotonic()
    victim.start()
    online: set[str] = set()
    while len(online) < len(ids) and time.monotonic() - back < 4 * delay + 60:
        online = {m["id"] for m in lb.members() if m["id"] in ids and m["operating_status"] == "ONLINE"}
        time.sleep(0.2)
    print(
        f"(h) N={n}: backend back: {len(online)}/{len(ids)} members ONLINE after "
        f"{time.monotonic() - back:.1f} s (rise 2 x delay {delay} s)",
        flush=True,
    )


def figure_g(lb: Lbaas, lb_id: str, seconds: int = 8) -> None:
    vip = lb.http.get(f"{LBS}/{lb_id}").json()["vip_address"]
    result: dict = {}
    load = threading.Thread(
        target=lambda: result.update(bench_dataplane.wrk(f"http://{vip}:8080/", 16, seconds))
    )
    load.start()
    time.sleep(2)
    r = lb.http.post(f"{LBS}/{lb_id}/failover", json={})
    if r.status_code != 200:
        common.fail(f"failover: {r.status_code} {r.text[:200]}")
    began = time.monotonic()
    lb.wait_task(r.json()["tasks"][0])
    took = time.monotonic() - began
    load.join()
    print(
        f"(g) failover of one LB under load (wrk c16 {seconds}s): task {took:.1f} s, "
        f"{result['failed']} failed of {result['requests']} requests",
        flush=True,
    )


def figure_f(lb: Lbaas, n: int) -> None:
    before = {m.lb_id: m.pid for m in lb.masters()}
    vips = [r["vip_address"] for r in lb.lbs()]
    lb.stop()
    ready = lb.start()
    after = {m.lb_id: m.pid for m in lb.masters()}
    same = sum(1 for k, v in before.items() if after.get(k) == v)
    print(
        f"(f) N={n}: restart of lbaas alone: serving again {ready:.1f} s after its start; "
        f"{same}/{len(before)} masters adopted (same pid); {lb.reconciled_line()}",
        flush=True,
    )
    lb.stop()
    masters = lb.masters()
    for m in masters:
        for pid in (m.pid, *m.worker_pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for m in masters:
        discovery._wait_gone([m.pid, *m.worker_pids], 10)
    began = time.monotonic()
    ready = lb.start()
    answering(vips, timeout=300)
    total = time.monotonic() - began
    print(
        f"(f) N={n}: host reboot (lbaas stopped, {len(masters)} HAProxy masters SIGKILLed, lbaas started): "
        f"serving {ready:.1f} s, every VIP answering {total:.1f} s after the start; "
        f"{len(lb.masters())} masters; {lb.reconciled_line()}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lbs", default="10,50")
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--delay", type=int, default=3, help="health monitor delay, seconds")
    parser.add_argument("--only", default="e,h,g,f")
    args = parser.parse_args()
    steps = sorted(int(x) for x in args.lbs.split(","))
    which = set(args.only.split(","))
    print(
        f"nproc {os.cpu_count()}; pid_max {Path('/proc/sys/kernel/pid_max').read_text().strip()}; "
        f"RLIMIT_NOFILE {resource.getrlimit(resource.RLIMIT_NOFILE)}",
        flush=True,
    )
    backends = [Nginx(common.free_port()).start(), Nginx(common.free_port()).start()]
    lb = Lbaas()
    state: dict = {"ids": []}
    try:
        lb.start()
        print(f"lbaas {lb.url}: VIPs {lb.env['LBAAS_VIP_POOL']}, data dir {lb.tmp}", flush=True)
        for n in steps:
            figure_scale(lb, n, [b.port for b in backends], args, state)
            if state.get("refused"):
                print(f"(limit) a create was refused: {state['refused']}", flush=True)
                break
        n = len(state["ids"])
        if "h" in which:
            figure_h(lb, backends[1], args, n)
        if "g" in which:
            figure_g(lb, state["ids"][-1])
        if "f" in which:
            figure_f(lb, n)
    finally:
        left = lb.close()
        for b in backends:
            b.close()
        print(f"cleanup: HAProxy masters left after stop-all: {left or 'none'}", flush=True)


if __name__ == "__main__":
    main()
