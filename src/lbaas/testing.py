"""pytest plugin: a stateful Gcore load-balancer emulator for your own tests.

Activate it with ``pytest -p lbaas.testing`` (or ``pytest_plugins = ["lbaas.testing"]`` in a
conftest.py). Once per session it starts lbaas with the noop provider on a free 127.0.0.1 port
and a temporary SQLite database (in this process by default, or as a subprocess with
``--lbaas-mode=subprocess``), and gives every test:

* ``lbaas``: an :class:`Emulator` controller (URL, admin key, reset, faults, task timing,
  health flips, journal, snapshots, project keys and clients), reset before each test;
* ``gcore_client`` / ``async_gcore_client``: a ``gcore.Gcore`` / ``gcore.AsyncGcore`` for the
  default project 1 and region 1, with the admin key.

Tasks finish inside the request that queues them unless a test asks for delay, so the SDK's
``*_and_poll`` helpers return on their first poll. When a test that used the emulator fails,
its report shows the last requests of the journal.

Installed with its ``testing`` extra, the plugin is also activated by its ``pytest11`` entry point
(then ``-p lbaas.testing`` is a no-op); its fixtures start nothing until a test asks for them.

Options: ``--lbaas-mode inprocess|subprocess``, ``--lbaas-url URL --lbaas-admin-key KEY`` (use
a running lbaas that has the emulator controls on), ``--lbaas-journal N`` (requests kept, 1000).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Emulator", "Project"]

DEFAULT_JOURNAL = 1000


@dataclass(frozen=True)
class Project:
    """A project of the emulator and a key scoped to it."""

    id: int
    api_key: str


class EmulatorError(RuntimeError):
    """The emulator's admin API refused a call (the message carries its answer)."""


class Emulator:
    """Plain-Python access to a running lbaas's emulator controls (``/lbaas/v1/``).

    Every method is one HTTP call to the admin API; see docs/emulator.md for what each control
    does. ``project_id`` arguments scope a control to one project (default: every project).
    """

    def __init__(self, url: str, admin_key: str, *, region_id: int = 1) -> None:
        self.url = url.rstrip("/")
        self.admin_key = admin_key
        self.project_id = 1
        self.region_id = region_id
        import httpx  # imported here: installing lbaas alone must not break other pytest runs

        self._http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"APIKey {admin_key}"}, timeout=60
        )

    # -- plumbing -------------------------------------------------------------------------------
    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One admin API call (``path`` under /lbaas/v1); raises EmulatorError on a non-2xx answer."""
        response = self._http.request(method, "/lbaas/v1" + path, **kwargs)
        if response.status_code >= 300:
            raise EmulatorError(f"{method} /lbaas/v1{path}: HTTP {response.status_code}: {response.text}")
        return response.json() if response.content else None

    def close(self) -> None:
        self._http.close()

    @staticmethod
    def _scope(**values: Any) -> dict[str, Any]:
        return {k: v for k, v in values.items() if v is not None}

    # -- reset ----------------------------------------------------------------------------------
    def reset(self, project_id: int | None = None) -> dict[str, Any]:
        """Everything (or one project) back to a freshly started server's state."""
        return self.call("POST", "/reset", json=self._scope(project_id=project_id) or None)

    # -- task timing ----------------------------------------------------------------------------
    def set_timing(
        self, mode: str, *, task_type: str | None = None, project_id: int | None = None, **values: Any
    ) -> dict[str, Any]:
        """Set one timing rule: ``immediate``, ``delay`` (delay_ms, delay_max_ms, seed),
        ``polls`` (polls) or ``hold``."""
        body = self._scope(mode=mode, task_type=task_type, project_id=project_id, **values)
        return self.call("PUT", "/timing", json=body)

    def hold_tasks(self, task_type: str | None = None, *, project_id: int | None = None) -> dict[str, Any]:
        """New matching tasks wait (NEW) until :meth:`release_tasks`."""
        return self.set_timing("hold", task_type=task_type, project_id=project_id)

    def release_tasks(self, task_id: str | None = None, *, project_id: int | None = None) -> dict[str, Any]:
        """Let one held task (or every held task, or a project's) run; answers the released ids."""
        if task_id is not None:
            return self.call("POST", f"/tasks/{task_id}/release")
        return self.call("POST", "/tasks/release", json=self._scope(project_id=project_id))

    def delay_tasks(
        self,
        ms: int,
        max_ms: int | None = None,
        *,
        task_type: str | None = None,
        project_id: int | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """New matching tasks finish ``ms`` after they are queued (random in [ms, max_ms] with max_ms)."""
        return self.set_timing(
            "delay", task_type=task_type, project_id=project_id, delay_ms=ms, delay_max_ms=max_ms, seed=seed
        )

    def finish_after_polls(
        self, polls: int, *, task_type: str | None = None, project_id: int | None = None
    ) -> dict[str, Any]:
        """New matching tasks read FINISHED from their ``polls``-th ``GET /cloud/v1/tasks/{id}`` on."""
        return self.set_timing("polls", task_type=task_type, project_id=project_id, polls=polls)

    def immediate_tasks(
        self, task_type: str | None = None, *, project_id: int | None = None
    ) -> dict[str, Any]:
        """Matching tasks finish inside the request that queues them (the default)."""
        return self.set_timing("immediate", task_type=task_type, project_id=project_id)

    def timing(self) -> dict[str, Any]:
        """The timing rules in force and the held tasks."""
        return self.call("GET", "/timing")

    def held_tasks(self, project_id: int | None = None) -> list[dict[str, Any]]:
        """Tasks the timing controls are holding back (oldest first)."""
        return self.call("GET", "/tasks/held", params=self._scope(project_id=project_id))["results"]

    # -- faults ---------------------------------------------------------------------------------
    def add_fault(self, **spec: Any) -> dict[str, Any]:
        """Any fault of the admin API (``kind`` = http, latency, task or health)."""
        return self.call("POST", "/faults", json=spec)

    def fail_next(
        self,
        task_type: str | None,
        count: int | None = 1,
        error: str = "injected failure (lbaas emulator)",
        *,
        project_id: int | None = None,
        probability: float | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Fail the next ``count`` tasks of ``task_type`` (None: any) with ``error`` (count None: all)."""
        body = self._scope(task_type=task_type, project_id=project_id, probability=probability, seed=seed)
        return self.add_fault(kind="task", count=count, error=error, **body)

    def inject_http(
        self,
        status: int,
        path_regex: str = ".*",
        count: int | None = 1,
        *,
        method: str | None = None,
        project_id: int | None = None,
        retry_after: float | None = None,
        message: str | None = None,
        probability: float | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Answer the next ``count`` matching requests with ``status`` (409, 429, 5xx) and change nothing."""
        body = self._scope(
            method=method,
            project_id=project_id,
            retry_after=retry_after,
            message=message,
            probability=probability,
            seed=seed,
        )
        return self.add_fault(kind="http", status=status, path_regex=path_regex, count=count, **body)

    def add_latency(
        self,
        ms: int,
        path_regex: str = ".*",
        *,
        max_ms: int | None = None,
        count: int | None = None,
        method: str | None = None,
        project_id: int | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Delay matching requests by ``ms`` (random up to ``max_ms``) before serving them."""
        body = self._scope(latency_max_ms=max_ms, method=method, project_id=project_id, seed=seed)
        return self.add_fault(kind="latency", latency_ms=ms, path_regex=path_regex, count=count, **body)

    def set_health(
        self, status: str, *, member_id: str | None = None, pool_id: str | None = None
    ) -> dict[str, Any]:
        """Report a member (or every member of a pool) as UP, DOWN, DRAIN, MAINT or NO_CHECK."""
        return self.add_fault(
            kind="health", status=status, **self._scope(member_id=member_id, pool_id=pool_id)
        )

    def faults(self, all: bool = False) -> list[dict[str, Any]]:  # noqa: A002 - mirrors the API
        """The active faults (with all=True also spent ones)."""
        return self.call("GET", "/faults", params={"all": str(all).lower()})["results"]

    def clear_faults(self, kind: str | None = None) -> int:
        """Remove every fault (or those of one kind); health flips recover at once."""
        return self.call("DELETE", "/faults", params=self._scope(kind=kind))["removed"]

    # -- journal --------------------------------------------------------------------------------
    def journal(self, **filters: Any) -> list[dict[str, Any]]:
        """The newest requests (oldest first): limit, method, path (regex), status, min_status,
        project_id, injected, retried, since_id."""
        params = {
            k: (str(v).lower() if isinstance(v, bool) else v) for k, v in filters.items() if v is not None
        }
        return self.call("GET", "/journal", params=params)["results"]

    def clear_journal(self) -> None:
        self.call("DELETE", "/journal")

    def set_journal_size(self, size: int) -> None:
        self.call("PUT", "/journal", json={"size": size})

    # -- snapshots ------------------------------------------------------------------------------
    def export_snapshot(self, project_id: int = 1) -> dict[str, Any]:
        """One project's whole state as one JSON document."""
        return self.call("GET", "/snapshot", params={"project_id": project_id})

    def import_snapshot(
        self, doc: dict[str, Any], *, project_id: int | None = None, replace: bool = False
    ) -> dict[str, Any]:
        """Write a snapshot (ids kept); EmulatorError (409) on existing ids unless ``replace``."""
        params = self._scope(project_id=project_id, replace=str(replace).lower())
        return self.call("POST", "/snapshot", params=params, json=doc)

    # -- projects and clients -------------------------------------------------------------------
    def new_project(self, name: str | None = None) -> Project:
        """A new project and a key scoped to it."""
        name = name or f"test-{secrets.token_hex(4)}"
        created = self._http.post("/cloud/v1/projects", json={"name": name})
        if created.status_code != 201:
            raise EmulatorError(f"project create: HTTP {created.status_code}: {created.text}")
        project_id = created.json()["id"]
        key = self.call("POST", f"/projects/{project_id}/api-keys", json={"name": name})
        return Project(project_id, key["token"])

    def _client_args(self, project: Project | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs.setdefault("polling_interval_seconds", 1)  # the SDK's minimum
        return {
            "api_key": project.api_key if project else self.admin_key,
            "base_url": self.url,
            "cloud_project_id": project.id if project else self.project_id,
            "cloud_region_id": self.region_id,
            **kwargs,
        }

    def client(self, project: Project | None = None, **kwargs: Any) -> Any:
        """A ``gcore.Gcore`` for a project (default: project 1 with the admin key)."""
        import gcore

        return gcore.Gcore(**self._client_args(project, kwargs))

    def async_client(self, project: Project | None = None, **kwargs: Any) -> Any:
        """A ``gcore.AsyncGcore`` for a project (default: project 1 with the admin key)."""
        import gcore

        return gcore.AsyncGcore(**self._client_args(project, kwargs))


# -- starting a server -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, alive: Any, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("lbaas stopped while starting")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"lbaas did not answer at {url} within {timeout:.0f} s")


@contextlib.contextmanager
def run_inprocess(data_dir: Path, admin_key: str, journal: int) -> Iterator[str]:
    """lbaas in a thread of this process (uvicorn on 127.0.0.1)."""
    import uvicorn

    from lbaas.api.app import create_app
    from lbaas.config import Settings

    port = _free_port()
    settings = Settings.from_env(
        database_url=f"sqlite:///{data_dir / 'lbaas.db'}",
        data_dir=data_dir,
        provider="noop",
        host="127.0.0.1",
        port=port,
        admin_api_key=admin_key,
        emulator_controls=True,
        emulator_journal_size=journal,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
    )
    thread = threading.Thread(target=server.run, name="lbaas-emulator", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, thread.is_alive)
        yield url
    finally:
        server.should_exit = True
        thread.join(30)


@contextlib.contextmanager
def run_subprocess(data_dir: Path, admin_key: str, journal: int) -> Iterator[str]:
    """``python -m lbaas serve --provider noop`` as a child process, stopped at the end."""
    port = _free_port()
    env = {
        **os.environ,
        "LBAAS_ADMIN_API_KEY": admin_key,
        "LBAAS_DATA_DIR": str(data_dir),
        "LBAAS_EMULATOR_CONTROLS": "true",
        "LBAAS_EMULATOR_JOURNAL_SIZE": str(journal),
    }
    argv = [sys.executable, "-m", "lbaas", "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--database-url", f"sqlite:///{data_dir / 'lbaas.db'}", "--provider", "noop"]
    with open(data_dir / "lbaas.log", "wb") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            try:
                _wait_ready(url, lambda: proc.poll() is None)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}; log: {(data_dir / 'lbaas.log').read_text()[-2000:]}") from None
            yield url
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)


# -- the plugin --------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lbaas", "lbaas Gcore emulator")
    group.addoption(
        "--lbaas-mode",
        choices=("inprocess", "subprocess"),
        default=None,
        help="Run the emulator in this process (default) or as a subprocess.",
    )
    group.addoption("--lbaas-url", default=None, help="Use a running lbaas with emulator controls instead.")
    group.addoption("--lbaas-admin-key", default=None, help="Its admin key (with --lbaas-url).")
    group.addoption(
        "--lbaas-journal", type=int, default=None, help=f"Requests journaled ({DEFAULT_JOURNAL})."
    )
    parser.addini("lbaas_mode", "inprocess or subprocess", default="inprocess")


@pytest.fixture(scope="session")
def lbaas_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Emulator]:
    """The session's emulator (started once); most tests want ``lbaas`` instead."""
    config = request.config
    url = config.getoption("--lbaas-url")
    if url:
        key = config.getoption("--lbaas-admin-key") or os.environ.get("LBAAS_ADMIN_API_KEY")
        if not key:
            raise pytest.UsageError("--lbaas-url needs --lbaas-admin-key (or LBAAS_ADMIN_API_KEY)")
        emulator = Emulator(url, key)
        yield emulator
        emulator.close()
        return
    mode = config.getoption("--lbaas-mode") or config.getini("lbaas_mode") or "inprocess"
    journal = config.getoption("--lbaas-journal")
    journal = DEFAULT_JOURNAL if journal is None else journal
    key = "1$" + secrets.token_hex(32)
    data_dir = tmp_path_factory.mktemp("lbaas")
    run = run_subprocess if mode == "subprocess" else run_inprocess
    with run(data_dir, key, journal) as base_url:
        emulator = Emulator(base_url, key)
        try:
            yield emulator
        finally:
            emulator.close()


@pytest.fixture
def lbaas(lbaas_server: Emulator) -> Emulator:
    """The emulator's controller, reset to a fresh server's state for this test."""
    lbaas_server.reset()
    return lbaas_server


@pytest.fixture
def gcore_client(lbaas: Emulator) -> Iterator[Any]:
    """``gcore.Gcore`` for project 1, region 1, with the admin key, pointed at the emulator."""
    client = lbaas.client()
    yield client
    client.close()


@pytest.fixture
def async_gcore_client(lbaas: Emulator) -> Any:
    """``gcore.AsyncGcore`` for project 1, region 1, with the admin key, pointed at the emulator."""
    return lbaas.async_client()


def _journal_section(emulator: Emulator, limit: int = 25) -> str:
    lines = []
    for e in emulator.journal(limit=limit):
        notes = []
        if e.get("injected_fault") is not None:
            notes.append(f"injected fault {e['injected_fault']}")
        if e.get("retry_count"):
            notes.append(f"retry {e['retry_count']}")
        suffix = f" ({', '.join(notes)})" if notes else ""
        query = f"?{e['query']}" if e.get("query") else ""
        lines.append(f"{e['method']} {e['path']}{query} -> {e['status']} in {e['latency_ms']:.1f} ms{suffix}")
    return "\n".join(lines) or "(no request journaled)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    emulator = getattr(item, "funcargs", {}).get("lbaas")
    if report.when == "call" and report.failed and isinstance(emulator, Emulator):
        with contextlib.suppress(Exception):
            report.sections.append(("lbaas journal (last requests)", _journal_section(emulator)))
