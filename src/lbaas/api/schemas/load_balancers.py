"""Bodies of the load balancer endpoints."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, model_validator

from lbaas.api.params import NotBool
from lbaas.api.schemas.common import Body, FloatingIpChoice, Logging, Name
from lbaas.api.schemas.listeners import NestedListenerCreate
from lbaas.domain.enums import Connectivity, IpFamily


class LoadBalancerCreate(Body):
    name: Name
    flavor: str = None
    floating_ip: FloatingIpChoice = None
    listeners: list[NestedListenerCreate] = Field(default=None, max_length=51)
    logging: Logging = None
    preferred_connectivity: Connectivity = Connectivity.L2
    tags: dict[str, str] = None
    vip_ip_family: IpFamily = None
    vip_network_id: UUID = None
    vip_port_id: UUID = None
    vip_subnet_id: UUID = None

    @model_validator(mode="after")
    def _exclusive_vip(self) -> LoadBalancerCreate:
        if self.vip_network_id is not None and self.vip_port_id is not None:
            raise ValueError("vip_network_id and vip_port_id are mutually exclusive")
        return self


class LoadBalancerPatch(Body):
    """The seed body: every field optional; only the fields sent change. Only ``tags`` may be null."""

    name: Name = None
    logging: Logging = None
    preferred_connectivity: Connectivity = None
    tags: dict[str, str | None] | None = None


class LoadBalancerPatchV2(LoadBalancerPatch):
    admin_state_up: bool = None


class Failover(Body):
    force: bool = False


class Resize(Body):
    flavor: str


class Metrics(Body):
    # timedelta(days=n) must not overflow (datetime.timedelta.max is 999999999 days).
    time_interval: Annotated[int, Field(gt=0, le=999_999_999), NotBool]
    time_unit: Literal["hour", "day"]


class CheckLimits(Body):
    floating_ip: FloatingIpChoice = None
    logging: Logging = None
    vip_ip_family: IpFamily = None
    vip_network_id: UUID = None
    vip_port_id: UUID = None
