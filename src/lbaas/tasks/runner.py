"""The background half of an lbaas process: the data plane brought up, then the worker, the
poller and the metrics sampler."""

from __future__ import annotations

import logging
from typing import Any

from lbaas.tasks.poller import Poller
from lbaas.tasks.reconcile import bring_up
from lbaas.tasks.sampler import Sampler
from lbaas.tasks.worker import Worker

log = logging.getLogger(__name__)


class Runner:
    """Starts, in order: the access-log receiver (if any), reconciliation of the data plane
    (before any new task runs), the task worker's threads, the status poller's thread and the
    metrics sampler's thread; stops them in reverse."""

    def __init__(
        self,
        worker: Worker,
        *,
        poll_interval: float = 1.0,
        stats_interval: float = 5.0,
        drift_interval: float = 30.0,
        metrics_interval: int = 60,
        access_logs: Any = None,
    ) -> None:
        self.worker = worker
        self.poller = Poller(
            worker.db,
            worker.ctx.provider,
            interval=poll_interval,
            stats_interval=stats_interval,
            drift_interval=drift_interval,
            decrypt=worker.ctx.decrypt,
        )
        # lb-metrics: one sample per LB per metrics_interval (tasks/sampler.py)
        self.sampler = Sampler(worker.db, worker.ctx.provider, interval=metrics_interval)
        # Access logs: an lbaas.accesslogs.AccessLogReceiver (start/stop), or None.
        self.access_logs = access_logs

    @classmethod
    def for_settings(cls, worker: Worker, settings: Any, access_logs: Any = None) -> Runner:
        """The runner of a process whose settings (:class:`lbaas.config.Settings`) give the intervals."""
        return cls(
            worker,
            poll_interval=settings.poll_interval,
            stats_interval=settings.stats_interval,
            drift_interval=settings.drift_interval,
            metrics_interval=settings.metrics_interval,
            access_logs=access_logs,
        )

    def start(self) -> None:
        if self.access_logs is not None:
            self.access_logs.start()  # access logs: its socket exists before any HAProxy starts
        try:
            bring_up(self.worker.db, self.worker.ctx.provider, self.worker.ctx.decrypt)
        except Exception:  # noqa: BLE001 - tasks still run; each LB heals at its next apply
            log.exception("reconciling the data plane at start failed")
        self.worker.start()
        self.poller.start()
        self.sampler.start()  # lb-metrics

    def stop(self) -> None:
        self.sampler.stop()  # lb-metrics
        self.poller.stop()
        self.worker.stop()
        if self.access_logs is not None:
            self.access_logs.stop()  # access logs: after the worker, so a task's last lines land
