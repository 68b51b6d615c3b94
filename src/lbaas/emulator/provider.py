"""The provider wrapper that carries task faults and health flips to any provider.

``EmulatedProvider(inner, ...)`` is what the worker and the poller talk to when the controls are
on. Before it passes ``apply``/``remove``/``failover`` on, it looks for a ``task`` fault
matching the task that is running on that load balancer; one that fires raises
:class:`lbaas.errors.ProviderError` with the fault's text, so the task fails through the
worker's normal failure path (task ERROR, resources ERROR) and the data plane is not touched.
``observe`` reports the inner provider's observations with the health flips on top, so the
poller stores them like any measurement. Everything else (``name``, ``inline``,
``capabilities``, ``reconcile``, ``processes``, the noop provider's ``calls``) is the inner
provider's.

Tasks that never reach the data plane (floating IPs, secrets) cannot be failed this way.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from lbaas.db import tables
from lbaas.db.engine import Database
from lbaas.emulator import faults, health
from lbaas.emulator.controls import Controls
from lbaas.errors import ProviderError
from lbaas.providers.base import Observation

log = logging.getLogger("lbaas.emulator")

T = tables.tasks
DEFAULT_ERROR = "injected failure (lbaas emulator)"


class EmulatedProvider:
    """A provider with the emulator's task faults and health flips (see the module doc)."""

    def __init__(self, inner: Any, db: Database, controls: Controls) -> None:
        self.inner = inner
        self.db = db
        self.controls = controls
        # A task calls the provider up to twice (failover, resize): it draws once.
        self._decided: collections.OrderedDict[str, str | None] = collections.OrderedDict()
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    # -- task faults ---------------------------------------------------------------
    def _running_task(self, lb_id: str) -> Any:
        with self.db.read() as conn:
            return conn.execute(
                sa.select(T.c.id, T.c.task_type, T.c.project_id)
                .where(T.c.lock_key == lb_id, T.c.state == "RUNNING")
                .order_by(T.c.seq)
                .limit(1)
            ).first()

    def _decide(self, task: Any, candidates: list[Any]) -> str | None:
        for fault in candidates:
            with self.db.write() as conn:
                outcome = faults.draw(conn, fault.id)
            if outcome is not None and outcome.fire:
                if outcome.spent:
                    self.controls.changed()
                log.warning(
                    "emulator: injected fault %s (task) into task %s (%s): %s",
                    fault.id,
                    task.id,
                    task.task_type,
                    fault.message or DEFAULT_ERROR,
                )
                return fault.message or DEFAULT_ERROR
        return None

    def _maybe_fail(self, lb_id: str) -> None:
        view = self.controls.view(max_age=0)  # workers may run in other processes: always current
        if not view.tasks:
            return
        task = self._running_task(lb_id)
        if task is None:
            return
        with self._lock:
            if task.id in self._decided:
                error = self._decided[task.id]
                if error is not None:
                    raise ProviderError(error)
                return
        candidates = [f for f in view.tasks if f.matches_task(task.task_type, task.project_id)]
        error = self._decide(task, candidates) if candidates else None
        with self._lock:
            self._decided[task.id] = error
            while len(self._decided) > 1000:
                self._decided.popitem(last=False)
        if error is not None:
            raise ProviderError(error)

    def finishes_in_request(self) -> bool:
        """As the inner provider, but never while task faults are set: drawing one is a write of
        its own (the fault's count) that must land even when the task's transaction rolls back."""
        inner = getattr(self.inner, "finishes_in_request", None)
        return inner is not None and inner() and not self.controls.view(max_age=0).tasks

    def apply(self, desired: Any, previous: Any = None) -> None:
        self._maybe_fail(desired.id)
        self.inner.apply(desired, previous)

    def remove(self, lb_id: str) -> None:
        self._maybe_fail(lb_id)
        self.inner.remove(lb_id)

    def failover(self, desired: Any) -> None:
        self._maybe_fail(desired.id)
        self.inner.failover(desired)

    # -- health flips ----------------------------------------------------------------
    def watched(self) -> frozenset[str] | None:
        """The inner provider's LBs worth a poll (None: every served one), and those whose
        members' health is flipped (the poller reports a member added to a flipped pool)."""
        inner = getattr(self.inner, "watched", None)
        mine = inner() if inner is not None else None
        if mine is None:
            return None
        return mine | self.flipped()

    def flipped(self) -> set[str]:
        """The LBs whose members' health is flipped: a poller that otherwise reads an LB only when
        its HAProxy reports a change reads these at every probe (a member added to a flipped pool)."""
        return {f.lb_id for f in self.controls.view().health}

    def observe(self, lb_ids: Iterable[str]) -> Mapping[str, Observation]:
        ids = list(lb_ids)
        observed = dict(self.inner.observe(ids))
        flips = self.controls.view().health
        flipped = {f.lb_id for f in flips} & set(ids)
        if not flipped:
            return observed
        with self.db.read() as conn:
            for lb_id in flipped:
                base = observed.get(lb_id) or Observation(lb_id)
                members = {**base.members, **health.checks(conn, lb_id, flips)}
                observed[lb_id] = dataclasses.replace(base, members=members)
        return observed
