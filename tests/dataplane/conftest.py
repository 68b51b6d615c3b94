"""Fixtures for the real data plane: lbaas with the haproxy provider, backends the tests start.

Everything stays on loopback: each session takes its own random /24 in 127.0.0.0/8 for
VIPs (so concurrent runs never collide), a short run directory for HAProxy's sockets, and
backends on 127.0.0.1. Every HAProxy this session started is stopped at its end, even when
a test failed, and the session checks that none is left.

HAProxy is required in CI (``CI=true``); locally a missing HAProxy skips these tests loudly.

Helpers: :class:`Backend` (an HTTP or HTTPS backend that can be killed and brought back),
:class:`ProxyV2Backend` (reports the client address of a PROXY v2 header), :func:`finish`
(waits for tasks, polling faster than the SDK's 1 s minimum), :func:`get` (one request
from a chosen source address), :class:`Load` (client threads that count
failures), :func:`applies_held` (changes queued behind a held apply).
"""

from __future__ import annotations

import contextlib
import http.server
import os
import secrets
import shutil
import socket
import socketserver
import ssl
import struct
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
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
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    def setup(self) -> None:
        super().setup()
        backend: Backend = self.server.backend  # type: ignore[attr-defined]
        with backend._lock:
            backend._conns.add(self.connection)

    def finish(self) -> None:
        backend: Backend = self.server.backend  # type: ignore[attr-defined]
        with backend._lock:
            backend._conns.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        backend: Backend = self.server.backend  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        peer = None
        if isinstance(self.connection, ssl.SSLSocket):
            cert = self.connection.getpeercert()
            if cert:
                peer = dict(x[0] for x in cert["subject"]).get("commonName")
        backend.requests.append((self.path, dict(self.headers)))
        backend.peers.append(peer)
        if backend.delay and not self.path.startswith("/health"):
            time.sleep(backend.delay)
        status = backend.status_for(self.path)
        body = backend.name.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend", backend.name)
        if peer:
            self.send_header("X-Client-Cert", peer)
        if backend.set_cookie and not self.path.startswith("/health"):
            backend.sessions += 1
            self.send_header("Set-Cookie", f"{backend.set_cookie}={backend.name}-{backend.sessions}")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET
    do_POST = do_GET

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
            super().handle()

    def log_message(self, *_args: Any) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:  # the handshake in the request's thread, not the accept loop
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a closed connection is not news here


@dataclass
class Backend:
    """An HTTP(S) backend on 127.0.0.1 that answers with its name and records what it got.

    ``delay``: seconds before answering (not for ``/health*``). ``health_status``: the
    status of ``/health*`` requests. ``set_cookie``: a cookie name the backend sets on each
    answer (an application session, for APP_COOKIE). ``tls``: serve HTTPS with this
    context. :meth:`stop` kills it the way a crashed process goes: the listening socket
    and every open connection are closed; :meth:`start` brings it back on the same port.
    """

    name: str
    port: int = 0
    delay: float = 0.0
    health_status: int = 200
    set_cookie: str | None = None
    tls: ssl.SSLContext | None = None
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    peers: list[str | None] = field(default_factory=list)
    sessions: int = 0
    _server: _Server | None = None
    _conns: set[socket.socket] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def status_for(self, path: str) -> int:
        return self.health_status if path.startswith("/health") else 200

    def start(self) -> Backend:
        self._server = _Server(("127.0.0.1", self.port), _Handler)
        self._server.backend = self  # type: ignore[attr-defined]
        self._server.tls = self.tls
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def member(self) -> dict[str, Any]:
        return {"address": "127.0.0.1", "protocol_port": self.port}

    def paths(self) -> list[str]:
        """Paths of the requests received so far, health checks left out."""
        return [p for p, _ in self.requests if not p.startswith("/health")]


class ProxyV2Backend:
    """A TCP backend that reads a PROXY protocol v2 header, then one HTTP request, and
    answers with the client address the header carried (``<ip> <port>``)."""

    SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.seen: list[tuple[str, int] | str] = []
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def member(self) -> dict[str, Any]:
        return {"address": "127.0.0.1", "protocol_port": self.port}

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def _one(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError, ConnectionError):
            conn.settimeout(5)
            head = self._read(conn, 16)
            if head[:12] != self.SIGNATURE:
                self.seen.append("no PROXY v2 header")
                return
            command, family, length = head[12] & 0x0F, head[13], struct.unpack("!H", head[14:16])[0]
            payload = self._read(conn, length)
            if command == 0:  # LOCAL: a health check of HAProxy's own
                self.seen.append("LOCAL")
                client = ("", 0)
            elif family == 0x11:  # TCP over IPv4
                src, _dst, sport, _dport = struct.unpack("!4s4sHH", payload[:12])
                client = (socket.inet_ntoa(src), sport)
                self.seen.append(client)
            else:
                self.seen.append(f"family {family:#x}")
                return
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            body = f"{client[0]} {client[1]}".encode()
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )

    def stop(self) -> None:
        self._stop = True
        self.sock.close()


@dataclass
class DataPlane:
    """An lbaas server with the haproxy provider, and helpers to drive traffic through it."""

    server: Server
    backends: list[Any] = field(default_factory=list)

    def backend(self, name: str, **kw: Any) -> Backend:
        b = Backend(name, **kw).start()
        self.backends.append(b)
        return b

    def proxy_v2_backend(self) -> ProxyV2Backend:
        b = ProxyV2Backend()
        self.backends.append(b)
        return b

    def client(self, **kw: Any):
        return make_client(self.server, **kw)

    @property
    def provider(self):
        return self.server.provider

    def process(self, lb_id: str):
        """``provider.processes()``'s entry of one LB (master pid, reload counter...)."""
        found = [p for p in self.provider.processes() if p.lb_id == lb_id]
        assert len(found) == 1, f"expected one HAProxy for {lb_id}, found {found}"
        return found[0]

    def reloads(self, lb_id: str) -> int:
        return int(self.process(lb_id).reloads or 0)


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


def finish(client: Any, tasks: Any, timeout: float = 60.0) -> Any:
    """Wait for every task of ``tasks`` (a TaskIDList or ids) to finish; the last task.

    Polls ``client.cloud.tasks.get`` every 50 ms (the SDK's own ``poll`` waits at least a
    second between reads). A task in ERROR fails the test with the task's error.
    """
    ids = list(tasks.tasks if hasattr(tasks, "tasks") else tasks)
    task = None
    for task_id in ids:

        def done(task_id: str = task_id) -> Any:
            t = client.cloud.tasks.get(task_id)
            return t if t.state in ("FINISHED", "ERROR") else None

        task = wait_for(done, timeout=timeout, interval=0.05, what=f"task {task_id}")
        assert task.state == "FINISHED", f"task {task.task_type} {task_id} failed: {task.error}"
    return task


def create_lb(client: Any, **body: Any) -> Any:
    """``load_balancers.create`` with the fast task wait; the LB as read afterwards."""
    task = finish(client, client.cloud.load_balancers.create(**body))
    return client.cloud.load_balancers.get(task.created_resources.loadbalancers[0])


def pools_of(client: Any, lb_id: str) -> dict[str, Any]:
    """The LB's pools with their members, by pool name."""
    pools = client.cloud.load_balancers.pools.list(load_balancer_id=lb_id, details=True).results
    return {p.name: p for p in pools}


def member_statuses(client: Any, lb_id: str, pool: str) -> dict[int, str]:
    """Operating status of each member of pool ``pool`` (by name), by protocol port."""
    return {m.protocol_port: m.operating_status for m in pools_of(client, lb_id)[pool].members}


def http_client(source: str | None = None, **kw: Any) -> httpx.Client:
    """An httpx client whose connections come from ``source`` (a loopback address)."""
    transport = httpx.HTTPTransport(local_address=source, retries=0, verify=kw.pop("verify", False))
    kw.setdefault("timeout", 10.0)
    return httpx.Client(transport=transport, **kw)


def get(
    url: str, source: str | None = None, cookies: dict[str, str] | None = None, **kw: Any
) -> httpx.Response:
    """One request on a new connection from ``source``."""
    with http_client(source, cookies=cookies) as http:
        return http.get(url, **kw)


def spread(url: str, n: int, source: str | None = None, **kw: Any) -> Counter[str]:
    """Which backend answered each of ``n`` requests (keep-alive), by body."""
    with http_client(source) as http:
        return Counter(http.get(url, **kw).text for _ in range(n))


def refused(host: str, port: int, source: str | None = None) -> bool:
    """True when a TCP connection to host:port is refused, reset, or closed before any answer."""
    try:
        with socket.create_connection((host, port), timeout=3, source_address=(source or "", 0)) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return s.recv(100) == b""
    except (ConnectionRefusedError, ConnectionResetError):
        return True
    except OSError:
        return False


class Load:
    """Clients hammering a URL until stopped, counting every failure: ``keepalive_threads``
    reusing one connection each, ``new_conn_threads`` opening a new connection per request.
    ``failures`` lists every request that did not pass ``expect`` (default: a 2xx) or raised;
    ``answers`` counts the bodies of the ones that did (which backend answered)."""

    def __init__(
        self,
        url: str,
        *,
        expect: Callable[[Any], bool] | None = None,
        keepalive_threads: int = 1,
        new_conn_threads: int = 1,
    ) -> None:
        self.url = url
        self.expect = expect or (lambda r: 200 <= r.status_code < 300)
        self.ok = 0
        self.failures: list[str] = []
        self.answers: Counter[str] = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(keep_alive,), daemon=True)
            for keep_alive in [True] * keepalive_threads + [False] * new_conn_threads
        ]

    def _run(self, keep_alive: bool) -> None:
        limits = httpx.Limits(max_keepalive_connections=1 if keep_alive else 0)
        with httpx.Client(limits=limits, timeout=10) as http:
            while not self._stop.is_set():
                try:
                    r = http.get(self.url)
                except httpx.HTTPError as exc:
                    failure: str | None = f"{type(exc).__name__}: {exc}"
                else:
                    failure = None if self.expect(r) else f"status {r.status_code}: {r.text[:80]}"
                with self._lock:
                    if failure is None:
                        self.ok += 1
                        self.answers[r.text] += 1
                    else:
                        self.failures.append(failure)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        wait_for(lambda: self.ok > 20 or self.failures, timeout=10, what="the load to get going")
        return self

    def __exit__(self, *_exc: Any) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)

    def requests_so_far(self) -> int:
        with self._lock:
            return self.ok + len(self.failures)


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


@contextlib.contextmanager
def applies_held(provider: Any) -> Iterator[threading.Event]:
    """Hold the provider's next ``apply`` until the block ends (changes made meanwhile are
    written to the database and queue behind it, so the following apply takes them all at
    once, as it does when a client sends changes faster than the data plane applies them).
    Yields an event set once the held apply has started."""
    gate, entered = threading.Event(), threading.Event()
    original = provider.apply

    def apply(desired: Any, previous: Any = None) -> None:
        entered.set()
        gate.wait(30)
        original(desired, previous)

    provider.apply = apply
    try:
        yield entered
    finally:
        gate.set()
        del provider.apply


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_everything(data_dir: Path, run_dir: Path) -> list[int]:
    """Stop every HAProxy master under these directories; the pids that were still running."""
    from lbaas.providers.haproxy import discovery
    from lbaas.providers.haproxy.paths import Layout

    left = discovery.find_running(Layout(data_dir / "haproxy", run_dir))
    for master in left:
        discovery.terminate(master.pid, master.worker_pids)
    return [m.pid for m in left]


@contextlib.contextmanager
def haproxy_dirs() -> Iterator[tuple[Path, Path]]:
    """A data directory and a short run directory (socket paths <= 97 chars), removed after."""
    _require_haproxy()
    tmp = Path(tempfile.mkdtemp(prefix="lbaas-dp-"))
    run = Path(tempfile.mkdtemp(prefix="ldp", dir="/tmp"))
    try:
        yield tmp, run
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(run, ignore_errors=True)


@contextlib.contextmanager
def haproxy_server(backend: str = "sqlite", **settings: Any) -> Iterator[DataPlane]:
    """One lbaas with the haproxy provider; every HAProxy it started is stopped on exit, with
    its sockets, and the session checks that neither is left."""
    with haproxy_dirs() as (tmp, run):
        settings.setdefault("vip_pool", random_vip_pool())
        settings.setdefault("poll_interval", 0.3)
        dp: DataPlane | None = None
        try:
            with serve(backend, tmp, provider="haproxy", run_dir=run, **settings) as srv:
                dp = DataPlane(srv)
                yield dp
        finally:
            # lbaas is stopped (its poller would restart what it finds down): now its HAProxys go.
            if dp is not None:
                dp.provider.stop_all()
                for b in dp.backends:
                    b.stop()
            left = stop_everything(tmp, run)
            sockets = sorted(p.name for p in run.glob("*.sock"))
            assert not left, f"HAProxy processes left behind: {left}"
            assert not sockets, f"HAProxy sockets left behind: {sockets}"


@pytest.fixture(scope="module")
def dataplane() -> Iterator[DataPlane]:
    """A module's lbaas with the haproxy provider (SQLite)."""
    with haproxy_server() as dp:
        yield dp
