"""/cloud/v1/loadbalancers, /cloud/v2/loadbalancers and /cloud/v1/lbflavors."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from lbaas.api.entry import JsonQuery
from lbaas.api.params import Limit, Offset, ProjectId, RegionId
from lbaas.api.runtime import api_of
from lbaas.api.schemas import load_balancers as schemas
from lbaas.domain.enums import OperatingStatus, ProvisioningStatus
from lbaas.services import load_balancers as lbs
from lbaas.services import statuses
from lbaas.services.common import FLAVORS, flavor_view, page

router = APIRouter()
V1 = "/cloud/v1/loadbalancers/{project_id}/{region_id}"
V2 = "/cloud/v2/loadbalancers/{project_id}/{region_id}"


@router.post(V1)
async def create(
    request: Request, project_id: ProjectId, region_id: RegionId, body: schemas.LoadBalancerCreate
) -> Response:
    data = body.model_dump(exclude_unset=True, mode="json")
    return await api_of(request).tasks(
        request, lambda c, ctx: lbs.create(c, ctx, data), project_id, region_id
    )


@router.get(V1)
async def list_(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    limit: Limit = 1000,
    offset: Offset = 0,
    order_by: str | None = None,
    name: str | None = None,
    tag_key: Annotated[list[str] | None, Query()] = None,
    tag_key_value: JsonQuery | None = None,
    operating_status: OperatingStatus | None = None,
    provisioning_status: ProvisioningStatus | None = None,
    logging_enabled: bool | None = None,
    assigned_floating: bool | None = None,
    show_stats: bool = False,
    with_ddos: bool = False,
) -> Response:
    return await api_of(request).read(
        request,
        lambda c, ctx: lbs.list_(
            c,
            ctx,
            limit=limit,
            offset=offset,
            order_by=order_by,
            name=name,
            tag_key=tag_key,
            tag_key_value=tag_key_value,
            operating_status=operating_status,
            provisioning_status=provisioning_status,
            logging_enabled=logging_enabled,
            assigned_floating=assigned_floating,
            show_stats=show_stats,
        ),
        project_id,
        region_id,
    )


@router.get(V1 + "/status")
async def list_statuses(request: Request, project_id: ProjectId, region_id: RegionId) -> Response:
    return await api_of(request).read(request, statuses.list_, project_id, region_id)


@router.post(V1 + "/check_limits")
async def check_limits(
    request: Request, project_id: ProjectId, region_id: RegionId, body: schemas.CheckLimits
) -> Response:
    data = body.model_dump(exclude_unset=True, mode="json")
    return await api_of(request).read(
        request, lambda c, ctx: lbs.check_limits(c, ctx, data), project_id, region_id
    )


@router.get(V1 + "/{load_balancer_id}")
async def get(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    load_balancer_id: UUID,
    show_stats: bool = False,
    with_ddos: bool = False,
) -> Response:
    return await api_of(request).read(
        request,
        lambda c, ctx: lbs.get(c, ctx, str(load_balancer_id), show_stats=show_stats),
        project_id,
        region_id,
    )


@router.patch(V1 + "/{load_balancer_id}")
async def update(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    load_balancer_id: UUID,
    body: schemas.LoadBalancerPatch,
) -> Response:
    """The seed: synchronous; the answer is the LB as a GET right after shows it."""
    changes = body.model_dump(exclude_unset=True, mode="json")
    lb_id = str(load_balancer_id)

    def work(conn, ctx):
        lbs.update(conn, ctx, lb_id, changes)
        return lbs.get(conn, ctx, lb_id)

    return await api_of(request).write(request, work, project_id, region_id)


@router.patch(V2 + "/{load_balancer_id}")
async def update_v2(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    load_balancer_id: UUID,
    body: schemas.LoadBalancerPatchV2,
) -> Response:
    changes = body.model_dump(exclude_unset=True, mode="json")
    return await api_of(request).tasks(
        request, lambda c, ctx: lbs.update_v2(c, ctx, str(load_balancer_id), changes), project_id, region_id
    )


@router.delete(V1 + "/{load_balancer_id}")
async def delete(
    request: Request, project_id: ProjectId, region_id: RegionId, load_balancer_id: UUID
) -> Response:
    return await api_of(request).tasks(
        request, lambda c, ctx: lbs.delete(c, ctx, str(load_balancer_id)), project_id, region_id
    )


@router.post(V1 + "/{load_balancer_id}/failover")
async def failover(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    load_balancer_id: UUID,
    body: schemas.Failover | None = None,
) -> Response:
    force = bool(body and body.force)
    return await api_of(request).tasks(
        request,
        lambda c, ctx: lbs.failover(c, ctx, str(load_balancer_id), force=force),
        project_id,
        region_id,
    )


@router.post(V1 + "/{load_balancer_id}/resize")
async def resize(
    request: Request, project_id: ProjectId, region_id: RegionId, load_balancer_id: UUID, body: schemas.Resize
) -> Response:
    return await api_of(request).tasks(
        request, lambda c, ctx: lbs.resize(c, ctx, str(load_balancer_id), body.flavor), project_id, region_id
    )


@router.get(V1 + "/{load_balancer_id}/status")
async def get_status(
    request: Request, project_id: ProjectId, region_id: RegionId, load_balancer_id: UUID
) -> Response:
    return await api_of(request).read(
        request, lambda c, ctx: statuses.get(c, ctx, str(load_balancer_id)), project_id, region_id
    )


@router.post(V1 + "/{load_balancer_id}/metrics")
async def metrics(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    load_balancer_id: UUID,
    body: schemas.Metrics,
) -> Response:
    return await api_of(request).read(
        request,
        lambda c, ctx: lbs.metrics(
            c,
            ctx,
            str(load_balancer_id),
            body.time_interval,
            body.time_unit,
            interval=request.app.state.settings.metrics_interval,
        ),
        project_id,
        region_id,
    )


@router.get("/cloud/v1/lbflavors/{project_id}/{region_id}")
async def flavors(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    limit: Limit = 1000,
    offset: Offset = 0,
    include_prices: bool = False,
) -> Response:
    def work(_conn, _ctx):
        items = []
        for name in FLAVORS:
            item = flavor_view(name)
            if include_prices:
                item.update(
                    currency_code=None, price_per_hour=None, price_per_month=None, price_status="hide"
                )
            items.append(item)
        return page(len(items), items[offset : offset + limit])

    return await api_of(request).read(request, work, project_id, region_id)
