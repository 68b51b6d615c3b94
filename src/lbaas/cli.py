"""The ``lbaas`` command: serve, worker, migrate, api-key, tags."""

from __future__ import annotations

import logging
import signal
import sys
import threading

import click
import sqlalchemy as sa

from lbaas.config import Settings

DB_OPT = click.option(
    "--database-url",
    envvar="LBAAS_DATABASE_URL",
    default=None,
    help="SQLAlchemy URL; default SQLite in $LBAAS_DATA_DIR (./.lbaas).",
)


def _settings(**overrides: object) -> Settings:
    try:
        return Settings.from_env(**overrides)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


def _db(database_url: str | None):
    from lbaas.db import migrate
    from lbaas.db.engine import Database

    settings = _settings(database_url=database_url)
    db = Database(settings.database_url)
    migrate.upgrade(db, region_name=settings.region_name, project_name=settings.project_name)
    return db


@click.group()
@click.version_option(package_name="lbaas")
def main() -> None:
    """lbaas: load balancers as a service, wire-compatible with Gcore Cloud."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


@main.command()
@click.option("--host", envvar="LBAAS_HOST", default=None)
@click.option("--port", envvar="LBAAS_PORT", type=int, default=None)
@DB_OPT
@click.option("--provider", envvar="LBAAS_PROVIDER", type=click.Choice(["noop", "haproxy"]), default=None)
@click.option("--no-worker", is_flag=True, help="Serve the API only; run `lbaas worker` separately.")
def serve(
    host: str | None, port: int | None, database_url: str | None, provider: str | None, no_worker: bool
) -> None:
    """Run the API (and, by default, a worker) until SIGTERM."""
    import uvicorn

    from lbaas.api.app import create_app

    settings = _settings(
        host=host, port=port, database_url=database_url, provider=provider, run_worker=not no_worker
    )
    if settings.provider == "haproxy":
        raise click.ClickException(
            "the haproxy provider is not available in this version yet; use --provider noop (the emulator)"
        )
    app = create_app(settings)
    click.echo(
        f"lbaas: serving on http://{settings.host}:{settings.port} with provider "
        f"{settings.provider}, database {sa.engine.make_url(settings.database_url).render_as_string()}",
        err=True,
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=20,
    )


@main.command()
@DB_OPT
@click.option("--provider", envvar="LBAAS_PROVIDER", type=click.Choice(["noop", "haproxy"]), default=None)
@click.option("--threads", type=int, default=None, help="Concurrent tasks in this process.")
def worker(database_url: str | None, provider: str | None, threads: int | None) -> None:
    """Run task workers only (several may share one PostgreSQL database)."""
    from lbaas.providers import make_provider
    from lbaas.tasks import handlers  # noqa: F401
    from lbaas.tasks.worker import Worker

    settings = _settings(database_url=database_url, provider=provider, worker_threads=threads)
    db = _db(settings.database_url)
    w = Worker(
        db,
        make_provider(settings.provider, noop_delay_ms=settings.noop_task_delay_ms),
        threads=settings.worker_threads,
        lease=settings.lease_seconds,
    )
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    w.start()
    click.echo(f"lbaas worker {w.id}: {settings.worker_threads} threads", err=True)
    done.wait()
    w.stop()


@main.command()
@DB_OPT
def migrate(database_url: str | None) -> None:
    """Bring the database schema to the newest version."""
    _db(database_url)
    click.echo("database at head")


@main.group("api-key")
def api_key() -> None:
    """Manage API keys."""


@api_key.command("create")
@click.option("--project-id", type=int, required=True)
@click.option("--name", default=None)
@DB_OPT
def api_key_create(project_id: int, name: str | None, database_url: str | None) -> None:
    """Create a project-scoped key; the token is the last line of output."""
    from lbaas.services import auth

    db = _db(database_url)
    with db.write() as conn:
        key_id, token = auth.create(conn, project_id, name)
    click.echo(f"created key {key_id} for project {project_id}", err=True)
    click.echo(token)


@api_key.command("list")
@DB_OPT
def api_key_list(database_url: str | None) -> None:
    """List keys (never their tokens)."""
    from rich.console import Console
    from rich.table import Table

    from lbaas.services import auth

    db = _db(database_url)
    with db.read() as conn:
        rows = auth.list_keys(conn)
    table = Table("id", "name", "project", "user", "created", "revoked")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["name"],
            "all (admin)" if r["project_id"] is None else str(r["project_id"]),
            str(r["user_id"]),
            str(r["created_at"])[:19],
            str(r["revoked_at"] or "")[:19],
        )
    Console().print(table)


@api_key.command("revoke")
@click.argument("key_id", type=int)
@DB_OPT
def api_key_revoke(key_id: int, database_url: str | None) -> None:
    """Revoke a key; it stops working at once."""
    from lbaas.errors import NotFound
    from lbaas.services import auth

    db = _db(database_url)
    try:
        with db.write() as conn:
            auth.revoke(conn, key_id)
    except NotFound as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"revoked key {key_id}")


@main.group()
def quota() -> None:
    """Per-project quotas (defaults are generous; an operator may lower or raise them)."""


@quota.command("set")
@click.option("--project-id", type=int, required=True)
@click.argument("name")
@click.argument("limit", type=int)
@DB_OPT
def quota_set(project_id: int, name: str, limit: int, database_url: str | None) -> None:
    """Set quota NAME of a project to LIMIT."""
    from lbaas.services import quotas

    if name not in quotas.DEFAULTS:
        raise click.UsageError(f"unknown quota {name!r}; known: {', '.join(quotas.DEFAULTS)}")
    db = _db(database_url)
    with db.write() as conn:
        quotas.set_limit(conn, project_id, name, limit)
    click.echo(f"{name} = {limit} for project {project_id}")


@quota.command("show")
@click.option("--project-id", type=int, required=True)
@DB_OPT
def quota_show(project_id: int, database_url: str | None) -> None:
    """Show a project's limits and usage."""
    from lbaas.services import quotas

    db = _db(database_url)
    with db.read() as conn:
        for name in quotas.DEFAULTS:
            limit, used = quotas.usage(conn, project_id, name)
            click.echo(
                f"{name}: {used} / {limit}"
                if name not in ("listeners_per_lb", "members_per_pool")
                else f"{name}: limit {limit}"
            )


@main.group()
def tags() -> None:
    """Operator tag commands."""


@tags.command("add-read-only")
@click.argument("resource_id")
@click.argument("pair")
@DB_OPT
def add_read_only(resource_id: str, pair: str, database_url: str | None) -> None:
    """Attach a read-only tag KEY=VALUE to a load balancer or floating IP."""
    from lbaas.errors import LbaasError
    from lbaas.services import tags as tag_service

    key, sep, value = pair.partition("=")
    if not sep:
        raise click.UsageError("PAIR must be KEY=VALUE")
    db = _db(database_url)
    try:
        with db.write() as conn:
            tag_service.add_read_only(conn, resource_id, key, value)
    except LbaasError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"read-only tag {key.strip()} set on {resource_id}")


@main.group("tasks")
def tasks_group() -> None:
    """Operator views of the task queue."""


@tasks_group.command("list")
@click.option("--stuck", is_flag=True, help="Only tasks set aside because even failing them raised.")
@click.option("--state", "states", multiple=True, type=click.Choice(["NEW", "RUNNING", "FINISHED", "ERROR"]))
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@DB_OPT
def tasks_list(stuck: bool, states: tuple[str, ...], limit: int, database_url: str | None) -> None:
    """List tasks, newest first (internal ones too), with their errors."""
    from rich.console import Console
    from rich.table import Table

    from lbaas.db import queue

    db = _db(database_url)
    with db.read() as conn:
        rows = queue.recent(conn, stuck=stuck, states=states, limit=limit)
    table = Table("id", "type", "state", "load balancer / resource", "created", "set aside", "error")
    for r in rows:
        table.add_row(
            r["id"],
            r["task_type"] + (" (internal)" if r["internal"] else ""),
            r["state"],
            r["lock_key"],
            str(r["created_on"])[:19],
            str(r["set_aside_at"] or "")[:19],
            (r["error"] or "")[:200],
        )
    Console(width=200).print(table)
    if stuck and not rows:
        click.echo("no task is set aside", err=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
