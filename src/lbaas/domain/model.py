"""The snapshot: one load balancer's whole desired tree as an immutable, typed object graph.

A :class:`LoadBalancerSnapshot` is what a data plane is asked to serve. It is built from
rows in exactly one place (:func:`lbaas.db.snapshot.load_snapshot`), rendered by the
providers, and stored (as :meth:`LoadBalancerSnapshot.to_dict`) as the last applied state.
Fields carry the API's names (Gcore's) and enums from :mod:`lbaas.domain.enums`; times are
in the API's units (listener and pool timeouts in ms, health-monitor delay and timeout in s).

Shape: the LB holds its listeners (each with its L7 policies in position order, each with
its rules) and its pools (each with its members and health monitor). Pools hang off the
LB, not a listener: a pool is the default of at most one listener and can be the target
of REDIRECT_TO_POOL policies of others.

Certificate material (decrypted PEM) travels beside the tree in
:attr:`LoadBalancerSnapshot.certificates`, keyed by secret id. It is never shown by
``repr`` and never serialised: :meth:`~LoadBalancerSnapshot.to_dict` keeps only the secret
ids that listeners and pools reference.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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

SNAPSHOT_FORMAT = 1  # bump when to_dict's shape changes incompatibly

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----\r?\n?", re.S)


@dataclass(frozen=True, slots=True)
class Flavor:
    """``flavor``: vCPUs and RAM in MiB; ``None`` on the LB means the default flavor."""

    name: str
    vcpus: int
    ram: int


@dataclass(frozen=True, slots=True)
class Logging:
    """The LB's ``logging`` settings (Gcore LaaS); the data plane only needs ``enabled``."""

    enabled: bool = False
    topic_name: str | None = None
    destination_region_id: int | None = None
    retention_period: int | None = None  # days


@dataclass(frozen=True, slots=True)
class UserListEntry:
    """One basic-auth user of a listener; the password is a crypt(3) hash."""

    username: str
    encrypted_password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SessionPersistence:
    type: SessionPersistenceType
    cookie_name: str | None = None
    persistence_timeout: int | None = None  # s, UDP pools only
    persistence_granularity: str | None = None  # netmask, UDP pools only


@dataclass(frozen=True, slots=True)
class HealthMonitor:
    id: str
    type: HealthMonitorType
    delay: int  # s
    timeout: int  # s
    max_retries: int  # rise
    max_retries_down: int  # fall
    admin_state_up: bool = True
    http_method: HttpMethod | None = None
    url_path: str | None = None
    expected_codes: str | None = None
    http_version: str | None = None
    domain_name: str | None = None
    provisioning_status: ProvisioningStatus = ProvisioningStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    address: str
    protocol_port: int
    weight: int = 1
    backup: bool = False
    admin_state_up: bool = True
    monitor_address: str | None = None
    monitor_port: int | None = None
    subnet_id: str | None = None
    instance_id: str | None = None
    provisioning_status: ProvisioningStatus = ProvisioningStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class Pool:
    id: str
    name: str
    protocol: PoolProtocol
    lb_algorithm: LbAlgorithm
    admin_state_up: bool = True
    listener_id: str | None = None  # the listener whose default pool this is
    session_persistence: SessionPersistence | None = None
    ca_secret_id: str | None = None
    crl_secret_id: str | None = None
    secret_id: str | None = None
    timeout_client_data: int | None = None  # ms, deprecated here (listener-level wins)
    timeout_member_connect: int | None = None  # ms
    timeout_member_data: int | None = None  # ms
    members: tuple[Member, ...] = ()
    healthmonitor: HealthMonitor | None = None
    provisioning_status: ProvisioningStatus = ProvisioningStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class L7Rule:
    id: str
    type: L7RuleType
    compare_type: L7CompareType
    value: str
    key: str | None = None
    invert: bool = False
    provisioning_status: ProvisioningStatus = ProvisioningStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class L7Policy:
    id: str
    action: L7Action
    position: int
    name: str = ""
    redirect_url: str | None = None
    redirect_prefix: str | None = None
    redirect_pool_id: str | None = None
    redirect_http_code: int | None = None
    rules: tuple[L7Rule, ...] = ()
    provisioning_status: ProvisioningStatus = ProvisioningStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class Listener:
    id: str
    name: str
    protocol: ListenerProtocol
    protocol_port: int
    admin_state_up: bool = True
    connection_limit: int = 100_000
    allowed_cidrs: tuple[str, ...] = ()
    insert_x_forwarded: bool = False
    secret_id: str | None = None  # default certificate ("" and None: SNI certificates only)
    sni_secret_id: tuple[str, ...] = ()
    timeout_client_data: int | None = None  # ms
    timeout_member_connect: int | None = None  # ms, deprecated here (pool-level wins)
    timeout_member_data: int | None = None  # ms, deprecated here (pool-level wins)
    user_list: tuple[UserListEntry, ...] = ()
    default_pool_id: str | None = None
    l7policies: tuple[L7Policy, ...] = ()  # in position order
    provisioning_status: ProvisioningStatus = ProvisioningStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class Certificate:
    """Decrypted material of one secret: the PEM bundle as stored (leaf, chain, key).

    ``repr`` never shows the PEM. The renderer takes what each use needs: the whole
    bundle for a ``crt``, only ``CERTIFICATE`` blocks for a CA file, only ``X509 CRL``
    blocks for a CRL file (so a private key is written only where a ``crt`` needs it).
    """

    secret_id: str
    pem: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Certificate(secret_id={self.secret_id!r}, pem=<{len(self.pem)} chars hidden>)"

    def blocks(self, label: str) -> str:
        """The PEM blocks labelled ``label`` (e.g. ``CERTIFICATE``, ``X509 CRL``), concatenated."""
        found = [m.group(0) for m in _PEM_BLOCK.finditer(self.pem) if m.group(1) == label]
        return "".join(b if b.endswith("\n") else b + "\n" for b in found)


@dataclass(frozen=True, slots=True)
class LoadBalancerSnapshot:
    """One LB's desired state. Lookups by id: :meth:`listener`, :meth:`pool`, :meth:`member`."""

    id: str
    name: str
    vip_address: str
    floating_ip_addresses: tuple[str, ...] = ()
    admin_state_up: bool = True
    flavor: Flavor | None = None  # None: the default flavor
    logging: Logging | None = None
    provisioning_status: ProvisioningStatus = ProvisioningStatus.ACTIVE
    listeners: tuple[Listener, ...] = ()
    pools: tuple[Pool, ...] = ()
    certificates: Mapping[str, Certificate] = field(default_factory=dict, repr=False, compare=False)
    _index: Mapping[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, Any] = {}
        for listener in self.listeners:
            index[listener.id] = listener
        for pool in self.pools:
            index[pool.id] = pool
            for member in pool.members:
                index[member.id] = member
        object.__setattr__(self, "certificates", types.MappingProxyType(dict(self.certificates)))
        object.__setattr__(self, "_index", types.MappingProxyType(index))

    def _get(self, kind: type, object_id: str | None) -> Any:
        found = self._index.get(object_id) if object_id else None
        return found if isinstance(found, kind) else None

    def listener(self, listener_id: str | None) -> Listener | None:
        return self._get(Listener, listener_id)

    def pool(self, pool_id: str | None) -> Pool | None:
        return self._get(Pool, pool_id)

    def member(self, member_id: str | None) -> Member | None:
        return self._get(Member, member_id)

    def default_pool(self, listener: Listener) -> Pool | None:
        return self.pool(listener.default_pool_id)

    def certificate(self, secret_id: str | None) -> Certificate | None:
        return self.certificates.get(secret_id) if secret_id else None

    def secret_ids(self) -> frozenset[str]:
        """Every secret id the tree references (listener certificates, pool TLS)."""
        ids: set[str] = set()
        for listener in self.listeners:
            ids.update(s for s in (listener.secret_id, *listener.sni_secret_id) if s)
        for pool in self.pools:
            ids.update(s for s in (pool.secret_id, pool.ca_secret_id, pool.crl_secret_id) if s)
        return frozenset(ids)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the tree: enums as their values, no certificate material."""
        out = _encode(self)
        out["format"] = SNAPSHOT_FORMAT
        return out

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], certificates: Mapping[str, Certificate] | None = None
    ) -> LoadBalancerSnapshot:
        """Rebuild a snapshot from :meth:`to_dict` output; ValueError on another format."""
        if data.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"snapshot format {data.get('format')!r} is not {SNAPSHOT_FORMAT}")
        snapshot = _decode(cls, {k: v for k, v in data.items() if k != "format"})
        return dataclasses.replace(snapshot, certificates=dict(certificates or {}))


_NOT_SERIALISED = frozenset({"certificates", "_index"})


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _encode(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name not in _NOT_SERIALISED
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value


def _decode(tp: Any, value: Any) -> Any:
    """Turn JSON-able ``value`` back into an instance of the annotation ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _decode(args[0], value)
    if origin is tuple:
        return tuple(_decode(typing.get_args(tp)[0], v) for v in value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if dataclasses.is_dataclass(tp):
        return tp(**{name: _decode(hint, value[name]) for name, hint in _decoded_fields(tp) if name in value})
    return value


@functools.cache
def _decoded_fields(tp: type) -> tuple[tuple[str, Any], ...]:
    """(name, annotation) of the fields ``_decode`` fills, once per class (get_type_hints resolves
    every string annotation each time it is called: most of a decode's cost)."""
    hints = typing.get_type_hints(tp)
    return tuple(
        (f.name, hints[f.name]) for f in dataclasses.fields(tp) if f.init and f.name not in _NOT_SERIALISED
    )
