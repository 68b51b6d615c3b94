"""/cloud/v1|v2/lbpools (pools, health monitors, deprecated member calls) and the SDK's member paths."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Request
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticError
from starlette.responses import Response

from lbaas.api.errors import validation_fields
from lbaas.api.params import Limit, Offset, ProjectId, RegionId
from lbaas.api.runtime import api_of
from lbaas.api.schemas import pools as schemas
from lbaas.errors import ValidationFailed
from lbaas.services import health_monitors as hms
from lbaas.services import members, pools

router = APIRouter()
V1 = "/cloud/v1/lbpools/{project_id}/{region_id}"
V2 = "/cloud/v2/lbpools/{project_id}/{region_id}"
HM = V1 + "/{pool_id}/healthmonitor"
MEMBERS = "/cloud/v1/loadbalancers/{project_id}/{region_id}/pools/{pool_id}/members"
_MEMBER_LIST = TypeAdapter(list[schemas.MemberCreate])


def _json(body: Any) -> dict[str, Any]:
    return body.model_dump(exclude_unset=True, mode="json")


# -- pools -------------------------------------------------------------------
@router.post(V1)
async def create_pool(
    request: Request, project_id: ProjectId, region_id: RegionId, body: schemas.PoolCreate
) -> Response:
    data = _json(body)
    return await api_of(request).tasks(
        request, lambda c, ctx: pools.create(c, ctx, data), project_id, region_id
    )


@router.get(V1)
async def list_pools(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    limit: Limit = 1000,
    offset: Offset = 0,
    details: bool = False,
    load_balancer_id: UUID | None = None,
    listener_id: UUID | None = None,
    name: str | None = None,
) -> Response:
    def work(c, ctx):
        return pools.list_(
            c,
            ctx,
            limit=limit,
            offset=offset,
            details=details,
            load_balancer_id=None if load_balancer_id is None else str(load_balancer_id),
            listener_id=None if listener_id is None else str(listener_id),
            name=name,
        )

    return await api_of(request).read(request, work, project_id, region_id)


@router.get(V1 + "/{pool_id}")
async def get_pool(request: Request, project_id: ProjectId, region_id: RegionId, pool_id: UUID) -> Response:
    return await api_of(request).read(
        request, lambda c, ctx: pools.get(c, ctx, str(pool_id)), project_id, region_id
    )


async def _update_pool(
    request: Request, project_id: ProjectId, region_id: RegionId, pool_id: UUID, body: Any
) -> Response:
    data = _json(body)
    return await api_of(request).tasks(
        request, lambda c, ctx: pools.update(c, ctx, str(pool_id), data), project_id, region_id
    )


@router.patch(V2 + "/{pool_id}")
async def update_pool(
    request: Request, project_id: ProjectId, region_id: RegionId, pool_id: UUID, body: schemas.PoolPatch
) -> Response:
    return await _update_pool(request, project_id, region_id, pool_id, body)


@router.patch(V1 + "/{pool_id}", deprecated=True)
async def update_pool_v1(
    request: Request, project_id: ProjectId, region_id: RegionId, pool_id: UUID, body: schemas.PoolPatch
) -> Response:
    """Deprecated: the v2 PATCH under its old path."""
    return await _update_pool(request, project_id, region_id, pool_id, body)


@router.delete(V1 + "/{pool_id}")
async def delete_pool(
    request: Request, project_id: ProjectId, region_id: RegionId, pool_id: UUID
) -> Response:
    return await api_of(request).tasks(
        request, lambda c, ctx: pools.delete(c, ctx, str(pool_id)), project_id, region_id
    )


# -- health monitor ----------------------------------------------------------
@router.post(HM)
async def create_hm(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    pool_id: UUID,
    body: schemas.HealthMonitorCreate,
) -> Response:
    data = _json(body)
    return await api_of(request).tasks(
        request, lambda c, ctx: hms.create(c, ctx, str(pool_id), data), project_id, region_id
    )


@router.get(HM)
async def get_hm(request: Request, project_id: ProjectId, region_id: RegionId, pool_id: UUID) -> Response:
    return await api_of(request).read(
        request, lambda c, ctx: hms.get(c, ctx, str(pool_id)), project_id, region_id
    )


@router.patch(HM)
async def update_hm(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    pool_id: UUID,
    body: schemas.HealthMonitorPatch,
) -> Response:
    data = _json(body)
    return await api_of(request).tasks(
        request, lambda c, ctx: hms.update(c, ctx, str(pool_id), data), project_id, region_id
    )


@router.delete(HM, status_code=204)
async def delete_hm(request: Request, project_id: ProjectId, region_id: RegionId, pool_id: UUID) -> Response:
    """Synchronous 204: the row goes now; the internal task that follows is not returned."""
    queued: list[str] = []

    def work(c, ctx):
        queued.append(hms.delete(c, ctx, str(pool_id)))

    response = await api_of(request).write(request, work, project_id, region_id, status=204)
    await api_of(request).kick(queued)
    return response


# -- members -----------------------------------------------------------------
@router.post(MEMBERS)
async def create_member(
    request: Request, project_id: ProjectId, region_id: RegionId, pool_id: UUID, body: schemas.MemberCreate
) -> Response:
    data = _json(body)
    return await api_of(request).tasks(
        request, lambda c, ctx: members.create(c, ctx, str(pool_id), data), project_id, region_id
    )


@router.post(V1 + "/{pool_id}/member", deprecated=True)
async def add_member_v1(
    request: Request, project_id: ProjectId, region_id: RegionId, pool_id: UUID, body: schemas.MemberCreate
) -> Response:
    """Deprecated: same as POST .../pools/{pool_id}/members."""
    return await create_member(request, project_id, region_id, pool_id, body)


@router.get(MEMBERS)
async def list_members(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    pool_id: UUID,
    limit: Limit = 1000,
    offset: Offset = 0,
    order_by: str | None = None,
) -> Response:
    return await api_of(request).read(
        request,
        lambda c, ctx: members.list_(c, ctx, str(pool_id), limit=limit, offset=offset, order_by=order_by),
        project_id,
        region_id,
    )


def parse_member_array(raw: bytes) -> list[dict[str, Any]]:
    """The PUT body: a bare JSON array of members (an empty body is refused, not a no-op)."""
    if not raw.strip():
        raise ValidationFailed.field("body", "body must be a JSON array")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValidationFailed.field("body", "Malformed JSON body") from None
    if not isinstance(data, list):
        raise ValidationFailed.field("body", "body must be a JSON array")
    try:
        items = _MEMBER_LIST.validate_python(data)
    except PydanticError as exc:
        raise ValidationFailed(fields=validation_fields(exc.errors())) from None
    return [m.model_dump(exclude_unset=True, mode="json") for m in items]


@router.put(MEMBERS)
async def replace_members(
    request: Request, project_id: ProjectId, region_id: RegionId, pool_id: UUID
) -> Response:
    # Read the raw body: FastAPI cannot tell an empty body from a missing one for a list model.
    raw = await request.body()
    return await api_of(request).tasks(
        request,
        lambda c, ctx: members.replace(c, ctx, str(pool_id), parse_member_array(raw)),
        project_id,
        region_id,
    )


@router.get(MEMBERS + "/{member_id}")
async def get_member(
    request: Request, project_id: ProjectId, region_id: RegionId, pool_id: UUID, member_id: UUID
) -> Response:
    return await api_of(request).read(
        request, lambda c, ctx: members.get(c, ctx, str(pool_id), str(member_id)), project_id, region_id
    )


@router.patch(MEMBERS + "/{member_id}")
async def update_member(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    pool_id: UUID,
    member_id: UUID,
    body: schemas.MemberPatch,
) -> Response:
    data = _json(body)
    return await api_of(request).tasks(
        request,
        lambda c, ctx: members.update(c, ctx, str(pool_id), str(member_id), data),
        project_id,
        region_id,
    )


async def _delete_member(
    request: Request, project_id: ProjectId, region_id: RegionId, pool_id: UUID, member_id: UUID
):
    return await api_of(request).tasks(
        request, lambda c, ctx: members.delete(c, ctx, str(pool_id), str(member_id)), project_id, region_id
    )


@router.delete(MEMBERS + "/{member_id}")
async def delete_member(
    request: Request, project_id: ProjectId, region_id: RegionId, pool_id: UUID, member_id: UUID
) -> Response:
    return await _delete_member(request, project_id, region_id, pool_id, member_id)


@router.delete(V1 + "/{pool_id}/member/{member_id}", deprecated=True)
async def remove_member_v1(
    request: Request, project_id: ProjectId, region_id: RegionId, pool_id: UUID, member_id: UUID
) -> Response:
    """Deprecated: same as DELETE .../pools/{pool_id}/members/{member_id}."""
    return await _delete_member(request, project_id, region_id, pool_id, member_id)
