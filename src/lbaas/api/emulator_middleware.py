"""The emulator's request hook: injected HTTP errors and latency, and the request journal.

It sits inside :class:`lbaas.api.app.RequestIdMiddleware` (so injected answers carry a request
id) and watches only the Gcore API (``/cloud/...``): the admin API, docs and health checks are
never delayed, failed or journaled. When no request fault is active and the journal is off, a
request costs one cached-version comparison (see :mod:`lbaas.emulator.controls`).

While a timing rule or a held task exists, a client's ``GET /cloud/v1/tasks/{id}`` is counted
for the ``polls`` timing mode (the poll that releases a task runs it before it is answered).

An ``http`` fault answers before the request reaches any route, so it changes nothing and a
client's retry is safe; a ``latency`` fault delays the request and lets it through. The first
matching fault (oldest first) that fires wins; each firing is logged and marked in the journal.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import anyio.to_thread
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lbaas.emulator import faults, timing
from lbaas.emulator import journal as journal_mod
from lbaas.emulator.controls import Fault
from lbaas.emulator.core import Emulator

log = logging.getLogger("lbaas.emulator")

_TASK = re.compile(r"^/cloud/v1/tasks/([0-9a-fA-F-]{36})$")
# /cloud/v1/<collection>/<project_id>/... names a project (regions/<id> names a region).
_PROJECT = re.compile(r"^/cloud/v\d+/(?!regions/)[a-z0-9_]+/(\d+)(?:/|$)")


def project_of(path: str) -> int | None:
    """The project id a Gcore API path names, if any."""
    m = _PROJECT.match(path)
    return int(m.group(1)) if m else None


class EmulatorMiddleware:
    """ASGI middleware applying request faults and writing the journal (see the module doc)."""

    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/cloud/"):
            await self.app(scope, receive, send)
            return
        view = await self.emulator.controls.view_async()
        polled = None
        if view.timing and scope["method"] == "GET":
            m = _TASK.match(scope["path"])
            polled = m.group(1) if m else None
        if not view.watches_requests:
            if polled is not None:
                await self._count_poll(polled)
            await self.app(scope, receive, send)
            return
        await self._watched(scope, receive, send, view.requests, view.journal_size > 0, polled)

    async def _count_poll(self, task_id: str) -> None:
        """A client polled a task: the poll a ``polls`` rule waits for runs it first."""

        def work(conn: Any) -> bool:
            return timing.count_poll(conn, task_id)

        if await self.emulator.db.write_async(work):
            self.emulator.controls.changed()
            await anyio.to_thread.run_sync(self.emulator.run_now, [task_id])

    async def _fire(self, fault: Fault) -> Any:
        def work(conn: Any) -> Any:
            return faults.draw(conn, fault.id)

        outcome = await self.emulator.db.write_async(work)
        if outcome is None or not outcome.fire:
            return None
        if outcome.spent:
            self.emulator.controls.changed()
        return outcome

    async def _watched(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        request_faults: tuple[Fault, ...],
        journal: bool,
        polled: str | None,
    ) -> None:
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        project_id = project_of(path)
        request_id = scope.get("state", {}).get("request_id")
        request_body: list[bytes] = []
        response_body: list[bytes] = []
        status = 0
        injected: int | None = None

        async def receive_noted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                request_body.append(message.get("body", b""))
            return message

        async def send_noted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                response_body.append(message.get("body", b""))
            await send(message)

        error: tuple[Fault, Any] | None = None
        for fault in request_faults:
            if not fault.matches_request(method, path, project_id):
                continue
            if fault.kind == "latency":
                outcome = await self._fire(fault)
                if outcome is not None:
                    delay = fault.latency_ms or 0
                    if fault.latency_max_ms is not None:
                        delay = outcome.rng.randint(delay, fault.latency_max_ms)
                    log.warning(
                        "emulator: injected fault %s (latency %d ms) into %s %s",
                        fault.id,
                        delay,
                        method,
                        path,
                    )
                    injected = fault.id
                    await asyncio.sleep(delay / 1000)
            elif error is None:
                outcome = await self._fire(fault)
                if outcome is not None:
                    error = (fault, outcome)
        try:
            if error is not None:
                fault = error[0]
                injected = fault.id
                log.warning(
                    "emulator: injected fault %s (http %s) into %s %s", fault.id, fault.status, method, path
                )
                if journal:  # note what the client sent, though nothing reads it
                    await _drain(receive_noted)
                await self._answer(fault, request_id or "", send_noted)
            else:
                if polled is not None:  # only a poll the server answers counts
                    await self._count_poll(polled)
                await self.app(scope, receive_noted if journal else receive, send_noted)
        finally:
            if journal:
                headers = dict(scope.get("headers") or [])
                self.emulator.journal.note(
                    journal_mod.entry(
                        method=method,
                        path=path,
                        query_string=scope.get("query_string", b""),
                        status=status or 500,
                        started=started,
                        ended=time.perf_counter(),
                        headers=headers,
                        request_id=request_id,
                        project_id=project_id,
                        injected_fault=injected,
                        request_body=b"".join(request_body),
                        response_body=b"".join(response_body),
                    )
                )

    @staticmethod
    async def _answer(fault: Fault, request_id: str, send: Send) -> None:
        status = fault.status or 500
        body = orjson.dumps(
            {
                "exception_class": faults.exception_class(status),
                "message": fault.message or f"Injected fault {fault.id}: HTTP {status} (lbaas emulator)",
                "request_id": request_id,
            }
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-lbaas-injected-fault", str(fault.id).encode()),
        ]
        if fault.retry_after is not None:
            headers.append((b"retry-after", f"{fault.retry_after:g}".encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
