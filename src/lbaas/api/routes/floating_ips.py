"""/cloud/v1/floatingips and the v2 PATCH."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from lbaas.api.entry import JsonQuery
from lbaas.api.params import Limit, Offset, ProjectId, RegionId
from lbaas.api.runtime import api_of
from lbaas.api.schemas import floating_ips as schemas
from lbaas.errors import ValidationFailed
from lbaas.services import floating_ips as fips
from lbaas.services import metadata

router = APIRouter()
V1 = "/cloud/v1/floatingips/{project_id}/{region_id}"
V2 = "/cloud/v2/floatingips/{project_id}/{region_id}"


@router.post(V1)
async def create(
    request: Request, project_id: ProjectId, region_id: RegionId, body: schemas.FloatingIpCreate
) -> Response:
    data = body.model_dump(exclude_unset=True, mode="json")
    return await api_of(request).tasks(
        request, lambda c, ctx: fips.create(c, ctx, data), project_id, region_id
    )


@router.get(V1)
async def list_(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    limit: Limit = 1000,
    offset: Offset = 0,
    port_ids: Annotated[list[UUID] | None, Query()] = None,
    status: schemas.FloatingIpStatus | None = None,
    tag_key: Annotated[list[str] | None, Query()] = None,
    tag_key_value: JsonQuery | None = None,
) -> Response:
    ports = [str(p) for p in port_ids] if port_ids else None
    return await api_of(request).read(
        request,
        lambda c, ctx: fips.list_(
            c,
            ctx,
            limit=limit,
            offset=offset,
            port_ids=ports,
            status=status,
            tag_key=tag_key,
            tag_key_value=tag_key_value,
        ),
        project_id,
        region_id,
    )


@router.get(V1 + "/{floating_ip_id}")
async def get(request: Request, project_id: ProjectId, region_id: RegionId, floating_ip_id: UUID) -> Response:
    return await api_of(request).read(
        request, lambda c, ctx: fips.get(c, ctx, str(floating_ip_id)), project_id, region_id
    )


@router.patch(V2 + "/{floating_ip_id}")
async def update(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    floating_ip_id: UUID,
    body: schemas.FloatingIpUpdate,
) -> Response:
    changes = body.model_dump(exclude_unset=True, mode="json")
    return await api_of(request).tasks(
        request, lambda c, ctx: fips.update(c, ctx, str(floating_ip_id), changes), project_id, region_id
    )


@router.patch(V1 + "/{floating_ip_id}", deprecated=True)
async def update_v1(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    floating_ip_id: UUID,
    body: schemas.FloatingIpPatchV1,
) -> Response:
    """Deprecated, synchronous: a tag merge patch; the answer is the FloatingIP."""
    changes = body.model_dump(exclude_unset=True, mode="json")
    fip_id = str(floating_ip_id)

    def work(conn, ctx):
        if "tags" in changes:
            metadata.apply(conn, ctx, "floatingip", fip_id, changes["tags"])
        else:
            fips.lock_mutable(conn, ctx, fip_id)
        return fips.get(conn, ctx, fip_id)

    return await api_of(request).write(request, work, project_id, region_id)


@router.post(V1 + "/{floating_ip_id}/convert")
async def convert(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    floating_ip_id: UUID,
    body: schemas.FloatingIpConvert,
) -> Response:
    """Refused: lbaas has no reserved fixed IPs to convert a floating IP into (400, nothing changes).

    Gcore's rules are still checked first: the floating IP must exist (404) and be unassigned (400).
    """
    fip_id = str(floating_ip_id)

    def work(conn, ctx):
        row = fips.lock_mutable(conn, ctx, fip_id)
        if row.port_id is not None:
            raise ValidationFailed.field("port_id", f"Floating IP {fip_id} is assigned to port {row.port_id}")
        raise ValidationFailed.field(
            "target_type", "lbaas serves no reserved fixed IPs: a floating IP cannot be converted into one"
        )

    return await api_of(request).tasks(request, work, project_id, region_id)


@router.delete(V1 + "/{floating_ip_id}")
async def delete(
    request: Request, project_id: ProjectId, region_id: RegionId, floating_ip_id: UUID
) -> Response:
    return await api_of(request).tasks(
        request, lambda c, ctx: fips.delete(c, ctx, str(floating_ip_id)), project_id, region_id
    )


@router.post(V1 + "/{floating_ip_id}/assign")
async def assign(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    floating_ip_id: UUID,
    body: schemas.FloatingIpAssign,
) -> Response:
    """Deprecated, synchronous: the answer is the attached FloatingIP."""
    port_id = str(body.port_id)
    fixed = None if body.fixed_ip_address is None else str(body.fixed_ip_address)
    return await api_of(request).write(
        request,
        lambda c, ctx: fips.assign(c, ctx, str(floating_ip_id), port_id, fixed),
        project_id,
        region_id,
    )


@router.post(V1 + "/{floating_ip_id}/unassign")
async def unassign(
    request: Request, project_id: ProjectId, region_id: RegionId, floating_ip_id: UUID
) -> Response:
    """Deprecated, synchronous: the answer is the detached FloatingIP."""
    return await api_of(request).write(
        request, lambda c, ctx: fips.unassign(c, ctx, str(floating_ip_id)), project_id, region_id
    )
