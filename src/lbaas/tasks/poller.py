"""The status channel: the data plane's measurements back into operating statuses and counters.

In its own thread (never on the API's event loop), the poller asks the provider to observe the
load balancers it serves (one ``show info; show stat`` per LB for HAProxy) and hands the
answers to the database:

* a member whose raw health or check reason changed gets a new ``member_health`` row,
  and its LB's operating statuses are recomputed by the shared roll-up
  (:func:`lbaas.db.statuses.refresh`), which writes only what changed;
* an LB whose data plane went down (or came back) is marked, and reads ERROR while down;
* traffic counters are folded into monotonic totals (:mod:`lbaas.domain.counters`).

When to look. A provider that sends health events (HAProxy: every change of a check's result,
:mod:`lbaas.providers.haproxy.events`) has the LBs that spoke read at once (within
milliseconds of HAProxy's decision), every LB read in a *full round* every
``stats_interval`` seconds (counters; anything an event missed), and, every ``interval``
seconds, a *liveness probe*: a connect to each stats socket, with the LBs whose reachability
differs from what is stored (and those still down, for the healer) read in full. Any other
provider is read in full every ``interval`` seconds. Nothing is written when nothing changed.
Octavia's health manager plays this part (its "status update" driver channel), from
heartbeats instead of events.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from lbaas.db import dataplane, lifecycle, queue, snapshot, statuses, tables
from lbaas.db.engine import Database
from lbaas.providers.base import Observation, Provider

log = logging.getLogger(__name__)

#: Seconds to wait before each restart of a data plane found down; then it is given up on
#: (the LB stays ERROR, the reason in the log and in ``lbaas dataplane status``).
RESTART_BACKOFF = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0)


#: LBs whose changes one SQLite transaction of the poller stores (see Poller.store).
STORE_BATCH = 100
#: Seconds to wait, after a health event, for the rest of its burst before reading.
EVENT_SETTLE_S = 0.01


def pause_after(round_seconds: float, interval: float, elapsed: float | None = None) -> float:
    """How long the poller waits after a round: the rest of ``interval``, but never less than the
    round took. A round is Python work under the GIL (~1 ms per LB: a socket round trip and the
    CSV of ``show stat``), so with 1,000 LBs a poll every ``interval`` would leave the API almost
    no time; this keeps the poller at most half of the process, and a round every
    2 x its length is still within 2 x any monitor's delay (a delay is at least 1 s). ``elapsed``:
    the round plus a drift check, which shortens the rest of the interval but not the pause."""
    elapsed = round_seconds if elapsed is None else elapsed  # the round and a drift check, if any
    return max(0.05, interval - elapsed, round_seconds)


@dataclass
class _Down:
    since: float
    attempts: int = 0
    next_try: float = 0.0
    gave_up: bool = False
    reason: str | None = None


@dataclass
class _Plan:
    """What one poll changes for one LB."""

    lb_id: str
    running: tuple[bool, str | None] | None = None
    moved: bool = False
    members: dict[str, dataplane.MemberReport] = field(default_factory=dict)
    counters: tuple[dict, dict] | None = None
    counters_seen: tuple[Any, Any] | None = None  # the observation they were folded from
    transitions: list[tuple[str, str]] = field(default_factory=list)  # (member id, health before)
    heal: str | None = None


def _being_removed(conn, lb_id: str) -> bool:
    """Whether the LB is gone or being deleted (``PENDING_DELETE``), as this transaction sees it."""
    status = conn.execute(
        sa.select(tables.load_balancers.c.provisioning_status).where(tables.load_balancers.c.id == lb_id)
    ).scalar()
    return status is None or status == "PENDING_DELETE"


class Poller:
    """Polls the provider every ``interval`` seconds (default 1 s) in a daemon thread."""

    def __init__(
        self,
        db: Database,
        provider: Provider,
        *,
        interval: float = 1.0,
        stats_interval: float = 5.0,
        drift_interval: float = 30.0,
        decrypt: Callable[[str], str] | None = None,
    ) -> None:
        self.db = db
        self.provider = provider
        self.interval = interval
        self.stats_interval = max(stats_interval, interval)
        self.events = False  # the provider sends health events (set by start)
        self.drift_interval = drift_interval
        self.decrypt = decrypt
        self._down: dict[str, _Down] = {}
        self.restart_backoff: tuple[float, ...] = RESTART_BACKOFF
        self._next_drift = time.monotonic() + drift_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_poll_seconds = 0.0
        self.polls = 0  # observe calls (full rounds, probes' and events' partial ones)
        self.full_rounds = 0
        self._applied: dict[str, tuple[object, object]] = {}  # the drift check's decoded snapshots
        # Per LB, the counters last folded into what is stored: the same again (an LB without
        # traffic) folds into the same totals, so it is not folded again.
        self._counters_seen: dict[str, tuple[Any, Any]] = {}
        self._flipped: set[str] = set()  # the emulator's flipped LBs at the last probe

    def start(self) -> None:
        listen = getattr(self.provider, "listen", None)
        self.events = bool(listen is not None and listen())
        loop = self._loop_events if self.events else self._loop
        self._thread = threading.Thread(target=loop, name="lbaas-poller", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - a bad poll must not end the status channel
                log.exception("status poll failed")
            self.last_poll_seconds = time.monotonic() - began
            self._maybe_check_drift()
            elapsed = time.monotonic() - began
            self._stop.wait(pause_after(self.last_poll_seconds, self.interval, elapsed))

    def _loop_events(self) -> None:
        """Full rounds every ``stats_interval``, probes every ``interval``, and in between the
        LBs whose HAProxy reported a health change (see the module doc)."""
        next_full = next_probe = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if now >= next_full:
                    self.poll_once()
                    self.last_poll_seconds = time.monotonic() - now
                    self._maybe_check_drift()
                    next_full = now + max(self.stats_interval, 2 * self.last_poll_seconds)
                    next_probe = time.monotonic() + self.interval
                elif now >= next_probe:
                    self.probe_once()
                    next_probe = time.monotonic() + self.interval
                heard = self.provider.changes(max(0.0, min(next_full, next_probe) - time.monotonic()))
                if heard and not self._stop.is_set():
                    # A check's result and the state change it causes come as two messages.
                    time.sleep(EVENT_SETTLE_S)
                    self.poll_once(heard | self.provider.changes(0))
            except Exception:  # noqa: BLE001 - a bad poll must not end the status channel
                log.exception("status poll failed")
                self._stop.wait(self.interval)

    def _maybe_check_drift(self) -> None:
        if self.decrypt is not None and time.monotonic() >= self._next_drift:
            self._next_drift = time.monotonic() + self.drift_interval
            try:
                self.check_drift()
            except Exception:  # noqa: BLE001
                log.exception("drift check failed")

    def probe_once(self) -> list[str]:
        """Between full rounds: read in full the LBs whose stats socket's reachability differs
        from the stored ``running``, and those found down (the healer's restarts and give-up
        follow each observation); the LBs whose statuses moved."""
        with self.db.read() as conn:
            stored = dataplane.running_of(conn)
        if not stored:
            return []
        down = self.provider.unreachable(stored)
        again = {lb_id for lb_id, running in stored.items() if lb_id in down or running is False}
        # The emulator's health flips (--emulator-controls) come from no HAProxy event: the flipped
        # LBs, and those a flip was just cleared from, are read at every probe.
        flipped = getattr(self.provider, "flipped", None)
        now_flipped = set(flipped()) if flipped is not None else set()
        again |= (now_flipped | self._flipped) & stored.keys()
        self._flipped = now_flipped
        return self.poll_once(again) if again else []

    def poll_once(self, only: Iterable[str] | None = None) -> list[str]:
        """Observe every served LB (or those of ``only``) once and store what changed; the LBs
        whose statuses moved."""
        # A provider may name the LBs worth a poll (the noop provider: none, unless the emulator
        # flips a member's health); without that, every served LB is polled.
        watched = getattr(self.provider, "watched", None)
        ids = watched() if watched is not None else None
        if only is not None:
            ids = set(only) if ids is None else set(only) & set(ids)
        if ids is not None and not ids:
            return []
        with self.db.read() as conn:
            current = dataplane.served(conn, ids)
        if ids is None and len(self._counters_seen) > len(current):  # a full round: forget the gone
            self._counters_seen = {k: v for k, v in self._counters_seen.items() if k in current}
        if not current:
            return []
        observations = self.provider.observe(list(current))
        self.polls += 1
        self.full_rounds += only is None
        return self.store(observations, current)

    def store(
        self, observations: Mapping[str, Observation], current: Mapping[str, dataplane.Served] | None = None
    ) -> list[str]:
        """Write one round of observations, only what changed; recompute the statuses they affect.

        Everything is compared in memory against one bulk read, so an idle host with thousands of
        LBs costs two reads per poll and no write (SQLite has one writer: the API's).
        """
        with self.db.read() as conn:
            if current is None:
                current = dataplane.served(conn, observations)
            known = dataplane.health_keys(conn, [i for i, o in observations.items() if o.members])
        plans = [
            p
            for p in (self._plan(obs, current.get(lb_id), known) for lb_id, obs in observations.items())
            if p
        ]
        if not plans:
            return []
        changed: list[str] = []
        # SQLite: one transaction (one fsync) per STORE_BATCH LBs: a mass change (a backend shared
        # by 1,000 LBs dies) is seen batch by batch, and the API's writes wait for one batch at
        # most, not for the round. PostgreSQL: one per LB, so that the poller's row locks never
        # wait in a cycle with a task's (e.g. an LB being deleted).
        step = STORE_BATCH if self.db.is_sqlite else 1
        for i in range(0, len(plans), step):
            batch = plans[i : i + step]
            with self.db.write() as conn:
                for plan in batch:
                    if self._apply(conn, plan):
                        changed.append(plan.lb_id)
            for plan in batch:  # committed
                if plan.counters_seen is not None:
                    self._counters_seen[plan.lb_id] = plan.counters_seen
        return changed

    def _plan(
        self, obs: Observation, row: dataplane.Served | None, known: Mapping[str, tuple]
    ) -> _Plan | None:
        plan = _Plan(obs.lb_id)
        down = self._down.get(obs.lb_id)
        gave_up = down is not None and down.gave_up and not obs.running  # keeps "gave up after ..."
        if not gave_up and (row is None or row.running != obs.running or row.reason != obs.reason):
            plan.running = (obs.running, obs.reason)
            plan.moved = row is None or row.running != obs.running
        for member_id, m in obs.members.items():
            rep = dataplane.MemberReport(
                m.health, m.check_status, m.check_code, m.check_desc, m.check_duration_ms, m.since_s
            )
            before = known.get(member_id)
            if before != rep.key():
                plan.members[member_id] = rep
                if before is not None and before[0] != rep.health:
                    plan.transitions.append((member_id, before[0]))
        seen = (obs.counters, obs.listener_counters)
        if obs.counters is not None and (row is None or self._counters_seen.get(obs.lb_id) != seen):
            c = obs.counters
            by_key = {"lb": _values(c), **{k: _values(v) for k, v in obs.listener_counters.items()}}
            listener_active = {k: v.active_connections for k, v in obs.listener_counters.items()}
            state, stats = dataplane.fold_counters(
                row.counters if row else None, c.generation, c.active_connections, by_key, listener_active
            )
            if row is None or row.stats != stats or row.counters != state:
                plan.counters, plan.counters_seen = (state, stats), seen
            else:
                self._counters_seen[obs.lb_id] = seen
        plan.heal = self._heal_decision(obs)
        return plan if (plan.running or plan.members or plan.counters or plan.heal) else None

    def _apply(self, conn, plan: _Plan) -> bool:
        """Write one LB's changes; True when its statuses were recomputed."""
        if (plan.heal is not None or (plan.running is not None and not plan.running[0])) and _being_removed(
            conn, plan.lb_id
        ):
            # Read just before its delete stopped the HAProxy: not a failure, nothing to restart
            # (it used to warn "data plane down ... restarting it" at every delete).
            self._down.pop(plan.lb_id, None)
            plan.running = plan.heal = None
            plan.moved = False
        if plan.running is not None:
            running, reason = plan.running
            dataplane.record_running(conn, plan.lb_id, running, reason)
            if plan.moved:
                log.log(
                    logging.INFO if running else logging.WARNING,
                    "load balancer %s data plane %s%s",
                    plan.lb_id,
                    "up" if running else "DOWN: ",
                    "" if running else reason or "",
                )
        health_moved = dataplane.record_members(conn, plan.lb_id, plan.members) if plan.members else False
        for member_id, before in plan.transitions:  # what an operator watching the log expects
            rep = plan.members[member_id]
            why = " ".join(str(x) for x in (rep.check_status, rep.check_code, rep.check_desc) if x)
            log.log(
                logging.INFO if rep.health in ("UP", "NO_CHECK") else logging.WARNING,
                "load balancer %s: member %s %s -> %s%s",
                plan.lb_id,
                member_id,
                before,
                rep.health,
                f" ({why})" if why else "",
            )
        if plan.counters is not None:
            dataplane.store_counters(conn, plan.lb_id, *plan.counters)
        if plan.heal is not None:
            self._heal(conn, plan.lb_id, plan.heal)
        if health_moved or plan.moved:
            statuses.refresh(conn, plan.lb_id)
            return True
        return False

    # -- self-healing ---------------------------------------------------------------------
    def _heal_decision(self, obs: Observation) -> str | None:
        """``restart`` or ``give_up`` when a data plane found down is due for it, else None."""
        now = time.monotonic()
        down = self._down.get(obs.lb_id)
        if obs.running:
            if down is not None:
                del self._down[obs.lb_id]
                log.info("load balancer %s: data plane back after %.1f s", obs.lb_id, now - down.since)
            return None
        if down is None:
            down = self._down[obs.lb_id] = _Down(now, reason=obs.reason)
        down.reason = obs.reason
        if down.gave_up or now < down.next_try:
            return None
        if down.attempts >= len(self.restart_backoff):
            down.gave_up = True
            return "give_up"
        down.attempts += 1
        backoff = self.restart_backoff
        down.next_try = now + backoff[min(down.attempts, len(backoff) - 1)]
        return "restart"

    def _heal(self, conn, lb_id: str, action: str) -> None:
        """Restart a data plane found down, from the desired state (an internal apply), or give up."""
        down = self._down[lb_id]
        if action == "give_up":
            last = queue.last_error(conn, lb_id, lifecycle.APPLY) or down.reason
            reason = f"gave up after {down.attempts} restarts: {last}"
            dataplane.record_running(conn, lb_id, False, reason)
            log.error("load balancer %s: data plane %s", lb_id, reason)
            return
        task = lifecycle.request_apply(conn, lb_id)
        log.warning(
            "load balancer %s: data plane down (%s); restarting it from the desired state (attempt %d%s)",
            lb_id,
            down.reason,
            down.attempts,
            "" if task else ", a queued task will apply it",
        )

    def give_up_state(self, lb_id: str) -> dict[str, object] | None:
        """What the healer knows of a down LB (for tests and ``dataplane status``)."""
        down = self._down.get(lb_id)
        return None if down is None else {"attempts": down.attempts, "gave_up": down.gave_up}

    # -- drift ---------------------------------------------------------------------------
    def check_drift(self) -> list[str]:
        """Compare every idle LB's running data plane with its applied state; re-apply what drifted."""
        T = tables.tasks
        with self.db.read() as conn:
            busy = set(
                conn.execute(sa.select(T.c.lock_key).where(T.c.state.in_(queue.ACTIVE_STATES))).scalars()
            )
            wanted = [
                snapshot.with_certificates(conn, s, self.decrypt)  # type: ignore[arg-type]
                for s in dataplane.all_applied(conn, self._applied)
                if s.id not in busy and s.id not in self._down
            ]
        drifted = []
        for desired in wanted:
            reason = self.provider.drift(desired)
            if reason is None:
                continue
            drifted.append(desired.id)
            log.warning(
                "load balancer %s drifted from its desired state (%s); reconciling", desired.id, reason
            )
            with self.db.write() as conn:
                lifecycle.request_apply(conn, desired.id)
        return drifted


def _values(c) -> dict[str, int]:
    return {
        "bytes_in": c.bytes_in,
        "bytes_out": c.bytes_out,
        "request_errors": c.request_errors,
        "total_connections": c.total_connections,
    }
