"""Reset leaves no trace, and the journal never holds a credential.

Each test starts servers of its own: a full reset would wipe the shared servers' data.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gcore
import orjson
import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from gcore.types.cloud import TaskIDList

from lbaas.db import tables
from tests.api.test_emulator_faults import Admin
from tests.conftest import ADMIN_TOKEN, BACKENDS, make_client, serve

NOW = dt.datetime.now(dt.UTC)


def _pem_pair(key: Any) -> tuple[str, str]:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emulator.example")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


EC_KEY = ec.generate_private_key(ec.SECP256R1())
CERT_PEM, KEY_PEM = _pem_pair(EC_KEY)


@contextlib.contextmanager
def two_servers(backend: str, tmp: Path, **settings: Any) -> Iterator[tuple[Any, Any]]:
    (tmp / "a").mkdir()
    (tmp / "b").mkdir()
    with serve(backend, tmp / "a", **settings) as fresh, serve(backend, tmp / "b", **settings) as used:
        yield fresh, used


def dump(srv) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, with clock values and the controls' version masked."""
    out: dict[str, list[dict[str, Any]]] = {}
    with srv.db.read() as conn:
        for table in tables.metadata.sorted_tables:
            rows = []
            for row in conn.execute(sa.select(table)).mappings():
                clean = {str(k): ("<time>" if isinstance(v, dt.datetime) else v) for k, v in row.items()}
                if table.name == "emulator_state":
                    clean["version"] = "<version>"
                if table.name == "dataplane_state":  # what the poller saw, whenever it last ran
                    clean.update(
                        dict.fromkeys(("running", "reason", "observed_at", "counters", "stats"), "<poll>")
                    )
                rows.append(clean)
            out[table.name] = sorted(rows, key=lambda r: orjson.dumps(r, option=orjson.OPT_SORT_KEYS))
    return out


def nested_lb(client, name: str):
    return client.cloud.load_balancers.create_and_poll(
        name=name,
        tags={"team": "a"},
        listeners=[
            {
                "name": "web",
                "protocol": "HTTP",
                "protocol_port": 80,
                "pools": [
                    {
                        "name": "web-pool",
                        "protocol": "HTTP",
                        "lb_algorithm": "ROUND_ROBIN",
                        "members": [{"address": "127.0.0.20", "protocol_port": 8080}],
                        "healthmonitor": {"type": "TCP", "delay": 5, "timeout": 3, "max_retries": 2},
                    }
                ],
            }
        ],
    )


def populate(srv) -> None:
    """Leave a trace in every table the API and the controls can reach."""
    admin = Admin(srv.url)
    admin.call("PUT", "/journal", json={"size": 50})
    root = make_client(srv, ADMIN_TOKEN, 1)
    for _ in range(2):
        lb = nested_lb(root, "lb-root")
    root.cloud.load_balancers.listeners.create_and_poll(
        load_balancer_id=lb.id, name="tcp", protocol="TCP", protocol_port=9000
    )
    root.cloud.floating_ips.create_and_poll(tags={"x": "y"})
    root.cloud.secrets.upload_tls_certificate_and_poll(
        name="cert", payload={"certificate": CERT_PEM, "certificate_chain": "", "private_key": KEY_PEM}
    )
    pid, token = srv.new_project()
    admin.call("POST", f"/projects/{pid}/api-keys", 201)
    client = make_client(srv, token, pid)
    other = nested_lb(client, "lb-other")
    member = (
        client.cloud.load_balancers.pools.list(load_balancer_id=other.id, details=True).results[0].members[0]
    )
    admin.fault(kind="health", member_id=member.id, status="DOWN")
    admin.fault(kind="http", status=500, path_regex="nothing-matches-this", count=None)
    admin.fault(kind="task", task_type="create_lbpool", project_id=pid)
    admin.fault(kind="latency", latency_ms=1, path_regex="nothing-matches-this")
    gone_pid, _ = srv.new_project()
    root.cloud.projects.delete(project_id=gone_pid)
    with pytest.raises(gcore.BadRequestError):
        client.cloud.load_balancers.create(name="x")  # a request that fails, in the journal
    admin.call("GET", "/journal")  # written


@pytest.mark.parametrize("backend", BACKENDS)
def test_reset_leaves_no_trace(backend: str, tmp_path: Path) -> None:
    with two_servers(backend, tmp_path) as (fresh, used):
        before = dump(fresh)
        populate(used)
        assert dump(used) != before
        with used.db.read() as conn:
            lb_ids = {r[0] for r in conn.execute(sa.select(tables.load_balancers.c.id))}
        result = Admin(used.url).call("POST", "/reset")
        assert result["reset"] == "all" and result["load_balancers_removed"] == 3
        assert dump(used) == before
        # The noop data plane was told the LBs are gone.
        assert lb_ids <= {lb_id for op, lb_id in used.provider.calls if op == "remove"}
        # What either server hands out next is the same: project and key ids, addresses, sequences.
        for srv in (fresh, used):
            pid = make_client(srv, ADMIN_TOKEN, 1).cloud.projects.create(name="after-reset").id
            token = Admin(srv.url).call("POST", f"/projects/{pid}/api-keys", 201)["token"]
            assert pid == 2
            client = make_client(srv, token, pid)
            lb = client.cloud.load_balancers.create_and_poll(name="after")
            assert lb.vip_address == "127.1.0.1"  # the pool starts again at its first address
            client.cloud.floating_ips.create_and_poll(port_id=lb.vip_port_id, fixed_ip_address=lb.vip_address)
        for srv in (fresh, used):  # the floating IP's internal apply runs in the background
            settle(srv)
        assert masked(dump(used)) == masked(dump(fresh))


def settle(srv, timeout: float = 20.0) -> None:
    """Wait until no task is queued or running (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with srv.db.read() as conn:
            busy = conn.execute(
                sa.select(sa.func.count())
                .select_from(tables.tasks)
                .where(tables.tasks.c.state.in_(("NEW", "RUNNING")))
            ).scalar_one()
        if not busy:
            return
        time.sleep(0.05)
    raise AssertionError(f"tasks still busy after {timeout} s")


_RANDOM = {"digest", "fingerprint", "request_id", "body", "worker_id"}
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def masked(value: Any) -> Any:
    """Random ids and key digests masked: what must match after the same requests."""
    if isinstance(value, dict):
        return {k: "<random>" if k in _RANDOM else masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((masked(v) for v in value), key=lambda v: orjson.dumps(v, option=orjson.OPT_SORT_KEYS))
    if isinstance(value, str) and _UUID.match(value):
        return "<uuid>"
    return value


@pytest.mark.parametrize("backend", BACKENDS)
def test_project_reset_keeps_other_projects(backend: str, tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    with serve(backend, tmp_path / "s") as srv:
        admin = Admin(srv.url)
        pid, token = srv.new_project()
        other_pid, other_token = srv.new_project()
        mine, theirs = make_client(srv, token, pid), make_client(srv, other_token, other_pid)
        for c in (mine, theirs):
            lb = nested_lb(c, "lb-one")
            c.cloud.floating_ips.create_and_poll(port_id=lb.vip_port_id, fixed_ip_address=lb.vip_address)
        admin.fault(kind="task", project_id=pid, count=None)
        admin.fault(kind="task", project_id=other_pid, count=None)
        result = admin.call("POST", "/reset", json={"project_id": pid})
        assert result == {**result, "reset": "project", "project_id": pid, "load_balancers_removed": 1}
        assert mine.cloud.load_balancers.list().count == 0  # the key still works
        assert mine.cloud.floating_ips.list().count == 0
        assert mine.cloud.tasks.list(project_id=[pid]).count == 0
        assert theirs.cloud.load_balancers.list().count == 1
        assert theirs.cloud.floating_ips.list().results[0].loadbalancer is not None
        assert [f["project_id"] for f in admin.call("GET", "/faults")["results"]] == [other_pid]
        assert mine.cloud.load_balancers.create_and_poll(name="again").provisioning_status == "ACTIVE"
        admin.call("POST", "/reset", 404, json={"project_id": 999})
        admin.call("POST", "/reset", 400, json={"project_id": "x"})


def _pkcs12(key: Any, cert_pem: str) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    blob = pkcs12.serialize_key_and_certificates(b"p12", key, cert, None, serialization.NoEncryption())
    return base64.b64encode(blob).decode()


def test_journal_never_holds_a_credential(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_cert, rsa_key_pem = _pem_pair(rsa_key)
    p12 = _pkcs12(rsa_key, rsa_cert)
    password = "$6$rounds=5000$sekrit-salt$S3cr3tHashValueThatMustNotLeak"
    with serve("sqlite", tmp_path, emulator_journal_size=1000) as srv:
        admin = Admin(srv.url)
        pid, token = srv.new_project()
        client = make_client(srv, token, pid)
        secret = client.cloud.secrets.upload_tls_certificate_and_poll(
            name="tls",
            payload={"certificate": CERT_PEM, "certificate_chain": rsa_cert, "private_key": KEY_PEM},
        )
        body = {
            "name": "p12",
            "payload": p12,
            "payload_content_encoding": "base64",
            "payload_content_type": "application/octet-stream",
            "secret_type": "certificate",
        }
        client.cloud.tasks.poll(
            client.post(f"/cloud/v1/secrets/{pid}/1", body=body, cast_to=TaskIDList).tasks[0]
        )
        lb = client.cloud.load_balancers.create_and_poll(name="lb-secrets")
        client.cloud.load_balancers.listeners.create_and_poll(
            load_balancer_id=lb.id,
            name="https",
            protocol="TERMINATED_HTTPS",
            protocol_port=443,
            secret_id=secret.id,
            user_list=[{"username": "admin", "encrypted_password": password}],
        )
        client.cloud.load_balancers.listeners.list(load_balancer_id=lb.id)
        with pytest.raises(gcore.BadRequestError):  # a refused upload is journaled too
            client.cloud.secrets.upload_tls_certificate(
                name="bad",
                payload={"certificate": CERT_PEM, "certificate_chain": "", "private_key": rsa_key_pem},
            )
        entries = admin.call("GET", "/journal", params={"limit": 1000})["results"]
        assert len(entries) >= 8 and {e["method"] for e in entries} >= {"GET", "POST"}
        assert any(e["request_body"] and e["request_body"].get("user_list") for e in entries)
        text = orjson.dumps(entries).decode()
        needles = [token, ADMIN_TOKEN, token.partition("$")[2], password, p12[:40], p12[-40:]]
        for pem in (CERT_PEM, KEY_PEM, rsa_cert, rsa_key_pem):
            needles += [line for line in pem.splitlines() if len(line) > 20 and "-----" not in line]
        leaked = [n for n in needles if n in text]
        assert not leaked, leaked[:3]
        assert "-----BEGIN" not in text and "[REDACTED]" in text
        with srv.db.read() as conn:  # nor does the table, however it is read
            raw = " ".join(str(r) for r in conn.execute(sa.select(tables.emulator_journal)))
        assert not [n for n in needles if n in raw]
