"""PUT .../pools/{pool_id}/members (bare JSON array of 100 members) -> tasks FINISHED latency, noop provider.

- changed-100: alternate between two disjoint sets of 100 addresses (127.0.3.1-100 / 127.0.3.101-200, :8080),
  so every PUT removes 100 members and adds 100;
- unchanged-100: PUT the set the pool already holds (returns {"tasks": []}: the request alone is timed);
- baseline, single-member: POST .../members with one new member, into a second pool (so the PUT pool stays
  at 100).
Each timed call is the request then one GET per returned task (polling further only if not yet FINISHED).
The three are interleaved, N of each after a warm-up, on an LB with HTTP listeners and pools made through the
API, in a temp database of its own (seed 0).
"""

import os

import common
import httpx
import lbaas_server

N = int(os.environ.get("BENCH_MEMBER_PUTS", "50"))
WARMUP = 4
SETS = (
    [{"address": f"127.0.3.{h}", "protocol_port": 8080} for h in range(1, 101)],
    [{"address": f"127.0.3.{h}", "protocol_port": 8080} for h in range(101, 201)],
)


def created(client: httpx.Client, path: str, body: dict, kind: str) -> str:
    _, _, tasks = lbaas_server.timed_tasks(client, "POST", path, json=body)
    ids = tasks[0]["created_resources"].get(kind) or []
    if len(ids) != 1:
        common.fail(f"POST {path}: expected one {kind} in created_resources: {tasks}")
    return ids[0]


def make_pool(client: httpx.Client, lb_id: str, port: int) -> str:
    listener_id = created(
        client,
        "/cloud/v1/lblisteners/1/1",
        {"load_balancer_id": lb_id, "name": f"bench-l{port}", "protocol": "HTTP", "protocol_port": port},
        "listeners",
    )
    return created(
        client,
        "/cloud/v1/lbpools/1/1",
        {
            "listener_id": listener_id,
            "name": f"bench-p{port}",
            "protocol": "HTTP",
            "lb_algorithm": "ROUND_ROBIN",
        },
        "pools",
    )


def main() -> None:
    args = common.parse_args("PUT 100 members -> FINISHED latency (noop provider), vs one member create")
    figure = f"MEMBERS PUT->FINISHED noop (100 members, request + GET tasks, N={N} each)"
    if args.baseline_only:
        print(f"{figure}: lbaas pending (baseline: lbaas's own single member create)")
        return
    with (
        lbaas_server.running(common.API_KEY, seed=0, fresh=True) as t,
        httpx.Client(base_url=t.base, headers=t.headers, timeout=30) as client,
    ):
        lb_id = created(client, common.LB_PATH, {"name": "bench-members"}, "loadbalancers")
        put_pool, post_pool = make_pool(client, lb_id, 80), make_pool(client, lb_id, 8080)
        put_path = f"{common.LB_PATH}/pools/{put_pool}/members"
        post_path = f"{common.LB_PATH}/pools/{post_pool}/members"
        runs = {"changed": [], "unchanged": [], "single": []}
        for i in range(WARMUP + N):
            members = SETS[i % 2]
            changed = lbaas_server.timed_tasks(client, "PUT", put_path, json=members)
            unchanged = lbaas_server.timed_tasks(client, "PUT", put_path, json=members)
            single = lbaas_server.timed_tasks(
                client, "POST", post_path, json={"address": f"127.0.4.{i + 1}", "protocol_port": 8080}
            )
            if len(changed[2]) != 1 or unchanged[2] or len(single[2]) != 1:
                common.fail(f"iteration {i}: unexpected tasks: {changed[2]} / {unchanged[2]} / {single[2]}")
            if i >= WARMUP:
                runs["changed"].append(changed[:2])
                runs["unchanged"].append(unchanged[:2])
                runs["single"].append(single[:2])
        # Sanity check outside the timing: the pool holds exactly the last set PUT.
        r = client.get(put_path)
        got = sorted(m["address"] for m in r.json()["results"])
        if got != sorted(m["address"] for m in SETS[(WARMUP + N - 1) % 2]):
            common.fail(f"pool {put_pool} does not hold the last PUT set: {len(got)} members")
    parts = []
    for name, label in (
        ("changed", "changed-100"),
        ("unchanged", "unchanged-100"),
        ("single", "single-member POST"),
    ):
        q = lbaas_server.quantiles([m for m, _ in runs[name]])
        extra = "" if name == "unchanged" else f", FINISHED at first GET {sum(f for _, f in runs[name])}/{N}"
        parts.append(f"{label} p50 {q['p50']:.2f} ms, p99 {q['p99']:.2f} ms, max {q['max']:.2f} ms{extra}")
    print(f"{figure}: lbaas " + " | ".join(parts), flush=True)


if __name__ == "__main__":
    main()
