"""Snapshots: export a project, import it after a reset or into another server, ids kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from lbaas.db import tables
from tests.api.test_emulator_faults import Admin
from tests.api.test_emulator_reset import CERT_PEM, KEY_PEM, nested_lb
from tests.conftest import ADMIN_TOKEN, BACKENDS, make_client, serve


def landscape(srv) -> tuple[int, str]:
    """A project with a nested LB, a second LB, a floating IP, a secret, tags and a quota."""
    pid, token = srv.new_project()
    client = make_client(srv, token, pid)
    lb = nested_lb(client, "lb-web")
    client.cloud.load_balancers.create_and_poll(name="lb-spare", tags={"role": "spare"})
    client.cloud.floating_ips.create_and_poll(
        port_id=lb.vip_port_id, fixed_ip_address=lb.vip_address, tags={"fip": "yes"}
    )
    client.cloud.secrets.upload_tls_certificate_and_poll(
        name="cert", payload={"certificate": CERT_PEM, "certificate_chain": "", "private_key": KEY_PEM}
    )
    from lbaas.services import quotas

    with srv.db.write() as conn:
        quotas.set_limit(conn, pid, "loadbalancer_count", 7)
    return pid, token


def state(client) -> dict[str, Any]:
    """What a client sees of a project, in a stable order."""
    lbs = client.cloud.load_balancers
    out: dict[str, Any] = {}
    for lb in sorted(lbs.list().results, key=lambda x: x.id):
        out[lb.id] = {
            "lb": lb.model_dump(),
            "listeners": sorted(
                (x.model_dump() for x in lbs.listeners.list(load_balancer_id=lb.id).results),
                key=lambda x: x["id"],
            ),
            "pools": sorted(
                (x.model_dump() for x in lbs.pools.list(load_balancer_id=lb.id, details=True).results),
                key=lambda x: x["id"],
            ),
        }
    out["fips"] = sorted(
        (x.model_dump() for x in client.cloud.floating_ips.list().results), key=lambda x: x["id"]
    )
    out["secrets"] = sorted(
        (x.model_dump() for x in client.cloud.secrets.list().results), key=lambda x: x["id"]
    )
    return out


def payloads(srv) -> dict[str, str | None]:
    with srv.db.read() as conn:
        rows = conn.execute(sa.select(tables.secrets.c.id, tables.secrets.c.payload))
        return {r.id: r.payload and srv.app.state.secret_box.decrypt(r.payload) for r in rows}


@pytest.mark.parametrize("backend", BACKENDS)
def test_export_reset_import_round_trip(backend: str, tmp_path: Path) -> None:
    with serve(backend, tmp_path) as srv:
        admin = Admin(srv.url)
        pid, token = landscape(srv)
        client = make_client(srv, token, pid)
        before, secrets_before = state(client), payloads(srv)
        doc = admin.call("GET", "/snapshot", params={"project_id": pid})
        assert doc["format"] == "lbaas-snapshot" and doc["project"]["id"] == pid
        assert doc["quotas"] == {"loadbalancer_count": 7}
        assert len(doc["tables"]["load_balancers"]) == 2 and len(doc["tables"]["members"]) == 1
        assert "BEGIN" not in str(doc)  # secrets travel encrypted only
        admin.call("POST", "/reset")
        result = admin.call("POST", "/snapshot", json=doc)
        assert result["project_id"] == pid and result["imported"]["load_balancers"] == 2
        assert result["readdressed"] == {} and result["secrets_without_payload"] == []
        key = admin.call("POST", f"/projects/{pid}/api-keys", 201)["token"]  # keys are not in a snapshot
        client = make_client(srv, key, pid)
        assert state(client) == before
        assert payloads(srv) == secrets_before
        # The landscape works: a new child goes through the normal path.
        lb_id = next(
            k for k, v in before.items() if k not in ("fips", "secrets") and v["lb"]["name"] == "lb-web"
        )
        listener = client.cloud.load_balancers.listeners.create_and_poll(
            load_balancer_id=lb_id, name="tcp", protocol="TCP", protocol_port=9000
        )
        assert listener.provisioning_status == "ACTIVE"
        # The quota came along; addresses are taken, so new ones do not collide.
        with srv.db.read() as conn:
            limit = conn.execute(sa.select(tables.quotas.c.limit).where(tables.quotas.c.project_id == pid))
            assert limit.scalar() == 7
        fresh = client.cloud.load_balancers.create_and_poll(name="lb-new")
        assert fresh.vip_address not in {
            v["lb"]["vip_address"] for k, v in before.items() if k not in ("fips", "secrets")
        }


def test_import_collisions_and_replace(server) -> None:
    admin = Admin(server.url)
    pid, token = landscape(server)
    doc = admin.call("GET", "/snapshot", params={"project_id": pid})
    refused = admin.call("POST", "/snapshot", 409, json=doc)
    assert refused["exception_class"] == "ConflictError" and "replace=true" in refused["message"]
    client = make_client(server, token, pid)
    before = state(client)
    client.cloud.load_balancers.create_and_poll(name="lb-extra")  # not in the snapshot: stays
    result = admin.call("POST", "/snapshot", params={"replace": "true"}, json=doc)
    assert sorted(result["replaced"]) == sorted(k for k in before if k not in ("fips", "secrets"))
    after = state(client)
    extra = [k for k, v in after.items() if k not in ("fips", "secrets") and v["lb"]["name"] == "lb-extra"]
    assert len(extra) == 1
    del after[extra[0]]
    assert after == before
    assert server.provider.calls[-1][0] == "apply"  # the data plane serves the imported LBs


def test_import_into_another_server_and_project(tmp_path: Path) -> None:
    shared_key = Fernet.generate_key().decode()
    (tmp_path / "src").mkdir()
    (tmp_path / "same").mkdir()
    (tmp_path / "other").mkdir()
    with (
        serve("sqlite", tmp_path / "src", secret_key=shared_key) as source,
        serve("sqlite", tmp_path / "same", secret_key=shared_key) as same_key,
        serve("sqlite", tmp_path / "other") as other_key,
    ):
        pid, _ = landscape(source)
        doc = Admin(source.url).call("GET", "/snapshot", params={"project_id": pid})
        secret_id = doc["tables"]["secrets"][0]["id"]
        # Same LBAAS_SECRET_KEY: the payload survives.
        ok = Admin(same_key.url).call("POST", "/snapshot", json=doc)
        assert (
            ok["secrets_without_payload"] == []
            and payloads(same_key)[secret_id] == payloads(source)[secret_id]
        )
        # Another key: metadata only, and the answer says so. Into project 42, created on the way.
        moved = Admin(other_key.url).call("POST", "/snapshot", params={"project_id": 42}, json=doc)
        assert moved["project_id"] == 42 and moved["secrets_without_payload"] == [secret_id]
        assert payloads(other_key)[secret_id] is None
        root = make_client(other_key, ADMIN_TOKEN, 42)
        assert root.cloud.projects.get(project_id=42).name == doc["project"]["name"]
        assert {lb.id for lb in root.cloud.load_balancers.list().results} == {
            r["id"] for r in doc["tables"]["load_balancers"]
        }
        assert root.cloud.secrets.get(secret_id).name == "cert"


def test_import_readdresses_taken_addresses(server) -> None:
    admin = Admin(server.url)
    pid, _ = landscape(server)
    doc = admin.call("GET", "/snapshot", params={"project_id": pid})
    admin.call("POST", "/reset", json={"project_id": pid})
    # Someone else takes the addresses in the meantime.
    other_pid, other_token = server.new_project()
    other = make_client(server, other_token, other_pid)
    taken = {r["vip_address"] for r in doc["tables"]["load_balancers"]}
    for _ in range(3):
        other.cloud.load_balancers.create_and_poll(name="squatter")
    with server.db.read() as conn:
        held = {r[0] for r in conn.execute(sa.select(tables.load_balancers.c.vip_address))}
    result = admin.call("POST", "/snapshot", json=doc)
    clashes = {r["id"] for r in doc["tables"]["load_balancers"] if r["vip_address"] in held}
    assert set(result["readdressed"]) >= clashes
    with server.db.read() as conn:
        vips = [r[0] for r in conn.execute(sa.select(tables.load_balancers.c.vip_address))]
    assert len(vips) == len(set(vips))
    assert taken  # the snapshot carried addresses


def test_bad_snapshots_are_400(server) -> None:
    admin = Admin(server.url)
    good = {"format": "lbaas-snapshot", "version": 1, "project": {"id": 1}, "tables": {}}
    for doc, words in (
        ({"format": "x"}, "format"),
        ({**good, "version": 99}, "version"),
        ({**good, "tables": {"users": []}}, "unknown tables"),
        ({**good, "tables": {"load_balancers": [{"id": "a", "colour": "red"}]}}, "unknown columns"),
        ({**good, "tables": {"load_balancers": [{"name": "no-id"}]}}, "needs id"),
        ({**good, "tables": {"listeners": "nope"}}, "list of objects"),
    ):
        body = admin.call("POST", "/snapshot", 400, json=doc)
        assert words in body["message"], (doc, body)
    r = admin.http.post(
        "/lbaas/v1/snapshot", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    admin.call("GET", "/snapshot", 404, params={"project_id": 987654})
