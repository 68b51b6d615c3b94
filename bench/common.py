"""Shared helpers for the bench scripts: start servers, run wrk, parse and print results.

Every server listens on 127.0.0.1 only; every wait and loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
PYTHON = sys.executable
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
WARMUP_SECONDS = 1
CONNECTIONS = tuple(int(c) for c in os.environ.get("BENCH_CONNECTIONS", "1,16").split(","))
# sqlite (default) or postgresql: lbaas's database, and which minimal app it is measured beside.
DB = os.environ.get("BENCH_DB", "sqlite")
# Which targets run (comma-separated names of targets(); default: all of them).
ONLY = {t for t in os.environ.get("BENCH_TARGETS", "").split(",") if t}
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
API_KEY = os.environ.get("BENCH_API_KEY") or secrets.token_hex(16)
UVICORN_FLAGS = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--workers", "1"]
LB_PATH = "/cloud/v1/loadbalancers/1/1"


def fail(msg: str) -> None:
    sys.exit(f"bench: {msg}")


def require_wrk() -> str:
    wrk = shutil.which("wrk")
    if not wrk:
        fail("wrk not found on PATH; install it with: apt-get update && apt-get install -y wrk")
    return wrk


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Target:
    name: str
    base: str  # http://127.0.0.1:PORT
    headers: dict[str, str] = field(default_factory=lambda: {"Authorization": f"APIKey {API_KEY}"})


@contextlib.contextmanager
def server(name: str, argv: list[str], port: int, env: dict | None = None, ready_timeout: float = 30.0):
    """Run argv (a server on 127.0.0.1:port) until the list endpoint answers 200; stop it on exit."""
    target = Target(name, f"http://127.0.0.1:{port}")
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp, open(Path(tmp) / "log", "w+") as log:
        proc = subprocess.Popen(
            argv,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_ready(proc, target, ready_timeout, log)
            yield target
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)


def wait_ready(proc: subprocess.Popen, target: Target, timeout: float, log) -> None:
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.1) + 1):  # bounded in count and in time
        if proc.poll() is not None:
            break
        try:
            r = httpx.get(target.base + LB_PATH + "?limit=1", headers=target.headers, timeout=2)
            if r.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    log.seek(0)
    state = f"exited with {proc.returncode}" if proc.poll() is not None else f"not ready after {timeout:.0f}s"
    fail(f"{target.name} server {state}; log tail:\n{log.read()[-3000:]}")


def uvicorn_app(name: str, module: str, env: dict | None = None):
    port = free_port()
    argv = [
        PYTHON,
        "-m",
        "uvicorn",
        f"{module}:app",
        "--app-dir",
        str(BENCH_DIR),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *UVICORN_FLAGS,
    ]
    return server(name, argv, port, env={"BENCH_API_KEY": API_KEY, **(env or {})})


def targets(baseline_only: bool):
    """(name, context-manager factory) for each app under test, in print order.

    SQLite: ``minimal`` (synchronous=NORMAL, the bar of issue 10) and ``minimal-full``
    (synchronous=FULL, lbaas's durability: every acknowledged write is on disk). PostgreSQL
    (BENCH_DB=postgresql): ``minimal-pg``, the same app on psycopg, the driver lbaas uses."""
    if DB == "postgresql":
        out = [("minimal-pg", lambda: uvicorn_app("minimal-pg", "baseline_minimal_pg"))]
    else:
        out = [
            ("minimal", lambda: uvicorn_app("minimal", "baseline_minimal")),
            (
                "minimal-full",
                lambda: uvicorn_app("minimal-full", "baseline_minimal", {"BENCH_SYNCHRONOUS": "FULL"}),
            ),
        ]
    out.append(("bare", lambda: uvicorn_app("bare", "baseline_bare")))
    if not baseline_only:
        import lbaas_server

        out.insert(0, ("lbaas", lambda: lbaas_server.running(API_KEY)))
    return [(name, start) for name, start in out if not ONLY or name in ONLY]


def first_lb_id(t: Target) -> str:
    r = httpx.get(t.base + LB_PATH + "?limit=1", headers=t.headers, timeout=10)
    r.raise_for_status()
    return r.json()["results"][0]["id"]


def lua_script(method: str, headers: dict[str, str], body: str | None, extra: str = "") -> str:
    """wrk's script: method, headers and body; ``extra`` is Lua appended as is (e.g. a request())."""

    def q(s: str) -> str:
        return "[==[" + s + "]==]"

    lines = [f"wrk.method = {q(method)}"]
    lines += [f"wrk.headers[ {q(k)} ] = {q(v)}" for k, v in headers.items()]  # spaces: not a "[[" string
    if body is not None:
        lines += ['wrk.headers["Content-Type"] = "application/json"', f"wrk.body = {q(body)}"]
    return "\n".join(lines) + "\n" + extra


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        fail(f"cannot parse wrk latency {text!r}")
    return float(m.group(1)) * _UNIT_MS[m.group(2)]


def run_wrk(url: str, connections: int, seconds: int, lua: str) -> dict:
    wrk = require_wrk()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    try:
        argv = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", f.name, url]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        os.unlink(f.name)
    out = proc.stdout
    if proc.returncode != 0 or proc.stderr.strip():
        fail(f"wrk failed ({proc.returncode}): {proc.stderr.strip()}\n{out}")
    if "Non-2xx or 3xx responses" in out:
        fail(f"non-2xx responses from {url}:\n{out}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors and any(int(n) for n in errors.groups()):
        fail(f"socket errors from {url}:\n{out}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    if not (rps and p50 and p99):
        fail(f"cannot parse wrk output:\n{out}")
    return {"rps": float(rps.group(1)), "p50": _ms(p50.group(1)), "p99": _ms(p99.group(1))}


@dataclass
class Request:
    method: str
    path: str
    body: str | None = None
    lua: str = ""  # appended to wrk's script (lua_script's ``extra``)


def check_once(t: Target, req: Request, check) -> None:
    """One request with httpx before the run: a wrong status or body shape fails loudly."""
    headers = {**t.headers, **({"Content-Type": "application/json"} if req.body else {})}
    r = httpx.request(req.method, t.base + req.path, headers=headers, content=req.body, timeout=10)
    if r.status_code != 200:
        fail(f"{t.name}: {req.method} {req.path} -> {r.status_code} {r.text[:300]}")
    problem = check(r.json())
    if problem:
        fail(f"{t.name}: {req.method} {req.path}: {problem}")


def parse_args(description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--baseline-only", action="store_true", help="skip lbaas; run only bare and minimal")
    return p.parse_args()


def measure(make_request, check) -> dict:
    """results[name][connections] for every target; make_request(target) -> Request."""
    args = parse_args("wrk benchmark: lbaas vs bare ASGI (ceiling) vs minimal FastAPI+SQLite (floor cost)")
    require_wrk()
    results: dict = {}
    for name, start in targets(args.baseline_only):
        with start() as t:
            req = make_request(t)
            check_once(t, req, check)
            lua = lua_script(req.method, t.headers, req.body, req.lua)
            run_wrk(t.base + req.path, max(CONNECTIONS), WARMUP_SECONDS, lua)
            results[name] = {c: run_wrk(t.base + req.path, c, SECONDS, lua) for c in CONNECTIONS}
    return results


def _fmt(r: dict | None) -> str:
    if r is None:
        return "pending"
    return f"{r['rps']:,.0f} req/s (p50 {r['p50']:.2f} / p99 {r['p99']:.2f} ms)"


def _ratio(a: dict | None, b: dict) -> str:
    return "pending" if a is None else f"{a['rps'] / b['rps']:.2f}"


def print_line(figure: str, results: dict) -> None:
    """ONE line: per connection count, each target's req/s and latency, and lbaas's ratio to each
    baseline (on req/s)."""
    parts = []
    for c in CONNECTIONS:
        lb = results.get("lbaas") and results["lbaas"][c]
        cells = [f"{name} {_fmt(r[c])}" for name, r in results.items()]
        cells += [f"lbaas/{name} {_ratio(lb, r[c])}" for name, r in results.items() if name != "lbaas" and lb]
        parts.append(f"c{c}: " + ", ".join(cells))
    tag = f"{DB}" + (
        f", {os.environ['BENCH_API_PROCESSES']} API processes"
        if os.environ.get("BENCH_API_PROCESSES")
        else ""
    )
    print(f"{figure} [{SECONDS}s/run, {tag}] " + " | ".join(parts), flush=True)
    record(figure, results)


def record(figure: str, results: dict) -> None:
    """Append one JSON line to $BENCH_JSON, if set (bench/medians.py makes the table of medians)."""
    path = os.environ.get("BENCH_JSON")
    if path:
        tag = {"db": DB, "api_processes": int(os.environ.get("BENCH_API_PROCESSES") or 1), "seconds": SECONDS}
        with open(path, "a") as fh:
            fh.write(json.dumps({"figure": figure, **tag, "results": results}) + "\n")
