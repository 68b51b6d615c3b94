"""load_snapshot on a real SQLite database made by the migrations: rows in, typed tree out."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from lbaas.certs import SecretBox
from lbaas.db import migrate, tables
from lbaas.db.engine import Database
from lbaas.db.snapshot import in_desired_state, load_snapshot
from lbaas.domain.enums import (
    HealthMonitorType,
    L7Action,
    L7RuleType,
    ListenerProtocol,
    PoolProtocol,
    ProvisioningStatus,
    SessionPersistenceType,
)
from lbaas.domain.model import LoadBalancerSnapshot

T0 = dt.datetime(2026, 1, 1)
PEM = (
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    "-----BEGIN PRIVATE KEY-----\nSECRETKEY\n-----END PRIVATE KEY-----\n"
)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'snap.db'}")
    migrate.upgrade(database)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox.from_key(Fernet.generate_key())


def _row(n: int, status: str = "ACTIVE", **values: Any) -> dict[str, Any]:
    return {
        "project_id": 1,
        "region_id": 1,
        "provisioning_status": status,
        "operating_status": "ONLINE",
        "created_at": T0 + dt.timedelta(seconds=n),
        **values,
    }


def _insert(conn: sa.Connection, table: sa.Table, n: int, status: str = "ACTIVE", **values: Any) -> None:
    conn.execute(table.insert().values(**_row(n, status, **values)))


def _seed(conn: sa.Connection, box: SecretBox) -> None:
    _insert(
        conn,
        tables.load_balancers,
        0,
        id="lb",
        name="lb one",
        flavor="lb1-2-4",
        vip_address="127.20.0.1",
        vip_port_id="port",
        preferred_connectivity="L2",
        admin_state_up=True,
        logging={"enabled": True, "topic_name": "t", "retention_policy": {"period": 7}},
        logging_enabled=True,
    )
    now = T0
    for address in ("127.20.0.9", "127.20.0.8"):
        conn.execute(
            tables.floating_ips.insert().values(
                id=f"fip-{address}",
                project_id=1,
                region_id=1,
                floating_ip_address=address,
                lb_id="lb",
                status="ACTIVE",
                created_at=now,
                updated_at=now,
            )
        )
    conn.execute(
        tables.secrets.insert().values(
            id="sec",
            project_id=1,
            region_id=1,
            name="s",
            secret_type="certificate",
            status="ACTIVE",
            payload=box.encrypt(PEM),
            created_at=now,
        )
    )
    common = {"lb_id": "lb", "admin_state_up": True}
    listener = {"connection_limit": 100000, "insert_x_forwarded": False, "user_list": [], **common}
    _insert(
        conn,
        tables.listeners,
        1,
        id="li-tls",
        name="tls",
        protocol="TERMINATED_HTTPS",
        protocol_port=443,
        secret_id="sec",
        sni_secret_id=["sec"],
        allowed_cidrs=["10.0.0.0/8"],
        **{**listener, "user_list": [{"username": "u", "encrypted_password": "$1$h"}]},
    )
    _insert(
        conn,
        tables.listeners,
        2,
        "ERROR",
        id="li-err",
        name="err",
        protocol="HTTP",
        protocol_port=80,
        **listener,
    )
    _insert(
        conn,
        tables.listeners,
        3,
        "PENDING_DELETE",
        id="li-gone",
        name="gone",
        protocol="TCP",
        protocol_port=81,
        **listener,
    )
    pool = {"lb_algorithm": "ROUND_ROBIN", **common}
    _insert(
        conn,
        tables.pools,
        4,
        id="pool-a",
        name="a",
        protocol="HTTP",
        listener_id="li-tls",
        session_persistence={"type": "APP_COOKIE", "cookie_name": "sid"},
        **pool,
    )
    _insert(
        conn,
        tables.pools,
        5,
        "PENDING_DELETE",
        id="pool-gone",
        name="g",
        protocol="TCP",
        listener_id="li-gone",
        **pool,
    )
    member = {"weight": 1, "backup": False, **common}
    _insert(
        conn, tables.members, 6, id="m-2", pool_id="pool-a", address="127.20.1.2", protocol_port=80, **member
    )
    _insert(
        conn,
        tables.members,
        7,
        "PENDING_DELETE",
        id="m-del",
        pool_id="pool-a",
        address="127.20.1.3",
        protocol_port=80,
        **member,
    )
    _insert(
        conn,
        tables.members,
        8,
        "ERROR",
        id="m-err",
        pool_id="pool-a",
        address="127.20.1.4",
        protocol_port=80,
        **member,
    )
    _insert(
        conn,
        tables.members,
        9,
        id="m-orphan",
        pool_id="pool-gone",
        address="127.20.1.5",
        protocol_port=80,
        **member,
    )
    _insert(
        conn,
        tables.health_monitors,
        10,
        id="hm",
        pool_id="pool-a",
        type="HTTP",
        delay=5,
        timeout=3,
        max_retries=2,
        max_retries_down=3,
        http_method="GET",
        url_path="/",
        expected_codes="200",
        http_version="1.0",
        **common,
    )
    policy = {"listener_id": "li-err", "tags": [], "lb_id": "lb"}
    _insert(conn, tables.l7_policies, 11, id="po-2", name="second", action="REJECT", position=2, **policy)
    _insert(
        conn,
        tables.l7_policies,
        12,
        id="po-1",
        name="first",
        action="REDIRECT_TO_POOL",
        position=1,
        redirect_pool_id="pool-a",
        **policy,
    )
    _insert(
        conn,
        tables.l7_policies,
        13,
        id="po-gone",
        name="x",
        action="REJECT",
        position=1,
        **{**policy, "listener_id": "li-gone"},
    )
    rule = {"compare_type": "EQUAL_TO", "invert": False, "tags": [], "lb_id": "lb"}
    _insert(conn, tables.l7_rules, 14, id="r-1", policy_id="po-1", type="PATH", value="/a", **rule)
    _insert(
        conn,
        tables.l7_rules,
        15,
        "PENDING_DELETE",
        id="r-del",
        policy_id="po-1",
        type="PATH",
        value="/b",
        **rule,
    )
    _insert(
        conn, tables.l7_rules, 16, id="r-2", policy_id="po-2", type="HEADER", key="X-A", value="v", **rule
    )


@pytest.fixture
def snapshot(db: Database, box: SecretBox) -> LoadBalancerSnapshot:
    """The seeded tree, its two ERROR rows served from the values last applied (see domain.desired)."""
    with db.write() as conn:
        _seed(conn, box)
        for table, row_id in ((tables.listeners, "li-err"), (tables.members, "m-err")):
            conn.execute(table.update().where(table.c.id == row_id).values(provisioning_status="ACTIVE"))
    with db.read() as conn:
        applied = load_snapshot(conn, "lb", box.decrypt)
    assert applied is not None
    errors = [(tables.listeners, "li-err"), (tables.members, "m-err")]
    with db.write() as conn:
        for table, row_id in errors:
            conn.execute(table.update().where(table.c.id == row_id).values(provisioning_status="ERROR"))
    with db.read() as conn:
        snap = load_snapshot(conn, "lb", box.decrypt, applied=applied)
    assert snap is not None
    return snap


def test_the_whole_tree_typed(snapshot: LoadBalancerSnapshot) -> None:
    assert snapshot.name == "lb one" and snapshot.vip_address == "127.20.0.1"
    assert snapshot.floating_ip_addresses == ("127.20.0.8", "127.20.0.9")
    assert snapshot.flavor is not None and (snapshot.flavor.vcpus, snapshot.flavor.ram) == (2, 4096)
    assert (
        snapshot.logging is not None and snapshot.logging.enabled and snapshot.logging.retention_period == 7
    )
    tls = snapshot.listener("li-tls")
    assert tls is not None and tls.protocol is ListenerProtocol.TERMINATED_HTTPS
    assert tls.default_pool_id == "pool-a" and snapshot.default_pool(tls) is snapshot.pool("pool-a")
    assert tls.allowed_cidrs == ("10.0.0.0/8",) and tls.user_list[0].username == "u"
    pool = snapshot.pool("pool-a")
    assert pool is not None and pool.protocol is PoolProtocol.HTTP
    assert pool.session_persistence is not None
    assert pool.session_persistence.type is SessionPersistenceType.APP_COOKIE
    assert pool.healthmonitor is not None and pool.healthmonitor.type is HealthMonitorType.HTTP
    assert snapshot.member("m-2") is pool.members[0]
    policies = snapshot.listener("li-err").l7policies  # type: ignore[union-attr]
    assert [p.id for p in policies] == ["po-1", "po-2"]  # position order, not creation order
    assert policies[0].action is L7Action.REDIRECT_TO_POOL and [r.id for r in policies[0].rules] == ["r-1"]
    assert policies[1].rules[0].type is L7RuleType.HEADER and policies[1].rules[0].key == "X-A"


def test_pending_delete_rows_and_their_subtrees_are_left_out(snapshot: LoadBalancerSnapshot) -> None:
    assert snapshot.listener("li-gone") is None and snapshot.pool("pool-gone") is None
    assert snapshot.member("m-del") is None and snapshot.member("m-orphan") is None
    all_rules = [r.id for li in snapshot.listeners for p in li.l7policies for r in p.rules]
    assert "r-del" not in all_rules
    assert "po-gone" not in [p.id for li in snapshot.listeners for p in li.l7policies]


def test_error_rows_are_served_from_their_applied_values(snapshot: LoadBalancerSnapshot, db, box) -> None:
    # Served as applied (then ACTIVE): the failed change did not reach the data plane.
    assert snapshot.listener("li-err").provisioning_status is ProvisioningStatus.ACTIVE  # type: ignore[union-attr]
    assert snapshot.member("m-err").provisioning_status is ProvisioningStatus.ACTIVE  # type: ignore[union-attr]
    assert in_desired_state({"provisioning_status": "ERROR"})
    assert not in_desired_state({"provisioning_status": "PENDING_DELETE"})
    # Never applied: left out, with what hangs below them (the listener's policies).
    with db.read() as conn:
        fresh = load_snapshot(conn, "lb", box.decrypt)
    assert fresh is not None and fresh.listener("li-err") is None and fresh.member("m-err") is None
    assert "po-1" not in [p.id for li in fresh.listeners for p in li.l7policies]


def test_certificates_are_decrypted_beside_the_tree_and_never_shown(snapshot: LoadBalancerSnapshot) -> None:
    assert set(snapshot.certificates) == {"sec"}
    assert snapshot.certificates["sec"].pem == PEM
    for text in (repr(snapshot), str(snapshot), repr(snapshot.certificates["sec"])):
        assert "SECRETKEY" not in text and "BEGIN" not in text
    assert "$1$h" not in repr(snapshot.listener("li-tls"))


def test_serialisation_round_trip_without_material(snapshot: LoadBalancerSnapshot) -> None:
    data = snapshot.to_dict()
    text = json.dumps(data)
    assert "SECRETKEY" not in text and "BEGIN" not in text
    assert '"sec"' in text  # references stay
    back = LoadBalancerSnapshot.from_dict(json.loads(text))
    assert back == snapshot
    assert back.certificates == {}
    assert back.listener("li-tls") == snapshot.listener("li-tls")
    with pytest.raises(ValueError):
        LoadBalancerSnapshot.from_dict({**data, "format": 999})


def test_a_gone_lb_is_none(db: Database, box: SecretBox) -> None:
    with db.read() as conn:
        assert load_snapshot(conn, "nope", box.decrypt) is None
