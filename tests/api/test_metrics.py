"""POST .../metrics over stored samples: every sample of an hour window, hourly averages of a
day window, null entries where nothing was measured; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import sqlalchemy as sa

from lbaas.db import metrics as metrics_db
from lbaas.db import tables
from lbaas.services import load_balancers as lbs
from lbaas.services.common import authorize


def _t(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _row(lb_id: str, start: int, cpu: float | None, seconds: float = 60.0, **values) -> dict:
    return {
        "lb_id": lb_id,
        "interval_start": start,
        "interval_seconds": seconds,
        "cpu_util": cpu,
        "memory_util": values.get("mem", 1.0),
        "network_bps_ingress": values.get("rx", 8000.0),
        "network_bps_egress": values.get("tx", 800.0),
    }


def _entries(server, project, lb_id: str, n: int, unit: str, now: float) -> dict[str, dict]:
    project_id, token = project
    with server.db.read() as conn:
        ctx = authorize(conn, token, project_id, 1, None)
        out = lbs.metrics(conn, ctx, lb_id, n, unit, interval=60, now=now)
    assert out["count"] == len(out["results"])
    return {e["time"]: e for e in out["results"]}


@pytest.fixture
def hour_ago() -> int:
    """A whole hour two to three hours ago (inside the retention, clear of the current hour)."""
    return int(time.time()) // 3600 * 3600 - 7200


def test_hour_and_day_windows_over_stored_samples(server, client, project, hour_ago: int) -> None:
    lbs_api = client.cloud.load_balancers
    lb = lbs_api.create_and_poll(name="metrics-lb")
    other = lbs_api.create_and_poll(name="metrics-other")
    h = hour_ago
    with server.db.write() as conn:
        rows = [
            _row(lb.id, h - 60, 50.0),  # the hour before
            _row(lb.id, h, 10.0, rx=800.0, tx=80.0),
            _row(lb.id, h + 60, 20.0, rx=1600.0, tx=160.0),
            # h + 120: nothing measured (lbaas was down); h + 180 covers two intervals (a late tick)
            _row(lb.id, h + 180, 40.0, seconds=120.0, rx=3200.0, tx=320.0),
            _row(lb.id, h + 300, 30.0, rx=None, tx=None),  # listeners not measured yet
            *(_row(other.id, h + 60 * i, 99.0) for i in range(-2, 6)),
        ]
        assert metrics_db.record(conn, rows) == len(rows)

    now = h + 360 + 5.0  # newest tick h+360: the newest complete sample started at h+300
    hour = _entries(server, project, lb.id, 1, "hour", now)
    assert len(hour) == 60 and list(hour) == sorted(hour)
    assert list(hour)[-1] == _t(h + 300) and list(hour)[0] == _t(h + 360 - 3600)
    assert hour[_t(h - 60)]["cpu_util"] == 50.0
    assert hour[_t(h)] == {
        "time": _t(h),
        "cpu_util": 10.0,
        "memory_util": 1.0,
        "network_Bps_egress": 80.0,
        "network_Bps_ingress": 800.0,
        "network_pps_egress": None,
        "network_pps_ingress": None,
    }
    assert hour[_t(h + 60)]["cpu_util"] == 20.0
    gap = hour[_t(h + 120)]
    assert all(v is None for k, v in gap.items() if k != "time")
    assert hour[_t(h + 180)]["cpu_util"] == 40.0 and hour[_t(h + 240)]["cpu_util"] is None
    assert hour[_t(h + 300)]["cpu_util"] == 30.0 and hour[_t(h + 300)]["network_Bps_ingress"] is None
    assert sum(e["cpu_util"] is not None for e in hour.values()) == 5  # the other LB's never leak

    day = _entries(server, project, lb.id, 1, "day", now)
    assert len(day) == 24 and list(day)[-1] == _t(h) and list(day)[-2] == _t(h - 3600)
    # weighted by the seconds each sample covers: (10*60 + 20*60 + 40*120 + 30*60) / 300
    assert day[_t(h)]["cpu_util"] == pytest.approx(28.0)
    # rates: the 240 s that measured them: (800*60 + 1600*60 + 3200*120) / 240
    assert day[_t(h)]["network_Bps_ingress"] == pytest.approx(2200.0)
    assert day[_t(h)]["network_Bps_egress"] == pytest.approx(220.0)
    assert day[_t(h)]["memory_util"] == pytest.approx(1.0)
    assert day[_t(h - 3600)]["cpu_util"] == 50.0
    assert sum(e["cpu_util"] is not None for e in day.values()) == 2

    # Through the SDK (now is the real clock): the same samples, Gcore's shape
    got = lbs_api.metrics.list(lb.id, time_interval=4, time_unit="hour")
    assert got.count == 240 and len(got.results) == 240
    by_time = {m.time: m for m in got.results}
    assert by_time[_t(h)].cpu_util == 10.0 and by_time[_t(h)].network_bps_ingress == 800.0
    assert by_time[_t(h + 120)].cpu_util is None
    days = lbs_api.metrics.list(lb.id, time_interval=1, time_unit="day")
    assert days.count == 24 and {m.time: m for m in days.results}[_t(h)].cpu_util == pytest.approx(28.0)


def test_samples_of_gone_lbs_and_duplicates_are_skipped_deleted_lbs_take_theirs(
    server, client, hour_ago: int
) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="metrics-gone")
    with server.db.write() as conn:
        assert metrics_db.record(conn, [_row("00000000-0000-4000-8000-000000000000", hour_ago, 1.0)]) == 0
        metrics_db.record(conn, [_row(lb.id, hour_ago, 1.0)])
        metrics_db.record(conn, [_row(lb.id, hour_ago, 2.0), _row(lb.id, hour_ago + 60, 3.0)])
    q = sa.select(tables.lb_metrics.c.cpu_util).where(tables.lb_metrics.c.lb_id == lb.id)
    with server.db.read() as conn:
        assert sorted(conn.execute(q.order_by(tables.lb_metrics.c.interval_start)).scalars()) == [1.0, 3.0]
    client.cloud.load_balancers.delete_and_poll(lb.id)
    with server.db.read() as conn:
        assert conn.execute(q).first() is None


def test_prune_deletes_samples_older_than_the_cut(server, client, hour_ago: int) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="metrics-prune")
    with server.db.write() as conn:
        metrics_db.record(conn, [_row(lb.id, hour_ago - 60 * i, 1.0) for i in range(5)])
        assert metrics_db.prune(conn, hour_ago - 120) >= 2  # other tests' LBs may have old rows too
    q = sa.select(tables.lb_metrics.c.interval_start).where(tables.lb_metrics.c.lb_id == lb.id)
    with server.db.read() as conn:
        assert sorted(conn.execute(q).scalars()) == [hour_ago - 120, hour_ago - 60, hour_ago]


def test_bad_windows_are_400(client) -> None:
    import gcore

    lb = client.cloud.load_balancers.create_and_poll(name="metrics-bad")
    for kw in ({"time_interval": 0, "time_unit": "hour"}, {"time_interval": 1, "time_unit": "week"}):
        with pytest.raises(gcore.BadRequestError):
            client.cloud.load_balancers.metrics.list(lb.id, **kw)
    # longer than the retention: answered for the 30 days kept (hourly)
    assert client.cloud.load_balancers.metrics.list(lb.id, time_interval=10**6, time_unit="day").count == 720


def test_the_migration_builds_the_table_tables_py_describes(server) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with server.db.writer.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), tables.metadata)
    # only differences touching lb_metrics (other tables are other migrations' business)
    assert [d for d in diff if "lb_metrics" in repr(d)] == []
