"""Traffic totals that never go backwards, although a data plane restarts its counters.

HAProxy's counters belong to its worker process: every reload or restart starts again at
zero. The API's ``stats`` (bytes, connections, errors) must only grow, across reloads and
across restarts of lbaas, so the poller keeps, per load balancer, a persisted
:class:`CounterAccumulator`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class CounterAccumulator:
    """Totals that survive reloads and restarts: ``base`` + the current worker's counters.

    Feed it every poll with the worker pid that produced it. A reset is a new worker pid
    or any counter going backwards; then the previous worker's last values move into
    ``base``. Whatever the old worker counted after the last poll before the reset is
    lost. State is plain data (:meth:`state`, ``CounterAccumulator(state)``) for the
    caller to persist; keys are whatever the caller groups by (``"lb"``, listener ids).
    """

    def __init__(self, state: Mapping[str, Any] | None = None) -> None:
        state = state or {}
        self.pid: int | None = state.get("pid")
        self.base: dict[str, dict[str, int]] = {k: dict(v) for k, v in (state.get("base") or {}).items()}
        self.last: dict[str, dict[str, int]] = {k: dict(v) for k, v in (state.get("last") or {}).items()}

    def state(self) -> dict[str, Any]:
        return {"pid": self.pid, "base": self.base, "last": self.last}

    def _went_back(self, counters: Mapping[str, Mapping[str, int]]) -> bool:
        for key, values in counters.items():
            before = self.last.get(key, {})
            if any(v < before.get(name, 0) for name, v in values.items()):
                return True
        return False

    def observe(
        self, pid: int | None, counters: Mapping[str, Mapping[str, int]]
    ) -> dict[str, dict[str, int]]:
        """Record one poll; return the totals for every key seen so far."""
        reset = (pid is not None and self.pid is not None and pid != self.pid) or self._went_back(counters)
        if reset:
            for key, values in self.last.items():
                base = self.base.setdefault(key, {})
                for name, v in values.items():
                    base[name] = base.get(name, 0) + v
            self.last = {}
        for key, values in counters.items():
            self.last[key] = dict(values)
        if pid is not None:
            self.pid = pid
        return self.totals()

    def totals(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for key in set(self.base) | set(self.last):
            base, last = self.base.get(key, {}), self.last.get(key, {})
            out[key] = {n: base.get(n, 0) + last.get(n, 0) for n in set(base) | set(last)}
        return out
