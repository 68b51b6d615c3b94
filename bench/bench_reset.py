"""POST /lbaas/v1/reset with 100 nested load balancers on SQLite (the emulator's reset between tests).

100 LBs (the nested shape of bench_nested_create: 2 HTTP listeners, each with a pool of 5 members and
a health monitor, so 1,700 rows) are created once through the API and exported as a
snapshot; then N times: import the snapshot (not timed), reset (timed, from the client: the request the
pytest plugin makes before each test). Prints p50 / p99 / max of the reset request, and the median of the
server's own figure (``took_ms``: the reset transaction alone). Own temp database (seed 0).
"""

import os
import statistics
import time

import common
import httpx
import lbaas_server
from bench_nested_create import nested_body

LBS = 100
N = int(os.environ.get("BENCH_RESETS", "30"))
WARMUP = 3


def measure(client: httpx.Client) -> tuple[int, list[float], list[float]]:
    """(rows in the snapshot, client-side ms per reset, server-side ms per reset)."""
    for i in range(LBS):
        lbaas_server.timed_tasks(client, "POST", common.LB_PATH, json=nested_body(f"lb-{i:03d}"))
    snapshot = client.get("/lbaas/v1/snapshot", params={"project_id": 1})
    if snapshot.status_code != 200:
        common.fail(f"snapshot export -> {snapshot.status_code} {snapshot.text[:300]}")
    doc = snapshot.json()
    client.post("/lbaas/v1/reset").raise_for_status()
    wall, server = [], []
    for i in range(WARMUP + N):
        r = client.post("/lbaas/v1/snapshot", json=doc)
        if r.status_code != 200 or r.json()["imported"]["load_balancers"] != LBS:
            common.fail(f"snapshot import -> {r.status_code} {r.text[:300]}")
        t0 = time.perf_counter()
        r = client.post("/lbaas/v1/reset")
        ms = (time.perf_counter() - t0) * 1000
        if r.status_code != 200 or r.json()["load_balancers_removed"] != LBS:
            common.fail(f"reset -> {r.status_code} {r.text[:300]}")
        if i >= WARMUP:
            wall.append(ms)
            server.append(r.json()["took_ms"])
    return sum(len(v) for v in doc["tables"].values()), wall, server


def main() -> None:
    args = common.parse_args("POST /lbaas/v1/reset with 100 nested LBs (the emulator's reset between tests)")
    if args.baseline_only:
        print("POST /lbaas/v1/reset: lbaas pending (no baseline: an absolute figure, aim < 50 ms)")
        return
    with (
        lbaas_server.running(common.API_KEY, seed=0, fresh=True) as t,
        httpx.Client(base_url=t.base, headers=t.headers, timeout=60) as client,
    ):
        rows, wall, server = measure(client)
    q = lbaas_server.quantiles(wall)
    print(
        f"POST /lbaas/v1/reset with {LBS} nested LBs ({rows} rows), SQLite, n={N}: "
        f"p50 {q['p50']:.1f} / p99 {q['p99']:.1f} / max {q['max']:.1f} ms "
        f"(server transaction p50 {statistics.median(server):.1f} ms)",
        flush=True,
    )


if __name__ == "__main__":
    main()
