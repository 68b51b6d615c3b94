"""Client code under test: deploy a web service's load balancer on Gcore Cloud.

This is the kind of code a team writes against Gcore's load-balancer API (it is not part of
lbaas): create a load balancer, an HTTP listener and a pool with members and a health
monitor, waiting for each task, retrying when the API says "busy" (409) or "slow down"
(429), and removing what it created when a step fails for good. ``test_web_service.py``
tests it against the lbaas emulator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import gcore

T = TypeVar("T")

RETRIED = (gcore.ConflictError, gcore.RateLimitError)


class DeployError(RuntimeError):
    """The service could not be deployed; nothing it created is left behind."""


@dataclass(frozen=True)
class Deployment:
    load_balancer_id: str
    listener_id: str
    pool_id: str
    vip_address: str


def with_retries(call: Callable[[], T], *, attempts: int = 5, backoff: float = 0.05) -> T:
    """Call ``call``; on 409/429 wait (the server's Retry-After if it sent one) and try again."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except RETRIED as exc:
            if attempt == attempts:
                raise
            retry_after = exc.response.headers.get("retry-after")
            time.sleep(float(retry_after) if retry_after else backoff * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def _wait(client: gcore.Gcore, task_ids: list[str], what: str) -> list[gcore.types.cloud.Task]:
    done = []
    for task_id in task_ids:
        try:
            done.append(client.cloud.tasks.poll(task_id, polling_timeout_seconds=60))
        except ValueError as exc:  # the SDK raises ValueError when a task ends in ERROR
            raise DeployError(f"{what} failed: {exc}") from exc
    return done


def deploy_web_service(
    client: gcore.Gcore, name: str, backends: list[tuple[str, int]], *, port: int = 80
) -> Deployment:
    """Create ``name``: an LB with an HTTP listener on ``port`` and a pool of ``backends``.

    The client should have ``max_retries=0``: this function does its own retrying.
    """
    lbs = client.cloud.load_balancers
    tasks = with_retries(lambda: lbs.create(name=name, tags={"service": name}))
    [task] = _wait(client, tasks.tasks, "load balancer")
    lb_id = task.created_resources.loadbalancers[0]
    try:
        tasks = with_retries(
            lambda: lbs.listeners.create(
                load_balancer_id=lb_id, name=f"{name}-http", protocol="HTTP", protocol_port=port
            )
        )
        [task] = _wait(client, tasks.tasks, "listener")
        listener_id = task.created_resources.listeners[0]
        tasks = with_retries(
            lambda: lbs.pools.create(
                name=f"{name}-pool",
                protocol="HTTP",
                lb_algorithm="ROUND_ROBIN",
                listener_id=listener_id,
                healthmonitor={"type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 2, "url_path": "/"},
            )
        )
        [task] = _wait(client, tasks.tasks, "pool")
        pool_id = task.created_resources.pools[0]
        for address, backend_port in backends:
            tasks = with_retries(
                lambda a=address, p=backend_port: lbs.pools.members.create(
                    pool_id, address=a, protocol_port=p
                )
            )
            _wait(client, tasks.tasks, f"member {address}:{backend_port}")
    except Exception:
        remove_web_service(client, lb_id)
        raise
    return Deployment(lb_id, listener_id, pool_id, lbs.get(lb_id).vip_address)


def remove_web_service(client: gcore.Gcore, lb_id: str) -> None:
    """Delete the load balancer with everything in it, and wait for it to go."""
    tasks = with_retries(lambda: client.cloud.load_balancers.delete(lb_id))
    _wait(client, tasks.tasks, "delete")


def is_serving(client: gcore.Gcore, lb_id: str) -> bool:
    """True when the load balancer and every listener, pool and member read ONLINE."""
    tree = client.cloud.load_balancers.statuses.get(lb_id)
    statuses = [tree.operating_status]
    for listener in tree.listeners:
        statuses.append(listener.operating_status)
        for pool in listener.pools:
            statuses.append(pool.operating_status)
            statuses += [m.operating_status for m in pool.members]
    return all(s == "ONLINE" for s in statuses)
