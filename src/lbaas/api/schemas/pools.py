"""Bodies of the pool, member and health monitor endpoints."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, IPvAnyAddress, StringConstraints

from lbaas.api.params import Int32, NotBool
from lbaas.api.schemas.common import Body, Name
from lbaas.domain.enums import (
    HealthMonitorType,
    HttpMethod,
    LbAlgorithm,
    PoolProtocol,
    SessionPersistenceType,
)

Port = Annotated[int, Field(ge=1, le=65535), NotBool]
Weight = Annotated[int, Field(ge=1, le=256), NotBool]
PoolTimeout = Annotated[int, Field(ge=0, le=86_400_000), NotBool]
Delay = Annotated[int, Field(ge=1, le=2_147_483_647), NotBool]
Retries = Annotated[int, Field(ge=1, le=10), NotBool]
HmTimeout = Annotated[int, Field(ge=0, le=2_147_483), NotBool]
DOMAIN_NAME_PATTERN = r"^[A-Za-z0-9._-]{1,253}$"
DomainName = Annotated[str, StringConstraints(pattern=DOMAIN_NAME_PATTERN)]
HttpVersion = Literal["1.0", "1.1"]
# The widths of their columns (a longer value would fail on PostgreSQL, not be refused).
ExpectedCodes = Annotated[str, StringConstraints(max_length=255)]
UrlPath = Annotated[str, StringConstraints(max_length=2048)]


# -- members -----------------------------------------------------------------
class MemberCreate(Body):
    """One member: the create body, an item of PUT .../members and of a pool's ``members``."""

    address: IPvAnyAddress
    protocol_port: Port
    admin_state_up: bool = True
    backup: bool = False
    instance_id: UUID | None = None
    monitor_address: IPvAnyAddress | None = None
    monitor_port: Port | None = None
    subnet_id: UUID | None = None
    weight: Weight = 1


class MemberPatch(Body):
    """Only the monitor fields may be null (SDK 0.59.0 member_update_params): null clears them."""

    admin_state_up: bool = None
    backup: bool = None
    monitor_address: IPvAnyAddress | None = None
    monitor_port: Port | None = None
    weight: Weight = None


# -- health monitors ---------------------------------------------------------
class _HealthMonitorFields(Body):
    admin_state_up: bool = True
    domain_name: DomainName | None = None
    expected_codes: ExpectedCodes | None = None
    http_method: HttpMethod | None = None
    http_version: HttpVersion | None = None
    max_retries_down: Retries = 3
    url_path: UrlPath | None = None


class HealthMonitorCreate(_HealthMonitorFields):
    type: HealthMonitorType
    delay: Delay
    max_retries: Retries
    timeout: HmTimeout


class HealthMonitorNested(_HealthMonitorFields):
    """The ``healthmonitor`` of a pool PATCH: complete, but ``type`` may be left out."""

    type: HealthMonitorType | None = None
    delay: Delay
    max_retries: Retries
    timeout: HmTimeout


class HealthMonitorPatch(Body):
    """Omitted: unchanged; null on an HTTP field: back to its default (SDK health_monitor_update_params)."""

    admin_state_up: bool = None
    delay: Delay = None
    max_retries: Retries = None
    max_retries_down: Retries = None
    timeout: HmTimeout = None
    domain_name: DomainName | None = None
    expected_codes: ExpectedCodes | None = None
    http_method: HttpMethod | None = None
    http_version: HttpVersion | None = None
    url_path: UrlPath | None = None


# -- pools -------------------------------------------------------------------
class SessionPersistence(Body):
    type: SessionPersistenceType
    cookie_name: Name | None = None
    persistence_granularity: str | None = None
    persistence_timeout: Int32 | None = None


class _PoolOptions(Body):
    ca_secret_id: UUID | None = None
    crl_secret_id: UUID | None = None
    secret_id: UUID | None = None
    session_persistence: SessionPersistence | None = None
    timeout_client_data: PoolTimeout | None = None
    timeout_member_connect: PoolTimeout | None = None
    timeout_member_data: PoolTimeout | None = None


class PoolCreate(_PoolOptions):
    name: Name
    protocol: PoolProtocol
    lb_algorithm: LbAlgorithm
    listener_id: UUID | None = None
    load_balancer_id: UUID | None = None
    healthmonitor: HealthMonitorCreate | None = None
    members: list[MemberCreate] = None


class PoolPatch(_PoolOptions):
    """PATCH v2 (and the deprecated v1): scalars when present, nested objects complete."""

    admin_state_up: bool = None
    name: Name = None
    protocol: PoolProtocol = None
    lb_algorithm: LbAlgorithm = None
    healthmonitor: HealthMonitorNested | None = None
    members: list[MemberCreate] | None = None
