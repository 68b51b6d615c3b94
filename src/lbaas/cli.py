"""The ``lbaas`` command: serve, worker, migrate, api-key, quota, tags, tasks.

Every error a command meets ends as one line on stderr (``lbaas: error: ...``) and a non-zero
exit status, never a traceback: ``LbaasCli.main`` translates the errors of every command once,
so a new command (``@main.command()`` or a new ``@main.group()``) only raises ``LbaasError``,
``click.ClickException`` or lets a database or OS error through. ``LBAAS_DEBUG=1`` shows the
traceback of an unexpected error. Exit status: 1 for errors, 2 for bad arguments, 130 on Ctrl-C.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any, NoReturn

import click
import sqlalchemy as sa

from lbaas.config import Settings

DB_HINT = "check --database-url or LBAAS_DATABASE_URL"

DB_OPT = click.option(
    "--database-url",
    envvar="LBAAS_DATABASE_URL",
    default=None,
    help="SQLAlchemy URL; default SQLite in $LBAAS_DATA_DIR (./.lbaas).",
)
PROJECT_OPT = click.option("--project-id", type=click.IntRange(min=1), required=True)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def describe_error(exc: BaseException) -> str:
    """The one line a user sees for an error of any command."""
    from lbaas.errors import LbaasError

    if isinstance(exc, LbaasError):
        return _one_line(exc.message)
    if isinstance(exc, sa.exc.NoSuchModuleError):
        return f"unsupported database URL ({_one_line(exc)}): use sqlite:/// or postgresql://; {DB_HINT}"
    if isinstance(exc, sa.exc.ArgumentError):
        return f"bad database URL: {_one_line(exc)}; {DB_HINT}"
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        first = str(exc.orig or exc).strip().splitlines() or [type(exc).__name__]
        return f"cannot use the database: {_one_line(first[0])}; {DB_HINT}"
    if isinstance(exc, sa.exc.SQLAlchemyError):
        return f"database error: {_one_line(str(exc).splitlines()[0])}"
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    if isinstance(exc, ValueError):
        return _one_line(exc)
    hint = "" if os.environ.get("LBAAS_DEBUG") else " (set LBAAS_DEBUG=1 to see the traceback)"
    return f"internal error: {type(exc).__name__}: {_one_line(exc)}{hint}"


def _fail(message: str, status: int) -> NoReturn:
    click.echo(f"lbaas: error: {message}", err=True)
    sys.exit(status)


class LbaasCli(click.Group):
    """The top-level group: runs a command and turns whatever it raises into one line."""

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:
        extra.pop("standalone_mode", None)
        try:
            result = super().main(args, prog_name, standalone_mode=False, **extra)
        except click.exceptions.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "lbaas"
            _fail(f"{_one_line(exc.format_message())} (see {where} --help)", exc.exit_code)
        except click.ClickException as exc:
            _fail(_one_line(exc.format_message()), exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            click.echo("lbaas: interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            if os.environ.get("LBAAS_DEBUG"):
                raise
            _fail(describe_error(exc), 1)
        sys.exit(result if isinstance(result, int) else 0)


def _settings(**overrides: object) -> Settings:
    try:
        settings = Settings.from_env(**overrides)
        if settings.emulator_task_timing is not None:
            from lbaas.emulator.timing import parse

            parse(settings.emulator_task_timing)  # a ValueError names the rule it cannot read
        return settings
    except ValueError as exc:  # the message names the flag or variable to fix
        raise click.ClickException(str(exc)) from exc


def _db(database_url: str | None, *, create: bool = False):
    """The migrated database of the settings (for commands that read or change it).

    Only ``serve``, ``worker`` and ``migrate`` (``create``) may start a new SQLite database: an
    operator command run from the wrong directory says where it looked instead of quietly making
    an empty deployment there.
    """
    from lbaas.db import migrate
    from lbaas.db.engine import Database

    settings = _settings(database_url=database_url)
    url = sa.engine.make_url(settings.database_url)
    if not create and url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        raise click.ClickException(
            f"no lbaas database at {url.database}: run this where lbaas serves (its data dir is "
            "./.lbaas), or set LBAAS_DATA_DIR or --database-url"
        )
    db = Database(settings.database_url)
    migrate.upgrade(db, region_name=settings.region_name, project_name=settings.project_name)
    return db


EMULATOR_OPT = click.option(
    "--emulator-controls/--no-emulator-controls",
    default=None,
    help="The emulator's admin API (/lbaas/v1/: reset, faults, timing, journal, snapshot); "
    "default: on with the noop provider only. Env LBAAS_EMULATOR_CONTROLS.",
)


@click.group(cls=LbaasCli)
@click.version_option(package_name="lbaas")
def main() -> None:
    """lbaas: load balancers as a service, wire-compatible with Gcore Cloud."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


# -- serve / worker / migrate --------------------------------------------------
def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port), or a one-line error saying which setting to change."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        message = f"cannot listen on {host!r}: {exc.strerror}; set --host or LBAAS_HOST"
        raise click.ClickException(message) from exc
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        where = f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            message = f"{where} is already in use; choose another port with --port or LBAAS_PORT"
        elif exc.errno == errno.EACCES:
            message = f"no permission to listen on {where}; choose a port over 1023 with --port or LBAAS_PORT"
        elif exc.errno == errno.EADDRNOTAVAIL:
            message = f"{host} is not an address of this machine; set --host or LBAAS_HOST"
        else:
            message = f"cannot listen on {where}: {exc.strerror}; set --host/--port or LBAAS_HOST/LBAAS_PORT"
        raise click.ClickException(message) from exc
    # Listening at once: a client that reads the "serving on" line and connects before the
    # server loop runs waits in the backlog instead of being refused.
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@main.command()
@click.option("--host", envvar="LBAAS_HOST", default=None)
@click.option(
    "--port", envvar="LBAAS_PORT", type=click.IntRange(0, 65535), default=None, help="0: any free port"
)
@DB_OPT
@click.option(
    "--provider",
    envvar="LBAAS_PROVIDER",
    type=click.Choice(["noop", "haproxy", "auto"]),
    default=None,
    help="auto (default): haproxy when HAProxy >= 2.6 is installed, else noop (the emulator).",
)
@click.option("--no-worker", is_flag=True, help="Serve the API only; run `lbaas worker` separately.")
@click.option(
    "--api-processes",
    envvar="LBAAS_API_PROCESSES",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="API processes sharing the port (the worker runs once, in the parent).",
)
@EMULATOR_OPT
def serve(
    host: str | None,
    port: int | None,
    database_url: str | None,
    provider: str | None,
    no_worker: bool,
    emulator_controls: bool | None,
    api_processes: int,
) -> None:
    """Run the API (and, by default, a worker) until SIGTERM.

    Without LBAAS_ADMIN_API_KEY, the first start writes an admin key to
    $LBAAS_DATA_DIR/admin-api-key (mode 0600).
    """
    import uvicorn

    from lbaas.api.app import create_app

    settings = _settings(
        host=host,
        port=port,
        database_url=database_url,
        provider=provider,
        run_worker=not no_worker,
        emulator_controls=emulator_controls,
    )
    settings = _resolve_provider(settings)
    sock = bind_socket(settings.host, settings.port)
    if api_processes > 1:
        _serve_processes(settings, sock, api_processes)
        _farewell(settings)
        return
    app = create_app(settings)
    _announce(app.state.db, settings, sock)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=20)

    class Server(uvicorn.Server):
        # Said at the end of the shutdown: uvicorn re-raises the signal that stopped it once run()
        # is over, so nothing after run() would be printed.
        async def shutdown(self, sockets: Any = None) -> None:
            await super().shutdown(sockets)
            _farewell(settings)

    server = Server(config)
    server.run(sockets=[sock])
    if not server.started:
        raise click.ClickException("the server did not start; see the log lines above")


def _farewell(settings: Settings) -> None:
    """The last line of ``serve``: stopped, and what keeps running (the README's Ctrl-C note)."""
    if settings.provider == "haproxy" and settings.run_worker:
        click.echo(
            "lbaas: stopped; the HAProxy processes keep serving their load balancers "
            "(`lbaas dataplane stop-all` stops them)",
            err=True,
        )
    else:
        click.echo("lbaas: stopped", err=True)


def _announce(db: Any, settings: Settings, sock: socket.socket, processes: int = 1) -> None:
    from lbaas import first_start

    note = first_start.ensure_admin_key(db, settings)
    if note:
        click.echo(f"lbaas: {note}", err=True)
    database = sa.engine.make_url(settings.database_url).render_as_string()
    click.echo(
        f"lbaas: serving on {_url(sock)} with provider {settings.provider}, database {database}"
        + (f", {processes} API processes" if processes > 1 else "")
        + (", emulator controls on (/lbaas/v1/)" if settings.controls_for(settings.provider) else ""),
        err=True,
    )


def _api_process(settings: Settings, sock: socket.socket) -> None:
    """One of ``--api-processes``: the API only, on the socket the parent bound (its kernel queue
    spreads connections over the processes); the parent runs the worker."""
    import dataclasses

    import uvicorn

    from lbaas.api.app import create_app

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us with SIGTERM
    app = create_app(dataclasses.replace(settings, run_worker=False))
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=20)
    uvicorn.Server(config).run(sockets=[sock])


def _serve_processes(settings: Settings, sock: socket.socket, count: int) -> None:
    """``--api-processes N``: N API processes share one listening socket; the task worker, the status
    poller and the other background threads run once, here. All state they share is in the
    database (idempotency, the emulator's controls, the queue), so any process may take any request."""
    import multiprocessing

    from lbaas.db import migrate
    from lbaas.db.engine import Database

    db = Database(settings.database_url)
    migrate.upgrade(db, region_name=settings.region_name, project_name=settings.project_name)
    _announce(db, settings, sock, count)
    db.dispose()
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=_api_process, args=(settings, sock), daemon=False) for _ in range(count)
    ]
    for child in children:
        child.start()
    sock.close()
    runner, db = (None, None) if not settings.run_worker else _background(settings)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            if not all(c.is_alive() for c in children):
                click.echo("lbaas: an API process exited; stopping", err=True)
                break
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
        for child in children:
            child.join(25)
        if runner is not None:
            runner.stop()
            db.dispose()


def _resolve_provider(settings: Settings) -> Settings:
    """``auto`` becomes the provider that will run; a fallback to the emulator is said in one line."""
    import dataclasses

    from lbaas.providers import choose

    name, warning = choose(settings)
    if warning:
        click.echo(f"lbaas: warning: {warning}", err=True)
    return dataclasses.replace(settings, provider=name)


@main.command()
@DB_OPT
@click.option(
    "--provider", envvar="LBAAS_PROVIDER", type=click.Choice(["noop", "haproxy", "auto"]), default=None
)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Concurrent tasks in this process.")
@EMULATOR_OPT
def worker(
    database_url: str | None, provider: str | None, threads: int | None, emulator_controls: bool | None
) -> None:
    """Run task workers only (several may share one PostgreSQL database), with the status poller
    and the access-log receiver."""
    settings = _resolve_provider(
        _settings(
            database_url=database_url,
            provider=provider,
            worker_threads=threads,
            emulator_controls=emulator_controls,
        )
    )
    runner, _db_ = _background(settings)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    click.echo(
        f"lbaas worker {runner.worker.id}: {settings.worker_threads} threads, provider {settings.provider}",
        err=True,
    )
    done.wait()
    runner.stop()


def _background(settings: Settings) -> tuple[Any, Any]:
    """The task worker, the status poller and the other background threads of a process, started."""
    from lbaas.accesslogs import receiver_for
    from lbaas.certs import SecretBox, load_or_create_key
    from lbaas.providers import make_provider
    from lbaas.tasks import handlers  # noqa: F401
    from lbaas.tasks.runner import Runner
    from lbaas.tasks.worker import Worker

    db = _db(settings.database_url, create=True)
    box = SecretBox.from_key(load_or_create_key(settings.data_dir, settings.secret_key))
    data_plane = make_provider(settings)
    if settings.controls_for(settings.provider):  # injected task faults and health flips reach it too
        from lbaas.emulator.core import Emulator

        data_plane = Emulator(db, settings, data_plane).provider
    w = Worker(
        db,
        data_plane,
        threads=settings.worker_threads,
        lease=settings.lease_seconds,
        decrypt=box.decrypt,
    )
    runner = Runner.for_settings(w, settings, receiver_for(db, w.ctx.provider, settings.data_dir))
    runner.start()
    return runner, db


@main.command()
@DB_OPT
def migrate(database_url: str | None) -> None:
    """Bring the database schema to the newest version."""
    _db(database_url, create=True)
    click.echo("database at head")


# -- api-key -------------------------------------------------------------------
@main.group("api-key")
def api_key() -> None:
    """Manage API keys."""


@api_key.command("create")
@PROJECT_OPT
@click.option("--name", default=None)
@DB_OPT
def api_key_create(project_id: int, name: str | None, database_url: str | None) -> None:
    """Create a project-scoped key; the token is the last line of output."""
    from lbaas.services import auth

    db = _db(database_url, create=True)  # setting up before the first start is fine
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
    Console(markup=False, highlight=False).print(table)


@api_key.command("revoke")
@click.argument("key_id", type=int)
@DB_OPT
def api_key_revoke(key_id: int, database_url: str | None) -> None:
    """Revoke a key; it stops working at once."""
    from lbaas.services import auth

    db = _db(database_url)
    with db.write() as conn:
        auth.revoke(conn, key_id)
    click.echo(f"revoked key {key_id}")


# -- quota ---------------------------------------------------------------------
class QuotaLimit(click.ParamType):
    """A quota limit: an integer >= 0, or -1 / ``unlimited`` for no limit."""

    name = "LIMIT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            number = value
        elif str(value).strip().lower() == "unlimited":
            return -1
        else:
            try:
                number = int(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not a number (use -1 or 'unlimited' for no limit)", param, ctx)
        if number < -1:
            self.fail(f"{number} is below -1 (use -1 or 'unlimited' for no limit)", param, ctx)
        return number


@main.group()
def quota() -> None:
    """Per-project quotas (defaults are generous; an operator may lower or raise them)."""


# ignore_unknown_options: "-1" is the LIMIT argument, not an unknown option.
@quota.command("set", context_settings={"ignore_unknown_options": True})
@PROJECT_OPT
@click.argument("name")
@click.argument("limit", type=QuotaLimit())
@DB_OPT
def quota_set(project_id: int, name: str, limit: int, database_url: str | None) -> None:
    """Set quota NAME of a project to LIMIT (-1 or 'unlimited': no limit)."""
    from lbaas.services import quotas

    if name not in quotas.DEFAULTS:
        raise click.UsageError(f"unknown quota {name!r}; known: {', '.join(quotas.DEFAULTS)}")
    db = _db(database_url, create=True)  # setting up before the first start is fine
    with db.write() as conn:
        quotas.set_limit(conn, project_id, name, limit)
    click.echo(f"{name} = {quotas.show_limit(limit)} for project {project_id}")


@quota.command("show")
@PROJECT_OPT
@DB_OPT
def quota_show(project_id: int, database_url: str | None) -> None:
    """Show a project's limits and usage."""
    from lbaas.services import quotas

    db = _db(database_url)
    with db.read() as conn:
        quotas.require_project(conn, project_id)
        for name in quotas.DEFAULTS:
            limit, used = quotas.usage(conn, project_id, name)
            shown = quotas.show_limit(limit)
            per_parent = name in ("listeners_per_lb", "members_per_pool")
            click.echo(f"{name}: limit {shown}" if per_parent else f"{name}: {used} / {shown}")


# -- tags ----------------------------------------------------------------------
@main.group()
def tags() -> None:
    """Operator tag commands."""


@tags.command("add-read-only")
@click.argument("resource_id")
@click.argument("pair")
@DB_OPT
def add_read_only(resource_id: str, pair: str, database_url: str | None) -> None:
    """Attach a read-only tag KEY=VALUE to a load balancer or floating IP."""
    from lbaas.services import tags as tag_service

    key, sep, value = pair.partition("=")
    if not sep:
        raise click.UsageError("PAIR must be KEY=VALUE")
    db = _db(database_url)
    with db.write() as conn:
        tag_service.add_read_only(conn, resource_id, key, value)
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
    Console(width=200, markup=False, highlight=False).print(table)
    if stuck and not rows:
        click.echo("no task is set aside", err=True)


# -- logs ----------------------------------------------------------------------
@main.command("logs")
@click.argument("lb_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines as they are written.")
@click.option(
    "--since", default=None, help="Only lines from then on: 10m, 2h, 3d, or a UTC time (2026-11-30T10:00)."
)
@DB_OPT
def logs(lb_id: str, follow: bool, since: str | None, database_url: str | None) -> None:
    """Print a load balancer's access logs (JSON lines; see docs/logging.md).

    Logs of a deleted load balancer are kept, and shown, until their retention ends.
    """
    import sqlalchemy as sa_

    from lbaas.accesslogs import LogStore, parse_since
    from lbaas.db import tables

    settings = _settings(database_url=database_url)
    try:
        since_ts = parse_since(since) if since is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    store = LogStore(settings.data_dir / "logs")
    if not store.streams_of(lb_id):
        db = _db(settings.database_url)
        LB = tables.load_balancers
        with db.read() as conn:
            row = conn.execute(sa_.select(LB.c.logging_enabled).where(LB.c.id == lb_id)).first()
        if row is None:
            raise click.ClickException(
                f"no load balancer {lb_id} and no access logs of one under {store.root}"
            )
        if not follow:
            state = "on" if row.logging_enabled else "off (set logging.enabled to true)"
            click.echo(
                f"lbaas: no access logs of load balancer {lb_id} yet; its logging is {state}", err=True
            )
            return
    out = sys.stdout.buffer
    if not follow:
        for line in store.read(lb_id, since_ts):
            out.write(line)
        out.flush()
        return
    for batch in store.follow(lb_id, since_ts):
        out.write(b"".join(batch))
        out.flush()


# -- dataplane -----------------------------------------------------------------
@main.group("dataplane")
def dataplane_group() -> None:
    """The HAProxy processes of this host (one per load balancer)."""


def _haproxy(database_url: str | None):
    from lbaas.providers.haproxy.provider import HaproxyProvider

    settings = _settings(database_url=database_url, provider="haproxy")
    return settings, HaproxyProvider.from_settings(settings)


@dataplane_group.command("status")
@DB_OPT
def dataplane_status(database_url: str | None) -> None:
    """Every load balancer's process: state, pid, reloads, config hash, and whether it is in sync."""
    from rich.console import Console
    from rich.table import Table

    from lbaas.certs import SecretBox, load_or_create_key
    from lbaas.db import dataplane, snapshot

    db = _db(database_url)  # first: from the wrong directory, say so (and create nothing)
    settings, provider = _haproxy(database_url)
    box = SecretBox.from_key(load_or_create_key(settings.data_dir, settings.secret_key))
    procs = {p.lb_id: p for p in provider.processes()}
    table = Table("load balancer", "state", "pid", "reloads", "config", "in sync", "reason")
    with db.read() as conn:
        rows = dataplane.observed(conn)
        for row in rows:
            proc = procs.pop(row["lb_id"], None)
            wanted = dataplane.applied(conn, row["lb_id"])
            expected = None
            if wanted is not None:
                try:
                    expected = provider.render(
                        snapshot.with_certificates(conn, wanted, box.decrypt)
                    ).config_hash
                except Exception as exc:  # noqa: BLE001 - shown, not fatal
                    expected = f"(cannot render: {exc})"
            state = proc.state if proc else "stopped"
            if row["running"] is False:
                state = "down" if proc is None else state
            table.add_row(
                row["lb_id"],
                state,
                str(proc.pid) if proc and proc.pid else "",
                str(proc.reloads) if proc and proc.reloads is not None else "",
                (proc.config_hash or "")[:12] if proc else "",
                "yes" if proc and expected and proc.config_hash == expected else "no",
                row["reason"] or "",
            )
    for lb_id, proc in sorted(procs.items()):  # running, but lbaas knows no such LB
        table.add_row(
            lb_id,
            f"{proc.state} (unknown LB)",
            str(proc.pid or ""),
            "",
            (proc.config_hash or "")[:12],
            "no",
            "",
        )
    Console(width=200, markup=False, highlight=False).print(table)


@dataplane_group.command("stop-all")
@DB_OPT
@click.option(
    "--force",
    is_flag=True,
    help="Stop them even while lbaas serves this data dir (it restarts them within seconds).",
)
def dataplane_stop_all(database_url: str | None, force: bool) -> None:
    """Stop every HAProxy process lbaas started on this host (their files stay; lbaas restarts them)."""
    from lbaas.providers.haproxy import host

    settings = _settings(database_url=database_url, provider="haproxy")
    if not force and host.serving(Path(settings.data_dir)):
        raise click.ClickException(
            f"lbaas is running for {os.path.abspath(settings.data_dir)}: its healer would start every "
            "HAProxy again within seconds; stop lbaas first (or pass --force)"
        )
    settings, provider = _haproxy(database_url)
    click.echo(f"stopped {provider.stop_all()} HAProxy process(es) of {os.path.abspath(settings.data_dir)}")


if __name__ == "__main__":  # pragma: no cover
    main()
