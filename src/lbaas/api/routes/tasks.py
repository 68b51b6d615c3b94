"""/cloud/v1/tasks, /cloud/v1/projects and /cloud/v1/regions."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import StringConstraints
from starlette.responses import Response

from lbaas.api.params import Int32, Limit, Offset, ProjectId, RegionId, UtcDateTime
from lbaas.api.runtime import api_of
from lbaas.api.schemas.common import Body, Name
from lbaas.domain.enums import TaskState
from lbaas.services import projects
from lbaas.services import tasks as tasks_svc

router = APIRouter()


@router.get("/cloud/v1/tasks")
async def list_tasks(
    request: Request,
    limit: Limit = 10,
    offset: Offset = 0,
    project_id: Annotated[list[Int32] | None, Query()] = None,
    region_id: Annotated[list[Int32] | None, Query()] = None,
    state: Annotated[list[TaskState] | None, Query()] = None,
    task_type: str | None = None,
    is_acknowledged: bool | None = None,
    from_timestamp: UtcDateTime | None = None,
    to_timestamp: UtcDateTime | None = None,
    order_by: Literal["asc", "desc"] | None = None,
    sorting: Literal["asc", "desc"] | None = None,
) -> Response:
    return await api_of(request).read(
        request,
        lambda c, p: tasks_svc.list_(
            c,
            p,
            limit=limit,
            offset=offset,
            project_id=project_id,
            region_id=region_id,
            state=[str(s) for s in state] if state else None,
            task_type=task_type,
            is_acknowledged=is_acknowledged,
            from_timestamp=None if from_timestamp is None else from_timestamp.isoformat(),
            to_timestamp=None if to_timestamp is None else to_timestamp.isoformat(),
            order_by=order_by or sorting,
        ),
    )


@router.post("/cloud/v1/tasks/acknowledge_all")
async def acknowledge_all(
    request: Request, project_id: ProjectId | None = None, region_id: RegionId | None = None
) -> Response:
    return await api_of(request).write(
        request, lambda c, p: tasks_svc.acknowledge_all(c, p, project_id, region_id), status=204
    )


@router.get("/cloud/v1/tasks/{project_id}/{region_id}/active")
async def active_tasks(
    request: Request,
    project_id: ProjectId,
    region_id: RegionId,
    limit: Limit = 10,
    offset: Offset = 0,
    task_type: Annotated[list[str] | None, Query()] = None,
) -> Response:
    return await api_of(request).read(
        request,
        lambda c, ctx: tasks_svc.active(c, ctx, limit=limit, offset=offset, task_type=task_type),
        project_id,
        region_id,
    )


@router.get("/cloud/v1/tasks/{task_id}")
async def get_task(request: Request, task_id: UUID) -> Response:
    return await api_of(request).read(request, lambda c, p: tasks_svc.get(c, p, str(task_id)))


class TasksAcknowledge(Body):
    """DeprecatedTasksAcknowledgeBodySerializer: ``task_ids`` null or absent means every visible task."""

    task_ids: list[UUID] | None = None


@router.post("/cloud/v1/tasks/acknowledge", status_code=204, deprecated=True)
async def acknowledge_many(
    request: Request,
    body: TasksAcknowledge | None = None,
    project_id: ProjectId | None = None,
    region_id: RegionId | None = None,
) -> Response:
    """Deprecated (use acknowledge_all): the listed tasks, all or none (an unknown one: 404).

    Without ``task_ids`` it is acknowledge_all, in the scope the query gives.
    """
    task_ids = None if body is None or body.task_ids is None else [str(t) for t in body.task_ids]

    def work(c, p):
        if task_ids is None:
            tasks_svc.acknowledge_all(c, p, project_id, region_id)
        for task_id in task_ids or []:
            tasks_svc.acknowledge(c, p, task_id)

    return await api_of(request).write(request, work, status=204)


@router.post("/cloud/v1/tasks/{task_id}/acknowledge")
async def acknowledge(request: Request, task_id: UUID) -> Response:
    return await api_of(request).write(request, lambda c, p: tasks_svc.acknowledge(c, p, str(task_id)))


class ProjectCreate(Body):
    name: Name
    description: Annotated[str, Query(max_length=255)] | None = None
    state: str | None = None


class ProjectPatch(Body):
    name: Name = None
    description: Annotated[str, StringConstraints(max_length=255)] = None


@router.post("/cloud/v1/projects")
async def create_project(request: Request, body: ProjectCreate) -> Response:
    return await api_of(request).write(
        request, lambda c, p: projects.create(c, p, body.name, body.description), status=201, once=True
    )


@router.get("/cloud/v1/projects")
async def list_projects(
    request: Request,
    limit: Limit = 100,
    offset: Offset = 0,
    name: str | None = None,
    include_deleted: bool = False,
    order_by: str | None = None,
) -> Response:
    return await api_of(request).read(
        request,
        lambda c, p: projects.list_(
            c, p, limit=limit, offset=offset, name=name, include_deleted=include_deleted, order_by=order_by
        ),
    )


@router.get("/cloud/v1/projects/{project_id}")
async def get_project(request: Request, project_id: ProjectId) -> Response:
    return await api_of(request).read(request, lambda c, p: projects.get(c, p, project_id))


@router.patch("/cloud/v1/projects/{project_id}")
async def update_project(request: Request, project_id: ProjectId, body: ProjectPatch) -> Response:
    changes = body.model_dump(exclude_unset=True)
    return await api_of(request).write(request, lambda c, p: projects.update(c, p, project_id, changes))


class ProjectReplace(Body):
    """NameDescriptionSerializer: ``name`` required; ``description`` replaced too (absent: null)."""

    name: Name
    description: Annotated[str, StringConstraints(max_length=255)] | None = None


@router.put("/cloud/v1/projects/{project_id}", deprecated=True)
async def replace_project(request: Request, project_id: ProjectId, body: ProjectReplace) -> Response:
    """Deprecated (use PATCH): name and description both replaced."""
    changes = {"name": body.name, "description": body.description}
    return await api_of(request).write(request, lambda c, p: projects.update(c, p, project_id, changes))


@router.delete("/cloud/v1/projects/{project_id}")
async def delete_project(request: Request, project_id: ProjectId) -> Response:
    return await api_of(request).tasks(request, lambda c, p: projects.delete(c, p, project_id))


@router.get("/cloud/v1/regions")
async def list_regions(
    request: Request,
    limit: Limit = 100,
    offset: Offset = 0,
    display_name: str | None = None,
    order_by: str | None = None,
    product: str | None = None,
    show_volume_types: bool = False,
) -> Response:
    return await api_of(request).read(
        request,
        lambda c, p: projects.list_regions(
            c, limit=limit, offset=offset, display_name=display_name, order_by=order_by
        ),
    )


@router.get("/cloud/v1/regions/{region_id}")
async def get_region(request: Request, region_id: RegionId, show_volume_types: bool = False) -> Response:
    return await api_of(request).read(request, lambda c, p: projects.get_region(c, region_id))
