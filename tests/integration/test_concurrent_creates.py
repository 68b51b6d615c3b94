"""Concurrent first requests on a fresh server: none may answer 5xx.

On PostgreSQL, the first creates of a fresh database raced to insert the VIP pool's row (a unique
violation: 500). And with more concurrent requests than pooled connections, the request holding the
pool row's lock asked for a second connection (a read of the emulator's controls) that the waiting
requests held: everything stalled for the pool's 30 s timeout. Every create here must answer 200
with its own address, within the client's timeout.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time

import httpx
import pytest

from tests.conftest import serve

CREATES = 40  # more than the PostgreSQL pool's connections
WAVES = 3


@pytest.mark.parametrize("backend", ["sqlite", "pg"])
def test_concurrent_first_creates_all_succeed(backend: str, tmp_path) -> None:
    with serve(backend, tmp_path) as srv:
        project_id, token = srv.new_project()
        url = f"{srv.url}/cloud/v1/loadbalancers/{project_id}/1"
        headers = {"Authorization": f"APIKey {token}"}
        answers: list[httpx.Response] = []
        for wave in range(WAVES):  # the controls' cached view goes stale between waves (0.25 s)
            time.sleep(0.3)
            barrier = threading.Barrier(CREATES)

            def create(i: int, wave: int = wave, barrier: threading.Barrier = barrier) -> httpx.Response:
                with httpx.Client(headers=headers, timeout=20) as http:
                    barrier.wait()
                    return http.post(url, json={"name": f"race-{wave}-{i}", "listeners": []})

            with concurrent.futures.ThreadPoolExecutor(CREATES) as pool:
                answers += pool.map(create, range(CREATES))
        assert [r.status_code for r in answers] == [200] * CREATES * WAVES, [
            r.text for r in answers if r.status_code != 200
        ]
        with httpx.Client(headers=headers) as http:
            lbs = http.get(url).json()["results"]
        assert len(lbs) == CREATES * WAVES
        assert len({lb["vip_address"] for lb in lbs}) == CREATES * WAVES  # no address handed out twice


def test_the_controls_read_inside_a_transaction_takes_no_second_connection(server) -> None:
    """The emulator's view, refreshed inside a request's write transaction, reads with that
    transaction's connection: a second connection could wait for a pool that the requests
    waiting on this transaction's row locks hold (PostgreSQL: a 30 s stall at 32 clients)."""
    from lbaas.db.engine import PG_CONNECTIONS, PG_LOOP_THREADS
    from lbaas.emulator.controls import Controls

    controls = Controls(server.db)

    def no_second_connection():
        raise AssertionError("a second connection was asked for")

    with server.db.write() as conn:
        controls.db = type("NoPool", (), {"read": staticmethod(no_second_connection)})()
        assert controls.view(max_age=0, conn=conn).version >= 0
    # The loop's database threads leave connections for the workers, the poller and the sampler.
    assert PG_LOOP_THREADS + 8 <= PG_CONNECTIONS
