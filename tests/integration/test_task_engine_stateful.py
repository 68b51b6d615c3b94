"""Random sequences of changes to one LB tree, with tasks queued behind each other, always end cleanly.

A Hypothesis state machine sends creates, updates and deletes of a load balancer
and its children through the real API while the worker is held; now and then it
lets the worker run one task or all of them, or makes the data plane refuse the
next apply. Whatever the sequence: no request answers 5xx, at every step an LB
holds at most one running task and a PENDING LB names an active task, and once
the queue is drained every task is FINISHED or ERROR and nothing is PENDING_*.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
)

from lbaas.db import tables
from tests.integration.engine_harness import L7, LB, LB2, LIS, LIS2, NESTED, POOL, POOL2, Held, held_server

_SERVER: dict[str, Held] = {}


@pytest.fixture(scope="module", autouse=True)
def _held_server():
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=shm) as tmp, held_server("sqlite", Path(tmp)) as h:
        _SERVER["h"] = h
        yield
        _SERVER.clear()


ports = st.integers(min_value=1, max_value=65535)
limits = st.sampled_from([-1, 1, 500, 100_000])
weights = st.integers(min_value=1, max_value=256)


class LoadBalancerTree(RuleBasedStateMachine):
    """One LB at a time; its children come and go; tasks pile up behind each other."""

    listeners = Bundle("listeners")
    pools = Bundle("pools")
    members = Bundle("members")
    policies = Bundle("policies")

    def __init__(self) -> None:
        super().__init__()
        self.h = _SERVER["h"]
        self.lb: str | None = None
        self.first: dict[str, list[str]] = {}
        self.tasks: list[str] = []

    # -- helpers ---------------------------------------------------------------
    def send(self, method: str, path: str, body=None, kind: str | None = None) -> list[str]:
        """Send a request; 5xx fails the run; returns the ids the accepted task will create."""
        res = self.h.call(method, path, body)
        assert res.status_code < 500, (method, path, body, res.status_code, res.text)
        if res.status_code != 200 or "tasks" not in res.json():
            return []
        self.tasks += res.json()["tasks"]
        if kind is None:
            return []
        with self.h.db.read() as conn:
            planned = conn.execute(
                sa.select(tables.tasks.c.planned_resources).where(tables.tasks.c.id == res.json()["tasks"][0])
            ).scalar_one()
        return planned[kind]

    def new_lb(self) -> None:
        """An LB with a listener, a pool (with a member and a monitor), queued, not yet run."""
        self.send("POST", LB, NESTED)
        task = self.tasks[-1]
        with self.h.db.read() as conn:
            planned = conn.execute(
                sa.select(tables.tasks.c.planned_resources).where(tables.tasks.c.id == task)
            ).scalar_one()
        self.lb = planned["loadbalancers"][0]
        self.first = planned

    @initialize(target=listeners)
    def start_with_a_listener(self):
        if self.lb is None:
            self.new_lb()
        return self.first["listeners"][0]

    @initialize(target=pools)
    def start_with_a_pool(self):
        if self.lb is None:
            self.new_lb()
        return self.first["pools"][0]

    # -- the load balancer -------------------------------------------------------
    @rule()
    def replace_a_deleted_lb(self) -> None:
        if self.lb is None:
            self.new_lb()

    @rule(name=st.sampled_from(["a-lb", "b-lb"]))
    def patch_lb_v2(self, name: str) -> None:
        if self.lb:
            self.send("PATCH", LB2 + f"/{self.lb}", {"name": name})

    @rule(enabled=st.booleans())
    def seed_patch_logging(self, enabled: bool) -> None:
        if self.lb:
            self.send("PATCH", LB + f"/{self.lb}", {"logging": {"enabled": enabled}})

    @rule(action=st.sampled_from(["failover", "resize"]))
    def failover_or_resize(self, action: str) -> None:
        if self.lb:
            body = {"flavor": "lb1-2-4"} if action == "resize" else None
            self.send("POST", LB + f"/{self.lb}/{action}", body)

    @rule()
    def delete_lb(self) -> None:
        if self.lb:
            self.send("DELETE", LB + f"/{self.lb}")
            self.lb = None

    # -- children ------------------------------------------------------------------
    @rule(target=listeners, port=ports, protocol=st.sampled_from(["HTTP", "TCP"]))
    def create_listener(self, port: int, protocol: str):
        if not self.lb:
            return multiple()
        body = {"load_balancer_id": self.lb, "name": "lis", "protocol": protocol, "protocol_port": port}
        return multiple(*self.send("POST", LIS, body, "listeners"))

    @rule(listener=listeners, limit=limits)
    def patch_listener(self, listener: str, limit: int) -> None:
        self.send("PATCH", LIS2 + f"/{listener}", {"connection_limit": limit})

    @rule(listener=consumes(listeners))
    def delete_listener(self, listener: str) -> None:
        self.send("DELETE", LIS + f"/{listener}")

    @rule(target=pools, listener=st.none() | listeners)
    def create_pool(self, listener: str | None):
        if not self.lb:
            return multiple()
        body = {"name": "pool", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}
        body |= {"listener_id": listener} if listener else {"load_balancer_id": self.lb}
        return multiple(*self.send("POST", POOL, body, "pools"))

    @rule(pool=pools, algorithm=st.sampled_from(["ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP"]))
    def patch_pool(self, pool: str, algorithm: str) -> None:
        self.send("PATCH", POOL2 + f"/{pool}", {"lb_algorithm": algorithm})

    @rule(pool=consumes(pools))
    def delete_pool(self, pool: str) -> None:
        self.send("DELETE", POOL + f"/{pool}")

    @rule(target=members, pool=pools, port=ports)
    def create_member(self, pool: str, port: int):
        created = self.send(
            "POST", LB + f"/pools/{pool}/members", {"address": "127.0.0.9", "protocol_port": port}, "members"
        )
        return multiple(*[(pool, m) for m in created])

    @rule(member=members, weight=weights)
    def update_member(self, member: tuple[str, str], weight: int) -> None:
        self.send("PATCH", LB + f"/pools/{member[0]}/members/{member[1]}", {"weight": weight})

    @rule(member=consumes(members))
    def delete_member(self, member: tuple[str, str]) -> None:
        self.send("DELETE", LB + f"/pools/{member[0]}/members/{member[1]}")

    @rule(pool=pools, op=st.sampled_from(["create", "update", "delete"]))
    def health_monitor(self, pool: str, op: str) -> None:
        path = POOL + f"/{pool}/healthmonitor"
        if op == "create":
            self.send("POST", path, {"type": "TCP", "delay": 5, "timeout": 3, "max_retries": 2})
        elif op == "update":
            self.send("PATCH", path, {"delay": 7})
        else:
            self.send("DELETE", path)

    @rule(target=policies, listener=listeners)
    def create_policy(self, listener: str):
        return multiple(*self.send("POST", L7, {"listener_id": listener, "action": "REJECT"}, "l7polices"))

    @rule(policy=policies, op=st.sampled_from(["rule", "update", "delete_rules"]))
    def change_policy(self, policy: str, op: str) -> None:
        if op == "rule":
            self.send(
                "POST",
                L7 + f"/{policy}/rules",
                {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/x"},
            )
        elif op == "update":
            self.send("PATCH", L7 + f"/{policy}", {"action": "REJECT", "name": "renamed"})
        else:
            rules = self.h.call("GET", L7 + f"/{policy}/rules").json().get("results", [])
            for r in rules[:1]:
                self.send("DELETE", L7 + f"/{policy}/rules/{r['id']}")

    @rule(policy=consumes(policies))
    def delete_policy(self, policy: str) -> None:
        self.send("DELETE", L7 + f"/{policy}")

    # -- the worker and the data plane ---------------------------------------------
    @rule()
    def run_one_task(self) -> None:
        self.h.worker.run_once()

    @rule()
    def run_every_task(self) -> None:
        self.h.drain()

    @rule(op=st.sampled_from(["apply", "remove", "failover"]))
    def data_plane_refuses_next(self, op: str) -> None:
        if self.lb:
            self.h.fail_next(op, self.lb)

    # -- what must hold at every step -------------------------------------------------
    @invariant()
    def one_running_task_per_lb_and_pending_lbs_name_an_active_task(self) -> None:
        T, L = tables.tasks, tables.load_balancers
        with self.h.db.read() as conn:
            running = conn.execute(
                sa.select(T.c.lock_key, sa.func.count()).where(T.c.state == "RUNNING").group_by(T.c.lock_key)
            ).all()
            assert all(n == 1 for _, n in running), running
            for lb_id, status, task_id in conn.execute(
                sa.select(L.c.id, L.c.provisioning_status, L.c.task_id).where(
                    L.c.project_id == self.h.project_id, L.c.provisioning_status.like("PENDING%")
                )
            ):
                state = conn.execute(sa.select(T.c.state).where(T.c.id == task_id)).scalar()
                assert state in ("NEW", "RUNNING"), (lb_id, status, task_id, state)

    def teardown(self) -> None:
        self.h.drain()
        states = self.h.task_states(self.tasks)
        assert all(s in ("FINISHED", "ERROR") for s in states.values()), states
        assert self.h.pending_rows() == []
        # Leave nothing for the next example (an LB whose delete was refused is ERROR, deletable).
        self.h.provider.faults.clear()
        for lb in self.h.call("GET", LB).json()["results"]:
            self.send("DELETE", LB + f"/{lb['id']}")
        self.h.drain()
        assert self.h.call("GET", LB).json()["count"] == 0


LoadBalancerTree.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=35,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=True,
)
TestLoadBalancerTree = LoadBalancerTree.TestCase
