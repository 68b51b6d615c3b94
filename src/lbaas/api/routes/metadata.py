"""The deprecated tag ("metadata") endpoints of load balancers and floating IPs.

v1 (synchronous): ``GET|POST|PUT .../{id}/metadata`` and ``GET|DELETE .../{id}/metadata_item?key=``
for load balancers and floating IPs; POST/PUT/DELETE answer 204. v2 (load balancers):
``POST|PUT .../{id}/metadata`` and ``DELETE .../{id}/metadata_item?key=`` answer ``{"tasks": [...]}``
(the v2 PATCH's ``update_loadbalancer`` task). See :mod:`lbaas.services.metadata`.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Query, Request
from starlette.responses import Response

from lbaas.api.params import ProjectId, RegionId
from lbaas.api.runtime import api_of
from lbaas.api.schemas.common import MetadataKey, TagMap, TagPatchMap
from lbaas.services import load_balancers as lbs
from lbaas.services import metadata as svc

router = APIRouter()
LB_V1 = "/cloud/v1/loadbalancers/{project_id}/{region_id}/{load_balancer_id}"
LB_V2 = "/cloud/v2/loadbalancers/{project_id}/{region_id}/{load_balancer_id}"
FIP_V1 = "/cloud/v1/floatingips/{project_id}/{region_id}/{floating_ip_id}"
LB, FIP = "loadbalancer", "floatingip"

Key = Annotated[MetadataKey, Query(description="Tag key")]
Tags = Annotated[TagMap, Body()]
TagPatch = Annotated[TagPatchMap, Body()]


async def _list(request: Request, project_id: int, region_id: int, kind: str, rid: UUID) -> Response:
    return await api_of(request).read(
        request, lambda c, ctx: svc.collection(c, ctx, kind, str(rid)), project_id, region_id
    )


async def _item(
    request: Request, project_id: int, region_id: int, kind: str, rid: UUID, key: str
) -> Response:
    return await api_of(request).read(
        request, lambda c, ctx: svc.item(c, ctx, kind, str(rid), key), project_id, region_id
    )


async def _apply(
    request: Request,
    project_id: int,
    region_id: int,
    kind: str,
    rid: UUID,
    op: str,
    tags: dict[str, Any] | None = None,
    key: str | None = None,
) -> Response:
    """A v1 call: the merge patch applied now; 204."""

    def work(conn, ctx):
        svc.apply(conn, ctx, kind, str(rid), svc.patch_for(conn, ctx, kind, str(rid), op, tags, key))

    return await api_of(request).write(request, work, project_id, region_id, status=204)


async def _task(
    request: Request,
    project_id: int,
    region_id: int,
    rid: UUID,
    op: str,
    tags: dict[str, Any] | None = None,
    key: str | None = None,
) -> Response:
    """A v2 call: the merge patch as the v2 PATCH applies it, one ``update_loadbalancer`` task."""

    def work(conn, ctx):
        patch = svc.patch_for(conn, ctx, LB, str(rid), op, tags, key)
        return lbs.update_v2(conn, ctx, str(rid), {"tags": patch})

    return await api_of(request).tasks(request, work, project_id, region_id)


def _values(tags: dict[str, str | None]) -> dict[str, str]:
    """A replacement's tags: a null value (UpdateTagsSerializer allows it) just leaves that key out."""
    return {k: v for k, v in tags.items() if v is not None}


# -- load balancers, v1 -------------------------------------------------------
@router.get(LB_V1 + "/metadata", deprecated=True)
async def lb_list(request: Request, project_id: ProjectId, region_id: RegionId, load_balancer_id: UUID):
    return await _list(request, project_id, region_id, LB, load_balancer_id)


@router.post(LB_V1 + "/metadata", status_code=204, deprecated=True)
async def lb_set(
    request: Request, project_id: ProjectId, region_id: RegionId, load_balancer_id: UUID, body: Tags
):
    return await _apply(request, project_id, region_id, LB, load_balancer_id, "set", body)


@router.put(LB_V1 + "/metadata", status_code=204, deprecated=True)
async def lb_replace(
    request: Request, project_id: ProjectId, region_id: RegionId, load_balancer_id: UUID, body: TagPatch
):
    return await _apply(request, project_id, region_id, LB, load_balancer_id, "replace", _values(body))


@router.get(LB_V1 + "/metadata_item", deprecated=True)
async def lb_item(
    request: Request, project_id: ProjectId, region_id: RegionId, load_balancer_id: UUID, key: Key
):
    return await _item(request, project_id, region_id, LB, load_balancer_id, key)


@router.delete(LB_V1 + "/metadata_item", status_code=204, deprecated=True)
async def lb_delete(
    request: Request, project_id: ProjectId, region_id: RegionId, load_balancer_id: UUID, key: Key
):
    return await _apply(request, project_id, region_id, LB, load_balancer_id, "delete", key=key)


# -- load balancers, v2 -------------------------------------------------------
@router.post(LB_V2 + "/metadata", deprecated=True)
async def lb_set_v2(
    request: Request, project_id: ProjectId, region_id: RegionId, load_balancer_id: UUID, body: TagPatch
):
    """RawMetadataSerializer: a merge patch (a null value removes that tag, as in the v2 PATCH)."""
    return await _task(request, project_id, region_id, load_balancer_id, "set", body)


@router.put(LB_V2 + "/metadata", deprecated=True)
async def lb_replace_v2(
    request: Request, project_id: ProjectId, region_id: RegionId, load_balancer_id: UUID, body: TagPatch
):
    return await _task(request, project_id, region_id, load_balancer_id, "replace", _values(body))


@router.delete(LB_V2 + "/metadata_item", deprecated=True)
async def lb_delete_v2(
    request: Request, project_id: ProjectId, region_id: RegionId, load_balancer_id: UUID, key: Key
):
    """The spec marks ``key`` optional but names no meaning for its absence: lbaas requires it (400)."""
    return await _task(request, project_id, region_id, load_balancer_id, "delete", key=key)


# -- floating IPs, v1 ---------------------------------------------------------
@router.get(FIP_V1 + "/metadata", deprecated=True)
async def fip_list(request: Request, project_id: ProjectId, region_id: RegionId, floating_ip_id: UUID):
    return await _list(request, project_id, region_id, FIP, floating_ip_id)


@router.post(FIP_V1 + "/metadata", status_code=204, deprecated=True)
async def fip_set(
    request: Request, project_id: ProjectId, region_id: RegionId, floating_ip_id: UUID, body: Tags
):
    return await _apply(request, project_id, region_id, FIP, floating_ip_id, "set", body)


@router.put(FIP_V1 + "/metadata", status_code=204, deprecated=True)
async def fip_replace(
    request: Request, project_id: ProjectId, region_id: RegionId, floating_ip_id: UUID, body: Tags
):
    return await _apply(request, project_id, region_id, FIP, floating_ip_id, "replace", body)


@router.get(FIP_V1 + "/metadata_item", deprecated=True)
async def fip_item(
    request: Request, project_id: ProjectId, region_id: RegionId, floating_ip_id: UUID, key: Key
):
    return await _item(request, project_id, region_id, FIP, floating_ip_id, key)


@router.delete(FIP_V1 + "/metadata_item", status_code=204, deprecated=True)
async def fip_delete(
    request: Request, project_id: ProjectId, region_id: RegionId, floating_ip_id: UUID, key: Key
):
    return await _apply(request, project_id, region_id, FIP, floating_ip_id, "delete", key=key)
