"""The metrics sampler: one sample per load balancer per interval, stored for 30 days.

Every ``interval`` seconds (``LBAAS_METRICS_INTERVAL_S``, default 60), on the wall clock's
multiples of the interval and in its own thread (never on the API's event loop), the
sampler reads each served LB's resource usage from the provider (``usage()``: CPU time and
memory of its processes) and its monotonic traffic totals from the database (the poller's
``dataplane_state.stats``), and stores the averages over the interval since its previous
reading as one ``lb_metrics`` row (:mod:`lbaas.domain.metrics` has the arithmetic). The
row's ``interval_start`` is the tick of that previous reading.

The previous readings live in memory: after lbaas starts, or when an LB first appears or
comes back up, the first tick only takes a reading, and the next one stores a sample. A
provider that measures nothing (the emulator) yields no rows, so every metric reads null.
Samples older than :data:`~lbaas.domain.metrics.RETENTION_DAYS` are pruned once an hour.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from lbaas.db import dataplane
from lbaas.db import metrics as metrics_db
from lbaas.db.engine import Database
from lbaas.domain import metrics
from lbaas.domain.flavors import DEFAULT_FLAVOR, FLAVORS
from lbaas.providers.base import Provider

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600.0


def host_cpus() -> int:
    """Cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class Sampler:
    """Samples every served LB each ``interval`` seconds (an integer >= 1) in a daemon thread.

    ``wall``: the clock whose multiples of ``interval`` are the ticks (``time.time``).
    """

    def __init__(
        self,
        db: Database,
        provider: Provider,
        *,
        interval: int = 60,
        cpus: int | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if interval < 1:
            raise ValueError("the metrics interval must be at least 1 second")
        self.db = db
        self.provider = provider
        self.interval = int(interval)
        self.host_cpus = cpus or host_cpus()
        self.wall = wall
        self._last: dict[str, tuple[int, metrics.Reading]] = {}
        self._pruned_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="lbaas-sampler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        tick = int(self.wall())  # the first readings: nothing to average yet
        while True:
            try:
                self.sample_once(tick)
            except Exception:  # noqa: BLE001 - a bad tick must not end the sampling
                log.exception("metrics sample failed")
            now = self.wall()
            tick = (math.floor(now / self.interval) + 1) * self.interval
            if self._stop.wait(max(0.0, tick - now)):
                return

    def sample_once(self, tick: int) -> int:
        """Read every served LB at ``tick`` (epoch seconds) and store a sample for each one
        read at an earlier tick; prune old samples when due. Returns the samples stored."""
        with self.db.read() as conn:
            lb_ids = dataplane.served_ids(conn)
            flavors = metrics_db.flavors_of(conn, lb_ids)
            stats = dataplane.stats_of(conn, lb_ids)
        usage = self.provider.usage(lb_ids) if lb_ids else {}
        rows: list[dict[str, Any]] = []
        last: dict[str, tuple[int, metrics.Reading]] = {}
        for lb_id, used in usage.items():
            if lb_id not in flavors:
                continue  # deleted meanwhile
            totals = (stats.get(lb_id) or {}).get("lb") or {}
            reading = metrics.Reading(
                monotonic=used.sampled_at,
                cpu_seconds=used.cpu_seconds,
                memory_bytes=used.memory_bytes,
                generation=used.generation,
                bytes_in=totals.get("bytes_in"),
                bytes_out=totals.get("bytes_out"),
            )
            last[lb_id] = (tick, reading)
            previous = self._last.get(lb_id)
            if previous is None or previous[0] >= tick:
                continue
            vcpus, ram_mib = FLAVORS.get(flavors[lb_id] or DEFAULT_FLAVOR, FLAVORS[DEFAULT_FLAVOR])
            s = metrics.sample(previous[1], reading, vcpus=vcpus, ram_mib=ram_mib, host_cpus=self.host_cpus)
            if s is not None:
                rows.append(
                    {
                        "lb_id": lb_id,
                        "interval_start": previous[0],
                        "interval_seconds": s.seconds,
                        "cpu_util": s.cpu_util,
                        "memory_util": s.memory_util,
                        "network_bps_ingress": s.network_bps_ingress,
                        "network_bps_egress": s.network_bps_egress,
                    }
                )
        # An LB not read this time (stopped, removed) starts over with a fresh reading.
        self._last = last
        prune = self._pruned_at is None or time.monotonic() - self._pruned_at >= PRUNE_EVERY_S
        if rows or prune:
            with self.db.write() as conn:
                stored = metrics_db.record(conn, rows) if rows else 0
                if prune:
                    metrics_db.prune(conn, tick - metrics.RETENTION_DAYS * 86400)
            if prune:
                self._pruned_at = time.monotonic()
            self.samples += stored
            return stored
        return 0
