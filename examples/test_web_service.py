"""A user-side test suite: web_service.py against the lbaas emulator.

Run it with ``pytest examples/ -p lbaas.testing``. Every test starts from a reset emulator.
"""

from __future__ import annotations

import threading
import time

import gcore
import pytest
from web_service import DeployError, deploy_web_service, is_serving, remove_web_service

BACKENDS = [("10.0.0.11", 8080), ("10.0.0.12", 8080)]


@pytest.fixture
def client(lbaas):
    """A project of our own, and a client that leaves retrying to the code under test."""
    project = lbaas.new_project("web-team")
    with lbaas.client(project, max_retries=0) as c:
        yield c


def test_deploys_a_serving_load_balancer(lbaas, client) -> None:
    deployment = deploy_web_service(client, "shop", BACKENDS)
    # Every task read FINISHED at its first poll: no test waits for the SDK's 1 s poll interval.
    changes = lbaas.journal(method="POST", path="/cloud/v1/(loadbalancers|lblisteners|lbpools)")
    polls = lbaas.journal(method="GET", path="/cloud/v1/tasks/")
    assert len(changes) == len(polls) == 5
    lb = client.cloud.load_balancers.get(deployment.load_balancer_id)
    assert lb.provisioning_status == "ACTIVE" and lb.vip_address == deployment.vip_address
    pool = client.cloud.load_balancers.pools.get(deployment.pool_id)
    assert sorted((m.address, m.protocol_port) for m in pool.members) == BACKENDS
    assert is_serving(client, deployment.load_balancer_id)


def test_waits_for_a_slow_task(lbaas, client) -> None:
    lbaas.hold_tasks("create_lbpool")
    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.update(d=deploy_web_service(client, "slow", BACKENDS)))
    worker.start()
    for _ in range(200):  # until the pool's task is being held
        if lbaas.held_tasks():
            break
        time.sleep(0.05)
    [held] = lbaas.held_tasks()
    assert held["task_type"] == "create_lbpool"
    lb = client.cloud.load_balancers.list(name="slow").results[0]
    assert lb.provisioning_status == "PENDING_UPDATE"  # what a real slow task shows
    assert worker.is_alive()  # still waiting, not failing
    lbaas.release_tasks()
    worker.join(30)
    assert outcome["d"].load_balancer_id == lb.id
    assert is_serving(client, lb.id)


def test_a_failed_step_leaves_nothing_behind(lbaas, client) -> None:
    lbaas.fail_next("create_lbpool", error="no capacity for pools in this region")
    with pytest.raises(DeployError, match="pool failed: no capacity"):
        deploy_web_service(client, "doomed", BACKENDS)
    assert client.cloud.load_balancers.list().count == 0
    [fault] = lbaas.faults(all=True)
    assert fault["injected"] == 1


def test_retries_when_throttled(lbaas, client) -> None:
    lbaas.inject_http(429, r"/lbpools/", count=2, method="POST", retry_after=0.05)
    deployment = deploy_web_service(client, "busy", BACKENDS)
    assert is_serving(client, deployment.load_balancer_id)
    posts = lbaas.journal(method="POST", path="/lbpools/")
    assert [p["status"] for p in posts] == [429, 429, 200]
    assert client.cloud.load_balancers.pools.list().count == 1  # no duplicate pool


def test_gives_up_after_too_many_conflicts(lbaas, client) -> None:
    lbaas.inject_http(409, r"/lblisteners/", count=None, method="POST", retry_after=0.01)
    with pytest.raises(gcore.ConflictError):
        deploy_web_service(client, "stuck", BACKENDS)
    assert client.cloud.load_balancers.list().count == 0  # cleaned up
    assert len(lbaas.journal(method="POST", path="/lblisteners/", injected=True)) == 5


def test_notices_an_outage(lbaas, client) -> None:
    deployment = deploy_web_service(client, "outage", BACKENDS)
    lbaas.set_health("DOWN", pool_id=deployment.pool_id)
    assert not is_serving(client, deployment.load_balancer_id)
    assert client.cloud.load_balancers.get(deployment.load_balancer_id).operating_status == "ERROR"
    lbaas.clear_faults()
    assert is_serving(client, deployment.load_balancer_id)
    remove_web_service(client, deployment.load_balancer_id)


def test_starts_from_a_prepared_landscape(lbaas, client, gcore_client) -> None:
    deploy_web_service(gcore_client, "base", BACKENDS)
    snapshot = lbaas.export_snapshot(1)
    lbaas.reset()
    assert gcore_client.cloud.load_balancers.list().count == 0
    lbaas.import_snapshot(snapshot)
    assert [lb.name for lb in gcore_client.cloud.load_balancers.list().results] == ["base"]


async def test_async_client(async_gcore_client) -> None:
    lb = await async_gcore_client.cloud.load_balancers.create_and_poll(name="async-lb")
    assert lb.provisioning_status == "ACTIVE"
