"""Shared fixtures: real servers on loopback, driven through the official SDK.

Every API test runs twice, against a server on SQLite and one on
PostgreSQL (a database of its own, created and dropped here). In CI
(``CI=true``) an unreachable PostgreSQL fails the run; locally those tests
skip with a loud reason.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from lbaas.api.app import create_app
from lbaas.config import Settings
from lbaas.services import auth

PG_ADMIN_URL = os.environ.get("LBAAS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
ADMIN_TOKEN = "1$" + secrets.token_hex(32)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """One running lbaas: its base URL, admin token, app and database."""

    url: str
    app: Any
    backend: str

    @property
    def db(self):
        return self.app.state.db

    @property
    def provider(self):
        return self.app.state.provider

    def new_project(self) -> tuple[int, str]:
        """A fresh project and a project key for it (tests never share data)."""
        from lbaas.services import projects

        with self.db.write() as conn:
            admin = auth.authenticate(conn, ADMIN_TOKEN)
            project = projects.create(conn, admin, "p-" + secrets.token_hex(4), None)
            _, token = auth.create(conn, project["id"])
        return project["id"], token


class _Thread(threading.Thread):
    def __init__(self, app: Any, port: int) -> None:
        super().__init__(daemon=True)
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        )

    def run(self) -> None:
        self.server.run()


def _start(app: Any, backend: str) -> tuple[Server, _Thread]:
    port = _free_port()
    thread = _Thread(app, port)
    thread.start()
    deadline = time.time() + 20
    while not thread.server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("lbaas test server did not start")
        time.sleep(0.02)
    return Server(f"http://127.0.0.1:{port}", app, backend), thread


def _pg_database() -> str:
    import psycopg

    name = "lbaas_test_" + secrets.token_hex(4)
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required in CI: {exc}")
        pytest.skip(f"!!! PostgreSQL not reachable at {PG_ADMIN_URL}: PG tests SKIPPED ({exc})")
    parts = urllib.parse.urlsplit(PG_ADMIN_URL)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def _drop_pg(url: str) -> None:
    import psycopg

    name = urllib.parse.urlsplit(url).path.lstrip("/")
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(backend: str, tmp: Path) -> str:
    """A fresh, empty database of the given backend."""
    return _pg_database() if backend == "pg" else f"sqlite:///{tmp / 'lbaas.db'}"


@contextlib.contextmanager
def serve(backend: str, tmp: Path, *, database: str | None = None, **settings: Any) -> Iterator[Server]:
    """Run one lbaas server on loopback for the duration of the with-block (noop unless told).

    ``database``: an existing database's URL (kept afterwards: a second server on the same
    database plays an lbaas restart); by default a fresh one, PostgreSQL's dropped at the end.
    """
    url = database or database_url(backend, tmp)
    settings.setdefault("provider", "noop")
    cfg = Settings.from_env(database_url=url, data_dir=tmp, admin_api_key=ADMIN_TOKEN, **settings)
    app = create_app(cfg)
    server, thread = _start(app, backend)
    try:
        yield server
    finally:
        thread.server.should_exit = True
        thread.join(15)
        if backend == "pg" and database is None:
            _drop_pg(url)


BACKENDS = ["sqlite", "pg"]


@pytest.fixture(scope="session", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An lbaas server with the noop provider, once per backend."""
    with serve(request.param, tmp_path_factory.mktemp(request.param)) as srv:
        yield srv


@pytest.fixture(scope="session")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose noop tasks take 300 ms, so PENDING states and queues can be watched."""
    with serve("sqlite", tmp_path_factory.mktemp("slow"), noop_task_delay_ms=300) as srv:
        yield srv


def _assert_loopback(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname or ""
    assert ipaddress.ip_address(host).is_loopback, f"test client must target loopback, not {url}"


def make_client(srv: Server, token: str | None = None, project_id: int | None = None, **kw: Any):
    """The official SDK, pointed at a test server (never at the real Gcore API)."""
    from gcore import Gcore

    _assert_loopback(srv.url)
    if token is None:
        project_id, token = srv.new_project()
    kw.setdefault("max_retries", 0)
    kw.setdefault("polling_interval_seconds", 1)
    return Gcore(api_key=token, base_url=srv.url, cloud_project_id=project_id, cloud_region_id=1, **kw)


def make_async_client(srv: Server, token: str, project_id: int, **kw: Any):
    from gcore import AsyncGcore

    _assert_loopback(srv.url)
    kw.setdefault("max_retries", 0)
    kw.setdefault("polling_interval_seconds", 1)
    return AsyncGcore(api_key=token, base_url=srv.url, cloud_project_id=project_id, cloud_region_id=1, **kw)


@pytest.fixture
def project(server: Server) -> tuple[int, str]:
    """A fresh project and its key on the current backend's server."""
    return server.new_project()


@pytest.fixture
def client(server: Server, project: tuple[int, str]):
    """A sync SDK client for a fresh project."""
    return make_client(server, project[1], project[0])


@pytest.fixture
def aclient(server: Server, project: tuple[int, str]):
    """An async SDK client for the same project as ``client``."""
    return make_async_client(server, project[1], project[0])


@pytest.fixture
def admin_client(server: Server):
    """The SDK with the admin key (every project)."""
    return make_client(server, ADMIN_TOKEN, 1)


@pytest.fixture
def slow_client(slow_server: Server):
    return make_client(slow_server)
