"""A server whose worker is held, and every operation that queues a task on a load balancer.

Tests queue tasks behind each other through the real HTTP API (the worker does
not run), then drain the queue in the test's thread: no sleeping, no races.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from lbaas.api.app import create_app
from lbaas.config import Settings
from lbaas.db import tables
from lbaas.providers.noop import Fault, NoopProvider
from tests.conftest import ADMIN_TOKEN, _start, database_url

PENDING = ("PENDING_CREATE", "PENDING_UPDATE", "PENDING_DELETE")


@dataclass
class Held:
    """An lbaas server with a held worker, an HTTP client for one project, and the noop provider."""

    app: Any
    http: httpx.Client
    project_id: int
    provider: NoopProvider

    @property
    def worker(self):
        return self.app.state.worker

    @property
    def db(self):
        return self.app.state.db

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return self.http.request(method, path.format(p=self.project_id, r=1), json=body)

    def tasks(self, method: str, path: str, body: Any = None) -> list[str]:
        """Run a task request and return its task ids (asserting it was accepted)."""
        res = self.call(method, path, body)
        assert res.status_code in (200, 204), res.text
        return res.json()["tasks"] if res.status_code == 200 else []

    def drain(self) -> None:
        self.worker.drain()

    def task_states(self, ids: list[str]) -> dict[str, str]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(tables.tasks.c.id, tables.tasks.c.state).where(tables.tasks.c.id.in_(ids))
            )
            return dict(rows.all())

    def pending_rows(self) -> list[str]:
        """Every row of any LB of this project still PENDING_* (should be none once drained)."""
        out = []
        with self.db.read() as conn:
            for table in (tables.load_balancers, *tables.LB_CHILDREN):
                for row in conn.execute(
                    sa.select(table.c.id, table.c.provisioning_status).where(
                        table.c.project_id == self.project_id, table.c.provisioning_status.in_(PENDING)
                    )
                ):
                    out.append(f"{table.name} {row.id} {row.provisioning_status}")
        return out

    def fail_next(self, op: str, lb_id: str, message: str = "injected failure") -> None:
        self.provider.inject_fault(Fault(op, lambda i, _g: i == lb_id, message))


@contextlib.contextmanager
def held_server(
    backend: str, tmp: Path, provider: NoopProvider | None = None, **settings: Any
) -> Iterator[Held]:
    """A real lbaas on loopback whose tasks only run when the test drains them."""
    from tests.conftest import _drop_pg

    url = database_url(backend, tmp)
    cfg = Settings.from_env(
        database_url=url,
        data_dir=tmp,
        admin_api_key=ADMIN_TOKEN,
        provider="noop",
        run_worker=False,
        **settings,
    )
    provider = provider or NoopProvider(inline=False)
    app = create_app(cfg, provider=provider, start_worker=False)
    server, thread = _start(app, backend)
    try:
        project_id, token = server.new_project()
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"APIKey {token}"}, timeout=30
        ) as http:
            yield Held(app, http, project_id, provider)
    finally:
        thread.server.should_exit = True
        thread.join(15)
        if backend == "pg":
            _drop_pg(url)


# -- the landscape every scenario starts from ---------------------------------
LB = "/cloud/v1/loadbalancers/{p}/{r}"
LB2 = "/cloud/v2/loadbalancers/{p}/{r}"
LIS = "/cloud/v1/lblisteners/{p}/{r}"
LIS2 = "/cloud/v2/lblisteners/{p}/{r}"
POOL = "/cloud/v1/lbpools/{p}/{r}"
POOL2 = "/cloud/v2/lbpools/{p}/{r}"
L7 = "/cloud/v1/l7policies/{p}/{r}"


@dataclass
class Landscape:
    """Ids of one LB with a listener, two pools (one monitored, with a member) and an L7 policy + rule."""

    lb: str
    listener: str
    pool: str  # default pool of ``listener``, with ``member`` and ``hm``
    member: str
    hm: str
    spare_pool: str  # no listener, no monitor
    policy: str
    rule: str
    extra: dict[str, str] = field(default_factory=dict)


NESTED = {
    "name": "pairs-lb",
    "listeners": [
        {
            "name": "web",
            "protocol": "HTTP",
            "protocol_port": 80,
            "pools": [
                {
                    "name": "web-pool",
                    "protocol": "HTTP",
                    "lb_algorithm": "ROUND_ROBIN",
                    "members": [{"address": "127.0.0.10", "protocol_port": 8080}],
                    "healthmonitor": {"type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 2},
                }
            ],
        }
    ],
}


def _planned(h: Held, task_id: str, kind: str) -> list[str]:
    """Ids a queued task will create (known at acceptance: the rows exist, PENDING_CREATE)."""
    with h.db.read() as conn:
        planned = conn.execute(
            sa.select(tables.tasks.c.planned_resources).where(tables.tasks.c.id == task_id)
        ).scalar_one()
    return planned[kind]


def _one(h: Held, table: sa.Table, **where: str) -> str:
    with h.db.read() as conn:
        return conn.execute(
            sa.select(table.c.id).where(*(table.c[k] == v for k, v in where.items()))
        ).scalar_one()


def build_landscape(h: Held) -> Landscape:
    """Create the landscape (every request queued behind the first) and let every task finish."""
    task = h.tasks("POST", LB, NESTED)[0]
    lb_id, listener = _planned(h, task, "loadbalancers")[0], _planned(h, task, "listeners")[0]
    pool, member = _planned(h, task, "pools")[0], _planned(h, task, "members")[0]
    spare = h.tasks(
        "POST",
        POOL,
        {"name": "spare", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "load_balancer_id": lb_id},
    )[0]
    policy_task = h.tasks(
        "POST",
        L7,
        {"listener_id": listener, "action": "REDIRECT_TO_URL", "redirect_url": "http://example.com/"},
    )[0]
    policy = _planned(h, policy_task, "l7polices")[0]
    rule_task = h.tasks(
        "POST", L7 + f"/{policy}/rules", {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/a"}
    )
    h.drain()
    assert set(h.task_states([task, spare, policy_task, *rule_task]).values()) == {"FINISHED"}
    return Landscape(
        lb=lb_id,
        listener=listener,
        pool=pool,
        member=member,
        hm=_one(h, tables.health_monitors, pool_id=pool),
        spare_pool=_planned(h, spare, "pools")[0],
        policy=policy,
        rule=_planned(h, rule_task[0], "l7rules")[0],
    )


@dataclass(frozen=True)
class Op:
    """One API operation that queues a task on the landscape's LB; ``provider_op`` is what it calls."""

    task_type: str
    request: Callable[[Held, Landscape], httpx.Response]
    provider_op: str = "apply"


def _req(method: str, path: Callable[[Landscape], str], body: Callable[[Landscape], Any] | None = None):
    return lambda h, s: h.call(method, path(s), body(s) if body else None)


def _port() -> int:
    return 1024 + secrets.randbelow(60000)


OPS: tuple[Op, ...] = (
    Op("update_loadbalancer", _req("PATCH", lambda s: LB2 + f"/{s.lb}", lambda s: {"name": "renamed"})),
    Op("failover_loadbalancer", _req("POST", lambda s: LB + f"/{s.lb}/failover"), "failover"),
    Op(
        "resize_loadbalancer",
        _req("POST", lambda s: LB + f"/{s.lb}/resize", lambda s: {"flavor": "lb1-2-4"}),
        "failover",
    ),
    Op("delete_loadbalancer", _req("DELETE", lambda s: LB + f"/{s.lb}"), "remove"),
    Op(
        "create_lblistener",
        _req(
            "POST",
            lambda s: LIS,
            lambda s: {"load_balancer_id": s.lb, "name": "new", "protocol": "TCP", "protocol_port": _port()},
        ),
    ),
    Op(
        "patch_lblistener",
        _req("PATCH", lambda s: LIS2 + f"/{s.listener}", lambda s: {"connection_limit": 500}),
    ),
    Op("delete_lblistener", _req("DELETE", lambda s: LIS + f"/{s.listener}")),
    Op(
        "create_lbpool",
        _req(
            "POST",
            lambda s: POOL,
            lambda s: {
                "name": "more",
                "protocol": "TCP",
                "lb_algorithm": "LEAST_CONNECTIONS",
                "load_balancer_id": s.lb,
            },
        ),
    ),
    Op(
        "patch_lbpool", _req("PATCH", lambda s: POOL2 + f"/{s.pool}", lambda s: {"lb_algorithm": "SOURCE_IP"})
    ),
    Op("delete_lbpool", _req("DELETE", lambda s: POOL + f"/{s.spare_pool}")),
    Op(
        "create_lbmember",
        _req(
            "POST",
            lambda s: LB + f"/pools/{s.pool}/members",
            lambda s: {"address": "127.0.0.11", "protocol_port": _port()},
        ),
    ),
    Op(
        "update_lbmember",
        _req("PATCH", lambda s: LB + f"/pools/{s.pool}/members/{s.member}", lambda s: {"weight": 7}),
    ),
    Op("delete_lbmember", _req("DELETE", lambda s: LB + f"/pools/{s.pool}/members/{s.member}")),
    Op(
        "create_lbpool_health_monitor",
        _req(
            "POST",
            lambda s: POOL + f"/{s.spare_pool}/healthmonitor",
            lambda s: {"type": "TCP", "delay": 5, "timeout": 3, "max_retries": 2},
        ),
    ),
    Op(
        "update_lbpool_health_monitor",
        _req("PATCH", lambda s: POOL + f"/{s.pool}/healthmonitor", lambda s: {"delay": 9}),
    ),
    Op("delete_lbpool_health_monitor", _req("DELETE", lambda s: POOL + f"/{s.pool}/healthmonitor")),
    Op(
        "create_l7policy",
        _req("POST", lambda s: L7, lambda s: {"listener_id": s.listener, "action": "REJECT"}),
    ),
    Op("update_l7policy", _req("PATCH", lambda s: L7 + f"/{s.policy}", lambda s: {"action": "REJECT"})),
    Op("delete_l7policy", _req("DELETE", lambda s: L7 + f"/{s.policy}")),
    Op(
        "create_l7rule",
        _req(
            "POST",
            lambda s: L7 + f"/{s.policy}/rules",
            lambda s: {"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "a.b"},
        ),
    ),
    Op(
        "put_l7rule",
        _req(
            "PUT",
            lambda s: L7 + f"/{s.policy}/rules/{s.rule}",
            lambda s: {"type": "PATH", "compare_type": "REGEX", "value": "^/x"},
        ),
    ),
    Op("delete_l7rule", _req("DELETE", lambda s: L7 + f"/{s.policy}/rules/{s.rule}")),
    Op(
        "apply_loadbalancer",  # the seed PATCH queues it (internal) when logging changes
        _req("PATCH", lambda s: LB + f"/{s.lb}", lambda s: {"logging": {"enabled": True}}),
    ),
)
OPS_BY_TYPE = {op.task_type: op for op in OPS}


def queued_ids(h: Held, since_seq: int) -> list[str]:
    """Ids of tasks queued after ``since_seq`` (internal ones included)."""
    with h.db.read() as conn:
        return [
            r[0]
            for r in conn.execute(
                sa.select(tables.tasks.c.id)
                .where(tables.tasks.c.seq > since_seq)
                .order_by(tables.tasks.c.seq)
            )
        ]


def last_seq(h: Held) -> int:
    with h.db.read() as conn:
        return conn.execute(sa.select(sa.func.coalesce(sa.func.max(tables.tasks.c.seq), 0))).scalar_one()
