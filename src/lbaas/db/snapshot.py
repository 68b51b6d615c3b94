"""The one place that turns an LB's rows into a :class:`~lbaas.domain.model.LoadBalancerSnapshot`.

``load_snapshot`` reads the LB, its children, the floating IPs bound to it and the secrets
its listeners and pools reference (decrypting them with the caller's ``decrypt``, e.g.
``SecretBox.decrypt``), in one read transaction of the caller's connection.

Which rows are part of the desired state is decided by :func:`in_desired_state`, and only
there: rows being deleted are left out (with everything below them); ERROR rows are
resolved against the last applied state by :mod:`lbaas.domain.desired`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.db import lifecycle, tables
from lbaas.db.prepared import Prepared
from lbaas.domain import desired, model
from lbaas.domain.enums import (
    HealthMonitorType,
    HttpMethod,
    L7Action,
    L7CompareType,
    L7RuleType,
    LbAlgorithm,
    ListenerProtocol,
    PoolProtocol,
    ProvisioningStatus,
    SessionPersistenceType,
)
from lbaas.domain.flavors import FLAVORS

Row = Mapping[str, Any]
Decrypt = Callable[[str], str]


def in_desired_state(row: Row) -> bool:
    """Whether a child row is part of what the data plane must serve.

    PENDING_DELETE rows are not (and neither is anything below them). ERROR rows are
    read with the values they hold; :func:`lbaas.domain.desired.servable` then decides
    what of them is served.
    """
    return row["provisioning_status"] != ProvisioningStatus.PENDING_DELETE


def load_snapshot(
    conn: Connection,
    lb_id: str,
    decrypt: Decrypt,
    applied: model.LoadBalancerSnapshot | None = None,
) -> model.LoadBalancerSnapshot | None:
    """The desired state of LB ``lb_id``, or None when the LB row is gone.

    Children in ERROR are resolved against ``applied`` (the last state the data plane
    took) by :func:`lbaas.domain.desired.servable`; certificates are loaded for what
    remains.

    ``decrypt`` turns a secret's stored ``payload`` into its PEM bundle; a secret that is
    referenced but missing (or has no payload) is simply absent from ``certificates``,
    and the renderer reports it.
    """
    lb_row = _LB_ROW.first(conn, lb_id=lb_id)
    if lb_row is None:
        return None
    rows = {t.name: _children(conn, t, lb_id) for t in tables.LB_CHILDREN}
    rules_by_policy = _group(rows["l7_rules"], "policy_id")
    policies_by_listener = _group(rows["l7_policies"], "listener_id")
    members_by_pool = _group(rows["members"], "pool_id")
    monitor_by_pool = {r["pool_id"]: r for r in rows["health_monitors"]}

    pools = tuple(
        _pool(r, members_by_pool.get(r["id"], []), monitor_by_pool.get(r["id"]))
        for r in sorted(rows["pools"], key=_created)
    )
    default_pool: dict[str, str] = {}
    for pool in pools:  # oldest first: the API allows one default pool per listener
        if pool.listener_id is not None:
            default_pool.setdefault(pool.listener_id, pool.id)
    listeners = tuple(
        _listener(r, default_pool.get(r["id"]), policies_by_listener.get(r["id"], []), rules_by_policy)
        for r in sorted(rows["listeners"], key=lambda r: (r["protocol_port"], r["protocol"], r["id"]))
    )
    snapshot = model.LoadBalancerSnapshot(
        id=lb_row.id,
        name=lb_row.name,
        vip_address=lb_row.vip_address,
        floating_ip_addresses=_floating_ips(conn, lb_id),
        admin_state_up=bool(lb_row.admin_state_up),
        flavor=_flavor(lb_row.flavor),
        logging=_logging(lb_row.logging),
        provisioning_status=ProvisioningStatus(lb_row.provisioning_status),
        listeners=listeners,
        pools=pools,
    )
    snapshot = desired.servable(snapshot, applied)
    certificates = _certificates(conn, snapshot.secret_ids(), decrypt)
    return dataclasses.replace(snapshot, certificates=certificates)


# The LB's row and its children's rows: lifecycle's statements, run as Prepared (every task reads
# its LB this way, and Core's own ``execute`` costs more than SQLite's lookup).
_LB_ROW = lifecycle._LB_ROW
_ROWS_OF_LB = lifecycle._ROWS_OF_LB
_FLOATING_IPS = Prepared(
    sa.select(tables.floating_ips.c.floating_ip_address).where(
        tables.floating_ips.c.lb_id == sa.bindparam("lb_id")
    )
)


def _children(conn: Connection, table: sa.Table, lb_id: str) -> list[Row]:
    rows = (r._asdict() for r in _ROWS_OF_LB[table.name].all(conn, lb_id=lb_id))
    return [r for r in rows if in_desired_state(r)]


def _group(rows: Iterable[Row], key: str) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(row[key], []).append(row)
    return out


def _created(row: Row) -> tuple[Any, str]:
    return (row["created_at"], row["id"])


def _status(row: Row) -> ProvisioningStatus:
    return ProvisioningStatus(row["provisioning_status"])


def _flavor(name: str | None) -> model.Flavor | None:
    if name is None or name not in FLAVORS:
        return None
    vcpus, ram = FLAVORS[name]
    return model.Flavor(name=name, vcpus=vcpus, ram=ram)


def _logging(value: Mapping[str, Any] | None) -> model.Logging | None:
    if value is None:
        return None
    retention = value.get("retention_policy") or {}
    return model.Logging(
        enabled=bool(value.get("enabled")),
        topic_name=value.get("topic_name"),
        destination_region_id=value.get("destination_region_id"),
        retention_period=retention.get("period"),
    )


def _floating_ips(conn: Connection, lb_id: str) -> tuple[str, ...]:
    return tuple(sorted(r[0] for r in _FLOATING_IPS.all(conn, lb_id=lb_id)))


def _monitor(row: Row) -> model.HealthMonitor:
    return model.HealthMonitor(
        id=row["id"],
        type=HealthMonitorType(row["type"]),
        delay=row["delay"],
        timeout=row["timeout"],
        max_retries=row["max_retries"],
        max_retries_down=row["max_retries_down"],
        admin_state_up=bool(row["admin_state_up"]),
        http_method=None if row["http_method"] is None else HttpMethod(row["http_method"]),
        url_path=row["url_path"],
        expected_codes=row["expected_codes"],
        http_version=row["http_version"],
        domain_name=row["domain_name"],
        provisioning_status=_status(row),
    )


def _member(row: Row) -> model.Member:
    return model.Member(
        id=row["id"],
        address=row["address"],
        protocol_port=row["protocol_port"],
        weight=row["weight"],
        backup=bool(row["backup"]),
        admin_state_up=bool(row["admin_state_up"]),
        monitor_address=row["monitor_address"],
        monitor_port=row["monitor_port"],
        subnet_id=row["subnet_id"],
        instance_id=row["instance_id"],
        provisioning_status=_status(row),
    )


def _persistence(value: Mapping[str, Any] | None) -> model.SessionPersistence | None:
    if not value:
        return None
    return model.SessionPersistence(
        type=SessionPersistenceType(value["type"]),
        cookie_name=value.get("cookie_name"),
        persistence_timeout=value.get("persistence_timeout"),
        persistence_granularity=value.get("persistence_granularity"),
    )


def _pool(row: Row, members: list[Row], monitor: Row | None) -> model.Pool:
    return model.Pool(
        id=row["id"],
        name=row["name"],
        protocol=PoolProtocol(row["protocol"]),
        lb_algorithm=LbAlgorithm(row["lb_algorithm"]),
        admin_state_up=bool(row["admin_state_up"]),
        listener_id=row["listener_id"],
        session_persistence=_persistence(row["session_persistence"]),
        ca_secret_id=row["ca_secret_id"],
        crl_secret_id=row["crl_secret_id"],
        secret_id=row["secret_id"],
        timeout_client_data=row["timeout_client_data"],
        timeout_member_connect=row["timeout_member_connect"],
        timeout_member_data=row["timeout_member_data"],
        members=tuple(_member(m) for m in sorted(members, key=_created)),
        healthmonitor=None if monitor is None else _monitor(monitor),
        provisioning_status=_status(row),
    )


def _rule(row: Row) -> model.L7Rule:
    return model.L7Rule(
        id=row["id"],
        type=L7RuleType(row["type"]),
        compare_type=L7CompareType(row["compare_type"]),
        value=row["value"],
        key=row["key"],
        invert=bool(row["invert"]),
        provisioning_status=_status(row),
    )


def _policy(row: Row, rules: list[Row]) -> model.L7Policy:
    return model.L7Policy(
        id=row["id"],
        action=L7Action(row["action"]),
        position=row["position"],
        name=row["name"],
        redirect_url=row["redirect_url"],
        redirect_prefix=row["redirect_prefix"],
        redirect_pool_id=row["redirect_pool_id"],
        redirect_http_code=row["redirect_http_code"],
        rules=tuple(_rule(r) for r in sorted(rules, key=_created)),
        provisioning_status=_status(row),
    )


def _listener(
    row: Row, default_pool_id: str | None, policies: list[Row], rules: Mapping[str, list[Row]]
) -> model.Listener:
    ordered = sorted(policies, key=lambda r: (r["position"], r["created_at"], r["id"]))
    return model.Listener(
        id=row["id"],
        name=row["name"],
        protocol=ListenerProtocol(row["protocol"]),
        protocol_port=row["protocol_port"],
        admin_state_up=bool(row["admin_state_up"]),
        connection_limit=row["connection_limit"],
        allowed_cidrs=tuple(row["allowed_cidrs"] or ()),
        insert_x_forwarded=bool(row["insert_x_forwarded"]),
        secret_id=row["secret_id"] or None,
        sni_secret_id=tuple(row["sni_secret_id"] or ()),
        timeout_client_data=row["timeout_client_data"],
        timeout_member_connect=row["timeout_member_connect"],
        timeout_member_data=row["timeout_member_data"],
        user_list=tuple(
            model.UserListEntry(username=u["username"], encrypted_password=u["encrypted_password"])
            for u in row["user_list"] or ()
        ),
        default_pool_id=default_pool_id,
        l7policies=tuple(_policy(p, rules.get(p["id"], [])) for p in ordered),
        provisioning_status=_status(row),
    )


def _certificates(
    conn: Connection, secret_ids: Iterable[str], decrypt: Decrypt
) -> dict[str, model.Certificate]:
    ids = sorted(secret_ids)
    if not ids:
        return {}
    s = tables.secrets
    found = conn.execute(sa.select(s.c.id, s.c.payload).where(s.c.id.in_(ids)))
    return {
        row.id: model.Certificate(secret_id=row.id, pem=decrypt(row.payload))
        for row in found
        if row.payload is not None
    }


def with_certificates(
    conn: Connection, snapshot: model.LoadBalancerSnapshot, decrypt: Decrypt
) -> model.LoadBalancerSnapshot:
    """``snapshot`` (e.g. a stored applied one, which holds no key material) with its certificates."""
    return dataclasses.replace(snapshot, certificates=_certificates(conn, snapshot.secret_ids(), decrypt))
