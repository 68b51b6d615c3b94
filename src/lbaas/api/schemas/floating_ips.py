"""Bodies of the floating IP endpoints."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Literal
from uuid import UUID

from pydantic import IPvAnyAddress

from lbaas.api.schemas.common import Body

FloatingIpStatus = Literal["ACTIVE", "DOWN", "ERROR"]


class FloatingIpCreate(Body):
    port_id: UUID | None = None
    fixed_ip_address: IPv4Address | None = None
    tags: dict[str, str] = None


class FloatingIpUpdate(Body):
    """PATCH v2: ``port_id: null`` detaches; ``tags`` is a merge patch."""

    port_id: UUID | None = None
    fixed_ip_address: IPvAnyAddress | None = None
    tags: dict[str, str | None] | None = None


class FloatingIpPatchV1(Body):
    """The deprecated v1 PATCH (PatchFloatingIPSerializer): a tag merge patch; null drops all user tags."""

    tags: dict[str, str | None] | None = None


class FloatingIpConvert(Body):
    target_type: Literal["reserved_fixed_ip"]


class FloatingIpAssign(Body):
    port_id: UUID
    fixed_ip_address: IPvAnyAddress | None = None
