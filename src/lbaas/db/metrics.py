"""The ``lb_metrics`` rows: samples written by the sampler, windows read by the API.

Every statement here runs on SQLite and PostgreSQL alike: slots are grouped by integer
division of ``interval_start`` (UTC epoch seconds), and each slot's values are averages
weighted by the seconds each sample covers (so a slot is the average over the time it
measured, whatever the samples' lengths).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from lbaas.db import tables

M = tables.lb_metrics
LB = tables.load_balancers
VALUES = ("cpu_util", "memory_util", "network_bps_ingress", "network_bps_egress")


def flavors_of(conn: Connection, lb_ids: Iterable[str]) -> dict[str, str | None]:
    """The ``flavor`` column of each existing LB (None: the default flavor); gone LBs are absent."""
    ids = list(lb_ids)
    if not ids:
        return {}
    return dict(conn.execute(sa.select(LB.c.id, LB.c.flavor).where(LB.c.id.in_(ids))).all())


def record(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Store samples (dicts of ``lb_metrics`` columns); those of LBs deleted meanwhile, and a
    second sample for an LB and ``interval_start`` already stored, are skipped. Returns how
    many were given to the database."""
    known = set(flavors_of(conn, {r["lb_id"] for r in rows}))
    keep = [dict(r) for r in rows if r["lb_id"] in known]
    if not keep:
        return 0
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(M)
    conn.execute(insert.on_conflict_do_nothing(index_elements=["lb_id", "interval_start"]), keep)
    return len(keep)


def prune(conn: Connection, before: int) -> int:
    """Delete every sample whose interval started before ``before`` (epoch seconds)."""
    return conn.execute(M.delete().where(M.c.interval_start < before)).rowcount


def _weighted(column: sa.Column) -> Any:
    # Average weighted by the seconds each sample covers; NULL when no sample measured it.
    seconds = M.c.interval_seconds
    measured = sa.func.sum(sa.case((column.is_not(None), seconds)))
    return (sa.func.sum(column * seconds) / measured).label(column.name)


def slots(
    conn: Connection, lb_id: str, begin: int, end: int, width: int
) -> dict[int, dict[str, float | None]]:
    """Averages per slot of ``width`` seconds (keyed by the slot's start) of the samples of
    ``lb_id`` that start in ``[begin, end)``; ``begin`` is a multiple of ``width``."""
    slot = (M.c.interval_start // width).label("slot")
    q = (
        sa.select(slot, *(_weighted(M.c[name]) for name in VALUES))
        .where(M.c.lb_id == lb_id, M.c.interval_start >= begin, M.c.interval_start < end)
        .group_by(slot)
    )
    return {
        int(row.slot) * width: {name: _float(row._mapping[name]) for name in VALUES}
        for row in conn.execute(q)
    }


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
