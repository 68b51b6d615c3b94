"""Concurrent first requests on a fresh server: none may answer 5xx.

On PostgreSQL, the first creates of a fresh database raced to insert the VIP pool's row (a unique
violation: 500). Every create here must answer 200 with its own address.
"""

from __future__ import annotations

import concurrent.futures

import httpx
import pytest

from tests.conftest import serve

CREATES = 16


@pytest.mark.parametrize("backend", ["sqlite", "pg"])
def test_concurrent_first_creates_all_succeed(backend: str, tmp_path) -> None:
    with serve(backend, tmp_path) as srv:
        project_id, token = srv.new_project()
        url = f"{srv.url}/cloud/v1/loadbalancers/{project_id}/1"
        headers = {"Authorization": f"APIKey {token}"}
        barrier = concurrent.futures.thread.threading.Barrier(CREATES)

        def create(i: int) -> httpx.Response:
            with httpx.Client(headers=headers, timeout=30) as http:
                barrier.wait()
                return http.post(url, json={"name": f"race-{i}", "listeners": []})

        with concurrent.futures.ThreadPoolExecutor(CREATES) as pool:
            answers = list(pool.map(create, range(CREATES)))
        assert [r.status_code for r in answers] == [200] * CREATES, [
            r.text for r in answers if r.status_code != 200
        ]
        with httpx.Client(headers=headers) as http:
            lbs = http.get(url).json()["results"]
        assert len(lbs) == CREATES
        assert len({lb["vip_address"] for lb in lbs}) == CREATES  # no address handed out twice
