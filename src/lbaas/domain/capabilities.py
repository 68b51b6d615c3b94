"""What a data plane can serve at all, declared by each provider in one place.

The API refuses the rest at request time with a 400 that names the limitation, so a
client never waits for a task that cannot succeed (and never gets a 5xx). Gcore's schema
accepts these values, so the refusal is the provider's, and the message says so.

* ``noop`` (the emulator) carries no traffic and accepts everything Gcore accepts.
* ``haproxy`` (HAProxy 2.6, one process per LB) carries TCP only: UDP listeners and pools
  would need keepalived/LVS (Octavia's UDP path, PRIOR_ART.md §3b), and its health
  checks cannot run UDP-CONNECT (a UDP probe) or K8S (Gcore's Kubernetes check, whose
  behaviour is not published).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lbaas.domain.enums import HealthMonitorType, ListenerProtocol, PoolProtocol
from lbaas.domain.flavors import FLAVORS
from lbaas.errors import Forbidden, ValidationFailed


@dataclass(frozen=True, slots=True)
class Capabilities:
    """The listener protocols, pool protocols and monitor types a provider can serve."""

    provider: str
    listener_protocols: frozenset[ListenerProtocol] = frozenset(ListenerProtocol)
    pool_protocols: frozenset[PoolProtocol] = frozenset(PoolProtocol)
    monitor_types: frozenset[HealthMonitorType] = frozenset(HealthMonitorType)
    why: str = ""
    #: How many load balancers the host holds (None: no limit). Measured in docs/PERFORMANCE.md.
    max_load_balancers: int | None = None
    #: The host's memory: a flavor with more RAM cannot be honoured (its caps are RAM-derived).
    host_ram_mib: int | None = None

    def _refuse(self, field: str, what: str, allowed: frozenset[str]) -> None:
        names = ", ".join(sorted(allowed))
        raise ValidationFailed.field(
            field,
            f"The {self.provider} data plane of this deployment cannot serve {what}{self.why}; "
            f"it serves: {names}",
        )

    def check_listener_protocol(self, protocol: str | None, field: str = "protocol") -> None:
        if protocol is not None and protocol not in self.listener_protocols:
            self._refuse(field, f"{protocol} listeners", self.listener_protocols)

    def check_pool_protocol(self, protocol: str | None, field: str = "protocol") -> None:
        if protocol is not None and protocol not in self.pool_protocols:
            self._refuse(field, f"{protocol} pools", self.pool_protocols)

    def check_monitor_type(self, monitor_type: str | None, field: str = "type") -> None:
        if monitor_type is not None and monitor_type not in self.monitor_types:
            self._refuse(field, f"{monitor_type} health monitors", self.monitor_types)

    def check_capacity(self, load_balancers: Callable[[], int]) -> None:
        """Gcore's capacity answer (403 ForbiddenError, errors.md) when the host is full.

        ``load_balancers``: counts the host's LBs; called only where a limit is set (the count is
        a scan of the table, and the emulator has no limit)."""
        if self.max_load_balancers is not None and load_balancers() >= self.max_load_balancers:
            raise Forbidden(
                f"No capacity for another load balancer: this {self.provider} host holds at most "
                f"{self.max_load_balancers} (measured limit, see docs/PERFORMANCE.md)"
            )

    def check_flavor(self, flavor: str) -> None:
        """403 for a flavor whose RAM this host does not have."""
        ram = FLAVORS[flavor][1]
        if self.host_ram_mib is not None and ram > self.host_ram_mib:
            raise Forbidden(
                f"No capacity for flavor {flavor}: it needs {ram} MiB of RAM "
                f"and this host has {self.host_ram_mib} MiB"
            )


EVERYTHING = Capabilities("noop")

HAPROXY = Capabilities(
    "haproxy",
    listener_protocols=frozenset(ListenerProtocol) - {ListenerProtocol.UDP},
    pool_protocols=frozenset(PoolProtocol) - {PoolProtocol.UDP},
    monitor_types=frozenset(HealthMonitorType) - {HealthMonitorType.UDP_CONNECT, HealthMonitorType.K8S},
    why=" (HAProxy carries TCP only and has no UDP-CONNECT or K8S check)",
)
