"""Task timing: when a task the API just queued may run.

Modes, per project and per task type (the most specific rule wins: project and type, then
project, then type, then the global rule; no rule means ``immediate``):

* ``immediate``: the task runs inside the request that queued it (the noop default), so a
  client's first poll reads FINISHED;
* ``delay``: the task runs ``delay_ms`` after it was queued, or a random time in
  [``delay_ms``, ``delay_max_ms``] (reproducible with a ``seed``);
* ``polls``: the task reads NEW until its ``polls``-th ``GET /cloud/v1/tasks/{id}``, which
  runs it first and so reads FINISHED (or ERROR);
* ``hold``: the task reads NEW until it is released (one task, or every held task).

All of it rides on the task queue's ``run_after`` column (a NEW task is not claimed before
it): a held task's ``run_after`` is far in the future until it is released. A held task heads
its load balancer's queue as a slow real task would, so later changes of that LB wait behind
it (the LB reads PENDING_UPDATE). Only tasks a client sees are timed; the task engine's
internal tasks never are.

Rules come from ``LBAAS_EMULATOR_TASK_TIMING`` at start (global rules, restored by a reset)
and from the admin API at run time.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.clock import utcnow
from lbaas.db import tables
from lbaas.emulator.controls import bump
from lbaas.errors import NotFound, ValidationFailed

TIMING = tables.emulator_timing
HELD = tables.emulator_held_tasks
T = tables.tasks
MODES = ("immediate", "delay", "polls", "hold")
ANY_TYPE = "*"
ANY_PROJECT = 0
# The run_after of a task that waits for a release or for polls (never reached by a clock).
FOREVER = dt.datetime(9999, 12, 31)


@dataclass(frozen=True)
class Rule:
    """One timing rule; ``project_id`` 0 and ``task_type`` "*" match any."""

    mode: str
    project_id: int = ANY_PROJECT
    task_type: str = ANY_TYPE
    delay_ms: int | None = None
    delay_max_ms: int | None = None
    polls: int | None = None
    seed: int | None = None

    def check(self) -> Rule:
        """The rule, or ValidationFailed naming what is wrong with it."""
        if self.mode not in MODES:
            raise ValidationFailed.field("mode", f"one of {', '.join(MODES)}")
        if self.mode == "delay":
            if self.delay_ms is None or self.delay_ms < 0:
                raise ValidationFailed.field("delay_ms", "a delay in milliseconds (>= 0) is needed")
            if self.delay_max_ms is not None and self.delay_max_ms < self.delay_ms:
                raise ValidationFailed.field("delay_max_ms", "must be at least delay_ms")
        if self.mode == "polls" and (self.polls is None or self.polls < 1):
            raise ValidationFailed.field("polls", "the poll that reads FINISHED (>= 1) is needed")
        return self


_SPEC = re.compile(r"^(?:(?P<type>[a-z0-9_*]+)=)?(?P<mode>[a-z]+)(?::(?P<a>\d+)(?:-(?P<b>\d+))?)?$")


def parse(spec: str | None) -> list[Rule]:
    """``LBAAS_EMULATOR_TASK_TIMING``: comma-separated ``[task_type=]mode[:args]`` rules.

    ``hold``, ``immediate``, ``delay:200``, ``delay:100-500``, ``polls:3``; e.g.
    ``create_loadbalancer=polls:2,*=delay:50``. ValueError on anything else.
    """
    rules: list[Rule] = []
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        m = _SPEC.match(part)
        if m is None:
            raise ValueError(f"LBAAS_EMULATOR_TASK_TIMING: cannot read {part!r} (see docs/emulator.md)")
        mode, a, b = m["mode"], m["a"], m["b"]
        rule = Rule(
            mode=mode,
            task_type=m["type"] or ANY_TYPE,
            delay_ms=int(a) if mode == "delay" and a else None,
            delay_max_ms=int(b) if mode == "delay" and b else None,
            polls=int(a) if mode == "polls" and a else None,
        )
        try:
            rules.append(rule.check())
        except ValidationFailed as exc:
            raise ValueError(f"LBAAS_EMULATOR_TASK_TIMING: {part!r}: {exc.message}") from None
    return rules


def _row_values(rule: Rule) -> dict[str, Any]:
    return {
        "project_id": rule.project_id,
        "task_type": rule.task_type,
        "mode": rule.mode,
        "delay_ms": rule.delay_ms,
        "delay_max_ms": rule.delay_max_ms,
        "polls": rule.polls,
        "seed": rule.seed,
        "draws": 0,
    }


def set_rule(conn: Connection, rule: Rule) -> dict[str, Any]:
    """Store a rule (replacing the one of the same scope); returns its view."""
    rule.check()
    scope = (TIMING.c.project_id == rule.project_id, TIMING.c.task_type == rule.task_type)
    conn.execute(TIMING.delete().where(*scope))
    if not (rule.mode == "immediate" and rule.project_id == ANY_PROJECT and rule.task_type == ANY_TYPE):
        conn.execute(TIMING.insert().values(**_row_values(rule)))
    bump(conn)
    return rule_view(_row_values(rule))


def restore(conn: Connection, start_rules: list[Rule]) -> None:
    """Back to the start settings: only the rules of ``LBAAS_EMULATOR_TASK_TIMING``."""
    conn.execute(TIMING.delete())
    for rule in start_rules:
        conn.execute(TIMING.insert().values(**_row_values(rule)))
    bump(conn)


def delete_rule(conn: Connection, project_id: int, task_type: str) -> None:
    res = conn.execute(
        TIMING.delete().where(TIMING.c.project_id == project_id, TIMING.c.task_type == task_type)
    )
    if res.rowcount == 0:
        raise NotFound(f"No timing rule for project {project_id or 'any'} and task type {task_type}")
    bump(conn)


def rule_view(row: Any) -> dict[str, Any]:
    get = row.get if isinstance(row, dict) else row._mapping.get
    out = {
        "project_id": get("project_id") or None,
        "task_type": None if get("task_type") == ANY_TYPE else get("task_type"),
        "mode": get("mode"),
    }
    if get("mode") == "delay":
        out.update(delay_ms=get("delay_ms"), delay_max_ms=get("delay_max_ms"), seed=get("seed"))
    if get("mode") == "polls":
        out["polls"] = get("polls")
    return out


def held_view(row: Any) -> dict[str, Any]:
    return {
        "task_id": row.task_id,
        "task_type": row.task_type,
        "project_id": row.project_id,
        "mode": row.mode,
        "polls_left": row.polls_left,
        "held_since": row.created_at.isoformat() + "Z",
    }


def held(conn: Connection, project_id: int | None = None) -> list[dict[str, Any]]:
    """Tasks still waiting for a release or for polls, oldest first."""
    q = (
        sa.select(HELD, T.c.task_type)
        .join(T, T.c.id == HELD.c.task_id)
        .where(T.c.state == "NEW")
        .order_by(T.c.seq)
    )
    if project_id is not None:
        q = q.where(HELD.c.project_id == project_id)
    return [held_view(r) for r in conn.execute(q)]


def describe(conn: Connection) -> dict[str, Any]:
    rules = conn.execute(sa.select(TIMING).order_by(TIMING.c.project_id, TIMING.c.task_type))
    return {"rules": [rule_view(r) for r in rules], "held": held(conn)}


def _pick(rules: list[Any], project_id: int | None, task_type: str) -> Any:
    best, rank = None, -1
    for r in rules:
        if r.project_id not in (ANY_PROJECT, project_id) or r.task_type not in (ANY_TYPE, task_type):
            continue
        score = (2 if r.project_id != ANY_PROJECT else 0) + (1 if r.task_type != ANY_TYPE else 0)
        if score > rank:
            best, rank = r, score
    return best


def on_queued(conn: Connection, task_ids: list[str]) -> dict[str, float]:
    """Apply the timing rules to tasks just queued (inside the transaction that queued them).

    Returns the delayed tasks: ``{task_id: seconds}``. Held and polled tasks wait in
    ``emulator_held_tasks``; the rest (immediate) are left alone.
    """
    rules = list(conn.execute(sa.select(TIMING)))
    if not rules or not task_ids:
        return {}
    tasks = conn.execute(
        sa.select(T.c.id, T.c.task_type, T.c.project_id, T.c.created_on).where(
            T.c.id.in_(task_ids), T.c.internal.is_(False), T.c.state == "NEW"
        )
    )
    delays: dict[str, float] = {}
    now = utcnow()
    for task in tasks:
        rule = _pick(rules, task.project_id, task.task_type)
        if rule is None or rule.mode == "immediate":
            continue
        if rule.mode == "delay":
            ms = rule.delay_ms or 0
            if rule.delay_max_ms is not None and rule.delay_max_ms > ms:
                draw = conn.execute(
                    TIMING.update()
                    .where(TIMING.c.project_id == rule.project_id, TIMING.c.task_type == rule.task_type)
                    .values(draws=TIMING.c.draws + 1)
                    .returning(TIMING.c.draws)
                ).scalar_one()
                rng = random.Random(f"{rule.seed}:{draw}") if rule.seed is not None else random.Random()
                ms = rng.randint(ms, rule.delay_max_ms)
            run_after = now + dt.timedelta(milliseconds=ms)
            delays[task.id] = ms / 1000
        else:
            run_after = FOREVER
            conn.execute(
                HELD.insert().values(
                    task_id=task.id,
                    project_id=task.project_id,
                    mode=rule.mode,
                    polls_left=rule.polls if rule.mode == "polls" else None,
                    created_at=now,
                )
            )
        conn.execute(T.update().where(T.c.id == task.id).values(run_after=run_after))
    return delays


def release(conn: Connection, task_id: str | None = None, project_id: int | None = None) -> list[str]:
    """Let held tasks run (one, a project's, or all); returns their ids in queue order."""
    q = sa.select(HELD.c.task_id).join(T, T.c.id == HELD.c.task_id).order_by(T.c.seq)
    if task_id is not None:
        q = q.where(HELD.c.task_id == task_id)
    if project_id is not None:
        q = q.where(HELD.c.project_id == project_id)
    ids = [r[0] for r in conn.execute(q)]
    if task_id is not None and not ids:
        raise NotFound(f"Task {task_id} is not held")
    if ids:
        conn.execute(HELD.delete().where(HELD.c.task_id.in_(ids)))
        conn.execute(T.update().where(T.c.id.in_(ids), T.c.state == "NEW").values(run_after=None))
    return ids


def count_poll(conn: Connection, task_id: str) -> bool:
    """One client poll of a task: True when it was the poll that releases it."""
    row = conn.execute(
        HELD.update()
        .where(HELD.c.task_id == task_id, HELD.c.polls_left.is_not(None))
        .values(polls_left=HELD.c.polls_left - 1)
        .returning(HELD.c.polls_left)
    ).first()
    if row is None or row.polls_left > 0:
        return False
    release(conn, task_id)
    return True


def any_active(conn: Connection) -> bool:
    """Whether the timing controls have anything to do (a non-immediate rule or a held task)."""
    rule = conn.execute(sa.select(TIMING.c.mode).where(TIMING.c.mode != "immediate").limit(1)).first()
    return rule is not None or conn.execute(sa.select(HELD.c.task_id).limit(1)).first() is not None
