"""Rendered configurations that HAProxy actually starts and serves, on random loopback addresses.

``haproxy -c`` is not enough: a configuration can pass it and fail at start (the
file-descriptor limit), or start and not mean what was asked (quoting, SNI, headers).
"""

from __future__ import annotations

import base64
import dataclasses
import errno
import http.client
import http.server
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator

import pytest
from haproxy_helpers import make_pki, random_loopback, run_until_exit, started, workdir
from samples import SECRET_HASH, auth_and_prometheus, lb, members, terminated_https

from lbaas.domain.enums import HealthMonitorType, LbAlgorithm, ListenerProtocol, PoolProtocol
from lbaas.domain.model import Flavor, HealthMonitor, Listener, LoadBalancerSnapshot, Pool, UserListEntry
from lbaas.providers.haproxy.render import render
from lbaas.providers.haproxy.render.globaldefs import SERVER_BLOCK, max_connections


def _ports(address: str, count: int) -> list[int]:
    ports: list[int] = []
    socks = []
    for _ in range(count):  # hold them all, so the kernel hands out distinct ports
        s = socket.socket()
        s.bind((address, 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _relocate(snapshot: LoadBalancerSnapshot, vip: str) -> LoadBalancerSnapshot:
    """The same LB on ``vip`` with free ports."""
    ports = _ports(vip, len(snapshot.listeners))
    listeners = tuple(
        dataclasses.replace(li, protocol_port=p) for li, p in zip(snapshot.listeners, ports, strict=True)
    )
    return dataclasses.replace(snapshot, vip_address=vip, floating_ip_addresses=(), listeners=listeners)


def _stats(sock_path: str, command: str) -> str:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(3)
        s.connect(sock_path)
        s.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def _many(vip: str, listeners: int, servers: int, vcpus: int) -> LoadBalancerSnapshot:
    port_list = _ports(vip, listeners)
    backend_ports = _ports(vip, servers)  # closed again: checks get "connection refused" on loopback
    hm = HealthMonitor(
        id="hm", type=HealthMonitorType.TCP, delay=60, timeout=1, max_retries=1, max_retries_down=1
    )
    pool = Pool(
        id="pool",
        name="pool",
        protocol=PoolProtocol.TCP,
        lb_algorithm=LbAlgorithm.ROUND_ROBIN,
        listener_id="li-0",
        members=members(*((f"m-{i}", vip, p) for i, p in enumerate(backend_ports))),
        healthmonitor=hm,
    )
    lis = [
        Listener(
            id=f"li-{i}", name=f"l{i}", protocol=ListenerProtocol.TCP, protocol_port=p, default_pool_id="pool"
        )
        for i, p in enumerate(port_list)
    ]
    return lb(vip_address=vip, listeners=lis, pools=[pool], flavor=Flavor("lb1-2-4", vcpus, 4096))


def test_maxconn_fits_the_descriptor_limit_at_start() -> None:
    """Started under RLIMIT_NOFILE = fd_limit, it runs; 50 connections more and it cannot start."""
    vip = random_loopback()
    snapshot = _many(vip, listeners=6, servers=40, vcpus=2)
    with workdir() as wd:
        env = wd.env(fd_limit=2000, host_cpus=2)
        bundle = render(snapshot, env)
        maxconn = max_connections(env, 2, 6, 40)
        assert f"    maxconn {maxconn}\n" in bundle.config
        cfg = wd.write(bundle)
        code, output = run_until_exit(cfg, fd_limit=2000, seconds=1.5)
        assert code is None, f"HAProxy did not stay up under its own fd limit: {output}"
        slack = (SERVER_BLOCK - 40) // 2  # servers are budgeted in blocks: that much is unused here
        over = maxconn + slack + 50
        cfg.write_text(bundle.config.replace(f"    maxconn {maxconn}\n", f"    maxconn {over}\n", 1))
        code, output = run_until_exit(cfg, fd_limit=2000, seconds=5)
        assert code not in (None, 0), (
            "a maxconn above the computed one should not start: the test proves nothing"
        )
        assert "FD limit" in output or "maxsock" in output, output


def test_terminated_https_serves_the_sni_and_the_default_certificate() -> None:
    vip = random_loopback()
    snapshot = _relocate(terminated_https(make_pki()), vip)
    port = snapshot.listeners[0].protocol_port
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2", "http/1.1"])

    def served(server_name: str) -> tuple[str, str | None]:
        with (
            socket.create_connection((vip, port), timeout=3) as raw,
            ctx.wrap_socket(raw, server_hostname=server_name) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            from cryptography import x509

            cn = x509.load_der_x509_certificate(der).subject.rfc4514_string()
            return cn, tls.selected_alpn_protocol()

    with workdir() as wd:
        cfg = wd.write(render(snapshot, wd.env()))
        with started(cfg, wait_for=(vip, port)):
            assert served("sni.example") == ("CN=sni.example", "h2")
            assert served("unknown.example")[0] == "CN=default.example"


def test_noreuseport_keeps_a_stray_process_off_the_vip() -> None:
    vip = random_loopback()
    snapshot = _relocate(auth_and_prometheus(make_pki()), vip)
    port = snapshot.listeners[0].protocol_port
    with workdir() as wd:
        cfg = wd.write(render(snapshot, wd.env()))
        with started(cfg, wait_for=(vip, port)), socket.socket() as stray:
            stray.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            stray.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            with pytest.raises(OSError) as exc:
                stray.bind((vip, port))
            assert exc.value.errno == errno.EADDRINUSE


def test_basic_auth_and_prometheus() -> None:
    vip = random_loopback()
    snapshot = _relocate(auth_and_prometheus(make_pki()), vip)
    web, prom = snapshot.listeners[0].protocol_port, snapshot.listeners[1].protocol_port

    def get(port: int, path: str, user: str | None = None, password: str = "secret") -> int:
        headers = {}
        if user is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        conn = http.client.HTTPConnection(vip, port, timeout=5)
        try:
            conn.request("GET", path, headers=headers)
            return conn.getresponse().status
        finally:
            conn.close()

    with workdir() as wd:
        cfg = wd.write(render(snapshot, wd.env()))
        with started(cfg, wait_for=(vip, web)):
            assert get(web, "/") == 401
            assert get(web, "/", "admin", "wrong") == 401
            assert get(web, "/", "admin") == 503  # authenticated; the listener has no pool
            assert get(prom, "/metrics") == 401
            assert get(prom, "/metrics", "admin") == 200
            assert get(prom, "/other", "admin") == 404


def test_disabled_lb_runs_with_only_its_stats_socket() -> None:
    vip = random_loopback()
    snapshot = dataclasses.replace(_many(vip, listeners=1, servers=1, vcpus=1), admin_state_up=False)
    with workdir() as wd:
        env = wd.env()
        bundle = render(snapshot, env)
        assert "frontend" not in bundle.config and "backend" not in bundle.config
        cfg = wd.write(bundle)
        with started(cfg):
            sock = f"{env.run_dir}/{snapshot.id}.sock"
            deadline = time.monotonic() + 5
            while True:
                try:
                    assert "Name: HAProxy" in _stats(sock, "show info")
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    assert time.monotonic() < deadline, "the stats socket never came up"
                    time.sleep(0.05)


class _Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = json.dumps(dict(self.headers.items())).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo_backend() -> Iterator[tuple[str, int]]:
    address = random_loopback()
    server = http.server.ThreadingHTTPServer((address, 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield address, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_http_traffic_with_x_forwarded_headers_and_health_checks(echo_backend: tuple[str, int]) -> None:
    vip = random_loopback()
    (port,) = _ports(vip, 1)
    hm = HealthMonitor(
        id="hm",
        type=HealthMonitorType.HTTP,
        delay=1,
        timeout=1,
        max_retries=1,
        max_retries_down=1,
        url_path="/",
    )
    pool = Pool(
        id="pool",
        name="echo",
        protocol=PoolProtocol.HTTP,
        lb_algorithm=LbAlgorithm.ROUND_ROBIN,
        listener_id="li",
        members=members(("m-echo", *echo_backend)),
        healthmonitor=hm,
    )
    listener = Listener(
        id="li",
        name="web",
        protocol=ListenerProtocol.HTTP,
        protocol_port=port,
        insert_x_forwarded=True,
        default_pool_id="pool",
        user_list=(UserListEntry("admin", SECRET_HASH),),
    )
    snapshot = lb(vip_address=vip, listeners=[listener], pools=[pool])
    with workdir() as wd:
        env = wd.env()
        cfg = wd.write(render(snapshot, env))
        with started(cfg, wait_for=(vip, port)):
            conn = http.client.HTTPConnection(vip, port, timeout=5)
            auth = "Basic " + base64.b64encode(b"admin:secret").decode()
            conn.request("GET", "/", headers={"Authorization": auth})
            response = conn.getresponse()
            seen = {k.lower(): v for k, v in json.loads(response.read()).items()}
            conn.close()
            assert response.status == 200
            assert seen["x-forwarded-for"].startswith("127.")
            assert seen["x-forwarded-proto"] == "http"
            assert seen["x-forwarded-port"] == str(port)
            states = _stats(f"{env.run_dir}/{snapshot.id}.sock", "show stat")
            assert any(line.startswith("pool,m-echo,") and ",UP," in line for line in states.splitlines()), (
                states
            )
