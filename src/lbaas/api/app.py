"""The ASGI application: routes, error handlers, request ids, the worker."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lbaas import __version__
from lbaas.api import errors
from lbaas.api.routes import floating_ips, l7, listeners, load_balancers, pools, secrets, tasks
from lbaas.api.runtime import Api, json_response
from lbaas.certs import SecretBox, load_or_create_key
from lbaas.config import Settings
from lbaas.db import ipam, migrate
from lbaas.db.engine import Database
from lbaas.providers import make_provider
from lbaas.services import auth
from lbaas.tasks import handlers as _handlers  # noqa: F401  (registers the task bodies)
from lbaas.tasks.runner import Runner
from lbaas.tasks.worker import Worker

log = logging.getLogger(__name__)


class RequestIdMiddleware:
    """Give every request an id (``X-Request-ID``) and refuse oversized bodies."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            body = (
                b'{"exception_class":"RequestEntityTooLarge","message":"Request body larger than '
                + str(self.max_body).encode()
                + b' bytes","request_id":"'
                + rid.encode()
                + b'"}'
            )
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 413,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send_with_id)


def create_app(settings: Settings, *, provider: Any = None, start_worker: bool | None = None) -> FastAPI:
    """Build the service; the database is migrated before the first request."""
    db = Database(settings.database_url)
    migrate.upgrade(db, region_name=settings.region_name, project_name=settings.project_name)
    if settings.admin_api_key:
        with db.write() as conn:
            auth.ensure_admin(conn, settings.admin_api_key)
    ipam.configure(vip=settings.vip_pool, fip=settings.fip_pool)
    # The key that encrypts TLS secrets at rest: LBAAS_SECRET_KEY, or generated at first start.
    secret_box = SecretBox.from_key(load_or_create_key(settings.data_dir, settings.secret_key))
    provider = provider or make_provider(settings)
    worker = Worker(
        db,
        provider,
        threads=settings.worker_threads,
        lease=settings.lease_seconds,
        decrypt=secret_box.decrypt,
    )
    run_worker = settings.run_worker if start_worker is None else start_worker

    runner = Runner(worker, poll_interval=settings.poll_interval, drift_interval=settings.drift_interval)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if run_worker:
            runner.start()
        try:
            yield
        finally:
            if run_worker:
                runner.stop()
            else:
                worker.stop()
            db.dispose()

    app = FastAPI(title="lbaas", version=__version__, lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.settings = settings
    app.state.db = db
    app.state.provider = provider
    app.state.worker = worker
    app.state.runner = runner
    app.state.api = Api(db, worker)
    app.state.secret_box = secret_box
    errors.install(app)
    for module in (load_balancers, listeners, pools, l7, floating_ips, secrets, tasks):
        app.include_router(module.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Any:
        return json_response({"status": "ok", "version": __version__, "provider": provider.name})

    app.add_middleware(RequestIdMiddleware, max_body=settings.max_body_bytes)
    return app
