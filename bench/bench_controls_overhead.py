"""What the emulator's controls cost a request when none is configured: GET and seed PATCH, on vs off.

Two apps in this process on copies of the same database, identical but for ``emulator_controls``
(the request hook, the provider wrapper and the admin routes are there only when it is on),
driven through httpx's ASGI transport (no sockets, no wrk: the figure is the app's own cost, and
interleaving the runs cancels most of the noise of a shared machine). Prints the median wall and
CPU microseconds per request of 4 interleaved runs. ``BENCH_LBAAS_DB``: a seeded database to copy
(e.g. from ``bench/lbaas_server.py``); otherwise 1,000 LBs are created first.
"""

import asyncio
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from lbaas.api.app import create_app
from lbaas.config import Settings

KEY = "1$" + secrets.token_hex(32)
LB_PATH = "/cloud/v1/loadbalancers/1/1"
RUNS = 4
N = {"GET": int(os.environ.get("BENCH_OVERHEAD_GETS", "3000")), "PATCH": 600}
BODY = {"name": "lb-renamed", "tags": {"k": "v", "gone": None}}


def app_on(db: Path, controls: bool):
    settings = Settings.from_env(
        database_url=f"sqlite:///{db}",
        data_dir=db.parent,
        admin_api_key=KEY,
        provider="noop",
        emulator_controls=controls,
        run_worker=False,
    )
    return create_app(settings, start_worker=False)


def client(app) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(
        transport=transport, base_url="http://bench", headers={"Authorization": f"APIKey {KEY}"}
    )


async def seed(db: Path, count: int) -> None:
    app = app_on(db, False)
    async with app.router.lifespan_context(app), client(app) as c:
        for i in range(count):  # bounded; each create runs its task inline (noop)
            r = await c.post(LB_PATH, json={"name": f"lb-{i:05d}"})
            r.raise_for_status()


async def run(app, method: str) -> tuple[float, float]:
    async with app.router.lifespan_context(app), client(app) as c:
        r = await c.get(LB_PATH, params={"limit": 1})
        path = f"{LB_PATH}/{r.json()['results'][0]['id']}"

        def one():
            return c.get(path) if method == "GET" else c.patch(path, json=BODY)

        for _ in range(50):
            await one()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(N[method]):
            r = await one()
            if r.status_code != 200:
                sys.exit(f"bench: {method} {path} -> {r.status_code} {r.text[:200]}")
        return (time.perf_counter() - t0) / N[method] * 1e6, (time.process_time() - c0) / N[method] * 1e6


def main() -> None:
    if "--baseline-only" in sys.argv:
        print("emulator controls overhead: pending (its baseline is the same app with the controls off)")
        return
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        source = Path(tmp) / "seed" / "db.sqlite"
        source.parent.mkdir()
        if os.environ.get("BENCH_LBAAS_DB"):
            shutil.copy(os.environ["BENCH_LBAAS_DB"], source)
        else:
            asyncio.run(seed(source, 1000))
        apps = {}
        for name, controls in (("off", False), ("on", True)):
            (Path(tmp) / name).mkdir()
            shutil.copy(source, Path(tmp) / name / "db.sqlite")
            apps[name] = app_on(Path(tmp) / name / "db.sqlite", controls)
        parts = []
        for method in ("GET", "PATCH"):
            results: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
            for i in range(RUNS):
                for name in ("off", "on") if i % 2 == 0 else ("on", "off"):
                    results[name].append(asyncio.run(run(apps[name], method)))
            for name in ("off", "on"):
                wall = statistics.median(w for w, _ in results[name])
                cpu = statistics.median(c for _, c in results[name])
                parts.append(f"{method} controls {name} {wall:.0f} us wall / {cpu:.0f} us CPU")
        print(
            "emulator controls overhead (in-process, per request, median of 4): " + " | ".join(parts),
            flush=True,
        )


if __name__ == "__main__":
    main()
