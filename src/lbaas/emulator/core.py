"""The emulator of one process: its controls cache, journal writer and provider wrapper."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from lbaas.config import Settings
from lbaas.db.engine import Database
from lbaas.emulator import journal as journal_mod
from lbaas.emulator import timing
from lbaas.emulator.controls import Controls
from lbaas.emulator.provider import EmulatedProvider

log = logging.getLogger("lbaas.emulator")


class Emulator:
    """Built once per process when the controls are on (``Settings.controls_for``)."""

    def __init__(self, db: Database, settings: Settings, provider: Any) -> None:
        self.db = db
        self.settings = settings
        self.controls = Controls(db)
        self.journal = journal_mod.Journal(db, self.controls)
        self.inner_provider = provider
        self.provider = EmulatedProvider(provider, db, self.controls)
        self.start_rules = timing.parse(settings.emulator_task_timing)
        self.worker: Any = None  # set by attach(): runs released and delayed tasks

    def attach(self, worker: Any) -> None:
        """The worker that runs tasks the timing controls let go."""
        self.worker = worker

    def apply_start_settings(self) -> None:
        """Write the start settings that were given (environment) into the shared controls."""
        with self.db.write() as conn:
            if self.settings.emulator_journal_size is not None:
                journal_mod.set_size(conn, self.settings.emulator_journal_size)
            if self.settings.emulator_task_timing is not None:
                timing.restore(conn, self.start_rules)
        self.controls.changed()

    @property
    def start_journal_size(self) -> int:
        """The journal size a reset returns to."""
        return self.settings.emulator_journal_size or 0

    def after_reset(self, conn: Any) -> None:
        """Restore the start settings inside a full reset's transaction."""
        timing.restore(conn, self.start_rules)

    # -- task timing (the API's TaskTiming hook) ---------------------------------------------------
    def queued(self, conn: Any, task_ids: list[str]) -> Callable[[], None] | None:
        """Hold back or delay tasks a request just queued (lbaas.emulator.timing), in its transaction."""
        if not self.controls.view(conn=conn).timing:
            return None
        delays = timing.on_queued(conn, task_ids)
        if not delays:
            return None
        return lambda: self._run_later(delays)

    def _run_later(self, delays: dict[str, float]) -> None:
        for task_id, seconds in delays.items():
            timer = threading.Timer(seconds, self.run_now, [[task_id]])
            timer.daemon = True
            timer.start()

    def run_now(self, task_ids: list[str]) -> None:
        """Run tasks the timing controls let go: here if the provider is inline, else by the workers."""
        worker = self.worker
        if worker is None or not task_ids:
            return
        if not getattr(self.provider, "inline", False):
            worker.wakeup.set()
            return
        for task_id in task_ids:
            try:
                worker.run_inline(task_id)
            except Exception:  # noqa: BLE001 - the worker's recovery takes the task over
                log.exception(
                    "emulator: running released task %s failed; the worker will recover it", task_id
                )
                worker.wakeup.set()

    def start(self) -> None:
        self.journal.start()

    def stop(self) -> None:
        self.journal.stop()

    def remove_from_data_plane(self, lb_ids: list[str]) -> None:
        """Tell the data plane that reset or replaced load balancers are gone (errors are logged)."""
        for lb_id in lb_ids:
            try:
                self.inner_provider.remove(lb_id)
            except Exception:  # noqa: BLE001 - the rows are gone already; a leftover is only logged
                log.exception("emulator: provider could not remove load balancer %s", lb_id)
