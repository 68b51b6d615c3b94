"""The metrics sampler against the real database (SQLite and PostgreSQL), with a provider whose
usage the test sets: what a tick stores, when it stores nothing, and the emulator's nulls."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import pytest
import sqlalchemy as sa

from lbaas.db import dataplane, tables
from lbaas.domain.metrics import MIB
from lbaas.providers.base import Usage
from lbaas.providers.noop import NoopProvider
from lbaas.tasks.sampler import Sampler


class SetUsage(NoopProvider):
    """The emulator, with resource usage the test sets per LB."""

    def __init__(self) -> None:
        super().__init__()
        self.now: dict[str, Usage] = {}

    def usage(self, lb_ids: Iterable[str]) -> Mapping[str, Usage]:
        ids = set(lb_ids)
        return {k: v for k, v in self.now.items() if k in ids}


def _totals(server, lb_id: str, bytes_in: int, bytes_out: int, generation: str = "1") -> None:
    counters = {"bytes_in": bytes_in, "bytes_out": bytes_out, "request_errors": 0, "total_connections": 1}
    with server.db.write() as conn:
        row = dataplane.served(conn, [lb_id]).get(lb_id)
        state, stats = dataplane.fold_counters(
            row.counters if row else None, generation, 0, {"lb": counters}, {}
        )
        dataplane.store_counters(conn, lb_id, state, stats)


def _rows(server, lb_id: str) -> list:
    m = tables.lb_metrics
    with server.db.read() as conn:
        return conn.execute(sa.select(m).where(m.c.lb_id == lb_id).order_by(m.c.interval_start)).all()


T0 = int(time.time()) // 60 * 60 - 600


def test_a_tick_stores_the_averages_since_the_previous_reading(server, client) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="sampled", flavor="lb1-2-4")  # 2 vCPUs, 4 GiB
    provider = SetUsage()
    sampler = Sampler(server.db, provider, interval=60, cpus=4)

    provider.now[lb.id] = Usage(cpu_seconds=1.0, memory_bytes=100 * MIB, sampled_at=1000.0, generation="g")
    _totals(server, lb.id, 1_000, 5_000)
    assert sampler.sample_once(T0) == 0  # a first reading: nothing to average yet
    provider.now[lb.id] = Usage(cpu_seconds=7.0, memory_bytes=300 * MIB, sampled_at=1060.0, generation="g")
    _totals(server, lb.id, 61_000, 5_000)
    assert sampler.sample_once(T0 + 60) == 1
    (row,) = _rows(server, lb.id)
    assert row.interval_start == T0 and row.interval_seconds == 60.0
    assert row.cpu_util == pytest.approx(6 / (60 * 2) * 100)  # 5 %
    assert row.memory_util == pytest.approx(200 / 4096 * 100)
    assert row.network_bps_ingress == pytest.approx(60_000 * 8 / 60)  # 8 kbit/s
    assert row.network_bps_egress == 0.0

    # The LB's data plane is down for a tick: no sample, and it starts over with a new reading
    del provider.now[lb.id]
    assert sampler.sample_once(T0 + 120) == 0
    provider.now[lb.id] = Usage(cpu_seconds=0.5, memory_bytes=50 * MIB, sampled_at=1180.0, generation="h")
    assert sampler.sample_once(T0 + 180) == 0
    # A new generation after the reading: all its CPU time is the interval's
    provider.now[lb.id] = Usage(cpu_seconds=1.2, memory_bytes=50 * MIB, sampled_at=1240.0, generation="i")
    _totals(server, lb.id, 61_000, 5_000)
    assert sampler.sample_once(T0 + 240) == 1
    last = _rows(server, lb.id)[-1]
    assert last.interval_start == T0 + 180 and last.cpu_util == pytest.approx(1.2 / 120 * 100)
    assert len(_rows(server, lb.id)) == 2


def test_a_deleted_lb_gets_no_more_samples(server, client) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="sampled-gone")
    provider = SetUsage()
    sampler = Sampler(server.db, provider, interval=60, cpus=1)
    provider.now[lb.id] = Usage(1.0, 10 * MIB, 0.0)
    sampler.sample_once(T0)
    client.cloud.load_balancers.delete_and_poll(lb.id)
    provider.now[lb.id] = Usage(2.0, 10 * MIB, 60.0)
    assert sampler.sample_once(T0 + 60) == 0
    assert _rows(server, lb.id) == []


def test_the_emulator_measures_nothing_and_its_metrics_stay_null(server, client) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="sampled-noop")
    sampler = Sampler(server.db, NoopProvider(), interval=60)
    for i in range(3):
        assert sampler.sample_once(T0 + 60 * i) == 0
    assert _rows(server, lb.id) == []
    got = client.cloud.load_balancers.metrics.list(lb.id, time_interval=1, time_unit="hour")
    assert got.count == 60
    assert all(
        m.cpu_util is None
        and m.memory_util is None
        and m.network_bps_ingress is None
        and m.network_bps_egress is None
        and m.network_pps_ingress is None
        for m in got.results
    )


def test_the_thread_samples_on_the_ticks_and_stops(server, client) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="sampled-thread")

    class Growing(SetUsage):
        def usage(self, lb_ids):  # 0.1 CPU-second per second: 10 % of one vCPU
            return {lb.id: Usage(time.monotonic() * 0.1, 20 * MIB, time.monotonic())}

    sampler = Sampler(server.db, Growing(), interval=1, cpus=1)
    sampler.start()
    try:
        deadline = time.monotonic() + 10
        while len(rows := _rows(server, lb.id)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        sampler.stop(timeout=5)
    assert not sampler._thread.is_alive()
    starts = [r.interval_start for r in rows]
    assert starts == sorted(set(starts))
    # ~10 % CPU each; each sample starts at the tick where the one before ended (the first
    # one starts at the reading taken when the thread started, between two ticks)
    assert all(r.cpu_util == pytest.approx(10.0, abs=0.5) for r in rows)
    # (a reading taken late on a busy machine makes its interval longer and the next one shorter)
    assert len(rows) >= 2 and all(0.5 < r.interval_seconds < 2.5 for r in rows[1:])
    assert abs((starts[1] - starts[0]) - rows[0].interval_seconds) < 1.0
