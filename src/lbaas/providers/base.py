"""The provider interface: how the control plane drives a data plane, and how it hears back.

Downward (the task engine calls these, one task per load balancer at a time):

* ``apply(desired, previous)`` makes the data plane serve ``desired`` (a
  :class:`~lbaas.domain.model.LoadBalancerSnapshot`). ``previous`` is the snapshot the
  last successful apply served (None for a new LB, or when it is not known): a provider
  that can apply a change without a restart (HAProxy's runtime API for members) compares
  the two. Every call is idempotent: the engine may call it again after a crash, and a
  later task applies a newer state that includes the earlier one. Raises
  :class:`lbaas.errors.ProviderError`; a :class:`~lbaas.errors.TransientProviderError`
  (a reload that did not take, a busy socket) is retried by the engine with back-off.
* ``remove(lb_id)`` stops serving and frees what the LB held; no error when absent.
* ``failover(desired)`` rebuilds the LB's data plane from ``desired``.
* ``reconcile(desired)`` is called once when lbaas starts, before any new task runs,
  with every load balancer that should be served: adopt what already runs as it should,
  (re)start the rest, stop what serves no known LB.

Upward (the status channel; Octavia's driver "status update" is the model): the poller
(:mod:`lbaas.tasks.poller`, its own thread, off the API's event loop) calls
``observe(lb_ids)`` every interval and feeds what comes back to the shared roll-up
(:mod:`lbaas.domain.status`) and the counters. Turning raw health into operating statuses
is never the provider's job.

Resource usage (the metrics sampler, :mod:`lbaas.tasks.sampler`, its own thread): every
sampling interval it calls ``usage(lb_ids)`` and averages two successive answers into one
sample per LB (:mod:`lbaas.domain.metrics`). A provider that measures nothing answers ``{}``.

``capabilities`` says what the provider can serve at all; the API refuses the rest at
request time (400 naming the limitation), never as a failed task.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from lbaas.domain.capabilities import Capabilities
from lbaas.domain.model import LoadBalancerSnapshot


@dataclass(frozen=True, slots=True)
class MemberCheck:
    """What the data plane measured of one member: raw health and why.

    ``health``: ``UP``, ``DOWN``, ``DRAIN``, ``MAINT`` or ``NO_CHECK`` (the roll-up's input).
    The rest explains it (HAProxy's words): ``check_status`` (``L4OK``, ``L4CON``,
    ``L7STS``, ``L4TOUT``...), ``check_code`` (the HTTP status a check got), ``check_desc``
    (the check's text, e.g. "Connection refused"), ``check_duration_ms``, and
    ``since_s``: seconds since the health last changed.
    """

    health: str
    check_status: str | None = None
    check_code: int | None = None
    check_desc: str | None = None
    check_duration_ms: int | None = None
    since_s: int | None = None


@dataclass(frozen=True, slots=True)
class Counters:
    """Traffic counters as the data plane reports them (they may restart at zero).

    ``generation`` changes whenever the counters restart (a new HAProxy worker), so the
    poller can keep totals monotonic across reloads and restarts.
    """

    active_connections: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    request_errors: int = 0
    total_connections: int = 0
    generation: str = ""


@dataclass(frozen=True, slots=True)
class Observation:
    """One poll of one load balancer.

    ``running`` False: its data plane is down (``reason`` says why): the LB reads ERROR.
    ``members``: by member id; a member absent from the map has nothing measured.
    ``counters``: per LB and per listener id; None when the provider measures nothing.
    """

    lb_id: str
    running: bool = True
    reason: str | None = None
    members: Mapping[str, MemberCheck] = field(default_factory=dict)
    counters: Counters | None = None
    listener_counters: Mapping[str, Counters] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Usage:
    """What one LB's data-plane processes use, read at one instant (``usage()``).

    ``cpu_seconds``: user + system CPU time, in seconds, of the LB's processes and of the
    children they reaped (HAProxy: a reload's old worker, once it exits, is counted in its
    master's), since ``generation`` began; ``generation`` changes when that total restarts
    (HAProxy: a new master). ``memory_bytes``: memory in use now (HAProxy: the processes'
    proportional set size, Pss). ``sampled_at``: ``time.monotonic()`` of the reading.
    """

    cpu_seconds: float
    memory_bytes: int
    sampled_at: float
    generation: str = ""


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One LB's data-plane process, for ``lbaas dataplane status``."""

    lb_id: str
    state: str  # running, stopped, failed
    pid: int | None = None
    reloads: int | None = None
    config_hash: str | None = None
    detail: str | None = None


class Provider(Protocol):
    """What the task engine and the poller need from a data plane."""

    name: str
    #: True when ``apply`` is quick and local enough to run inside the request that
    #: queued it (the emulator), so a client's first poll sees FINISHED.
    inline: bool
    capabilities: Capabilities

    def apply(self, desired: LoadBalancerSnapshot, previous: LoadBalancerSnapshot | None) -> None:
        """Make the data plane serve exactly ``desired``."""

    def remove(self, lb_id: str) -> None:
        """Stop serving the load balancer and free what it held; no error if absent."""

    def failover(self, desired: LoadBalancerSnapshot) -> None:
        """Rebuild the load balancer's data plane from ``desired``."""

    def reconcile(self, desired: Sequence[LoadBalancerSnapshot]) -> None:
        """At start: adopt, (re)start or stop processes so that exactly ``desired`` is served."""

    def observe(self, lb_ids: Iterable[str]) -> Mapping[str, Observation]:
        """One poll of each LB (the poller's thread; must not block for long). A provider may
        also have ``watched() -> frozenset[str] | None``: the only LBs worth a poll (None: all
        served ones), so that a provider measuring nothing costs no poll at all."""

    def usage(self, lb_ids: Iterable[str]) -> Mapping[str, Usage]:
        """CPU time and memory of each LB's data plane (the sampler's thread; quick, local
        reads). An LB that is not running, or a provider that measures nothing, is absent."""

    def processes(self) -> list[ProcessInfo]:
        """Every data-plane process this provider knows of."""

    def drift(self, desired: LoadBalancerSnapshot) -> str | None:
        """Why the running data plane no longer matches ``desired`` (edited files, a process
        started with another configuration), or None when it does or cannot be judged."""
