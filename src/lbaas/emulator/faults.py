"""Injected faults: stored, listed, cleared, and drawn reproducibly.

A fault has a kind and a scope:

* ``http``: answer a matching request with ``status`` (409, 429 or 5xx) before the
  request reaches any route, so nothing changes (``Retry-After`` as Gcore sends it on 429);
* ``latency``: hold a matching request ``latency_ms`` (or a random time up to
  ``latency_max_ms``) before it is served;
* ``task``: fail a matching task through the provider (``ProviderError``), so the task and
  its resources end in ERROR exactly as after a real data-plane failure;
* ``health``: report a member (or every member of a pool) with a raw health value.

``remaining`` counts the injections left (NULL: no limit); ``probability`` makes each
matching event fire with that chance. The n-th matching event of a fault draws from
``random.Random(f"{seed}:{n}")``, so with a ``seed`` the same sequence of requests or tasks
meets the same faults on every run; ``draws`` (the n) lives in the database, so every
process shares one sequence.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.clock import utcnow
from lbaas.db import tables
from lbaas.domain.status import MemberHealth
from lbaas.emulator.controls import active_faults, bump
from lbaas.errors import NotFound, ValidationFailed

log = logging.getLogger("lbaas.emulator")

F = tables.emulator_faults
KINDS = ("http", "latency", "task", "health")
# Statuses a client's retry logic must survive (docs/shared errors.md §4: the SDK retries these).
HTTP_STATUSES = frozenset({408, 409, 429, *range(500, 600)})
EXCEPTION_CLASSES = {
    408: "RequestTimeout",
    409: "ConflictError",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}
# Gcore documents Retry-After on 429 (shared/spec/errors.md §2); other statuses send it only on request.
DEFAULT_RETRY_AFTER = {429: 1.0}


@dataclass(frozen=True)
class Draw:
    """The outcome of one matching event: whether the fault fires, and its random source."""

    fire: bool
    rng: random.Random
    spent: bool = False  # this was the fault's last injection


def rng_for(seed: int | None, n: int) -> random.Random:
    """The random source of a fault's n-th draw (reproducible when seeded)."""
    return random.Random(f"{seed}:{n}") if seed is not None else random.Random()


def _check_regex(pattern: str | None) -> None:
    if pattern is None:
        return
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValidationFailed.field("path_regex", f"not a valid regular expression: {exc}") from exc


def _health_target(conn: Connection, spec: dict[str, Any]) -> dict[str, Any]:
    member_id, pool_id = spec.get("member_id"), spec.get("pool_id")
    if (member_id is None) == (pool_id is None):
        raise ValidationFailed.field("member_id", "give exactly one of member_id and pool_id")
    table, kind, ident = (
        (tables.members, "member", member_id) if member_id else (tables.pools, "pool", pool_id)
    )
    row = conn.execute(sa.select(table.c.lb_id, table.c.project_id).where(table.c.id == str(ident))).first()
    if row is None:
        raise NotFound.of("Member" if kind == "member" else "Pool", ident)
    # One override per target: a new one replaces the old.
    conn.execute(F.delete().where(F.c.kind == "health", F.c.target_id == str(ident)))
    return {
        "target_kind": kind,
        "target_id": str(ident),
        "lb_id": row.lb_id,
        "project_id": row.project_id,
        "health": str(MemberHealth(spec["status"])),
    }


def add(conn: Connection, spec: dict[str, Any]) -> dict[str, Any]:
    """Store one fault from a validated request body; returns its view."""
    kind = spec["kind"]
    values: dict[str, Any] = {
        "kind": kind,
        "project_id": spec.get("project_id"),
        "remaining": spec.get("count"),
        "probability": spec.get("probability"),
        "seed": spec.get("seed"),
        "draws": 0,
        "injected": 0,
        "created_at": utcnow(),
    }
    if kind in ("http", "latency"):
        _check_regex(spec.get("path_regex"))
        values.update(method=spec.get("method"), path_regex=spec.get("path_regex"))
    if kind == "http":
        status = spec["status"]
        if status not in HTTP_STATUSES:
            raise ValidationFailed.field("status", "one of 408, 409, 429 or 500-599")
        retry_after = spec.get("retry_after", DEFAULT_RETRY_AFTER.get(status))
        values.update(status=status, message=spec.get("message"), retry_after=retry_after)
    elif kind == "latency":
        low, high = spec["latency_ms"], spec.get("latency_max_ms")
        if high is not None and high < low:
            raise ValidationFailed.field("latency_max_ms", "must be at least latency_ms")
        values.update(latency_ms=low, latency_max_ms=high)
    elif kind == "task":
        values.update(task_type=spec.get("task_type"), message=spec.get("error"))
    elif kind == "health":
        values.update(_health_target(conn, spec), remaining=None, probability=None, seed=None)
    else:  # pragma: no cover - the request schema allows only KINDS
        raise ValidationFailed.field("kind", f"one of {', '.join(KINDS)}")
    fault_id = conn.execute(F.insert().values(**values).returning(F.c.id)).scalar_one()
    bump(conn)
    return view(conn.execute(sa.select(F).where(F.c.id == fault_id)).one())


def view(row: Any) -> dict[str, Any]:
    """A fault as the admin API shows it (only the fields of its kind)."""
    out: dict[str, Any] = {
        "id": row.id,
        "kind": row.kind,
        "project_id": row.project_id,
        "remaining": row.remaining,
        "injected": row.injected,
        "created_at": row.created_at.isoformat() + "Z",
    }
    if row.kind != "health":
        out.update(probability=row.probability, seed=row.seed, draws=row.draws)
    if row.kind in ("http", "latency"):
        out.update(method=row.method, path_regex=row.path_regex)
    if row.kind == "http":
        out.update(status=row.status, message=row.message, retry_after=row.retry_after)
    elif row.kind == "latency":
        out.update(latency_ms=row.latency_ms, latency_max_ms=row.latency_max_ms)
    elif row.kind == "task":
        out.update(task_type=row.task_type, error=row.message)
    elif row.kind == "health":
        out.update(
            {f"{row.target_kind}_id": row.target_id, "load_balancer_id": row.lb_id, "status": row.health}
        )
    return out


def list_(conn: Connection, *, include_spent: bool = False) -> list[dict[str, Any]]:
    """Active faults (or every stored one), oldest first."""
    if include_spent:
        return [view(r) for r in conn.execute(sa.select(F).order_by(F.c.id))]
    return [view(r) for r in active_faults(conn)]


def clear(conn: Connection, fault_id: int | None = None, kind: str | None = None) -> list[Any]:
    """Remove one fault, the faults of a kind, or all; returns the removed rows."""
    q = sa.select(F)
    if fault_id is not None:
        q = q.where(F.c.id == fault_id)
    if kind is not None:
        q = q.where(F.c.kind == kind)
    rows = list(conn.execute(q))
    if fault_id is not None and not rows:
        raise NotFound.of("Fault", fault_id)
    if rows:
        conn.execute(F.delete().where(F.c.id.in_([r.id for r in rows])))
        bump(conn)
    return rows


def draw(conn: Connection, fault_id: int) -> Draw | None:
    """Count one matching event of a fault; None when it is spent (or gone).

    Fires with the fault's probability (always without one), spends one of ``remaining``
    when it fires, and bumps the controls' version when that was the last one.
    """
    row = conn.execute(
        F.update()
        .where(F.c.id == fault_id, sa.or_(F.c.remaining.is_(None), F.c.remaining > 0))
        .values(draws=F.c.draws + 1)
        .returning(F.c.draws, F.c.remaining, F.c.probability, F.c.seed)
    ).first()
    if row is None:
        return None
    rng = rng_for(row.seed, row.draws)
    if row.probability is not None and rng.random() >= row.probability:
        return Draw(False, rng)
    conn.execute(
        F.update().where(F.c.id == fault_id).values(remaining=F.c.remaining - 1, injected=F.c.injected + 1)
    )
    spent = row.remaining == 1
    if spent:
        bump(conn)  # every process drops it from its view
    return Draw(True, rng, spent)


def exception_class(status: int) -> str:
    """Gcore-style ``exception_class`` of an injected HTTP error."""
    return EXCEPTION_CLASSES.get(status, "HTTPError")
