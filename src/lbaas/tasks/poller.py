"""The status channel: the data plane's measurements back into operating statuses and counters.

Every ``interval`` seconds, in its own thread (never on the API's event loop), the poller
asks the provider to observe every load balancer it serves (one ``show stat`` per LB for
HAProxy) and hands the answers to the database in one transaction:

* a member whose raw health or check reason changed gets a new ``member_health`` row,
  and its LB's operating statuses are recomputed by the shared roll-up
  (:func:`lbaas.db.statuses.refresh`), which writes only what changed;
* an LB whose data plane went down (or came back) is marked, and reads ERROR while down;
* traffic counters are folded into monotonic totals (:mod:`lbaas.domain.counters`).

Nothing is written when nothing changed. Octavia's health manager plays this part (its
"status update" driver channel), from heartbeats instead of polls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from lbaas.db import dataplane, lifecycle, queue, snapshot, statuses, tables
from lbaas.db.engine import Database
from lbaas.providers.base import Observation, Provider

log = logging.getLogger(__name__)

#: Seconds to wait before each restart of a data plane found down; then it is given up on
#: (the LB stays ERROR, the reason in the log and in ``lbaas dataplane status``).
RESTART_BACKOFF = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0)


@dataclass
class _Down:
    since: float
    attempts: int = 0
    next_try: float = 0.0
    gave_up: bool = False


class Poller:
    """Polls the provider every ``interval`` seconds (default 1 s) in a daemon thread."""

    def __init__(
        self,
        db: Database,
        provider: Provider,
        *,
        interval: float = 1.0,
        drift_interval: float = 30.0,
        decrypt: Callable[[str], str] | None = None,
    ) -> None:
        self.db = db
        self.provider = provider
        self.interval = interval
        self.drift_interval = drift_interval
        self.decrypt = decrypt
        self._down: dict[str, _Down] = {}
        self.restart_backoff: tuple[float, ...] = RESTART_BACKOFF
        self._next_drift = time.monotonic() + drift_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_poll_seconds = 0.0
        self.polls = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="lbaas-poller", daemon=True)
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
            if self.decrypt is not None and time.monotonic() >= self._next_drift:
                self._next_drift = time.monotonic() + self.drift_interval
                try:
                    self.check_drift()
                except Exception:  # noqa: BLE001
                    log.exception("drift check failed")
            self.last_poll_seconds = time.monotonic() - began
            self._stop.wait(max(0.05, self.interval - self.last_poll_seconds))

    def poll_once(self) -> list[str]:
        """Observe every served LB once and store what changed; the LBs whose statuses moved."""
        with self.db.read() as conn:
            lb_ids = dataplane.served_ids(conn)
        if not lb_ids:
            return []
        observations = self.provider.observe(lb_ids)
        self.polls += 1
        return self.store(observations)

    def store(self, observations: Mapping[str, Observation]) -> list[str]:
        """Write one round of observations (only changes); recompute the statuses they affect."""
        changed: list[str] = []
        with self.db.write() as conn:
            for lb_id, obs in observations.items():
                moved = dataplane.record_running(conn, lb_id, obs.running, obs.reason)
                if moved:
                    level = logging.WARNING if not obs.running else logging.INFO
                    log.log(
                        level,
                        "load balancer %s data plane %s: %s",
                        lb_id,
                        "up" if obs.running else "DOWN",
                        obs.reason or "",
                    )
                reports = {
                    member_id: dataplane.MemberReport(
                        m.health, m.check_status, m.check_code, m.check_desc, m.check_duration_ms, m.since_s
                    )
                    for member_id, m in obs.members.items()
                }
                if dataplane.record_members(conn, lb_id, reports) or moved:
                    statuses.refresh(conn, lb_id)
                    changed.append(lb_id)
                self._heal(conn, obs)
                if obs.counters is not None:
                    c = obs.counters
                    by_key = {"lb": _values(c), **{k: _values(v) for k, v in obs.listener_counters.items()}}
                    dataplane.record_counters(
                        conn,
                        lb_id,
                        c.generation,
                        c.active_connections,
                        by_key,
                        {k: v.active_connections for k, v in obs.listener_counters.items()},
                    )
        return changed

    # -- self-healing ---------------------------------------------------------------------
    def _heal(self, conn, obs: Observation) -> None:
        """Restart a data plane found down, from the desired state, with back-off; bounded."""
        now = time.monotonic()
        down = self._down.get(obs.lb_id)
        if obs.running:
            if down is not None:
                del self._down[obs.lb_id]
                log.info("load balancer %s: data plane back after %.1f s", obs.lb_id, now - down.since)
            return
        if down is None:
            down = self._down[obs.lb_id] = _Down(now)
        if down.gave_up or now < down.next_try:
            return
        backoff = self.restart_backoff
        if down.attempts >= len(backoff):
            down.gave_up = True
            last = queue.last_error(conn, obs.lb_id, lifecycle.APPLY) or obs.reason
            reason = f"gave up after {down.attempts} restarts: {last}"
            dataplane.record_running(conn, obs.lb_id, False, reason)
            log.error("load balancer %s: data plane %s", obs.lb_id, reason)
            return
        task = lifecycle.request_apply(conn, obs.lb_id)
        down.attempts += 1
        down.next_try = now + backoff[min(down.attempts, len(backoff) - 1)]
        log.warning(
            "load balancer %s: data plane down (%s); restarting it from the desired state (attempt %d%s)",
            obs.lb_id,
            obs.reason,
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
                for s in dataplane.all_applied(conn)
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
