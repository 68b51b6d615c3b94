"""Health flips: raw member health reported instead of what the data plane measures.

A flip is a ``health`` fault on a member or a pool (every member of the pool, including
members added later). The provider wrapper reports the flips from ``health()``, so whatever
polls the provider sees them; :func:`refresh` also applies them at once through the shared
roll-up, so operating statuses change in the same request that flips them.

Raw values are HAProxy's (``UP``, ``DOWN``, ``DRAIN``, ``MAINT``, ``NO_CHECK``); the roll-up
in :mod:`lbaas.domain.status` turns them into operating statuses. A member's health only
shows when its pool has an enabled health monitor (without one it reads NO_MONITOR, as at
Gcore and in Octavia).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.db import statuses, tables

F = tables.emulator_faults
M = tables.members


def overrides(conn: Connection, lb_id: str, flips: Iterable[Any]) -> dict[str, str]:
    """Raw health per member id of one LB from its flips (later flips win)."""
    mine = sorted((f for f in flips if f.lb_id == lb_id), key=lambda f: f.id)
    if not mine:
        return {}
    pools = [f.target_id for f in mine if f.target_kind == "pool"]
    by_pool: dict[str, list[str]] = {}
    if pools:
        for row in conn.execute(sa.select(M.c.id, M.c.pool_id).where(M.c.pool_id.in_(pools))):
            by_pool.setdefault(row.pool_id, []).append(row.id)
    out: dict[str, str] = {}
    for flip in mine:
        targets = [flip.target_id] if flip.target_kind == "member" else by_pool.get(flip.target_id, [])
        for member_id in targets:
            out[member_id] = flip.health
    return out


def stored_flips(conn: Connection, lb_id: str) -> list[Any]:
    """The flips of one LB as stored now (inside the transaction that changes them)."""
    return list(conn.execute(sa.select(F).where(F.c.kind == "health", F.c.lb_id == lb_id)))


def refresh(conn: Connection, lb_id: str, measured: Mapping[str, str | None]) -> None:
    """Recompute an LB's operating statuses from ``measured`` health with the flips on top."""
    merged = {**measured, **overrides(conn, lb_id, stored_flips(conn, lb_id))}
    statuses.refresh(conn, lb_id, merged)
