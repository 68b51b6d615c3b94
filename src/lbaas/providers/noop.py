"""The emulator's provider: records every call, carries no traffic.

It is product code, not a test double: ``lbaas serve --provider noop`` uses it, and tests
read :attr:`NoopProvider.calls` to see what reached the data plane. ``delay_ms`` holds
each call so clients can watch PENDING states and queueing. It measures nothing: members
are reported with nothing measured (the roll-up reads them as healthy, which is what client
code sees on a healthy real deployment), counters are None (the API reports zeros) and usage
is empty (no metrics samples: every metric reads null).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from lbaas.domain.capabilities import EVERYTHING
from lbaas.domain.model import LoadBalancerSnapshot
from lbaas.errors import ProviderError
from lbaas.providers.base import Observation, ProcessInfo, Usage


@dataclass
class Fault:
    """Make matching calls fail: ``op`` is apply/remove/failover, ``match`` sees the LB id and snapshot."""

    op: str
    match: Callable[[str, LoadBalancerSnapshot | None], bool]
    message: str = "injected data-plane failure"
    times: int = 1
    error: type[ProviderError] = ProviderError


class NoopProvider:
    name = "noop"
    capabilities = EVERYTHING

    def __init__(self, delay_ms: int = 0, *, inline: bool | None = None) -> None:
        self.delay_ms = delay_ms
        # Tasks run inside the request that queued them unless they are held back
        # (a delay, or ``inline=False`` so that tests can queue tasks behind each other).
        self.inline = delay_ms == 0 if inline is None else inline
        self.calls: list[tuple[str, str]] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()

    def finishes_in_request(self) -> bool:
        """A task may run inside the request that queued it (one commit): nothing here waits or
        needs a transaction of its own, unless calls are held (``delay_ms``) or not inline."""
        return self.inline and not self.delay_ms

    def inject_fault(self, fault: Fault) -> None:
        """Fail the next matching call(s) with a ProviderError (the emulator's fault injection)."""
        with self._lock:
            self.faults.append(fault)

    def _record(self, op: str, lb_id: str, snapshot: LoadBalancerSnapshot | None = None) -> None:
        with self._lock:
            self.calls.append((op, lb_id))
            del self.calls[:-1000]
            fault = next(
                (f for f in self.faults if f.op == op and f.times > 0 and f.match(lb_id, snapshot)), None
            )
            if fault is not None:
                fault.times -= 1
        if self.delay_ms:
            time.sleep(self.delay_ms / 1000)
        if fault is not None:
            raise fault.error(fault.message)

    def apply(self, desired: LoadBalancerSnapshot, previous: LoadBalancerSnapshot | None = None) -> None:
        self._record("apply", desired.id, desired)

    def remove(self, lb_id: str) -> None:
        self._record("remove", lb_id)

    def failover(self, desired: LoadBalancerSnapshot) -> None:
        self._record("failover", desired.id, desired)

    def reconcile(self, desired: Sequence[LoadBalancerSnapshot]) -> None:
        """Nothing runs, so nothing to adopt."""

    def watched(self) -> frozenset[str]:
        """The LBs worth a poll: none, since nothing runs and nothing is measured. (Polling
        10,000 noop LBs every second cost ~100 ms of GIL a round: the tail of every request.)"""
        return frozenset()

    def observe(self, lb_ids: Iterable[str]) -> Mapping[str, Observation]:
        return {lb_id: Observation(lb_id) for lb_id in lb_ids}

    def usage(self, lb_ids: Iterable[str]) -> Mapping[str, Usage]:
        """Nothing runs, so nothing is measured."""
        return {}

    def processes(self) -> list[ProcessInfo]:
        return []

    def drift(self, desired: LoadBalancerSnapshot) -> str | None:
        return None
