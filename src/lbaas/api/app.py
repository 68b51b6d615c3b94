"""The ASGI application: routes, error handlers, the entry checks (request ids, sizes), the worker."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from lbaas import __version__
from lbaas.accesslogs import receiver_for
from lbaas.api import errors
from lbaas.api.emulator_middleware import EmulatorMiddleware
from lbaas.api.entry import EntryMiddleware
from lbaas.api.fastlane import FastLane, HotRoute
from lbaas.api.routes import emulator as emulator_routes
from lbaas.api.routes import floating_ips, l7, listeners, load_balancers, metadata, pools, secrets, tasks
from lbaas.api.runtime import Api, json_response
from lbaas.certs import SecretBox, load_or_create_key
from lbaas.config import Settings
from lbaas.db import ipam, migrate
from lbaas.db.engine import Database
from lbaas.emulator.core import Emulator
from lbaas.providers import make_provider
from lbaas.services import auth
from lbaas.tasks import handlers as _handlers  # noqa: F401  (registers the task bodies)
from lbaas.tasks.runner import Runner
from lbaas.tasks.worker import Worker

log = logging.getLogger(__name__)


def hot_routes() -> list[HotRoute]:
    """The routes clients call most, served by the fast lane (lbaas.api.fastlane)."""
    one_lb = load_balancers.V1 + "/{load_balancer_id}"
    return [
        HotRoute.of("GET", one_lb, load_balancers.get),
        HotRoute.of("PATCH", one_lb, load_balancers.update),
        HotRoute.of("GET", load_balancers.V1, load_balancers.list_),
        HotRoute.of("GET", "/cloud/v1/tasks/{task_id}", tasks.get_task),
    ]


def create_app(
    settings: Settings, *, provider: Any = None, start_worker: bool | None = None, fast_lane: bool = True
) -> FastAPI:
    """Build the service; the database is migrated before the first request.

    ``fast_lane=False`` serves every request through FastAPI's routing (tests compare both roads).
    """
    db = Database(settings.database_url)
    migrate.upgrade(db, region_name=settings.region_name, project_name=settings.project_name)
    if settings.admin_api_key:
        with db.write() as conn:
            auth.ensure_admin(conn, settings.admin_api_key)
    ipam.configure(vip=settings.vip_pool, fip=settings.fip_pool)
    # The key that encrypts TLS secrets at rest: LBAAS_SECRET_KEY, or generated at first start.
    secret_box = SecretBox.from_key(load_or_create_key(settings.data_dir, settings.secret_key))
    # A provider made here is closed here (the haproxy provider's claim on its address pools).
    owned = make_provider(settings) if provider is None else None
    provider = provider or owned
    # The emulator's controls (lbaas.emulator): on with the noop provider, or by --emulator-controls.
    emulator = Emulator(db, settings, provider) if settings.controls_for(provider.name) else None
    if emulator is not None:
        emulator.apply_start_settings()
        provider = emulator.provider
    worker = Worker(
        db,
        provider,
        threads=settings.worker_threads,
        lease=settings.lease_seconds,
        decrypt=secret_box.decrypt,
    )
    run_worker = settings.run_worker if start_worker is None else start_worker

    runner = Runner.for_settings(worker, settings, receiver_for(db, provider, settings.data_dir))

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if run_worker:
            runner.start()
        if emulator is not None:
            emulator.start()
        # Everything built at start (modules, routes, prepared statements, the ORM of types) lives as
        # long as the process: move it out of the garbage collector's sight, so that a full
        # collection scans only what requests made (it took ~50 ms, the tail of every latency).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if run_worker:
                runner.stop()
            else:
                worker.stop()
            if emulator is not None:
                emulator.stop()
            close = getattr(owned, "close", None)
            if close is not None:
                close()
            db.dispose()

    # FastAPI's native OpenTelemetry asks the global providers on every request (~25 µs) even when
    # nothing is configured; lbaas turns it on only when asked (LBAAS_OTEL=true).
    on = settings.otel
    app = FastAPI(
        title="lbaas",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        telemetry={"tracing": on, "metrics": on, "logs": on},
    )
    app.state.settings = settings
    app.state.db = db
    app.state.provider = provider
    app.state.worker = worker
    app.state.runner = runner
    app.state.emulator = emulator
    app.state.api = Api(db, worker, task_timing=emulator)
    if emulator is not None:
        emulator.attach(worker)
    app.state.secret_box = secret_box
    errors.install(app)
    for module in (load_balancers, listeners, pools, l7, floating_ips, secrets, tasks, metadata):
        app.include_router(module.router)
    if emulator is not None:
        app.include_router(emulator_routes.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Any:
        return json_response({"status": "ok", "version": __version__, "provider": provider.name})

    if fast_lane:
        app.add_middleware(FastLane, routes=hot_routes())
    if emulator is not None:
        app.add_middleware(EmulatorMiddleware, emulator=emulator)
    app.add_middleware(
        EntryMiddleware,
        max_body=settings.max_body_bytes,
        large_bodies=("/lbaas/v1/snapshot",) if emulator is not None else (),
    )
    return app
