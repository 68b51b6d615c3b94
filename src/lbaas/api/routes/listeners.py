"""/cloud/v1/lblisteners and /cloud/v2/lblisteners (PATCH)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from starlette.responses import Response

from lbaas.api.params import Limit, Offset, ProjectId, RegionId
from lbaas.api.runtime import api_of
from lbaas.api.schemas import listeners as schemas
from lbaas.services import listeners

router = APIRouter()
V1 = "/cloud/v1/lblisteners/{project_id}/{region_id}"
V2 = "/cloud/v2/lblisteners/{project_id}/{region_id}"


@router.post(V1)
async def create(
    request: Request, project_id: ProjectId, region_id: RegionId, body: schemas.ListenerCreate
) -> Response:
    data = body.model_dump(exclude_unset=True, mode="json")
    return await api_of(request).tasks(
        request, lambda c, ctx: listeners.create(c, ctx, data), project_id, region_id
    )


@router.get(V1)
async def list_(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    limit: Limit = 1000,
    offset: Offset = 0,
    load_balancer_id: UUID | None = None,
    name: str | None = None,
    show_stats: bool = False,
) -> Response:
    lb_id = None if load_balancer_id is None else str(load_balancer_id)
    return await api_of(request).read(
        request,
        lambda c, ctx: listeners.list_(
            c, ctx, limit=limit, offset=offset, load_balancer_id=lb_id, name=name, show_stats=show_stats
        ),
        project_id,
        region_id,
    )


@router.get(V1 + "/{listener_id}")
async def get(
    request: Request, project_id: ProjectId, region_id: RegionId, listener_id: UUID, show_stats: bool = False
) -> Response:
    return await api_of(request).read(
        request,
        lambda c, ctx: listeners.get(c, ctx, str(listener_id), show_stats=show_stats),
        project_id,
        region_id,
    )


@router.patch(V2 + "/{listener_id}")
async def update(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    listener_id: UUID,
    body: schemas.ListenerPatch,
) -> Response:
    changes = body.model_dump(exclude_unset=True, mode="json")
    return await api_of(request).tasks(
        request, lambda c, ctx: listeners.update(c, ctx, str(listener_id), changes), project_id, region_id
    )


@router.patch(V1 + "/{listener_id}")
async def rename(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    listener_id: UUID,
    body: schemas.ListenerRename,
) -> Response:
    """Deprecated, not in the SDK: synchronous; answers the renamed listener."""
    return await api_of(request).write(
        request, lambda c, ctx: listeners.rename(c, ctx, str(listener_id), body.name), project_id, region_id
    )


@router.delete(V1 + "/{listener_id}")
async def delete(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    listener_id: UUID,
    delete_default_pool: bool = False,
) -> Response:
    return await api_of(request).tasks(
        request,
        lambda c, ctx: listeners.delete(c, ctx, str(listener_id), delete_default_pool=delete_default_pool),
        project_id,
        region_id,
    )
