"""Nested create -> FINISHED latency (noop provider), beside a plain (LB-only) create measured the same way.

Nested: POST /cloud/v1/loadbalancers/1/1 with 2 HTTP listeners (80, 8080), each with one pool of 5 members
(127.0.3.x:8080) and an HTTP health monitor (delay 5, max_retries 3, timeout 3). Each create is one POST then
one GET /cloud/v1/tasks/{id} (polling further only if not yet FINISHED); N of each, sequential, nested and
plain alternating so both see the same machine load. Uses its own temp database (seed 0), deletes nothing.
"""

import os

import common
import httpx
import lbaas_server

N = int(os.environ.get("BENCH_NESTED_CREATES", "100"))
WARMUP = 5


def nested_body(name: str) -> dict:
    def listener(port: int, hosts: range) -> dict:
        return {
            "name": f"{name}-l{port}",
            "protocol": "HTTP",
            "protocol_port": port,
            "pools": [
                {
                    "name": f"{name}-p{port}",
                    "protocol": "HTTP",
                    "lb_algorithm": "ROUND_ROBIN",
                    "healthmonitor": {"type": "HTTP", "delay": 5, "max_retries": 3, "timeout": 3},
                    "members": [{"address": f"127.0.3.{h}", "protocol_port": 8080} for h in hosts],
                }
            ],
        }

    return {"name": name, "listeners": [listener(80, range(1, 6)), listener(8080, range(6, 11))]}


def create_once(client: httpx.Client, body: dict, nested: bool) -> tuple[float, bool]:
    ms, first, tasks = lbaas_server.timed_tasks(client, "POST", common.LB_PATH, json=body)
    created = tasks[0]["created_resources"] if len(tasks) == 1 else {}
    ok = len(created.get("loadbalancers") or []) == 1
    if nested:
        ok = ok and all(len(created.get(k) or []) == 2 for k in ("listeners", "pools"))
    if not ok:
        common.fail(f"create {body['name']} did not finish with the expected resources: {tasks}")
    return ms, first


def main() -> None:
    args = common.parse_args("nested create -> FINISHED latency (noop provider), sequential, vs plain create")
    figure = f"NESTED CREATE->FINISHED noop (2 listeners x pool of 5 + HTTP HM; POST + GET task, N={N})"
    if args.baseline_only:
        print(f"{figure}: lbaas pending (no bare/minimal baseline: the baseline is lbaas's plain create)")
        return
    with (
        lbaas_server.running(common.API_KEY, seed=0, fresh=True) as t,
        httpx.Client(base_url=t.base, headers=t.headers, timeout=30) as client,
    ):
        for i in range(WARMUP):
            create_once(client, nested_body(f"warm-nested-{i:03d}"), True)
            create_once(client, {"name": f"warm-plain-{i:03d}"}, False)
        nested, plain = [], []
        for i in range(N):
            nested.append(create_once(client, nested_body(f"bench-nested-{i:04d}"), True))
            plain.append(create_once(client, {"name": f"bench-plain-{i:04d}"}, False))
        # Sanity check outside the timing: the nested LB holds what was asked for.
        lb_id = client.get(common.LB_PATH, params={"name": "bench-nested-0000"}).json()["results"][0]["id"]
        r = client.get("/cloud/v1/lbpools/1/1", params={"load_balancer_id": lb_id, "details": "true"})
        pools = r.json()["results"]
        if len(pools) != 2 or any(len(p["members"]) != 5 or not p.get("healthmonitor") for p in pools):
            common.fail(f"nested LB {lb_id} pools not as created: {r.text[:500]}")
    qn = lbaas_server.quantiles([m for m, _ in nested])
    qp = lbaas_server.quantiles([m for m, _ in plain])

    def fmt(q: dict, runs: list) -> str:
        return (
            f"p50 {q['p50']:.2f} ms, p99 {q['p99']:.2f} ms, max {q['max']:.2f} ms, "
            f"FINISHED at first GET {sum(f for _, f in runs)}/{N}"
        )

    print(
        f"{figure}: lbaas nested {fmt(qn, nested)} | plain create {fmt(qp, plain)} | "
        f"nested/plain p50 {qn['p50'] / qp['p50']:.2f}, p99 {qn['p99'] / qp['p99']:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
