"""Metrics over time: one sample per LB per interval, and the windows the API answers with.

A *reading* is what the sampler sees of one LB at one instant (its data plane's CPU time,
memory and monotonic byte totals); a *sample* is the average over the interval between two
readings. :func:`sample` is that average:

* ``cpu_util``, % = ΔCPU seconds / (interval s × CPUs) × 100, where CPUs are the flavor's
  vCPUs capped at the host's cores (HAProxy runs ``min(vCPUs, cores)`` threads, see
  :func:`lbaas.providers.haproxy.render.globaldefs.nbthread`), clamped to 0..100 (Gcore:
  "max 100% for multi-core");
* ``memory_util``, % = memory / flavor RAM × 100, memory being the mean of the two readings;
* ``network_bps_ingress`` / ``_egress``, **bits** per second = Δbytes × 8 / interval s: the
  unit the gcore SDK 0.59.0 documents for ``network_Bps_*`` ("the value is bits, not bytes";
  Gcore's OpenAPI says bytes, and where the two disagree the SDK wins). Ingress is what the
  LB's listeners received from clients, egress what they sent back.

The API answers a window as :class:`Window` slots: for ``time_unit=hour`` one slot per
sampling interval (every sample; wider slots, averaged, once a window would exceed
:data:`MAX_POINTS`), for ``day`` one slot per hour (samples averaged, weighted by the time
they cover). Windows reach back at most :data:`RETENTION_DAYS`, how long samples are kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Samples older than this are pruned; a longer window is answered for this long.
RETENTION_DAYS = 30
#: The most slots one answer holds (24 hours of 1-minute samples).
MAX_POINTS = 1440
MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class Reading:
    """One look at an LB's data plane.

    ``monotonic``: when (``time.monotonic()``, seconds). ``cpu_seconds``: CPU time used
    since ``generation`` began (a new generation, e.g. a new HAProxy master, restarts it at
    0). ``memory_bytes``: memory in use now. ``bytes_in`` / ``bytes_out``: monotonic traffic
    totals of its listeners (None: not measured yet).
    """

    monotonic: float
    cpu_seconds: float
    memory_bytes: int
    generation: str = ""
    bytes_in: int | None = None
    bytes_out: int | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    """Averages over ``seconds`` (> 0); a None value was not measured over that interval."""

    seconds: float
    cpu_util: float | None
    memory_util: float | None
    network_bps_ingress: float | None
    network_bps_egress: float | None


def cpus_for(vcpus: int, host_cpus: int) -> int:
    """The CPUs an LB can use: its flavor's vCPUs, at most the host's cores (at least 1)."""
    return max(1, min(vcpus, host_cpus))


def _rate_bits(before: int | None, after: int | None, seconds: float) -> float | None:
    if before is None or after is None or after < before:
        return None  # not measured at both ends, or the totals went back (a lost accumulator)
    return (after - before) * 8 / seconds


def sample(prev: Reading, cur: Reading, *, vcpus: int, ram_mib: int, host_cpus: int) -> Sample | None:
    """The averages over the interval from ``prev`` to ``cur`` (None when it has no length).

    When the generation changed, the CPU time of ``cur`` all falls inside the interval (the
    new processes started after ``prev``).
    """
    seconds = cur.monotonic - prev.monotonic
    if seconds <= 0:
        return None
    used = cur.cpu_seconds - (prev.cpu_seconds if cur.generation == prev.generation else 0.0)
    cpu = min(100.0, max(0.0, used / (seconds * cpus_for(vcpus, host_cpus)) * 100))
    memory = (prev.memory_bytes + cur.memory_bytes) / 2 / (ram_mib * MIB) * 100 if ram_mib > 0 else None
    return Sample(
        seconds=seconds,
        cpu_util=cpu,
        memory_util=memory,
        network_bps_ingress=_rate_bits(prev.bytes_in, cur.bytes_in, seconds),
        network_bps_egress=_rate_bits(prev.bytes_out, cur.bytes_out, seconds),
    )


@dataclass(frozen=True, slots=True)
class Window:
    """The slots of one answer: ``starts`` (UTC epoch seconds, oldest first), each ``width`` long.

    A sample belongs to the slot in which its interval starts.
    """

    width: int
    starts: tuple[int, ...]

    @property
    def begin(self) -> int:
        return self.starts[0]

    @property
    def end(self) -> int:
        return self.starts[-1] + self.width


def window(now: float, interval: int, time_unit: str, time_interval: int) -> Window:
    """The slots answering ``time_interval`` ``time_unit``s (``hour`` or ``day``) back from ``now``.

    ``interval``: the sampler's interval in seconds (samples start on its multiples). The
    newest slot is the one holding the newest complete sample (``hour``), or the current
    hour (``day``); a window longer than :data:`RETENTION_DAYS` is cut to it.
    """
    if interval < 1 or time_interval < 1:
        raise ValueError("interval and time_interval must be positive")
    unit = 3600 if time_unit == "hour" else 86400
    span = min(time_interval * unit, RETENTION_DAYS * 86400)
    base = interval if time_unit == "hour" else 3600
    width = base * max(1, math.ceil(span / base / MAX_POINTS))
    count = math.ceil(span / width)
    end = math.floor(now / interval) * interval  # the newest tick: samples start before it
    last = ((end - 1) // width) * width
    return Window(width, tuple(last - width * i for i in reversed(range(count))))
