"""An lbaas restart while traffic flows: the HAProxy processes outlive lbaas, and a new lbaas on the
same database and data directory adopts them as they are (no restart, no reload) and drives
them again. Not one request fails. On SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
import time

import pytest

from tests.conftest import database_url, make_client, serve
from tests.dataplane.conftest import Backend as HttpBackend
from tests.dataplane.conftest import (
    DataPlane,
    Load,
    create_lb,
    finish,
    haproxy_dirs,
    member_statuses,
    pools_of,
    random_vip_pool,
    stop_everything,
    wait_for,
)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def test_lbaas_restart_while_traffic_flows(backend: str) -> None:
    backends = [HttpBackend(f"restart-{i}").start() for i in range(3)]
    with haproxy_dirs() as (tmp, run), contextlib.ExitStack() as stack:
        stack.callback(lambda: [b.stop() for b in backends])
        db = database_url(backend, tmp)
        if backend == "pg":
            from tests.conftest import _drop_pg

            stack.callback(_drop_pg, db)
        stack.callback(lambda: stop_everything(tmp, run))  # whatever happens below
        settings = dict(provider="haproxy", run_dir=run, vip_pool=random_vip_pool(), poll_interval=0.3)

        with serve(backend, tmp, database=db, **settings) as first:
            project_id, token = first.new_project()
            client = make_client(first, token, project_id)
            lb = create_lb(
                client,
                name="restart",
                listeners=[
                    {
                        "name": "http",
                        "protocol": "HTTP",
                        "protocol_port": 8080,
                        "pools": [
                            {
                                "name": "pool",
                                "protocol": "HTTP",
                                "lb_algorithm": "ROUND_ROBIN",
                                "members": [b.member for b in backends[:2]],
                                "healthmonitor": {"type": "TCP", "delay": 2, "timeout": 1, "max_retries": 1},
                            }
                        ],
                    }
                ],
            )
            before = DataPlane(first).process(lb.id)
            url = f"http://{lb.vip_address}:8080/"
            load = stack.enter_context(Load(url))

        # lbaas is gone; HAProxy serves on
        time.sleep(0.5)
        served_alone = load.requests_so_far()
        time.sleep(0.5)
        assert load.requests_so_far() > served_alone
        assert not load.failures

        with serve(backend, tmp, database=db, **settings) as second:
            try:
                client = make_client(second, token, project_id)
                after = DataPlane(second).process(lb.id)
                assert (after.pid, after.reloads, after.config_hash) == (
                    before.pid,
                    before.reloads,
                    before.config_hash,
                )
                assert client.cloud.load_balancers.get(lb.id).provisioning_status == "ACTIVE"

                # the new lbaas drives the adopted process: a member through the runtime API
                pool = pools_of(client, lb.id)["pool"]
                finish(
                    client, client.cloud.load_balancers.pools.members.create(pool.id, **backends[2].member)
                )
                assert DataPlane(second).reloads(lb.id) == before.reloads
                wait_for(
                    lambda: set(member_statuses(client, lb.id, "pool").values()) == {"ONLINE"},
                    timeout=20,
                    what="every member ONLINE as seen by the new lbaas",
                )
                # (the clients still run and share the round robin: their answers tell)
                wait_for(lambda: load.answers["restart-2"] > 0, timeout=10, what="the new member to serve")
            finally:
                load.__exit__(None, None, None)  # the clients stop before HAProxy does
        second.provider.stop_all()  # after lbaas: its healer would restart what it finds down
        assert not list(run.glob("*.sock")), "sockets left behind"
        assert load.failures == [], load.failures[:10]
        assert load.ok > 50, load.ok
