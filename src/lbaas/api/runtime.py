"""How routes reach the database and the worker: one transaction per request.

Authentication, the project/region check and the operation share one
transaction, so a request costs one connection checkout and sees one
consistent state. Task-creating requests go through :meth:`Api.tasks`, which
makes them safe to retry (see :mod:`lbaas.services.idempotency`) and, with an
inline provider (the emulator), runs the new task before answering.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import anyio.to_thread
import orjson
from fastapi import Request
from sqlalchemy.engine import Connection
from starlette.responses import Response

from lbaas.db.engine import Database
from lbaas.services import auth, idempotency
from lbaas.services.common import Ctx, authorize
from lbaas.tasks.worker import Worker

JSON = "application/json"
log = logging.getLogger(__name__)


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON)


class TaskTiming(Protocol):
    """A hook that decides when the tasks a request queued may run (the emulator's task timing)."""

    def queued(self, conn: Connection, task_ids: list[str]) -> Callable[[], None] | None:
        """Called in the transaction that queued ``task_ids``; may return a call for after the commit."""


class Api:
    def __init__(self, db: Database, worker: Worker, task_timing: TaskTiming | None = None) -> None:
        self.db = db
        self.worker = worker
        self.capabilities = worker.ctx.provider.capabilities
        self.task_timing = task_timing

    def _scoped(
        self, request: Request, conn: Connection, token: str, project_id: int | None, region_id: int | None
    ) -> Any:
        if project_id is None:
            return auth.authenticate(conn, token)
        return authorize(
            conn,
            token,
            project_id,
            region_id if region_id is not None else 0,
            request.state.request_id,
            self.capabilities,
        )

    async def read(
        self,
        request: Request,
        fn: Callable[[Connection, Any], Any],
        project_id: int | None = None,
        region_id: int | None = None,
        status: int = 200,
    ) -> Response:
        """A read: ``fn(conn, ctx_or_principal)`` in a read transaction."""
        token = auth.parse_header(request.headers.get("authorization"))

        def work() -> Any:
            with self.db.read() as conn:
                return fn(conn, self._scoped(request, conn, token, project_id, region_id))

        return json_response(await self.db.run(work), status)

    async def write(
        self,
        request: Request,
        fn: Callable[[Connection, Any], Any],
        project_id: int | None = None,
        region_id: int | None = None,
        status: int = 200,
        once: bool = False,
    ) -> Response:
        """A synchronous change, committed before the answer.

        ``once``: the change is not idempotent (a create), so a retried request
        gets the original answer, as task requests do.
        """
        token = auth.parse_header(request.headers.get("authorization"))
        replay = await self._replay_key(request) if once else None

        def work(conn: Connection) -> tuple[int, bytes]:
            scoped = self._scoped(request, conn, token, project_id, region_id)
            principal = scoped.principal if isinstance(scoped, Ctx) else scoped
            if replay is not None and replay[2]:
                seen = idempotency.lookup(conn, principal.key_id, replay[0], replay[1])
                if seen is not None:
                    return seen
            result = fn(conn, scoped)
            payload = b"" if status == 204 else orjson.dumps(result)
            if replay is not None:
                idempotency.record(conn, principal.key_id, replay[0], status, payload)
            return status, payload

        code, payload = await self.db.write_async(work)
        if code == 204:
            return Response(status_code=204)
        return Response(payload, status_code=code, media_type=JSON)

    async def _replay_key(self, request: Request) -> tuple[str, Any, bool]:
        """(fingerprint, window, is this a retry or keyed request) of a non-idempotent request."""
        body = await request.body()
        key = request.headers.get("idempotency-key")
        retried = (request.headers.get("x-stainless-retry-count") or "0") not in ("0", "")
        fp = idempotency.fingerprint(request.method, request.url.path, body, key)
        window = idempotency.KEY_WINDOW if key else idempotency.RETRY_WINDOW
        return fp, window, bool(key or retried)

    async def tasks(
        self,
        request: Request,
        fn: Callable[[Connection, Ctx], Any],
        project_id: int | None = None,
        region_id: int | None = None,
    ) -> Response:
        """A change carried out by tasks: answers ``{"tasks": [...]}``, safe to retry."""
        token = auth.parse_header(request.headers.get("authorization"))
        fp, window, look = await self._replay_key(request)

        timing = self.task_timing
        inline = getattr(self.worker.ctx.provider, "inline", False)

        def work(conn: Connection) -> tuple[int, bytes, list[Any], Callable[[], None] | None]:
            scoped = self._scoped(request, conn, token, project_id, region_id)
            principal = scoped.principal if isinstance(scoped, Ctx) else scoped
            if look:
                seen = idempotency.lookup(conn, principal.key_id, fp, window)
                if seen is not None:
                    return seen[0], seen[1], [], None
            result = fn(conn, scoped)
            ids = [result] if isinstance(result, str) else list(result)
            payload = orjson.dumps({"tasks": ids})
            idempotency.record(conn, principal.key_id, fp, 200, payload)
            after = timing.queued(conn, ids) if timing is not None and ids else None
            if inline:
                # The emulator runs a new task in this request: claim it in the same transaction
                # (one commit less); a task queued behind another, or held, stays for the worker.
                ids = [self.worker.claim_in(conn, task_id) or task_id for task_id in ids]
                if any(isinstance(t, dict) for t in ids) and self.worker.finishes_in_request(conn):
                    # ... and, when the provider allows it, run it to FINISHED here too: one commit
                    # for the request and its task. A task that raised is failed after the commit.
                    ids = [self._run_in(conn, t) if isinstance(t, dict) else t for t in ids]
            return 200, payload, [t for t in ids if t is not None], after

        status, payload, ids, after = await self.db.write_async(work)
        await self.kick(ids)
        if after is not None:
            after()
        return Response(payload, status_code=status, media_type=JSON)

    def _run_in(self, conn: Connection, task: dict[str, Any]) -> tuple[dict[str, Any], BaseException] | None:
        """Run a claimed task in the request's transaction: None once FINISHED, else (task, error)."""
        error = self.worker.run_in(conn, task)
        return None if error is None else (task, error)

    async def kick(self, task_ids: list[Any]) -> None:
        """Start new tasks: inline for the emulator, else wake the worker.

        An item is a task id, a task already claimed in the request's transaction (a row), or
        (row, error): a task that raised when run in that transaction, now retried or failed.

        Never raises: the request's change is committed, so its answer is the
        task list whatever happens to the task (a failure ends the task, not
        the request; a 5xx here would make the SDK retry a change that landed).
        """
        if not task_ids:
            return
        if getattr(self.worker.ctx.provider, "inline", False):
            for task in task_ids:
                if isinstance(task, tuple):
                    run, args = self.worker.failed, task
                elif isinstance(task, dict):
                    run, args = self.worker.run_task, (task,)
                else:
                    run, args = self.worker.run_inline, (task,)
                try:
                    await anyio.to_thread.run_sync(run, *args)
                except Exception:  # noqa: BLE001 - the worker's recovery takes the task over
                    log.exception("running task %s inline failed; the worker will recover it", task)
                    self.worker.wakeup.set()
        else:
            self.worker.wakeup.set()


def api_of(request: Request) -> Api:
    """The application's :class:`Api` (set up by ``create_app``)."""
    return request.app.state.api
