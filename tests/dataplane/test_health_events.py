"""Health events: HAProxy's own messages (events.sock) carry health to the API at once.

Here the poller's full round (every LB's ``show stat``) runs once at the start and then not
for an hour, so everything seen afterwards came from the events (a member going down and
back up) or from the liveness probe (a killed HAProxy, found, restarted).
"""

from __future__ import annotations

import os
import signal

import httpx
import pytest

from lbaas.providers.haproxy import discovery
from tests.dataplane.conftest import DataPlane, haproxy_server, member_statuses, simple_lb, wait_for

DETECT = 15  # monitor delay 2 s x (1 + 1) + timeout 1 s, with slack for a shared 2-core machine


@pytest.fixture(scope="module")
def dp():
    with haproxy_server(stats_interval=3600) as dp:
        yield dp  # the poller's first full round ran at its start, with no LB yet


def test_members_down_and_up_arrive_as_events(dp: DataPlane, caplog) -> None:
    poller = dp.server.app.state.runner.poller
    assert poller.events and poller.stats_interval == 3600
    backends = [dp.backend(f"event-{i}") for i in range(2)]
    client = dp.client()
    lb = simple_lb(client, backends, name="events")
    rounds = poller.full_rounds
    heard = dp.provider._events.received  # noqa: SLF001
    wait_for(
        lambda: set(member_statuses(client, lb.id, "events-pool").values()) == {"ONLINE"},
        timeout=DETECT,
        what="both members ONLINE",
    )
    backends[0].stop()
    dead = backends[0].port
    wait_for(
        lambda: member_statuses(client, lb.id, "events-pool")[dead] == "ERROR", timeout=DETECT, what="ERROR"
    )
    assert client.cloud.load_balancers.get(lb.id).operating_status == "DEGRADED"
    # ... and the log says so, with HAProxy's reason (what an operator watching it expects)
    said = [r.getMessage() for r in caplog.records if lb.id in r.getMessage() and "member" in r.getMessage()]
    assert any("UP -> DOWN (L4CON" in m for m in said), said
    backends[0].start()
    wait_for(
        lambda: member_statuses(client, lb.id, "events-pool")[dead] == "ONLINE", timeout=DETECT, what="ONLINE"
    )
    assert client.cloud.load_balancers.get(lb.id).operating_status == "ONLINE"
    assert poller.full_rounds == rounds  # no full round ran: the events carried it
    assert dp.provider._events.received > heard  # noqa: SLF001


def test_a_killed_haproxy_is_found_by_the_probe(dp: DataPlane) -> None:
    poller = dp.server.app.state.runner.poller
    client = dp.client()
    lb = simple_lb(client, [dp.backend("probed")], name="probed", port=8081)
    url = f"http://{lb.vip_address}:8081/"
    assert httpx.get(url).status_code == 200
    rounds = poller.full_rounds
    master = next(m for m in discovery.find_running(dp.provider.layout) if m.lb_id == lb.id)
    for pid in (master.pid, *master.worker_pids):
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: httpx.get(url).status_code == 200, timeout=DETECT, what="traffic again")
    wait_for(lambda: client.cloud.load_balancers.get(lb.id).operating_status == "ONLINE", what="LB ONLINE")
    assert poller.full_rounds == rounds
