"""The CLI as a new user meets it: one-line errors, first start, a busy port, private files.

Real processes (``python -m lbaas``), each with its own data directory and database.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import _free_port, database_url
from tests.integration.test_processes import LBAAS, env_for, stop


def run(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*LBAAS, *args], env=env, capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(out: subprocess.CompletedProcess, *needles: str) -> str:
    """A failed command: non-zero status, exactly one line on stderr, no traceback."""
    lines = out.stderr.strip().splitlines()
    assert out.returncode != 0, out
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("lbaas: error: ") and "Traceback" not in out.stderr, out.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def closed_port() -> int:
    """A loopback port nothing listens on (for an unreachable PostgreSQL)."""
    return _free_port()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = env_for(tmp_path / "data", f"sqlite:///{tmp_path / 'data' / 'lbaas.db'}")
    e.pop("LBAAS_ADMIN_API_KEY")
    return e


def test_every_command_error_is_one_line(env: dict[str, str]) -> None:
    assert run(env, "migrate").returncode == 0  # project 1 exists from here on
    unreachable = f"postgresql://postgres@127.0.0.1:{closed_port()}/nothing"
    cases = [
        # unknown ids
        (("api-key", "create", "--project-id", "99"), {}, ["Project 99 could not be found"]),
        (("quota", "show", "--project-id", "99"), {}, ["Project 99 could not be found"]),
        (("quota", "set", "--project-id", "99", "pool_count", "3"), {}, ["Project 99 could not be found"]),
        (("api-key", "revoke", "99999"), {}, ["API key 99999 could not be found"]),
        (("tags", "add-read-only", "no-such-lb", "a=b"), {}, ["no-such-lb could not be found"]),
        (("logs", "no-such-lb"), {}, ["no load balancer no-such-lb", "no access logs"]),
        (("logs", "no-such-lb", "--since", "yesterday"), {}, ["--since", "10m"]),
        (("logs", "x", "--database-url", unreachable), {}, ["cannot use the database"]),
        # bad database URLs, unreachable PostgreSQL
        (("api-key", "list", "--database-url", "not a url"), {}, ["database URL", "--database-url"]),
        (
            ("migrate",),
            {"LBAAS_DATABASE_URL": "mysql://u@h/db"},
            ["unsupported database", "LBAAS_DATABASE_URL"],
        ),
        (
            ("api-key", "list", "--database-url", unreachable),
            {},
            ["cannot use the database", "--database-url"],
        ),
        (("worker", "--database-url", unreachable), {}, ["cannot use the database"]),
        (("serve", "--port", "0", "--database-url", unreachable), {}, ["cannot use the database"]),
        (("tasks", "list", "--database-url", unreachable), {}, ["cannot use the database"]),
        # bad arguments and settings
        (("api-key", "create"), {}, ["Missing option '--project-id'"]),
        (("api-key", "revoke", "abc"), {}, ["not a valid integer"]),
        (("quota", "set", "--project-id", "1", "bogus", "3"), {}, ["unknown quota"]),
        (("quota", "set", "--project-id", "1", "pool_count", "-2"), {}, ["below -1"]),
        (("quota", "set", "--project-id", "1", "pool_count", "many"), {}, ["not a number"]),
        (("tags", "add-read-only", "x", "no-equals-sign"), {}, ["KEY=VALUE"]),
        (("worker", "--threads", "0"), {}, ["--threads"]),
        (("serve", "--port", "70000"), {}, ["--port"]),
        (("no-such-command",), {}, ["No such command"]),
        (("tasks", "list", "--state", "LOST"), {}, ["--state"]),
        (("migrate",), {"LBAAS_LEASE_SECONDS": "soon"}, ["LBAAS_LEASE_SECONDS"]),
        (("migrate",), {"LBAAS_VIP_POOL": "10.0.0.0/8"}, ["127.0.0.0/8"]),
        (("migrate",), {"LBAAS_METRICS_INTERVAL_S": "0"}, ["1..3600", "LBAAS_METRICS_INTERVAL_S"]),
    ]

    def check(case):
        args, extra, needles = case
        assert_one_line_error(run({**env, **extra}, *args), *needles)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(check, cases))


def test_quota_set_takes_minus_one_as_unlimited(env: dict[str, str]) -> None:
    out = run(env, "quota", "set", "--project-id", "1", "loadbalancer_count", "-1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "loadbalancer_count = unlimited for project 1"
    assert run(env, "quota", "set", "--project-id", "1", "pool_count", "unlimited").returncode == 0
    shown = run(env, "quota", "show", "--project-id", "1").stdout
    assert "loadbalancer_count: 0 / unlimited" in shown and "pool_count: 0 / unlimited" in shown


def test_busy_port_is_one_line_naming_the_setting(env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run(env, "serve", "--port", str(port))
    line = assert_one_line_error(out, f"127.0.0.1:{port} is already in use", "--port", "LBAAS_PORT")
    assert "serving on" not in out.stderr, line


def start(env: dict[str, str], *args: str) -> tuple[subprocess.Popen, str, list[str]]:
    """``lbaas serve --port 0``: the URL comes from its "serving on" line (printed once bound)."""
    proc = subprocess.Popen(
        [*LBAAS, "serve", "--port", "0", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.umask(0o022),  # the usual umask: privacy must not depend on it
    )
    lines: list[str] = []
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line.strip())
        if match := re.search(r"serving on (http://\S+)", line):
            return proc, match[1], lines
    proc.kill()
    raise AssertionError("server did not start: " + "\n".join(lines) + proc.stderr.read())


def status(url: str, token: str) -> int:
    return httpx.get(
        f"{url}/cloud/v1/loadbalancers/1/1", headers={"Authorization": f"APIKey {token}"}
    ).status_code


@pytest.mark.parametrize("backend", ["sqlite", "pg"])
def test_first_start_writes_a_private_admin_key(tmp_path: Path, backend: str) -> None:
    from tests.conftest import _drop_pg

    data = tmp_path / "data"
    url = database_url(backend, data) if backend == "sqlite" else database_url("pg", tmp_path)
    env = env_for(data, url)
    env.pop("LBAAS_ADMIN_API_KEY")
    key_file = data / "admin-api-key"
    try:
        proc, base, lines = start(env)
        try:
            assert lines[0] == f"lbaas: generated an admin API key into {key_file.resolve()}", lines
            token = key_file.read_text().strip()
            assert status(base, token) == 200
            assert status(base, "1$" + "0" * 64) == 401
            # The URL is printed once the socket is bound: it answers at once.
            assert httpx.get(f"{base}/healthz").status_code == 200
            private = [data / "admin-api-key", data / "secret.key"]
            if backend == "sqlite":
                private += [data / "lbaas.db", data / "lbaas.db-wal", data / "lbaas.db-shm"]
            assert mode(data) == 0o700
            assert {p.name: oct(mode(p)) for p in private} == {p.name: "0o600" for p in private}
        finally:
            stop(proc)
        proc, base, lines = start(env)  # the second start reuses the key and says where it is
        try:
            assert lines[0] == f"lbaas: admin API key in {key_file.resolve()}", lines
            assert key_file.read_text().strip() == token and status(base, token) == 200
        finally:
            stop(proc)
    finally:
        if backend == "pg":
            _drop_pg(url)


def test_a_key_from_the_environment_is_not_written(tmp_path: Path) -> None:
    env = env_for(tmp_path, f"sqlite:///{tmp_path / 'lbaas.db'}")
    proc, base, lines = start(env)
    assert httpx.get(f"{base}/healthz").status_code == 200  # running (its signal handlers set)
    stop(proc)
    assert not (tmp_path / "admin-api-key").exists()
    assert not any("admin API key" in line for line in lines), lines
    # the last line says it stopped (and, with the haproxy provider, what keeps running)
    assert proc.stderr.read().strip().splitlines()[-1].startswith("lbaas: stopped"), lines


def test_loose_files_of_an_older_version_are_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = env_for(data, f"sqlite:///{data / 'lbaas.db'}")
    env.pop("LBAAS_ADMIN_API_KEY")
    proc, _, _ = start(env)
    stop(proc)
    # What scripts/serve.sh used to leave: a 0755 directory with 0644 files.
    os.chmod(data, 0o755)
    for name in ("admin-api-key", "secret.key", "lbaas.db"):
        os.chmod(data / name, 0o644)
    proc, base, _ = start(env)
    try:
        assert mode(data) == 0o700
        assert {n: mode(data / n) for n in ("admin-api-key", "secret.key", "lbaas.db", "lbaas.db-wal")} == {
            n: 0o600 for n in ("admin-api-key", "secret.key", "lbaas.db", "lbaas.db-wal")
        }
        assert status(base, (data / "admin-api-key").read_text().strip()) == 200
    finally:
        stop(proc)


def test_an_operator_command_from_the_wrong_directory_says_so_and_creates_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LBAAS_")}
    for args in (("dataplane", "status"), ("tasks", "list"), ("api-key", "list"), ("logs", "x")):
        out = subprocess.run(
            [*LBAAS, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert_one_line_error(out, "no lbaas database at", "LBAAS_DATA_DIR")
    assert list(tmp_path.iterdir()) == []
