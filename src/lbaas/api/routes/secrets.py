"""/cloud/v1/secrets and the v2 create (TLS certificate bundles)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from starlette.responses import Response

from lbaas.api.params import Limit, Offset, ProjectId, RegionId
from lbaas.api.runtime import api_of
from lbaas.api.schemas import secrets as schemas
from lbaas.certs import SecretBox
from lbaas.services import secrets as svc

router = APIRouter()
V1 = "/cloud/v1/secrets/{project_id}/{region_id}"
V2 = "/cloud/v2/secrets/{project_id}/{region_id}"


def secret_box(request: Request) -> SecretBox:
    """The app's SecretBox (its key is read or created when the app starts)."""
    return request.app.state.secret_box


@router.post(V2)
async def create(
    request: Request, project_id: ProjectId, region_id: RegionId, body: schemas.SecretCreateV2
) -> Response:
    data, box = body.model_dump(exclude_unset=True, mode="json"), secret_box(request)
    return await api_of(request).tasks(
        request, lambda c, ctx: svc.create_v2(c, ctx, data, box), project_id, region_id
    )


@router.post(V1)
async def create_v1(
    request: Request, project_id: ProjectId, region_id: RegionId, body: schemas.SecretCreateV1
) -> Response:
    """Deprecated: a base64 PKCS#12 archive."""
    data, box = body.model_dump(exclude_unset=True, mode="json"), secret_box(request)
    return await api_of(request).tasks(
        request, lambda c, ctx: svc.create_v1(c, ctx, data, box), project_id, region_id
    )


@router.get(V1)
async def list_(
    request: Request, project_id: ProjectId, region_id: RegionId, limit: Limit = 1000, offset: Offset = 0
) -> Response:
    return await api_of(request).read(
        request, lambda c, ctx: svc.list_(c, ctx, limit=limit, offset=offset), project_id, region_id
    )


@router.get(V1 + "/{secret_id}")
async def get(request: Request, project_id: ProjectId, region_id: RegionId, secret_id: UUID) -> Response:
    return await api_of(request).read(
        request, lambda c, ctx: svc.get(c, ctx, str(secret_id)), project_id, region_id
    )


@router.delete(V1 + "/{secret_id}")
async def delete(request: Request, project_id: ProjectId, region_id: RegionId, secret_id: UUID) -> Response:
    return await api_of(request).tasks(
        request, lambda c, ctx: svc.delete(c, ctx, str(secret_id)), project_id, region_id
    )
