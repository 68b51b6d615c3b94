"""Twenty load balancers on real HAProxy, the density properties of issue 8 §5 in small:
all ACTIVE and answering, every member's status fresh, a backend's death seen as ERROR on every
LB within its monitor's bound, the host's capacity answered with Gcore's 403, and an lbaas
restart that adopts every HAProxy as it runs (same master pids, no reload).
bench/bench_density.py measures the same at 1,000."""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import time
from typing import Any

import gcore
import httpx

from tests.conftest import database_url, make_client, serve
from tests.dataplane.conftest import (
    Backend,
    DataPlane,
    finish,
    get,
    haproxy_dirs,
    random_vip_pool,
    stop_everything,
    wait_for,
)

N = 20
DELAY, TIMEOUT, FALL = 2, 1, 2
#: What the monitor allows from a member's death to DOWN: FALL failed checks DELAY apart, the
#: last one taking up to TIMEOUT (a refused connection fails at once: usually less).
BOUND = DELAY * FALL + TIMEOUT
POLL = 0.3
#: The poller's interval and this test's own reading loop, on top of the monitor's bound.
SLACK = POLL + 1.0


def _body(i: int, backends: list[Backend]) -> dict[str, Any]:
    monitor = {
        "type": "HTTP",
        "delay": DELAY,
        "timeout": TIMEOUT,
        "max_retries": 2,
        "max_retries_down": FALL,
        "url_path": "/health",
    }
    pool = {
        "name": f"pool-{i}",
        "protocol": "HTTP",
        "lb_algorithm": "ROUND_ROBIN",
        "members": [b.member for b in backends],
        "healthmonitor": monitor,
    }
    return {
        "name": f"density-{i}",
        "listeners": [{"name": "http", "protocol": "HTTP", "protocol_port": 8080, "pools": [pool]}],
    }


def _members(http: httpx.Client, project_id: int) -> list[dict[str, Any]]:
    """Every member of the project's pools, as the wire has them (``health_detail`` included)."""
    r = http.get(f"/cloud/v1/lbpools/{project_id}/1", params={"details": "true", "limit": 1000})
    r.raise_for_status()
    return [m for pool in r.json()["results"] for m in pool["members"]]


def _since(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp()


def test_twenty_lbs_answer_report_fresh_health_and_survive_an_lbaas_restart(monkeypatch) -> None:
    from lbaas.tasks import poller

    # A round of 20 LBs is stored in three transactions: the backend's death below is one change
    # on every LB at once.
    monkeypatch.setattr(poller, "STORE_BATCH", 7)
    backends = [Backend("density-a").start(), Backend("density-b").start()]
    with haproxy_dirs() as (tmp, run), contextlib.ExitStack() as stack:
        stack.callback(lambda: [b.stop() for b in backends])
        stack.callback(lambda: stop_everything(tmp, run))  # whatever happens below
        db = database_url("sqlite", tmp)
        settings = dict(
            provider="haproxy",
            run_dir=run,
            vip_pool=random_vip_pool(),
            poll_interval=POLL,
            max_load_balancers=N,
        )
        with serve("sqlite", tmp, database=db, **settings) as first:
            project_id, token = first.new_project()
            client = make_client(first, token, project_id)
            http = stack.enter_context(
                httpx.Client(base_url=first.url, headers={"Authorization": f"APIKey {token}"}, timeout=30)
            )

            def create(i: int) -> str:
                task = finish(client, client.cloud.load_balancers.create(**_body(i, backends)))
                return task.created_resources.loadbalancers[0]

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                ids = list(pool.map(create, range(N)))

            # The host is full at max_load_balancers: Gcore's capacity answer, nothing queued.
            try:
                client.cloud.load_balancers.create(**_body(N, backends))
            except gcore.PermissionDeniedError as exc:
                assert exc.status_code == 403
                assert exc.body["exception_class"] == "ForbiddenError"
            else:
                raise AssertionError("a create beyond max_load_balancers was accepted")

            # All ACTIVE and answering, each through its own VIP.
            lbs = {lb.id: lb for lb in client.cloud.load_balancers.list().results}
            assert set(ids) <= set(lbs) and len(lbs) == N
            assert {lbs[i].provisioning_status for i in ids} == {"ACTIVE"}
            vips = [lbs[i].vip_address for i in ids]
            assert len(set(vips)) == N
            for vip in vips:
                assert get(f"http://{vip}:8080/").status_code == 200

            # Every member observed by the poller, ONLINE, from a check that passed.
            def all_online() -> list[dict[str, Any]] | None:
                ms = _members(http, project_id)
                ok = len(ms) == 2 * N and all(
                    m["operating_status"] == "ONLINE" and (m["health_detail"] or {}).get("health") == "UP"
                    for m in ms
                )
                return ms if ok else None

            members = wait_for(all_online, timeout=10, what="every member ONLINE and UP")

            # One backend dies: its member on every LB reads ERROR within the monitor's bound, and the
            # API shows HAProxy's verdict within 2 x delay of HAProxy reaching it.
            victim = backends[1]
            on_victim = {m["id"] for m in members if m["protocol_port"] == victim.port}
            assert len(on_victim) == N
            killed = time.monotonic()
            victim.stop()
            seen: dict[str, float] = {}
            lag: dict[str, float] = {}
            while len(seen) < N and time.monotonic() - killed < BOUND + SLACK + 5:
                now, wall = time.monotonic(), time.time()
                for m in _members(http, project_id):
                    if m["id"] in on_victim and m["id"] not in seen and m["operating_status"] == "ERROR":
                        seen[m["id"]] = now - killed
                        lag[m["id"]] = wall - _since(m["health_detail"]["since"])
                time.sleep(0.1)
            assert len(seen) == N, f"{N - len(seen)} members never read ERROR"
            assert max(seen.values()) <= BOUND + SLACK, sorted(seen.values())
            # ``since`` has a one-second resolution (truncated): allow that second.
            assert max(lag.values()) <= 2 * DELAY + 1, sorted(lag.values())
            assert {
                m["health_detail"]["check_status"] for m in _members(http, project_id) if m["id"] in seen
            } & {
                "L4CON",
                "L7STS",
                "L4TOUT",
                "SOCKERR",
            }
            for vip in vips:  # the survivor carries everything
                assert get(f"http://{vip}:8080/").text == "density-a"

            victim.start()  # same port
            wait_for(all_online, timeout=2 * DELAY * 2 + SLACK + 5, what="the backend's members back ONLINE")
            before = {
                p.lb_id: (p.pid, p.reloads, p.config_hash) for p in DataPlane(first).provider.processes()
            }
            assert set(before) == set(ids)

        # lbaas restarts alone: every HAProxy adopted as it runs, none restarted nor reloaded.
        began = time.monotonic()
        with serve("sqlite", tmp, database=db, **settings) as second:
            adopted_in = time.monotonic() - began
            after = {
                p.lb_id: (p.pid, p.reloads, p.config_hash) for p in DataPlane(second).provider.processes()
            }
            assert after == before
            assert adopted_in < 10, adopted_in
            for vip in vips:
                assert get(f"http://{vip}:8080/").status_code == 200
            client = make_client(second, token, project_id)
            statuses = {lb.id: lb.operating_status for lb in client.cloud.load_balancers.list().results}
            assert statuses == {i: "ONLINE" for i in ids}
            second.provider.stop_all()
