"""Who gets in, and what the member learns about them: allowed_cidrs, basic auth with a crypt
hash, X-Forwarded-For/-Port/-Proto.

A client's source address on loopback is chosen by binding its socket (127.0.0.2, .3, ...).
"""

from __future__ import annotations

import subprocess

import pytest

from tests.dataplane.conftest import DataPlane, create_lb, finish, get, refused

PASSWORD = "s3cret pass"


def sha512_crypt(password: str) -> str:
    """A ``$6$`` (SHA-512) crypt hash, as user_list[].encrypted_password takes it."""
    out = subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"], input=password, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def _listener(name: str, port: int, backend, **kw) -> dict:
    pool = {
        "name": f"{name}-pool",
        "protocol": "HTTP",
        "lb_algorithm": "ROUND_ROBIN",
        "members": [backend.member],
    }
    return {"name": name, "protocol": "HTTP", "protocol_port": port, "pools": [pool], **kw}


@pytest.fixture(scope="module")
def setup(dataplane: DataPlane):
    backend = dataplane.backend("access")
    client = dataplane.client()
    lb = create_lb(
        client,
        name="access",
        listeners=[
            _listener("cidrs", 8080, backend, allowed_cidrs=["127.0.0.2/32"]),
            _listener(
                "auth",
                8081,
                backend,
                user_list=[{"username": "alice", "encrypted_password": sha512_crypt(PASSWORD)}],
            ),
            _listener("xff", 8082, backend, insert_x_forwarded=True),
            _listener("plain", 8083, backend),
        ],
    )
    listeners = {
        li.name: li for li in client.cloud.load_balancers.listeners.list(load_balancer_id=lb.id).results
    }
    return client, lb, listeners, backend


def test_allowed_cidrs_allow_then_refuse(setup) -> None:
    client, lb, listeners, _ = setup
    url = f"http://{lb.vip_address}:8080/"
    assert get(url, source="127.0.0.2").text == "access"
    assert refused(lb.vip_address, 8080, source="127.0.0.3")

    finish(
        client,
        client.cloud.load_balancers.listeners.update(
            listeners["cidrs"].id, allowed_cidrs=["127.0.0.3/32", "10.0.0.0/8"]
        ),
    )
    assert refused(lb.vip_address, 8080, source="127.0.0.2")
    assert get(url, source="127.0.0.3").text == "access"

    finish(client, client.cloud.load_balancers.listeners.update(listeners["cidrs"].id, allowed_cidrs=None))
    assert get(url, source="127.0.0.2").text == "access"
    assert get(url, source="127.0.0.3").text == "access"


def test_basic_auth_with_a_sha512_crypt_hash(setup) -> None:
    _, lb, _, backend = setup
    url = f"http://{lb.vip_address}:8081/private"
    before = len(backend.requests)
    anonymous = get(url)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic realm=")
    assert get(url, auth=("alice", "wrong")).status_code == 401
    assert get(url, auth=("bob", PASSWORD)).status_code == 401
    assert len(backend.requests) == before  # refused at the LB
    ok = get(url, auth=("alice", PASSWORD))
    assert (ok.status_code, ok.text) == (200, "access")


def test_x_forwarded_headers_reach_the_member(setup) -> None:
    _, lb, _, backend = setup
    assert get(f"http://{lb.vip_address}:8082/xff", source="127.0.0.4").status_code == 200
    headers = {k.lower(): v for k, v in backend.requests[-1][1].items()}
    assert backend.requests[-1][0] == "/xff"
    assert headers["x-forwarded-for"] == "127.0.0.4"
    assert headers["x-forwarded-port"] == "8082"
    assert headers["x-forwarded-proto"] == "http"

    assert get(f"http://{lb.vip_address}:8083/plain", source="127.0.0.4").status_code == 200
    headers = {k.lower() for k in backend.requests[-1][1]}
    assert not {"x-forwarded-for", "x-forwarded-port", "x-forwarded-proto"} & headers
