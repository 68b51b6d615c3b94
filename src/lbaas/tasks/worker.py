"""The worker: claims tasks, runs their handlers, survives crashes.

A handler's ``run`` does the slow part (the provider) with no transaction
open and returns a ``finalize`` callable; the worker calls it in the same
transaction that marks the task FINISHED, so the resource states and the task
state change together. Any exception fails the task and runs the handler's
``fail`` in that same all-or-nothing way: nothing is ever left PENDING.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lbaas.clock import utcnow
from lbaas.db import tables
from lbaas.db.engine import Database
from lbaas.errors import LbaasError
from lbaas.tasks import queue

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
# Idempotency-Key replays are promised for 24 h (lbaas.services.idempotency).
KEEP_FINGERPRINTS = dt.timedelta(hours=24, minutes=5)

Finalize = Callable[[Any], None]


@dataclass(frozen=True)
class Context:
    db: Database
    provider: Any


@dataclass(frozen=True)
class Handler:
    run: Callable[[Context, dict[str, Any]], Finalize | None]
    fail: Callable[[Any, dict[str, Any], str], None]


REGISTRY: dict[str, Handler] = {}


def handler(*task_types: str, fail: Callable[[Any, dict[str, Any], str], None]):
    """Register a task body under one or more Gcore task_type names."""

    def deco(fn: Callable[[Context, dict[str, Any]], Finalize | None]):
        for name in task_types:
            REGISTRY[name] = Handler(fn, fail)
        return fn

    return deco


class Worker:
    """Runs tasks from the shared queue in ``threads`` threads."""

    def __init__(self, db: Database, provider: Any, *, threads: int = 4, lease: float = 10.0) -> None:
        self.ctx = Context(db, provider)
        self.db = db
        self.threads = threads
        self.lease = lease
        # With an inline provider the request that queued a task runs it itself
        # (so the client's first poll sees FINISHED); background threads only
        # take tasks left behind, e.g. queued behind another or orphaned by a crash.
        self.grace = 0.5 if getattr(provider, "inline", False) else 0.0
        self.id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.wakeup = threading.Event()
        self._stop = threading.Event()
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # -- running one task -------------------------------------------------
    def run_task(self, task: dict[str, Any]) -> None:
        """Execute one claimed task to FINISHED or ERROR."""
        with self._lock:
            self._running.add(task["id"])
        try:
            self._execute(task)
        finally:
            with self._lock:
                self._running.discard(task["id"])

    def _execute(self, task: dict[str, Any]) -> None:
        handler_ = REGISTRY.get(task["task_type"])
        try:
            if handler_ is None:
                raise LbaasError(f"no handler for task type {task['task_type']}")
            finalize = handler_.run(self.ctx, task)
            with self.db.write() as conn:
                if queue.finish(conn, task, self.id) and finalize is not None:
                    finalize(conn)
        except Exception as exc:  # noqa: BLE001 - every failure must end the task
            message = exc.message if isinstance(exc, LbaasError) else f"{type(exc).__name__}: {exc}"
            log.warning(
                "task %s (%s) failed: %s\n%s", task["id"], task["task_type"], message, traceback.format_exc()
            )
            self.fail_task(task, message, worker_id=self.id)

    def fail_task(self, task: dict[str, Any], message: str, worker_id: str | None) -> None:
        """End a task in ERROR and undo its PENDING states."""
        handler_ = REGISTRY.get(task["task_type"])
        with self.db.write() as conn:
            if queue.fail(conn, task, message, worker_id) and handler_ is not None:
                handler_.fail(conn, task, message)

    def run_inline(self, task_id: str) -> bool:
        """Run one task now, in the caller's thread, if it heads its queue."""
        with self.db.write() as conn:
            task = queue.claim(conn, self.id, self.lease, task_id=task_id)
        if task is None:
            self.wakeup.set()
            return False
        self.run_task(task)
        return True

    def run_once(self) -> bool:
        """Recover dead workers' tasks, then claim and run one; False if idle."""
        self.recover()
        # Look before locking: an idle worker must not take SQLite's write lock
        # five times a second, or API writes queue behind it (busy_timeout sleeps).
        with self.db.read() as conn:
            if not queue.has_waiting(conn, self.grace):
                return False
        with self.db.write() as conn:
            task = queue.claim(
                conn, self.id, self.lease, skip_locked=not self.db.is_sqlite, min_age=self.grace
            )
        if task is None:
            return False
        self.run_task(task)
        return True

    def recover(self) -> None:
        """Re-queue tasks whose lease expired; fail those that keep killing workers."""
        with self.db.read() as conn:
            stale = queue.expired(conn)
        for task in stale:
            if task["attempts"] >= MAX_ATTEMPTS:
                self.fail_task(task, f"the task was interrupted {task['attempts']} times; giving up", None)
                continue
            with self.db.write() as conn:
                if queue.requeue(conn, task["id"]):
                    log.warning("task %s lost its worker; re-queued", task["id"])

    def drain(self, max_tasks: int = 10_000) -> int:
        """Run tasks until none is runnable (tests and tooling)."""
        done = 0
        while done < max_tasks and self.run_once():
            done += 1
        return done

    # -- background threads -------------------------------------------------
    def start(self) -> None:
        """Start the worker threads and the lease heartbeat."""
        for n in range(self.threads):
            t = threading.Thread(target=self._loop, name=f"lbaas-worker-{n}", daemon=True)
            t.start()
            self._threads.append(t)
        hb = threading.Thread(target=self._heartbeat, name="lbaas-heartbeat", daemon=True)
        hb.start()
        self._threads.append(hb)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; wait for running tasks (their leases cover the rest)."""
        self._stop.set()
        self.wakeup.set()
        for t in self._threads:
            t.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # noqa: BLE001 - the loop must survive a database hiccup
                log.exception("worker loop error")
                busy = False
            if not busy:
                self.wakeup.wait(0.2)
                self.wakeup.clear()

    def housekeeping(self) -> None:
        """Forget request fingerprints no retry can match any more."""
        with self.db.write() as conn:
            conn.execute(
                tables.idempotency.delete().where(
                    tables.idempotency.c.created_at < utcnow() - KEEP_FINGERPRINTS
                )
            )

    def _heartbeat(self) -> None:
        last_housekeeping = 0.0
        while not self._stop.wait(self.lease / 4):
            if time.monotonic() - last_housekeeping > 60:
                last_housekeeping = time.monotonic()
                try:
                    self.housekeeping()
                except Exception:  # noqa: BLE001
                    log.exception("housekeeping failed")
            with self._lock:
                ids = list(self._running)
            if ids:
                try:
                    with self.db.write() as conn:
                        queue.renew(conn, ids, self.id, self.lease)
                except Exception:  # noqa: BLE001
                    log.exception("lease renewal failed")
