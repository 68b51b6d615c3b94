"""The emulator's admin API under ``/lbaas/v1/`` (admin key only; mounted when the controls are on).

Reset, injected faults (HTTP errors, latency, task failures, health flips), task timing (delay,
polls, hold and release), the request journal, snapshots and project keys. Every change is
committed before the answer and seen by every process (see :mod:`lbaas.emulator.controls`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any, Literal
from uuid import UUID

import anyio.to_thread
import orjson
from fastapi import APIRouter, Body, Query, Request
from sqlalchemy.engine import Connection
from starlette.responses import Response

from lbaas.api.runtime import api_of
from lbaas.api.schemas.emulator import (
    ApiKeyBody,
    FaultSpec,
    JournalSettings,
    ReleaseBody,
    ResetBody,
    TimingRule,
)
from lbaas.emulator import faults, health, reset, snapshot, timing
from lbaas.emulator import journal as journal_mod
from lbaas.emulator.controls import bump
from lbaas.emulator.core import Emulator
from lbaas.errors import ValidationFailed
from lbaas.services import auth
from lbaas.services.auth import Principal

router = APIRouter(prefix="/lbaas/v1", tags=["emulator"])


def emulator_of(request: Request) -> Emulator:
    return request.app.state.emulator


async def _admin_write(request: Request, fn: Callable[[Connection], Any], status: int = 200) -> Response:
    """Run ``fn(conn)`` for the admin in one write transaction; controls reloaded after the commit."""

    def work(conn: Connection, principal: Principal) -> Any:
        principal.require_admin()
        return fn(conn)

    try:
        return await api_of(request).write(request, work, status=status)
    finally:
        emulator_of(request).controls.changed()


async def _admin_read(request: Request, fn: Callable[[Connection], Any]) -> Response:
    def work(conn: Connection, principal: Principal) -> Any:
        principal.require_admin()
        return fn(conn)

    return await api_of(request).read(request, work)


# -- reset ----------------------------------------------------------------------------------


@router.post("/reset", summary="Reset everything, or one project, to a fresh server's state")
async def reset_state(request: Request, body: Annotated[ResetBody | None, Body()] = None) -> Response:
    emu = emulator_of(request)
    project_id = body.project_id if body is not None else None
    removed: list[str] = []
    if project_id is not None:  # its journal rows go too: write the ones still in memory first
        await anyio.to_thread.run_sync(emu.journal.flush)

    def work(conn: Connection) -> dict[str, Any]:
        started = time.perf_counter()
        if project_id is None:
            emu.journal.discard()
            removed.extend(
                reset.reset_all(
                    conn,
                    project_name=emu.settings.project_name,
                    journal_size=emu.start_journal_size,
                )
            )
            emu.after_reset(conn)
        else:
            removed.extend(reset.reset_project(conn, project_id))
        return {
            "reset": "all" if project_id is None else "project",
            "project_id": project_id,
            "load_balancers_removed": len(removed),
            "took_ms": round((time.perf_counter() - started) * 1000, 3),
        }

    response = await _admin_write(request, work)
    if removed:
        await anyio.to_thread.run_sync(emu.remove_from_data_plane, removed)
    return response


# -- faults ---------------------------------------------------------------------------------


@router.get("/faults", summary="Active injected faults (with all=true also spent ones)")
async def list_faults(request: Request, all: bool = False) -> Response:  # noqa: A002 - query name
    return await _admin_read(request, lambda c: {"results": faults.list_(c, include_spent=all)})


@router.post("/faults", status_code=201, summary="Inject a fault: http, latency, task or health")
async def add_fault(request: Request, body: Annotated[FaultSpec, Body()]) -> Response:
    spec = body.model_dump(exclude_none=True)

    def work(conn: Connection) -> dict[str, Any]:
        fault = faults.add(conn, spec)
        if fault["kind"] == "health":
            health.apply_flips(conn, fault["load_balancer_id"])
        return fault

    return await _admin_write(request, work, status=201)


def _clear(fault_id: int | None, kind: str | None) -> Callable[[Connection], Any]:
    def work(conn: Connection) -> dict[str, Any]:
        rows = faults.clear(conn, fault_id, kind)
        health.recover(conn, rows)
        return {"removed": len(rows)}

    return work


@router.delete("/faults", summary="Clear every injected fault (or those of one kind)")
async def clear_faults(
    request: Request, kind: Literal["http", "latency", "task", "health"] | None = None
) -> Response:
    return await _admin_write(request, _clear(None, kind))


@router.delete("/faults/{fault_id}", summary="Clear one injected fault")
async def clear_fault(request: Request, fault_id: int) -> Response:
    return await _admin_write(request, _clear(fault_id, None))


# -- task timing ----------------------------------------------------------------------------


@router.get("/timing", summary="Task timing rules in force, and the tasks held back")
async def get_timing(request: Request) -> Response:
    return await _admin_read(request, timing.describe)


@router.put("/timing", summary="Set when new tasks run: immediate, delay, polls or hold")
async def set_timing(request: Request, body: TimingRule) -> Response:
    rule = timing.Rule(
        mode=body.mode,
        project_id=body.project_id or timing.ANY_PROJECT,
        task_type=body.task_type or timing.ANY_TYPE,
        delay_ms=body.delay_ms,
        delay_max_ms=body.delay_max_ms,
        polls=body.polls,
        seed=body.seed,
    )
    return await _admin_write(request, lambda c: timing.set_rule(c, rule))


@router.delete("/timing", summary="Back to the start settings, or remove one rule")
async def delete_timing(
    request: Request, project_id: int | None = None, task_type: str | None = None
) -> Response:
    emu = emulator_of(request)

    def work(conn: Connection) -> dict[str, Any]:
        if project_id is None and task_type is None:
            timing.restore(conn, emu.start_rules)
        else:
            timing.delete_rule(conn, project_id or timing.ANY_PROJECT, task_type or timing.ANY_TYPE)
        return timing.describe(conn)

    return await _admin_write(request, work)


@router.get("/tasks/held", summary="Tasks waiting for a release or for polls")
async def held_tasks(request: Request, project_id: int | None = None) -> Response:
    return await _admin_read(request, lambda c: {"results": timing.held(c, project_id)})


async def _release(request: Request, task_id: str | None, project_id: int | None) -> Response:
    emu = emulator_of(request)
    released: list[str] = []

    def work(conn: Connection) -> dict[str, Any]:
        released.extend(timing.release(conn, task_id, project_id))
        bump(conn)
        return {"released": list(released)}

    response = await _admin_write(request, work)
    if released:  # they run now, in queue order (a task behind another waits for it)
        await anyio.to_thread.run_sync(emu.run_now, released)
    return response


@router.post("/tasks/release", summary="Release every held task (or one project's)")
async def release_all(request: Request, body: Annotated[ReleaseBody | None, Body()] = None) -> Response:
    return await _release(request, None, body.project_id if body else None)


@router.post("/tasks/{task_id}/release", summary="Release one held task")
async def release_one(request: Request, task_id: UUID) -> Response:
    return await _release(request, str(task_id), None)


# -- journal --------------------------------------------------------------------------------


@router.get("/journal", summary="The last requests to the Gcore API, bodies redacted")
async def read_journal(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    method: str | None = None,
    path: Annotated[str | None, Query(description="Regular expression searched in the path.")] = None,
    status: int | None = None,
    min_status: int | None = None,
    project_id: int | None = None,
    injected: bool | None = None,
    retried: bool | None = None,
    since_id: int | None = None,
) -> Response:
    await anyio.to_thread.run_sync(emulator_of(request).journal.flush)
    return await _admin_read(
        request,
        lambda c: journal_mod.query(
            c,
            limit=limit,
            method=method,
            path=path,
            status=status,
            min_status=min_status,
            project_id=project_id,
            injected=injected,
            retried=retried,
            since_id=since_id,
        ),
    )


@router.put("/journal", summary="Set how many requests the journal keeps (0: off)")
async def set_journal(request: Request, body: JournalSettings) -> Response:
    def work(conn: Connection) -> dict[str, Any]:
        journal_mod.set_size(conn, body.size)
        return {"size": body.size}

    return await _admin_write(request, work)


@router.delete("/journal", summary="Empty the journal")
async def clear_journal(request: Request) -> Response:
    emu = emulator_of(request)
    await anyio.to_thread.run_sync(emu.journal.flush)

    def work(conn: Connection) -> dict[str, Any]:
        journal_mod.clear(conn)
        return {"size": journal_mod.size_of(conn)}

    return await _admin_write(request, work)


# -- snapshots ------------------------------------------------------------------------------


@router.get("/snapshot", summary="Export one project's whole state as one JSON document")
async def export_snapshot(request: Request, project_id: int) -> Response:
    return await _admin_read(request, lambda c: snapshot.export(c, project_id))


@router.post(
    "/snapshot",
    summary="Import a snapshot (ids kept; 409 on existing ids unless replace=true)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "description": "A snapshot."}}},
        }
    },
)
async def import_snapshot(request: Request, project_id: int | None = None, replace: bool = False) -> Response:
    emu = emulator_of(request)
    try:
        doc = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed.field("body", "Malformed JSON body") from exc
    box = request.app.state.secret_box
    outcome: dict[str, Any] = {}

    def reencrypt(ciphertext: str) -> str | None:
        try:
            return box.encrypt(box.decrypt(ciphertext))
        except ValueError:
            return None

    def work(conn: Connection) -> dict[str, Any]:
        result = snapshot.import_(conn, doc, project_id=project_id, replace=replace, reencrypt=reencrypt)
        outcome.update(result)
        return result

    response = await _admin_write(request, work)
    if outcome:
        await anyio.to_thread.run_sync(emu.remove_from_data_plane, outcome["replaced"])
        await anyio.to_thread.run_sync(emu.run_now, outcome["apply_tasks"])
    return response


# -- keys -----------------------------------------------------------------------------------


@router.post("/projects/{project_id}/api-keys", status_code=201, summary="A new key for one project")
async def create_api_key(
    request: Request, project_id: int, body: Annotated[ApiKeyBody | None, Body()] = None
) -> Response:
    def work(conn: Connection) -> dict[str, Any]:
        key_id, token = auth.create(conn, project_id, body.name if body else None)
        return {"id": key_id, "project_id": project_id, "token": token}

    return await _admin_write(request, work, status=201)
