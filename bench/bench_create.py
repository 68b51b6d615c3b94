"""Create -> FINISHED latency with the noop provider: N sequential creates, each POST then GET the task once
(as an SDK would); p50/p99 over N, and how many tasks were already FINISHED at that first GET."""

import os
import statistics
import time

import common
import httpx
import lbaas_server

N = int(os.environ.get("BENCH_CREATES", "200"))
WARMUP = 10


def create_once(client: httpx.Client, i: int) -> tuple[float, bool]:
    t0 = time.perf_counter()
    r = client.post(common.LB_PATH, json={"name": f"bench-create-{i:05d}"})
    r.raise_for_status()
    task_id = r.json()["tasks"][0]
    task = client.get(f"/cloud/v1/tasks/{task_id}").json()
    first = task["state"] == "FINISHED"
    for _ in range(lbaas_server.POLL_MAX):  # only if not finished yet; bounded
        if task["state"] in ("FINISHED", "ERROR"):
            break
        time.sleep(lbaas_server.POLL_INTERVAL_S)
        task = client.get(f"/cloud/v1/tasks/{task_id}").json()
    if task["state"] != "FINISHED" or not task["created_resources"]["loadbalancers"]:
        common.fail(f"create task {task_id} did not finish with a load balancer: {task}")
    return (time.perf_counter() - t0) * 1000, first


def main() -> None:
    args = common.parse_args("create -> FINISHED latency (noop provider), sequential")
    figure = f"CREATE->FINISHED noop (sequential POST + GET task, N={N})"
    if args.baseline_only:
        print(f"{figure}: lbaas pending (no baseline: bare/minimal have no tasks)")
        return
    with (
        lbaas_server.running(common.API_KEY, seed=0) as t,
        httpx.Client(base_url=t.base, headers=t.headers, timeout=30) as client,
    ):
        for i in range(WARMUP):
            create_once(client, i)
        runs = [create_once(client, WARMUP + i) for i in range(N)]
    ms = sorted(m for m, _ in runs)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    first = sum(f for _, f in runs)
    print(
        f"{figure}: lbaas p50 {q[49]:.2f} ms, p99 {q[98]:.2f} ms, max {ms[-1]:.2f} ms, "
        f"FINISHED at first GET {first}/{N}"
    )
    common.record(figure, {"lbaas": {"1": {"p50": q[49], "p99": q[98], "max": ms[-1]}}})


if __name__ == "__main__":
    main()
