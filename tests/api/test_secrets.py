"""Secrets (TLS bundles) through the SDK: upload v2, deprecated v1 PKCS#12, list, get, delete."""

from __future__ import annotations

import base64
import datetime as dt
import uuid

import gcore
import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from gcore.types.cloud import TaskIDList

from lbaas.api.routes.secrets import secret_box
from lbaas.clock import utcnow
from lbaas.db import tables
from lbaas.services import secrets as svc

NOW = dt.datetime.now(dt.UTC)
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # once per module: slow
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


def _cert(key, cn: str = "example.com", days: int = 365) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )


CERT = _cert(KEY)
CERT_PEM = CERT.public_bytes(serialization.Encoding.PEM).decode()
KEY_PEM = KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
OTHER_KEY_PEM = OTHER_KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
PAYLOAD = {"certificate": CERT_PEM, "certificate_chain": "", "private_key": KEY_PEM}


def _upload(client, name: str = "cert-1", **kw):
    return client.cloud.secrets.upload_tls_certificate_and_poll(
        name=name, payload=kw.pop("payload", PAYLOAD), **kw
    )


def _count(client) -> int:
    return client.cloud.secrets.list().count


def test_upload_get_list(client, server) -> None:
    expiration = (NOW + dt.timedelta(days=30)).replace(microsecond=0)
    secret = _upload(client, "Load balancer certificate #1", expiration=expiration)
    assert secret.name == "Load balancer certificate #1"
    assert (secret.secret_type, secret.status) == ("certificate", "ACTIVE")
    assert (secret.algorithm, secret.bit_length, secret.mode) == ("RSA", 2048, None)
    assert secret.content_types == {"default": "application/octet-stream"}
    assert secret.expiration == expiration
    assert abs((secret.created - dt.datetime.now(dt.UTC)).total_seconds()) < 60
    task = client.cloud.tasks.get(_creator(server, secret.id))
    assert task.task_type == "create_secret" and task.created_resources.secrets == [secret.id]
    assert client.cloud.secrets.get(secret.id).name == secret.name
    second = _upload(client, "cert-2")
    assert second.expiration is None
    page = client.cloud.secrets.list()
    assert page.count == 2 and [s.id for s in page.results] == [second.id, secret.id]
    assert [s.id for s in client.cloud.secrets.list(limit=1, offset=1).results] == [secret.id]
    assert {s.id for s in client.cloud.secrets.list(limit=1)} == {secret.id, second.id}


def _creator(server, secret_id: str) -> str:
    with server.db.read() as conn:
        return conn.execute(
            sa.select(tables.secrets.c.creator_task_id).where(tables.secrets.c.id == secret_id)
        ).scalar_one()


def test_payload_is_encrypted_at_rest_and_never_returned(client, server) -> None:
    secret = _upload(client)
    raw = client.cloud.secrets.with_raw_response.get(secret.id).http_response.text
    assert "BEGIN" not in raw and "payload" not in raw
    with server.db.read() as conn:
        stored = conn.execute(
            sa.select(tables.secrets.c.payload).where(tables.secrets.c.id == secret.id)
        ).scalar_one()
        # Ciphertext is base64 too: look for a long run of the certificate's own base64, not a short
        # prefix such as "MII" that random ciphertext contains by chance.
        cert_b64 = "".join(PAYLOAD["certificate"].splitlines()[1:-1])
        assert stored and "-----BEGIN" not in stored
        assert cert_b64[:48] not in stored and cert_b64[-48:] not in stored

        class _Req:  # secret_box reads only request.app.state
            app = server.app

        pem = svc.decrypt_bundle(conn, secret.id, secret_box(_Req()))
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    assert "-----BEGIN PRIVATE KEY-----" in pem


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**PAYLOAD, "certificate": "not a certificate"}, "payload.certificate"),
        ({**PAYLOAD, "private_key": OTHER_KEY_PEM}, "payload.private_key"),
        ({**PAYLOAD, "private_key": "garbage"}, "payload.private_key"),
        ({**PAYLOAD, "certificate_chain": KEY_PEM}, "payload.certificate_chain"),
        ({"certificate": CERT_PEM, "private_key": KEY_PEM}, "payload.certificate_chain"),
    ],
)
def test_bad_uploads_are_400(client, payload, field) -> None:
    with pytest.raises(gcore.BadRequestError) as exc:
        client.cloud.secrets.upload_tls_certificate(name="bad", payload=payload)
    assert exc.value.body["exception_class"] == "ValidationError"
    assert field in exc.value.body["invalid_fields"], exc.value.body
    assert _count(client) == 0


def test_bad_metadata_is_400(client) -> None:
    sec = client.cloud.secrets
    for kwargs, field in (
        ({"name": "", "payload": PAYLOAD}, "name"),
        ({"name": "x", "payload": PAYLOAD, "expiration": NOW - dt.timedelta(days=1)}, "expiration"),
        ({"name": "x", "payload": PAYLOAD, "extra_body": {"secret_type": "opaque"}}, "secret_type"),
    ):
        with pytest.raises(gcore.BadRequestError) as exc:
            sec.upload_tls_certificate(**kwargs)
        assert field in exc.value.body["invalid_fields"], exc.value.body
    expired = _cert(KEY, days=0)  # not_after = module import time: already past
    with pytest.raises(gcore.BadRequestError, match="expired"):
        sec.upload_tls_certificate(
            name="old",
            payload={**PAYLOAD, "certificate": expired.public_bytes(serialization.Encoding.PEM).decode()},
        )
    assert _count(client) == 0


def test_delete(client) -> None:
    secret = _upload(client)
    tasks = client.cloud.secrets.delete(secret.id).tasks
    assert len(tasks) == 1
    task = client.cloud.tasks.poll(tasks[0])
    assert task.task_type == "delete_secret" and task.state == "FINISHED"
    with pytest.raises(gcore.NotFoundError):
        client.cloud.secrets.get(secret.id)
    with pytest.raises(gcore.NotFoundError):
        client.cloud.secrets.delete(secret.id)
    assert _count(client) == 0


def _listener_row(lb_id: str, project_id: int, **values) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "lb_id": lb_id,
        "project_id": project_id,
        "region_id": 1,
        "name": "l-" + uuid.uuid4().hex[:6],
        "protocol": "TERMINATED_HTTPS",
        "protocol_port": 443,
        "admin_state_up": True,
        "connection_limit": 100000,
        "insert_x_forwarded": False,
        "user_list": [],
        "provisioning_status": "ACTIVE",
        "operating_status": "ONLINE",
        "created_at": utcnow(),
        **values,
    }


def test_delete_refused_while_a_listener_uses_it(client, server, project) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="lb-tls")
    main, sni = _upload(client, "main"), _upload(client, "sni")
    L = tables.listeners
    # Listener rows written directly: this test is about the secret, not the listener API.
    rows = [
        _listener_row(lb.id, project[0], secret_id=main.id, sni_secret_id=[]),
        _listener_row(lb.id, project[0], secret_id=None, sni_secret_id=[sni.id], protocol_port=8443),
    ]
    with server.db.write() as conn:
        conn.execute(L.insert(), rows)
    for secret, listener in ((main, rows[0]), (sni, rows[1])):
        with pytest.raises(gcore.BadRequestError) as exc:
            client.cloud.secrets.delete(secret.id)
        assert exc.value.body["exception_class"] == "ValidationError"
        assert listener["id"] in exc.value.body["message"]
        assert client.cloud.secrets.get(secret.id).status == "ACTIVE"
    with server.db.write() as conn:
        conn.execute(L.update().where(L.c.id == rows[1]["id"]).values(provisioning_status="PENDING_DELETE"))
        conn.execute(L.delete().where(L.c.id == rows[0]["id"]))
    for secret in (main, sni):
        client.cloud.tasks.poll(client.cloud.secrets.delete(secret.id).tasks[0])
    assert _count(client) == 0


def _pkcs12(password: bytes | None = None) -> str:
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    data = pkcs12.serialize_key_and_certificates(b"lb", KEY, CERT, None, enc)
    return base64.b64encode(data).decode()


def _v1_create(client, project_id: int, **body) -> list[str]:
    full = {
        "name": "p12",
        "payload": _pkcs12(),
        "payload_content_encoding": "base64",
        "payload_content_type": "application/octet-stream",
        "secret_type": "certificate",
        **body,
    }
    return client.post(f"/cloud/v1/secrets/{project_id}/1", body=full, cast_to=TaskIDList).tasks


def test_v1_pkcs12_create(client, project) -> None:
    tasks = _v1_create(client, project[0], mode="cbc")
    assert len(tasks) == 1
    task = client.cloud.tasks.poll(tasks[0])
    assert task.task_type == "create_secret"
    secret = client.cloud.secrets.get(task.created_resources.secrets[0])
    assert (secret.name, secret.secret_type, secret.status) == ("p12", "certificate", "ACTIVE")
    assert (secret.algorithm, secret.bit_length, secret.mode) == ("RSA", 2048, "cbc")
    for body, field in (
        ({"payload": "!!!"}, "payload"),
        ({"payload": _pkcs12(b"secret")}, "payload"),
        ({"secret_type": "symmetric"}, "secret_type"),
        ({"payload_content_encoding": "hex"}, "payload_content_encoding"),
        ({"bit_length": 0}, "bit_length"),
    ):
        with pytest.raises(gcore.BadRequestError) as exc:
            _v1_create(client, project[0], **body)
        assert field in exc.value.body["invalid_fields"], (body, exc.value.body)
    assert _count(client) == 1


def test_other_projects_secrets_are_404(client, server) -> None:
    from tests.conftest import make_client

    secret = _upload(client)
    stranger = make_client(server)
    with pytest.raises(gcore.NotFoundError):
        stranger.cloud.secrets.get(secret.id)
    with pytest.raises(gcore.NotFoundError):
        stranger.cloud.secrets.delete(secret.id)
    assert stranger.cloud.secrets.list().count == 0
    assert client.cloud.secrets.get(secret.id).status == "ACTIVE"


async def test_async_upload_and_delete(aclient) -> None:
    secret = await aclient.cloud.secrets.upload_tls_certificate_and_poll(name="async", payload=PAYLOAD)
    assert secret.status == "ACTIVE"
    assert (await aclient.cloud.secrets.list()).count == 1
    task_id = (await aclient.cloud.secrets.delete(secret.id)).tasks[0]
    await aclient.cloud.tasks.poll(task_id)
    assert (await aclient.cloud.secrets.list()).count == 0
