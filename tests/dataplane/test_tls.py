"""TLS and other protocols on a real HAProxy, with certificates made here and uploaded through
the secrets API: TERMINATED_HTTPS with SNI and h2, pass-through, TLS to members (verified, with
a client certificate), PROXY v2 to a member, the PROMETHEUS listener.
"""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.dataplane.conftest import DataPlane, create_lb, finish, get, member_statuses, wait_for
from tests.dataplane.pki import Ca, peer_cn
from tests.dataplane.test_access import sha512_crypt


def upload(client, name: str, payload: dict[str, str]) -> str:
    task = finish(client, client.cloud.secrets.upload_tls_certificate(name=name, payload=payload))
    return task.created_resources.secrets[0]


@pytest.fixture(scope="module")
def tls(dataplane: DataPlane):
    web_ca, members_ca, clients_ca, other_ca = (
        Ca("web-ca"),
        Ca("members-ca"),
        Ca("clients-ca"),
        Ca("other-ca"),
    )
    client = dataplane.client()
    secrets = {
        "default": upload(client, "default", web_ca.issue("www.default.test").payload),
        "one": upload(client, "one", web_ca.issue("www.one.test").payload),
        "two": upload(client, "two", web_ca.issue("www.two.test").payload),
        "members-ca": upload(client, "members-ca", members_ca.payload),
        "other-ca": upload(client, "other-ca", other_ca.payload),
        "lb-client": upload(client, "lb-client", clients_ca.issue("lb-client", client=True).payload),
    }
    app = dataplane.backend("tls-app")
    member = dataplane.backend(
        "tls-member", tls=members_ca.issue("member.test").server_context(client_ca=clients_ca)
    )
    passthrough = dataplane.backend(
        "tls-passthrough", tls=members_ca.issue("passthrough.test").server_context()
    )
    proxied = dataplane.proxy_v2_backend()

    def pool(name: str, protocol: str, backend, **kw) -> dict:
        return {
            "name": name,
            "protocol": protocol,
            "lb_algorithm": "ROUND_ROBIN",
            "members": [backend.member],
            **kw,
        }

    lb = create_lb(
        client,
        name="tls",
        listeners=[
            {
                "name": "terminated",
                "protocol": "TERMINATED_HTTPS",
                "protocol_port": 8443,
                "secret_id": secrets["default"],
                "sni_secret_id": [secrets["one"], secrets["two"]],
                "insert_x_forwarded": True,
                "pools": [pool("app", "HTTP", app)],
            },
            {
                "name": "passthrough",
                "protocol": "HTTPS",
                "protocol_port": 9443,
                "pools": [
                    pool(
                        "passthrough",
                        "HTTPS",
                        passthrough,
                        healthmonitor={"type": "TLS-HELLO", "delay": 2, "timeout": 1, "max_retries": 1},
                    )
                ],
            },
            {
                "name": "to-members",
                "protocol": "TCP",
                "protocol_port": 8000,
                "pools": [
                    pool(
                        "to-members",
                        "HTTPS",
                        member,
                        ca_secret_id=secrets["members-ca"],
                        secret_id=secrets["lb-client"],
                    )
                ],
            },
            {
                "name": "wrong-ca",
                "protocol": "TCP",
                "protocol_port": 8001,
                "pools": [
                    pool(
                        "wrong-ca",
                        "HTTPS",
                        member,
                        ca_secret_id=secrets["other-ca"],
                        secret_id=secrets["lb-client"],
                    )
                ],
            },
            {
                "name": "proxied",
                "protocol": "TCP",
                "protocol_port": 8002,
                "pools": [pool("proxied", "PROXYV2", proxied)],
            },
            {"name": "metrics", "protocol": "PROMETHEUS", "protocol_port": 9101},
            {
                "name": "metrics-auth",
                "protocol": "PROMETHEUS",
                "protocol_port": 9102,
                "user_list": [{"username": "prom", "encrypted_password": sha512_crypt("scrape")}],
            },
        ],
    )
    return {
        "client": client,
        "lb": lb,
        "web_ca": web_ca,
        "members_ca": members_ca,
        "app": app,
        "member": member,
        "passthrough": passthrough,
        "proxied": proxied,
    }


def _handshake(
    ca: Ca, host: str, port: int, sni: str | None, *, check: bool = True, alpn=None
) -> tuple[str, str | None]:
    ctx = ca.client_context(alpn)
    if not check:
        ctx.check_hostname = False
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=sni) as s,
    ):
        return peer_cn(s), s.selected_alpn_protocol()


def test_terminated_https_with_sni_and_h2(tls) -> None:
    lb, ca, app = tls["lb"], tls["web_ca"], tls["app"]
    vip = lb.vip_address
    assert _handshake(ca, vip, 8443, "www.one.test")[0] == "www.one.test"
    assert _handshake(ca, vip, 8443, "www.two.test")[0] == "www.two.test"
    assert _handshake(ca, vip, 8443, "www.default.test")[0] == "www.default.test"
    assert (
        _handshake(ca, vip, 8443, "unknown.test", check=False)[0] == "www.default.test"
    )  # no match: default
    assert _handshake(ca, vip, 8443, None, check=False)[0] == "www.default.test"  # no SNI: default
    assert _handshake(ca, vip, 8443, "www.two.test", alpn=["h2", "http/1.1"])[1] == "h2"
    assert _handshake(ca, vip, 8443, "www.two.test", alpn=["http/1.1"])[1] == "http/1.1"

    with httpx.Client(verify=ca.client_context(), http2=True, timeout=10) as http:
        r = http.get(
            f"https://{vip}:8443/secure",
            headers={"Host": "www.one.test"},
            extensions={"sni_hostname": "www.one.test"},
        )
    assert (r.status_code, r.http_version, r.text) == (200, "HTTP/2", "tls-app")
    headers = {k.lower(): v for k, v in app.requests[-1][1].items()}
    assert headers["x-forwarded-proto"] == "https" and headers["x-forwarded-port"] == "8443"
    with pytest.raises(httpx.HTTPError):  # and plain HTTP is not served there
        get(f"http://{vip}:8443/")


def test_tls_passthrough(tls) -> None:
    lb, ca, passthrough = tls["lb"], tls["members_ca"], tls["passthrough"]
    wait_for(
        lambda: member_statuses(tls["client"], lb.id, "passthrough")[passthrough.port] == "ONLINE",
        timeout=20,
        what="the TLS-HELLO check to pass",
    )
    ctx = ca.client_context()
    with (
        socket.create_connection((lb.vip_address, 9443), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="passthrough.test") as s,
    ):
        assert peer_cn(s) == "passthrough.test"  # the member's own certificate: TLS untouched
        s.sendall(b"GET /through HTTP/1.1\r\nHost: passthrough.test\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"tls-passthrough")


def test_tls_to_members_verified_with_a_client_certificate(tls) -> None:
    lb, member = tls["lb"], tls["member"]
    r = get(f"http://{lb.vip_address}:8000/over-tls")
    assert (r.status_code, r.text, r.headers["x-client-cert"]) == (200, "tls-member", "lb-client")
    assert member.peers[-1] == "lb-client"
    # The member's certificate is not signed by the pool's CA: HAProxy refuses to talk to it.
    seen = len(member.requests)
    with pytest.raises(httpx.HTTPError):
        get(f"http://{lb.vip_address}:8001/over-tls")
    assert len(member.requests) == seen


def test_proxy_v2_tells_the_member_the_client_address(tls) -> None:
    lb = tls["lb"]
    with socket.create_connection((lb.vip_address, 8002), timeout=5, source_address=("127.0.0.5", 0)) as s:
        port = s.getsockname()[1]
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data.split(b"\r\n\r\n", 1)[1].decode() == f"127.0.0.5 {port}"
    assert ("127.0.0.5", port) in tls["proxied"].seen


def test_prometheus_listener(tls) -> None:
    vip = tls["lb"].vip_address
    metrics = get(f"http://{vip}:9101/metrics")
    assert metrics.status_code == 200
    assert "haproxy_process_" in metrics.text and "haproxy_frontend_" in metrics.text
    assert get(f"http://{vip}:9101/other").status_code == 404
    assert get(f"http://{vip}:9102/metrics").status_code == 401
    assert get(f"http://{vip}:9102/metrics", auth=("prom", "wrong")).status_code == 401
    authed = get(f"http://{vip}:9102/metrics", auth=("prom", "scrape"))
    assert authed.status_code == 200 and "haproxy_process_" in authed.text
