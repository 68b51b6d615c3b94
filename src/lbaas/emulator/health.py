"""Health flips: raw member health reported instead of what the data plane measures.

A flip is a ``health`` fault on a member or a pool (every member of the pool, including
members added later). It reaches the statuses two ways, both through the shared roll-up:

* at once: the flip is written where the poller writes measurements (``member_health``,
  :func:`lbaas.db.dataplane.record_members`) and the LB's statuses are recomputed
  (:func:`lbaas.db.statuses.refresh`), so they change in the request that flips them and
  stay changed through later tasks;
* on every poll: the provider wrapper's ``observe`` reports the flip in place of the
  measurement (:mod:`lbaas.emulator.provider`), so the poller keeps it (and picks up members
  added to a flipped pool).

Clearing a flip removes what it wrote; the next poll writes the real measurement back (the
noop provider measures nothing: its members read healthy again at once).

Raw values are HAProxy's (``UP``, ``DOWN``, ``DRAIN``, ``MAINT``, ``NO_CHECK``); the roll-up in
:mod:`lbaas.domain.status` turns them into operating statuses. A member's health only shows
when its pool has an enabled health monitor (without one it reads NO_MONITOR, as in Octavia).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.db import dataplane, statuses, tables
from lbaas.providers.base import MemberCheck

F = tables.emulator_faults
M = tables.members


def _reason(flip: Any) -> str:
    return f"injected by the lbaas emulator (fault {flip.id})"


def _targets(conn: Connection, lb_id: str, flips: Iterable[Any]) -> list[tuple[Any, list[str]]]:
    """Each flip of one LB (oldest first) with the member ids it covers."""
    mine = sorted((f for f in flips if f.lb_id == lb_id), key=lambda f: f.id)
    pools = [f.target_id for f in mine if f.target_kind == "pool"]
    by_pool: dict[str, list[str]] = {}
    if pools:
        for row in conn.execute(sa.select(M.c.id, M.c.pool_id).where(M.c.pool_id.in_(pools))):
            by_pool.setdefault(row.pool_id, []).append(row.id)
    return [(f, [f.target_id] if f.target_kind == "member" else by_pool.get(f.target_id, [])) for f in mine]


def checks(conn: Connection, lb_id: str, flips: Iterable[Any]) -> dict[str, MemberCheck]:
    """What the flips of one LB report per member id (later flips win)."""
    out: dict[str, MemberCheck] = {}
    for flip, members in _targets(conn, lb_id, flips):
        for member_id in members:
            out[member_id] = MemberCheck(flip.health, check_desc=_reason(flip))
    return out


def _stored(conn: Connection, lb_id: str) -> list[Any]:
    return list(conn.execute(sa.select(F).where(F.c.kind == "health", F.c.lb_id == lb_id)))


def apply_flips(conn: Connection, lb_id: str) -> None:
    """Write an LB's flips as its members' observed health and recompute its statuses."""
    reports = {
        member_id: dataplane.MemberReport(check.health, check_desc=check.check_desc)
        for member_id, check in checks(conn, lb_id, _stored(conn, lb_id)).items()
    }
    dataplane.record_members(conn, lb_id, reports)
    statuses.refresh(conn, lb_id)


def recover(conn: Connection, removed: Iterable[Any]) -> None:
    """Undo removed flips: forget what they wrote, keep the flips that remain, recompute."""
    removed = [r for r in removed if r.kind == "health" and r.lb_id]
    for lb_id in {r.lb_id for r in removed}:
        members = [m for _flip, ids in _targets(conn, lb_id, removed) for m in ids]
        if members:
            mh = tables.member_health
            conn.execute(mh.delete().where(mh.c.member_id.in_(members)))
        apply_flips(conn, lb_id)
