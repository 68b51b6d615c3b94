"""The data plane must not slow the API (issue 10): GET and seed PATCH of one LB, idle vs with
100 load balancers on the haproxy provider being health-polled, in the same lbaas process.

    .venv/bin/python bench/bench_api_under_dataplane.py [--lbs 100] [--seconds 5] [--rounds 3]

One ``lbaas serve --provider haproxy`` (SQLite, its own data dir and address pools); two nginx
backends on 127.0.0.1. First the idle figures (no HAProxy running), then ``--lbs`` LBs each with an
HTTP listener, a pool of both backends and an HTTP health monitor (delay 5 s, HAProxy checks them;
lbaas's poller reads every HAProxy's stats every poll interval), then the same figures again. Each
figure is the median of ``--rounds`` wrk runs. Then the polled LBs are deleted and the idle figures
measured again, so that a machine that changed speed during the run shows as two different idle
figures. Aim (issue 10): loaded within 10 % of idle.

``--interleaved``: two lbaas processes instead, one with the polled LBs and one without, the
rounds alternating between them (the host's drift cancels; see :func:`interleaved`).
Needs haproxy, nginx, wrk.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from bench_dataplane import ADMIN, Lbaas, nginx  # noqa: E402

PATCH = json.dumps({"name": "patched", "tags": {"k": "v", "gone": None}})


def figures(lb: Lbaas, lb_id: str, seconds: int, rounds: int) -> dict:
    headers = {"Authorization": f"APIKey {ADMIN}"}
    url = f"{lb.url}/cloud/v1/loadbalancers/1/1/{lb_id}"
    out = {}
    for name, method, body in (("GET", "GET", None), ("PATCH", "PATCH", PATCH)):
        lua = common.lua_script(method, headers, body)
        common.run_wrk(url, 16, 1, lua)  # warm-up
        for c in (1, 16):
            runs = [common.run_wrk(url, c, seconds, lua) for _ in range(rounds)]
            out[f"{name} c{c}"] = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")}
    return out


def _measured(lb: Lbaas) -> str:
    """A measured LB without listeners (nothing of it is polled): its id."""
    task = lb.http.post("/cloud/v1/loadbalancers/1/1", json={"name": "measured"}).json()["tasks"][0]
    lb.task_done(task)
    return lb.created(task, "loadbalancers")


def _online(lb: Lbaas) -> int:
    results = lb.http.get("/cloud/v1/loadbalancers/1/1", params={"limit": 1000}).json()["results"]
    return sum(1 for r in results if r["operating_status"] == "ONLINE")


def interleaved(args: argparse.Namespace) -> None:
    """Two lbaas processes side by side, one serving ``--lbs`` polled LBs and one none; every
    round runs the same wrk against both, the order alternating (idle first, then polled first),
    so a host that speeds up or slows down during the run moves both alike. Printed: the medians,
    their ratio, and the median of the rounds' own ratios."""
    headers = {"Authorization": f"APIKey {ADMIN}"}
    with nginx(2) as ports:
        quiet, busy = Lbaas(), Lbaas()
        try:
            urls = {
                name: f"{lb.url}/cloud/v1/loadbalancers/1/1/{_measured(lb)}"
                for name, lb in (("idle", quiet), ("polled", busy))
            }
            began = time.monotonic()
            for task in [busy.create_lb(ports) for _ in range(args.lbs)]:
                busy.task_done(task, timeout=600)
            print(
                f"{args.lbs} LBs with a monitored pool ACTIVE in {time.monotonic() - began:.1f} s", flush=True
            )
            time.sleep(10)  # two health-check periods: HAProxy checks, lbaas polls
            print(f"operating_status ONLINE: {_online(busy)} of {args.lbs + 1} LBs", flush=True)
            for name, method, body in (("GET", "GET", None), ("PATCH", "PATCH", PATCH)):
                lua = common.lua_script(method, headers, body)
                for url in urls.values():
                    common.run_wrk(url, 16, 1, lua)  # warm-up
                for c in (1, 16):
                    runs: dict[str, list[dict]] = {"idle": [], "polled": []}
                    for r in range(args.rounds):
                        for which in ("idle", "polled") if r % 2 == 0 else ("polled", "idle"):
                            runs[which].append(common.run_wrk(urls[which], c, args.seconds, lua))
                    med = {
                        w: {k: statistics.median(x[k] for x in v) for k in ("rps", "p50", "p99")}
                        for w, v in runs.items()
                    }
                    per_round = statistics.median(
                        p["rps"] / i["rps"] for i, p in zip(runs["idle"], runs["polled"], strict=True)
                    )
                    i, b = med["idle"], med["polled"]
                    print(
                        f"{name} c{c} (interleaved, {args.rounds} rounds): idle {i['rps']:,.0f} req/s "
                        f"(p50 {i['p50']:.2f} / p99 {i['p99']:.2f} ms), with {args.lbs} LBs polled "
                        f"{b['rps']:,.0f} req/s (p50 {b['p50']:.2f} / p99 {b['p99']:.2f} ms), "
                        f"polled/idle {b['rps'] / i['rps']:.2f}, median of each round's {per_round:.2f}",
                        flush=True,
                    )
        finally:
            busy.close()
            quiet.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lbs", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=common.SECONDS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--interleaved",
        action="store_true",
        help="two lbaas side by side, rounds alternating (see interleaved)",
    )
    args = parser.parse_args()
    if args.interleaved:
        interleaved(args)
        return
    with nginx(2) as ports:
        lb = Lbaas()
        try:
            target = lb.http.post("/cloud/v1/loadbalancers/1/1", json={"name": "measured"}).json()
            lb.task_done(target["tasks"][0])
            target_id = lb.created(target["tasks"][0], "loadbalancers")
            idle = figures(lb, target_id, args.seconds, args.rounds)
            began = time.monotonic()
            tasks = [lb.create_lb(ports) for _ in range(args.lbs)]
            for t in tasks:
                lb.task_done(t, timeout=600)
            active = lb.http.get("/cloud/v1/loadbalancers/1/1", params={"limit": 1000}).json()["results"]
            running = sum(1 for r in active if r["provisioning_status"] == "ACTIVE" and r["listeners"])
            print(
                f"{running} LBs with a monitored pool ACTIVE in {time.monotonic() - began:.1f} s", flush=True
            )
            time.sleep(10)  # two health-check periods: HAProxy checks, lbaas polls
            online = sum(
                1
                for r in lb.http.get("/cloud/v1/loadbalancers/1/1", params={"limit": 1000}).json()["results"]
                if r["operating_status"] == "ONLINE"
            )
            loaded = figures(lb, target_id, args.seconds, args.rounds)
            # Idle again: the polled LBs deleted (their HAProxy processes stop), so a machine that
            # got slower or faster during the run shows in the two idle figures, not in the ratio.
            ids = [r["id"] for r in active if r["id"] != target_id]
            gone = [lb.tasks("DELETE", f"/cloud/v1/loadbalancers/1/1/{i}")[0] for i in ids]
            for t in gone:
                lb.task_done(t, timeout=600)
            time.sleep(2)
            after = figures(lb, target_id, args.seconds, args.rounds)
        finally:
            lb.close()
    print(
        f"operating_status ONLINE: {online} of {args.lbs + 1} LBs (the measured one has no listener)",
        flush=True,
    )
    for key in idle:
        i, b, a = idle[key], loaded[key], after[key]
        print(
            f"{key}: idle {i['rps']:,.0f} req/s (p50 {i['p50']:.2f} / p99 {i['p99']:.2f} ms), "
            f"with {args.lbs} LBs polled {b['rps']:,.0f} req/s (p50 {b['p50']:.2f} / p99 {b['p99']:.2f} ms), "
            f"idle again {a['rps']:,.0f} req/s (p50 {a['p50']:.2f} / p99 {a['p99']:.2f} ms), "
            f"loaded/idle {b['rps'] / i['rps']:.2f}, "
            f"loaded/mean of both idle {2 * b['rps'] / (i['rps'] + a['rps']):.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
