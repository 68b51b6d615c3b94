"""Real HAProxy on loopback: a /24 of our own per session, backends in threads, cleanup always.

HAProxy missing: these tests skip with a loud reason, or fail when ``CI=true``. Every
HAProxy master a test starts (itself or through a child Python process) is found again
by its command line under the test's own directories and stopped in a finalizer, even
when the test fails.
"""

from __future__ import annotations

import http.client
import http.server
import ipaddress
import os
import random
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lbaas.providers.haproxy.deploy import Deployed, deploy
from lbaas.providers.haproxy.discovery import find_running, terminate
from lbaas.providers.haproxy.paths import Layout, LbPaths
from lbaas.providers.haproxy.process import HaproxyProcess


@pytest.fixture(scope="session")
def haproxy_bin() -> str:
    path = shutil.which("haproxy")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("haproxy is required in CI (apt-get install haproxy)")
        pytest.skip("!!! haproxy not installed: HAProxy integration tests SKIPPED")
    return path


class Addresses:
    """Addresses of a random 127.a.b.0/24 (never lbaas's 127.1/16 and 127.2/16 pools)."""

    def __init__(self) -> None:
        rng = random.SystemRandom()
        self.net = ipaddress.ip_network(f"127.{rng.randrange(3, 255)}.{rng.randrange(0, 256)}.0/24")
        self._next = 1
        self._lock = threading.Lock()

    def ip(self) -> str:
        with self._lock:
            self._next += 1
            if self._next > 254:
                self._next = 2
            return str(self.net.network_address + self._next)

    def endpoint(self) -> tuple[str, int]:
        """A fresh address and a port free on it."""
        ip = self.ip()
        with socket.socket() as s:
            s.bind((ip, 0))
            return ip, s.getsockname()[1]


@pytest.fixture(scope="session")
def addresses() -> Addresses:
    return Addresses()


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # HAProxy closing an idle server-side connection is not news


class Backend:
    """A small HTTP/1.1 server in a thread: answers its name, counts hits, ``/health`` → ``health``,
    ``/slow`` after ``delay`` seconds."""

    def __init__(self, name: str, ip: str = "127.0.0.1") -> None:
        self.name = name
        self.hits = 0
        self.health = 200
        self.delay = 0.0
        self._lock = threading.Lock()
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in separate writes

            def do_GET(self) -> None:
                if self.path.startswith("/health"):
                    status, body = backend.health, b"health"
                else:
                    if self.path.startswith("/slow"):
                        time.sleep(backend.delay)
                    with backend._lock:
                        backend.hits += 1
                    status, body = 200, backend.name.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Backend", backend.name)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = _QuietServer((ip, 0), Handler)
        self.address, self.port = self.server.server_address[:2]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def backends() -> Iterator[Callable[[str], Backend]]:
    started: list[Backend] = []

    def make(name: str) -> Backend:
        backend = Backend(name)
        started.append(backend)
        return backend

    yield make
    for backend in started:
        backend.stop()


def get(ip: str, port: int, path: str = "/", timeout: float = 3.0) -> tuple[int, str, dict[str, str]]:
    conn = http.client.HTTPConnection(ip, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(), {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def hits(ip: str, port: int, n: int) -> Counter[str]:
    """Which backend answered each of ``n`` requests (new connection each)."""
    seen: Counter[str] = Counter()
    for _ in range(n):
        status, body, _ = get(ip, port)
        seen[body if status == 200 else f"HTTP {status}"] += 1
    return seen


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@dataclass
class Server:
    name: str
    address: str
    port: int
    options: str = ""


def config(
    lb: LbPaths,
    vip: str,
    port: int,
    servers: Sequence[Server],
    *,
    maxconn: int = 2000,
    nbthread: int = 1,
    balance: str = "roundrobin",
    frontend: Sequence[str] = (),
    backend: Sequence[str] = (),
    defaults: Sequence[str] = (),
) -> str:
    """A small hand-written configuration in the shape lbaas runs (stats socket, state file)."""
    lines = [
        "global",
        f"    maxconn {maxconn}",
        f"    nbthread {nbthread}",
        f"    stats socket {lb.stats_socket} mode 600 level admin",
        f"    server-state-file {lb.state_file}",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 10s",
        "    timeout server 10s",
        "    option idle-close-on-response",
        "    load-server-state-from-file global",
        *(f"    {line}" for line in defaults),
        "frontend fe",
        f"    bind {vip}:{port}",
        *(f"    {line}" for line in frontend),
        "    default_backend be",
        "backend be",
        f"    balance {balance}",
        *(f"    {line}" for line in backend),
        *(f"    server {s.name} {s.address}:{s.port} {s.options}".rstrip() for s in servers),
    ]
    return "\n".join(lines) + "\n"


@dataclass
class Lab:
    """One test's HAProxy world: a layout in a short temporary directory and its LBs."""

    layout: Layout
    haproxy_bin: str
    addresses: Addresses
    lbs: list[LbPaths] = field(default_factory=list)

    def lb(self) -> LbPaths:
        paths = self.layout.lb(str(uuid.uuid4()))
        self.lbs.append(paths)
        return paths

    def process(self, lb: LbPaths) -> HaproxyProcess:
        return HaproxyProcess(lb, haproxy_bin=self.haproxy_bin)

    def deploy(self, lb: LbPaths, cfg: str, **files: bytes) -> Deployed:
        bundle = {"haproxy.cfg": cfg.encode(), **{k.replace("__", "."): v for k, v in files.items()}}
        return deploy(lb, bundle, haproxy_bin=self.haproxy_bin)


@pytest.fixture
def lab(haproxy_bin: str, addresses: Addresses) -> Iterator[Lab]:
    root = Path(tempfile.mkdtemp(prefix="lbt-", dir="/tmp"))
    layout = Layout(root / "data" / "haproxy", root / "run")
    try:
        yield Lab(layout, haproxy_bin, addresses)
    finally:
        for master in find_running(layout):
            terminate(master.pid, master.worker_pids, grace=0.5)
        shutil.rmtree(root, ignore_errors=True)
