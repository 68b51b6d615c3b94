"""/cloud/v1/l7policies: L7 policies and, below each, its L7 rules."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from starlette.responses import Response

from lbaas.api.params import Limit, Offset, ProjectId, RegionId
from lbaas.api.runtime import api_of
from lbaas.api.schemas import l7 as schemas
from lbaas.services import l7

router = APIRouter()
P = "/cloud/v1/l7policies/{project_id}/{region_id}"
RULES = P + "/{l7policy_id}/rules"


# -- policies ----------------------------------------------------------------
@router.post(P)
async def create_policy(
    request: Request, project_id: ProjectId, region_id: RegionId, body: schemas.L7PolicyCreate
) -> Response:
    data = body.model_dump(exclude_unset=True, mode="json")
    return await api_of(request).tasks(
        request, lambda c, ctx: l7.create_policy(c, ctx, data), project_id, region_id
    )


@router.get(P)
async def list_policies(
    request: Request, project_id: ProjectId, region_id: RegionId, limit: Limit = 1000, offset: Offset = 0
) -> Response:
    return await api_of(request).read(
        request, lambda c, ctx: l7.list_policies(c, ctx, limit=limit, offset=offset), project_id, region_id
    )


@router.get(P + "/{l7policy_id}")
async def get_policy(
    request: Request, project_id: ProjectId, region_id: RegionId, l7policy_id: UUID
) -> Response:
    return await api_of(request).read(
        request, lambda c, ctx: l7.get_policy(c, ctx, str(l7policy_id)), project_id, region_id
    )


@router.patch(P + "/{l7policy_id}")
async def update_policy(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    l7policy_id: UUID,
    body: schemas.L7PolicyUpdate,
) -> Response:
    changes = body.model_dump(exclude_unset=True, mode="json")
    return await api_of(request).tasks(
        request, lambda c, ctx: l7.update_policy(c, ctx, str(l7policy_id), changes), project_id, region_id
    )


@router.delete(P + "/{l7policy_id}")
async def delete_policy(
    request: Request, project_id: ProjectId, region_id: RegionId, l7policy_id: UUID
) -> Response:
    return await api_of(request).tasks(
        request, lambda c, ctx: l7.delete_policy(c, ctx, str(l7policy_id)), project_id, region_id
    )


# -- rules -------------------------------------------------------------------
@router.post(RULES)
async def create_rule(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    l7policy_id: UUID,
    body: schemas.L7RuleCreate,
) -> Response:
    data = body.model_dump(exclude_unset=True, mode="json")
    return await api_of(request).tasks(
        request, lambda c, ctx: l7.create_rule(c, ctx, str(l7policy_id), data), project_id, region_id
    )


@router.get(RULES)
async def list_rules(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    l7policy_id: UUID,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> Response:
    return await api_of(request).read(
        request,
        lambda c, ctx: l7.list_rules(c, ctx, str(l7policy_id), limit=limit, offset=offset),
        project_id,
        region_id,
    )


@router.get(RULES + "/{l7rule_id}")
async def get_rule(
    request: Request, project_id: ProjectId, region_id: RegionId, l7policy_id: UUID, l7rule_id: UUID
) -> Response:
    return await api_of(request).read(
        request, lambda c, ctx: l7.get_rule(c, ctx, str(l7policy_id), str(l7rule_id)), project_id, region_id
    )


@router.put(RULES + "/{l7rule_id}")
async def replace_rule(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    l7policy_id: UUID,
    l7rule_id: UUID,
    body: schemas.L7RuleReplace,
) -> Response:
    changes = body.model_dump(exclude_unset=True, mode="json")
    return await api_of(request).tasks(
        request,
        lambda c, ctx: l7.replace_rule(c, ctx, str(l7policy_id), str(l7rule_id), changes),
        project_id,
        region_id,
    )


@router.delete(RULES + "/{l7rule_id}")
async def delete_rule(
    request: Request, project_id: ProjectId, region_id: RegionId, l7policy_id: UUID, l7rule_id: UUID
) -> Response:
    return await api_of(request).tasks(
        request,
        lambda c, ctx: l7.delete_rule(c, ctx, str(l7policy_id), str(l7rule_id)),
        project_id,
        region_id,
    )
