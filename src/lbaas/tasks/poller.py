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
from collections.abc import Mapping

from lbaas.db import dataplane, statuses
from lbaas.db.engine import Database
from lbaas.providers.base import Observation, Provider

log = logging.getLogger(__name__)


class Poller:
    """Polls the provider every ``interval`` seconds (default 1 s) in a daemon thread."""

    def __init__(self, db: Database, provider: Provider, *, interval: float = 1.0) -> None:
        self.db = db
        self.provider = provider
        self.interval = interval
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


def _values(c) -> dict[str, int]:
    return {
        "bytes_in": c.bytes_in,
        "bytes_out": c.bytes_out,
        "request_errors": c.request_errors,
        "total_connections": c.total_connections,
    }
