"""Rows of the data plane's side: what it took (applied snapshots) and what it reports.

* ``dataplane_state.applied``: the last snapshot an apply served, written in the same
  transaction that marks its task FINISHED. It is the ``previous`` of the next apply
  (member changes go through HAProxy's runtime API when only members differ), the values
  an ERROR child keeps being served with (:mod:`lbaas.domain.desired`), and what a
  starting lbaas brings back up.
* ``member_health``: each member's raw health and the last check's explanation, written
  by the poller only when they change; the shared roll-up reads it.
* ``dataplane_state.running/reason``: whether the LB's data plane is up.
* ``dataplane_state.counters/stats``: monotonic traffic totals (see
  :mod:`lbaas.domain.counters`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.clock import utcnow
from lbaas.db import tables
from lbaas.db.prepared import Prepared
from lbaas.domain.counters import CounterAccumulator
from lbaas.domain.model import LoadBalancerSnapshot

DS = tables.dataplane_state
MH = tables.member_health
COUNTERS = ("bytes_in", "bytes_out", "request_errors", "total_connections")


_DS_SET = DS.update().where(DS.c.lb_id == sa.bindparam("b_lb"))  # SET follows the parameters given
_DS_ADD = DS.insert()
_LB_EXISTS = sa.select(tables.load_balancers.c.id).where(tables.load_balancers.c.id == sa.bindparam("lb_id"))
_APPLIED = Prepared(sa.select(DS.c.applied).where(DS.c.lb_id == sa.bindparam("lb_id")))
# Prepared (lbaas.db.prepared): every task reads and records its LB's applied snapshot and
# recomputes its statuses (running, member health); the first record of an LB inserts on Core.
_APPLIED_SET = Prepared(
    DS.update()
    .where(DS.c.lb_id == sa.bindparam("b_lb"))
    .values(
        applied=sa.bindparam("applied", type_=DS.c.applied.type),
        applied_at=sa.bindparam("applied_at", type_=DS.c.applied_at.type),
    )
)
_RUNNING = Prepared(sa.select(DS.c.running).where(DS.c.lb_id == sa.bindparam("lb_id")))
_MEMBER_HEALTH = Prepared(sa.select(MH.c.member_id, MH.c.health).where(MH.c.lb_id == sa.bindparam("lb_id")))


def _upsert(conn: Connection, lb_id: str, **values: Any) -> None:
    if not conn.execute(_DS_SET, {"b_lb": lb_id, **values}).rowcount:
        _add(conn, lb_id, **values)


def _add(conn: Connection, lb_id: str, **values: Any) -> None:
    """The LB's first row (none yet), unless the LB itself is gone."""
    if conn.execute(_LB_EXISTS, {"lb_id": lb_id}).first() is not None:
        conn.execute(_DS_ADD, {"lb_id": lb_id, **values})


def applied(conn: Connection, lb_id: str) -> LoadBalancerSnapshot | None:
    """The last snapshot the data plane took for ``lb_id`` (without certificate material)."""
    row = _APPLIED.first(conn, lb_id=lb_id)
    return _decode(row.applied if row else None)


def _decode(data: Mapping[str, Any] | None) -> LoadBalancerSnapshot | None:
    if not data:
        return None
    try:
        return LoadBalancerSnapshot.from_dict(data)
    except (ValueError, KeyError, TypeError):
        return None  # another snapshot format: treated as unknown, the next apply reloads


def record_applied(conn: Connection, snapshot: LoadBalancerSnapshot) -> None:
    """Remember that the data plane now serves ``snapshot``."""
    data, now = snapshot.to_dict(), utcnow()
    if not _APPLIED_SET.execute(conn, b_lb=snapshot.id, applied=data, applied_at=now):
        _add(conn, snapshot.id, applied=data, applied_at=now)


def all_applied(
    conn: Connection, cache: dict[str, tuple[Any, LoadBalancerSnapshot | None]] | None = None
) -> list[LoadBalancerSnapshot]:
    """The applied snapshot of every LB that has one (what a starting lbaas serves again).

    ``cache`` (kept by a caller that asks again and again, e.g. the poller's drift check): lb id
    -> (applied_at, snapshot). Only snapshots applied since the last call are read and decoded
    (decoding is most of the cost: with 100 LBs it held the interpreter ~150 ms every check);
    the cache is updated in place.
    """
    if cache is None:
        rows = conn.execute(sa.select(DS.c.applied).where(DS.c.applied.is_not(None))).scalars()
        return [s for s in (_decode(r) for r in rows) if s is not None]
    stamps = dict(conn.execute(sa.select(DS.c.lb_id, DS.c.applied_at).where(DS.c.applied.is_not(None))).all())
    stale = [lb_id for lb_id, at in stamps.items() if lb_id not in cache or cache[lb_id][0] != at]
    for i in range(0, len(stale), 500):
        q = sa.select(DS.c.lb_id, DS.c.applied_at, DS.c.applied).where(DS.c.lb_id.in_(stale[i : i + 500]))
        for lb_id, at, data in conn.execute(q):
            cache[lb_id] = (at, _decode(data))
    for lb_id in [k for k in cache if k not in stamps]:
        del cache[lb_id]
    return [s for s in (cache[k][1] for k in stamps if k in cache) if s is not None]


def observed(conn: Connection) -> list[dict[str, Any]]:
    """Every LB the data plane serves, with what the poller last saw (``running``, ``reason``)."""
    q = sa.select(DS.c.lb_id, DS.c.running, DS.c.reason, DS.c.applied_at).where(DS.c.applied.is_not(None))
    return [dict(r) for r in conn.execute(q.order_by(DS.c.lb_id)).mappings()]


@dataclass(frozen=True)
class Served:
    """One served LB as the poller last stored it."""

    lb_id: str
    running: bool | None
    reason: str | None
    counters: dict[str, Any] | None
    stats: dict[str, Any] | None


def served(conn: Connection, lb_ids: Iterable[str] | None = None) -> dict[str, Served]:
    """Every served LB (or the given ones) with its stored observation, in one query."""
    q = sa.select(DS.c.lb_id, DS.c.running, DS.c.reason, DS.c.counters, DS.c.stats).where(
        DS.c.applied.is_not(None)
    )
    rows = []
    if lb_ids is None:
        rows = conn.execute(q).all()
    else:
        ids = list(lb_ids)
        for i in range(0, len(ids), 500):
            rows += conn.execute(q.where(DS.c.lb_id.in_(ids[i : i + 500]))).all()
    return {r.lb_id: Served(r.lb_id, r.running, r.reason, r.counters, r.stats) for r in rows}


def health_keys(conn: Connection, lb_ids: Iterable[str]) -> dict[str, tuple[Any, ...]]:
    """What is stored of each member of these LBs, as :meth:`MemberReport.key` tuples."""
    ids = list(lb_ids)
    out: dict[str, tuple[Any, ...]] = {}
    cols = (MH.c.member_id, MH.c.health, MH.c.check_status, MH.c.check_code, MH.c.check_desc)
    for i in range(0, len(ids), 500):
        for r in conn.execute(sa.select(*cols).where(MH.c.lb_id.in_(ids[i : i + 500]))):
            out[r.member_id] = (r.health, r.check_status, r.check_code, r.check_desc)
    return out


def running_of(conn: Connection) -> dict[str, bool | None]:
    """Every served LB's stored ``running`` (None: never observed), in one query."""
    return dict(conn.execute(sa.select(DS.c.lb_id, DS.c.running).where(DS.c.applied.is_not(None))).all())


def served_ids(conn: Connection) -> list[str]:
    """Ids of the LBs a data plane serves (they have an applied snapshot)."""
    return list(conn.execute(sa.select(DS.c.lb_id).where(DS.c.applied.is_not(None))).scalars())


# -- observations ----------------------------------------------------------------------
@dataclass(frozen=True)
class MemberReport:
    """One member's observed health, as the poller hands it over."""

    health: str
    check_status: str | None = None
    check_code: int | None = None
    check_desc: str | None = None
    check_duration_ms: int | None = None
    since_s: int | None = None

    def key(self) -> tuple[Any, ...]:
        # What counts as a change (durations vary on every check and are refreshed with it).
        return (self.health, self.check_status, self.check_code, self.check_desc)


def member_health(conn: Connection, lb_id: str) -> dict[str, str]:
    """Raw health per member id of one LB (what the roll-up reads)."""
    return {r.member_id: r.health for r in _MEMBER_HEALTH.all(conn, lb_id=lb_id)}


def health_details(conn: Connection, member_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The last check's explanation per member id (members never observed are absent)."""
    ids = list(member_ids)
    if not ids:
        return {}
    rows = conn.execute(sa.select(MH).where(MH.c.member_id.in_(ids))).mappings()
    return {r["member_id"]: dict(r) for r in rows}


def record_members(conn: Connection, lb_id: str, reports: Mapping[str, MemberReport]) -> bool:
    """Store members whose observed health or reason changed; True when a raw health changed."""
    if not reports:
        return False
    current = {
        r.member_id: r
        for r in conn.execute(sa.select(MH).where(MH.c.lb_id == lb_id, MH.c.member_id.in_(list(reports))))
    }
    known = set(
        conn.execute(
            sa.select(tables.members.c.id).where(
                tables.members.c.lb_id == lb_id, tables.members.c.id.in_(list(reports))
            )
        ).scalars()
    )
    now = utcnow()
    health_changed = False
    for member_id, rep in reports.items():
        if member_id not in known:
            continue  # deleted meanwhile, or a server lbaas does not know
        row = current.get(member_id)
        values = {
            "health": rep.health,
            "check_status": rep.check_status,
            "check_code": rep.check_code,
            "check_desc": (rep.check_desc or None) and rep.check_desc[:255],
            "check_duration_ms": rep.check_duration_ms,
        }
        since = now - dt.timedelta(seconds=rep.since_s) if rep.since_s is not None else now
        if row is None:
            conn.execute(MH.insert().values(member_id=member_id, lb_id=lb_id, changed_at=since, **values))
            health_changed = True
        elif (row.health, row.check_status, row.check_code, row.check_desc) != rep.key():
            if row.health != rep.health:
                health_changed = True
            conn.execute(MH.update().where(MH.c.member_id == member_id).values(changed_at=since, **values))
    return health_changed


def record_running(conn: Connection, lb_id: str, running: bool, reason: str | None) -> None:
    """Store whether the LB's data plane is up, and why not."""
    _upsert(conn, lb_id, running=running, reason=reason, observed_at=utcnow())


def is_running(conn: Connection, lb_id: str) -> bool | None:
    """None when never observed."""
    row = _RUNNING.first(conn, lb_id=lb_id)
    return None if row is None else row.running


def fold_counters(
    state: Mapping[str, Any] | None,
    generation: str,
    active: int,
    by_key: Mapping[str, Mapping[str, int]],
    listener_active: Mapping[str, int],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fold one poll's counters into an LB's monotonic totals: (new accumulator state, stats).

    ``by_key``: the counters of ``"lb"`` and of each listener id; ``generation`` changes
    whenever the data plane restarted its counters. Pure: the caller stores what moved.
    """
    acc = CounterAccumulator(dict(state or {}))
    totals = acc.observe(
        generation or None, {k: {n: int(v.get(n, 0)) for n in COUNTERS} for k, v in by_key.items()}
    )
    stats = {
        "lb": {**{n: totals.get("lb", {}).get(n, 0) for n in COUNTERS}, "active_connections": active},
        "listeners": {
            key: {**{n: t.get(n, 0) for n in COUNTERS}, "active_connections": listener_active.get(key, 0)}
            for key, t in totals.items()
            if key != "lb"
        },
    }
    return acc.state(), stats


def store_counters(conn: Connection, lb_id: str, state: dict[str, Any], stats: dict[str, Any]) -> None:
    """Write an LB's accumulator state and totals (see :func:`fold_counters`)."""
    _upsert(conn, lb_id, counters=state, stats=stats)


def stats_of(conn: Connection, lb_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The stored ``stats`` per LB id (LBs never measured are absent)."""
    ids = list(lb_ids)
    if not ids:
        return {}
    rows = conn.execute(sa.select(DS.c.lb_id, DS.c.stats).where(DS.c.lb_id.in_(ids), DS.c.stats.is_not(None)))
    return dict(rows.all())
