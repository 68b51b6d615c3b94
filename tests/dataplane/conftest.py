"""Fixtures for the real data plane: lbaas with the haproxy provider, backends the tests start.

Everything stays on loopback: each session takes its own random /24 in 127.0.0.0/8 for
VIPs (so concurrent runs never collide), a short run directory for HAProxy's sockets, and
backends on 127.0.0.1. Every HAProxy this session started is stopped at its end, even when
a test failed, and the session checks that none is left.

HAProxy is required in CI (``CI=true``); locally a missing HAProxy skips these tests loudly.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import secrets
import shutil
import socket
import socketserver
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server, make_client, serve


def _require_haproxy() -> None:
    from lbaas.errors import LbaasError
    from lbaas.providers.haproxy import limits

    try:
        limits.haproxy_version()
    except LbaasError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"HAProxy >= 2.6 is required in CI: {exc.message}")
        pytest.skip(f"!!! HAProxy not usable: data-plane tests SKIPPED ({exc.message})")


def random_vip_pool() -> str:
    """A /24 of 127.0.0.0/8 of this session's own (never 127.0.0.x)."""
    return f"127.{secrets.randbelow(200) + 30}.{secrets.randbelow(250) + 1}.0/24"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        backend: Backend = self.server.backend  # type: ignore[attr-defined]
        backend.requests.append((self.path, dict(self.headers)))
        if backend.delay:
            time.sleep(backend.delay)
        status = backend.status_for(self.path)
        body = backend.name.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend", backend.name)
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET
    do_POST = do_GET

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):
            super().handle()

    def log_message(self, *_args: Any) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@dataclass
class Backend:
    """An HTTP backend on 127.0.0.1 that answers with its name and records what it got."""

    name: str
    port: int = 0
    delay: float = 0.0
    health_status: int = 200
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    _server: _Server | None = None

    def status_for(self, path: str) -> int:
        return self.health_status if path.startswith("/health") else 200

    def start(self) -> Backend:
        self._server = _Server(("127.0.0.1", self.port), _Handler)
        self._server.backend = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def member(self) -> dict[str, Any]:
        return {"address": "127.0.0.1", "protocol_port": self.port}


@dataclass
class DataPlane:
    """An lbaas server with the haproxy provider, and helpers to drive traffic through it."""

    server: Server
    backends: list[Backend] = field(default_factory=list)

    def backend(self, name: str, **kw: Any) -> Backend:
        b = Backend(name, **kw).start()
        self.backends.append(b)
        return b

    def client(self, **kw: Any):
        return make_client(self.server, **kw)

    @property
    def provider(self):
        return self.server.provider


def wait_for(
    predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll ``predicate`` until it returns something truthy (an exception counts as not yet);
    fail with ``what`` and the last answer after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:  # noqa: BLE001 - e.g. a connection refused while a port comes up
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}: last {last!r}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def haproxy_server(backend: str = "sqlite", **settings: Any) -> Iterator[DataPlane]:
    """One lbaas with the haproxy provider; every HAProxy it started is stopped on exit."""
    _require_haproxy()
    tmp = Path(tempfile.mkdtemp(prefix="lbaas-dp-"))
    run = Path(tempfile.mkdtemp(prefix="ldp", dir="/tmp"))  # short: socket paths <= 97 chars
    settings.setdefault("vip_pool", random_vip_pool())
    settings.setdefault("poll_interval", 0.3)
    dp: DataPlane | None = None
    try:
        with serve(backend, tmp, provider="haproxy", run_dir=run, **settings) as srv:
            dp = DataPlane(srv)
            yield dp
    finally:
        # lbaas is stopped (its poller would restart what it finds down): now its HAProxys go.
        from lbaas.providers.haproxy import discovery
        from lbaas.providers.haproxy.paths import Layout

        layout = Layout(tmp / "haproxy", run)
        for master in discovery.find_running(layout):
            discovery.terminate(master.pid, master.worker_pids)
            discovery.reap(master.pid)
        if dp is not None:
            for b in dp.backends:
                b.stop()
        left = discovery.find_running(layout)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(run, ignore_errors=True)
        assert not left, f"HAProxy processes left behind: {[m.pid for m in left]}"


@pytest.fixture(scope="module")
def dataplane() -> Iterator[DataPlane]:
    """A module's lbaas with the haproxy provider (SQLite)."""
    with haproxy_server() as dp:
        yield dp


class Load:
    """Clients hammering a URL until stopped: one on a keep-alive connection, one opening a new
    connection per request. ``failures`` lists every request that did not get a 2xx."""

    def __init__(self, url: str, *, expect: Callable[[Any], bool] | None = None) -> None:
        self.url = url
        self.expect = expect or (lambda r: 200 <= r.status_code < 300)
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _run(self, keep_alive: bool) -> None:
        import httpx

        limits = httpx.Limits(max_keepalive_connections=1 if keep_alive else 0)
        with httpx.Client(limits=limits, timeout=10) as http:
            while not self._stop.is_set():
                try:
                    r = http.get(self.url)
                    if self.expect(r):
                        self.ok += 1
                    else:
                        self.failures.append(f"status {r.status_code}")
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")

    def __enter__(self) -> Load:
        for keep_alive in (True, False):
            t = threading.Thread(target=self._run, args=(keep_alive,), daemon=True)
            t.start()
            self._threads.append(t)
        wait_for(lambda: self.ok > 20, timeout=10, what="the load to get going")
        return self

    def __exit__(self, *_exc: Any) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)


def simple_lb(
    client: Any, backends: list[Backend], *, name: str = "web-lb", port: int = 8080, **lb: Any
) -> Any:
    """An LB with one HTTP listener on ``port`` and a monitored round-robin pool of ``backends``."""
    return client.cloud.load_balancers.create_and_poll(
        name=name,
        listeners=[
            {
                "name": "http",
                "protocol": "HTTP",
                "protocol_port": port,
                "pools": [
                    {
                        "name": f"{name}-pool",
                        "protocol": "HTTP",
                        "lb_algorithm": "ROUND_ROBIN",
                        "members": [b.member for b in backends],
                        "healthmonitor": {
                            "type": "HTTP",
                            "delay": 2,
                            "timeout": 1,
                            "max_retries": 1,
                            "max_retries_down": 1,
                            "url_path": "/health",
                        },
                    }
                ],
            }
        ],
        **lb,
    )
