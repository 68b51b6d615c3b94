"""Start the real service (`lbaas serve ... --provider noop`) and seed it with 10,000 LBs through the API.

Set BENCH_LBAAS_DB=/path/db.sqlite to keep the database between runs (only missing LBs are created);
otherwise a temp database is used and removed. Run directly to pre-seed such a file:

    BENCH_LBAAS_DB=/tmp/lbaas-bench.sqlite .venv/bin/python bench/lbaas_server.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import common
import httpx

SEED = int(os.environ.get("BENCH_SEED", "10000"))  # LBs seeded through the API
SEED_CONCURRENCY = 32
SEED_DEADLINE_S = 900
POLL_INTERVAL_S = 0.02
POLL_MAX = 500


def lbaas_argv() -> list[str]:
    exe = Path(sys.executable).with_name("lbaas")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "lbaas"]


@contextlib.contextmanager
def _database(fresh: bool):
    """The lbaas database URL: SQLite (BENCH_LBAAS_DB kept, else a temp file), or with
    BENCH_DB=postgresql a database of its own on BENCH_PG_URL's server (BENCH_LBAAS_PG_DB names
    one to keep between runs; else a fresh one, dropped at the end)."""
    if common.DB == "postgresql":
        import psycopg

        keep = None if fresh else os.environ.get("BENCH_LBAAS_PG_DB")
        name = keep or "bench_lbaas_" + secrets.token_hex(4)
        with psycopg.connect(common.PG_ADMIN_URL, autocommit=True) as admin:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                admin.execute(f'CREATE DATABASE "{name}"')
        base = common.PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        try:
            yield f"{base}/{name}"
        finally:
            if not keep:
                with psycopg.connect(common.PG_ADMIN_URL, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    keep = None if fresh else os.environ.get("BENCH_LBAAS_DB")
    tmp = None if keep else tempfile.mkdtemp(prefix="bench-lbaas-")
    db_path = Path(keep).resolve() if keep else Path(tmp) / "db.sqlite"
    try:
        yield f"sqlite:///{db_path}"
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def running(api_key: str, seed: int = SEED, fresh: bool = False):
    """fresh=True: always a new database (ignores BENCH_LBAAS_DB), e.g. for scripts that add many rows.
    BENCH_API_PROCESSES=N: ``--api-processes N`` (several API processes on one port)."""
    port = common.free_port()
    processes = os.environ.get("BENCH_API_PROCESSES")
    with _database(fresh) as url, tempfile.TemporaryDirectory(prefix="bench-lbaas-data-") as data:
        argv = [
            *lbaas_argv(),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--database-url",
            url,
            "--provider",
            "noop",
            *(["--api-processes", processes] if processes else []),
        ]
        env = {"LBAAS_ADMIN_API_KEY": api_key, "LBAAS_DATA_DIR": data}
        with common.server("lbaas", argv, port, env=env, ready_timeout=60) as t:
            asyncio.run(seed_lbs(t, seed))
            yield t


async def wait_task(client: httpx.AsyncClient, task_id: str) -> dict:
    """Poll GET /cloud/v1/tasks/{id} until FINISHED (bounded by POLL_MAX polls); return the task."""
    for _ in range(POLL_MAX):
        r = await client.get(f"/cloud/v1/tasks/{task_id}")
        r.raise_for_status()
        task = r.json()
        if task["state"] == "FINISHED":
            return task
        if task["state"] == "ERROR":
            raise RuntimeError(f"task {task_id} failed: {task}")
        await asyncio.sleep(POLL_INTERVAL_S)
    raise RuntimeError(f"task {task_id} not FINISHED after {POLL_MAX} polls")


def timed_tasks(client: httpx.Client, method: str, path: str, **kwargs) -> tuple[float, bool, list[dict]]:
    """One request that returns {"tasks": [...]}, then GET each task once (polling further only if not yet
    FINISHED, bounded). Returns (ms from request to all FINISHED, all FINISHED at the first GET, tasks)."""
    t0 = time.perf_counter()
    r = client.request(method, path, **kwargs)
    if r.status_code != 200:
        common.fail(f"{method} {path} -> {r.status_code} {r.text[:300]}")
    first, tasks = True, []
    for task_id in r.json()["tasks"]:
        task = client.get(f"/cloud/v1/tasks/{task_id}").json()
        first = first and task["state"] == "FINISHED"
        for _ in range(POLL_MAX):  # only if not finished yet; bounded
            if task["state"] in ("FINISHED", "ERROR"):
                break
            time.sleep(POLL_INTERVAL_S)
            task = client.get(f"/cloud/v1/tasks/{task_id}").json()
        if task["state"] != "FINISHED":
            common.fail(f"{method} {path}: task {task_id} did not finish: {task}")
        tasks.append(task)
    return (time.perf_counter() - t0) * 1000, first, tasks


def quantiles(ms: list[float]) -> dict[str, float]:
    """p50 / p99 / max in ms (same method as bench_create.py)."""
    q = statistics.quantiles(sorted(ms), n=100, method="inclusive")
    return {"p50": q[49], "p99": q[98], "max": max(ms)}


async def seed_lbs(t: common.Target, total: int) -> None:
    """Create LBs (bounded concurrency) until the project/region holds `total` of them."""
    async with httpx.AsyncClient(base_url=t.base, headers=t.headers, timeout=30) as client:
        r = await client.get(common.LB_PATH, params={"limit": 1})
        r.raise_for_status()
        have = r.json()["count"]
        todo = iter(range(have + 1, total + 1))
        started = time.monotonic()

        async def worker() -> None:
            for i in todo:  # shared iterator: each index is taken once; bounded by `total`
                if time.monotonic() - started > SEED_DEADLINE_S:
                    raise RuntimeError(f"seeding exceeded {SEED_DEADLINE_S}s")
                r = await client.post(common.LB_PATH, json={"name": f"lb-{i:05d}"})
                r.raise_for_status()
                await wait_task(client, r.json()["tasks"][0])
                if i % 1000 == 0:
                    print(f"seeded {i}/{total} ({time.monotonic() - started:.0f}s)", file=sys.stderr)

        await asyncio.gather(*(worker() for _ in range(SEED_CONCURRENCY)))


if __name__ == "__main__":
    with running(os.environ.get("BENCH_API_KEY") or secrets.token_hex(16)):
        print(f"lbaas seeded with {SEED} LBs at {os.environ.get('BENCH_LBAAS_DB', '(temp db, removed)')}")
