"""The provider interface: how the control plane drives a data plane.

A provider receives the whole desired state of one load balancer (a
:class:`LoadBalancerGraph`, plain data, no database) and makes the data plane
match it. Every call must be idempotent: the task engine may call ``apply``
again after a crash, and a later task re-applies a newer state that already
includes the earlier one. ``apply`` raises :class:`lbaas.errors.ProviderError`
when the data plane refuses the state (``retriable`` tells the engine whether
trying again can help).

Health comes back raw, per member (``UP``, ``DOWN``, ``DRAIN``, ``MAINT``,
``NO_CHECK`` or ``None`` for "nothing measured"); turning it into
operating statuses is the shared roll-up in :mod:`lbaas.domain.status`, never
the provider's job. ``stats`` returns counters per load balancer and per
listener, or ``None`` when the provider measures nothing (the noop provider):
the API then reports nulls rather than invented numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class LoadBalancerGraph:
    """The desired state of one load balancer, as rows turned into dicts."""

    lb: dict[str, Any]
    listeners: tuple[dict[str, Any], ...] = ()
    pools: tuple[dict[str, Any], ...] = ()
    members: tuple[dict[str, Any], ...] = ()
    health_monitors: tuple[dict[str, Any], ...] = ()
    l7_policies: tuple[dict[str, Any], ...] = ()
    l7_rules: tuple[dict[str, Any], ...] = ()
    certificates: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.lb["id"])


class Provider(Protocol):
    """What the task engine needs from a data plane."""

    name: str
    #: True when ``apply`` is quick and local enough to run inside the request
    #: that queued it (the emulator), so a client's first poll sees FINISHED.
    inline: bool

    def apply(self, graph: LoadBalancerGraph) -> None:
        """Make the data plane serve exactly ``graph``."""

    def remove(self, lb_id: str) -> None:
        """Stop serving the load balancer and free what it held; no error if absent."""

    def health(self, lb_id: str) -> dict[str, str | None]:
        """Raw health per member id."""

    def stats(self, lb_id: str) -> dict[str, Any] | None:
        """Counters: ``{"lb": {...}, "listeners": {id: {...}}}``, or None if unmeasured."""

    def failover(self, lb_id: str) -> None:
        """Restart the load balancer's data plane from scratch."""
