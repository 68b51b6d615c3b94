"""The worker: claims tasks, runs their handlers, survives crashes and its own bugs.

A handler's ``run`` does the slow part (the provider) with no transaction
open and returns a ``finalize`` callable; the worker calls it in the same
transaction that marks the task FINISHED, so the resource states and the task
state change together.

How a task can end, and what guarantees each path keeps:

* ``run`` or ``finalize`` raises an error the retry policy calls transient
  (:mod:`lbaas.tasks.retry`): the task goes back to NEW with a back-off
  (``run_after``), keeping its place at the head of its queue; other queues go on.
* Anything else raises: the task is failed once, with its reason, and the
  handler's ``fail`` undoes its PENDING states in the same transaction.
* Even that raises (a bug in an undo, a state nobody foresaw): the task is *set
  aside*: ERROR on the wire, flagged for operators (``lbaas tasks list
  --stuck``), the rows it held ERROR by the generic rule, and its load balancer's
  queue moves on. Never a retry loop.
* The worker dies (or a task hangs past ``task_timeout``): its lease lapses;
  one worker takes the lease over (compare-and-set), then re-queues the task or,
  after ``MAX_INTERRUPTIONS``, fails it. A recovery that fails in turn is tried
  again only after another lease period.

Any PENDING row whose task is no longer queued or running is settled by
:func:`lbaas.db.lifecycle.repair_orphans` in housekeeping: nothing stays PENDING.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lbaas.clock import utcnow
from lbaas.db import lifecycle, queue, tables
from lbaas.db.engine import Database
from lbaas.errors import LbaasError
from lbaas.providers.base import Provider
from lbaas.tasks.retry import RetryPolicy

log = logging.getLogger(__name__)

#: Seconds between two looks at the queue by the idle loop threads (all of them together).
IDLE_LOOK_S = 0.2
#: A task whose worker died this many times is failed instead of re-queued.
MAX_INTERRUPTIONS = 3
# Idempotency-Key replays are promised for 24 h (lbaas.services.idempotency).
KEEP_FINGERPRINTS = dt.timedelta(hours=24, minutes=5)

Finalize = Callable[[Any], None]


def _no_secret_key(_payload: str) -> str:
    raise LbaasError("this worker has no secret key to decrypt TLS secrets (LBAAS_SECRET_KEY)")


@dataclass(frozen=True)
class Context:
    """What task bodies reach: the database, the provider, and the key to TLS secrets."""

    db: Database
    provider: Provider
    decrypt: Callable[[str], str] = _no_secret_key


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


def describe(exc: BaseException) -> str:
    """The reason a user reads in the task's ``error``."""
    return exc.message if isinstance(exc, LbaasError) else f"{type(exc).__name__}: {exc}"


class Worker:
    """Runs tasks from the shared queue in ``threads`` threads.

    ``task_timeout`` (seconds): a task still running after it stops having its
    lease renewed, so another worker recovers it, and its thread is replaced.
    """

    def __init__(
        self,
        db: Database,
        provider: Provider,
        *,
        threads: int = 4,
        lease: float = 10.0,
        retry: RetryPolicy | None = None,
        task_timeout: float = 300.0,
        decrypt: Callable[[str], str] = _no_secret_key,
    ) -> None:
        self.ctx = Context(db, provider, decrypt)
        self.db = db
        self.threads = threads
        self.lease = lease
        self.retry = retry or RetryPolicy()
        self.task_timeout = task_timeout
        # With an inline provider the request that queued a task runs it itself
        # (so the client's first poll sees FINISHED); background threads only
        # take tasks left behind, e.g. queued behind another or orphaned by a crash.
        self.grace = 0.5 if getattr(provider, "inline", False) else 0.0
        self.id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.wakeup = threading.Event()
        self._stop = threading.Event()
        self._running: dict[str, tuple[float, int]] = {}  # task id -> (monotonic start, thread ident)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._abandoned: set[int] = set()  # idents of loop threads stuck in a task
        self._next_recovery = 0.0
        self._next_look = 0.0  # when an idle loop thread next looks at the queue (see _loop)

    # -- running one task -------------------------------------------------
    def run_task(self, task: dict[str, Any]) -> None:
        """Execute one claimed task to FINISHED, ERROR or a later retry."""
        with self._lock:
            self._running[task["id"]] = (time.monotonic(), threading.get_ident())
        try:
            self._execute(task)
        finally:
            with self._lock:
                self._running.pop(task["id"], None)

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
            self.failed(task, exc)

    def failed(self, task: dict[str, Any], exc: BaseException) -> None:
        """A claimed task's run raised ``exc``: retry it later if the policy says so, else fail it."""
        delay = self.retry.retry_in(exc, task["attempts"])
        if delay is not None and self._reschedule(task, delay, describe(exc)):
            return
        log.warning(
            "task %s (%s) failed: %s",
            task["id"],
            task["task_type"],
            describe(exc),
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        self.fail_task(task, describe(exc), worker_id=self.id)

    def run_in(self, conn: Any, task: dict[str, Any]) -> BaseException | None:
        """Run a task claimed in the caller's transaction to FINISHED in that same transaction.

        The emulator's requests (an inline provider that says it can, see ``finishes_in_request``)
        then commit once, not twice: the request's rows, the task's claim, the provider call and
        the task's end. The handler's reads and writes (``ctx.db.read()``/``write()``) use
        ``conn`` (:meth:`Database.bound`), under a SAVEPOINT: when the handler raises, its
        changes are rolled back, the task stays claimed (RUNNING) and the exception is returned
        for :meth:`failed`, which the caller runs after its commit (the usual retry or failure
        path, in transactions of its own). None: the task is FINISHED.
        """
        handler_ = REGISTRY.get(task["task_type"])
        if handler_ is None:
            return LbaasError(f"no handler for task type {task['task_type']}")
        savepoint = conn.begin_nested()
        try:
            with self.db.bound(conn):
                finalize = handler_.run(self.ctx, task)
                if queue.finish(conn, task, self.id) and finalize is not None:
                    finalize(conn)
        except Exception as exc:  # noqa: BLE001 - handed to failed() after the caller's commit
            savepoint.rollback()
            return exc
        savepoint.commit()
        return None

    def finishes_in_request(self, conn: Any) -> bool:
        """Whether new tasks may run inside the request that queued them (see :meth:`run_in`);
        the provider's answer, read in the request's transaction ``conn``."""
        check = getattr(self.ctx.provider, "finishes_in_request", None)
        if check is None:
            return False
        with self.db.bound(conn):
            return bool(check())

    def _reschedule(self, task: dict[str, Any], delay: float, message: str) -> bool:
        try:
            with self.db.write() as conn:
                done = queue.reschedule(conn, task, self.id, delay, message)
        except Exception:  # noqa: BLE001 - then the task is failed instead
            log.exception("task %s: could not reschedule", task["id"])
            return False
        if done:
            log.info("task %s (%s): %s; retrying in %.2f s", task["id"], task["task_type"], message, delay)
            threading.Timer(delay, self.wakeup.set).start()
        return done

    def fail_task(self, task: dict[str, Any], message: str, worker_id: str | None) -> None:
        """End a task in ERROR and undo its PENDING states; set it aside if even that raises.

        Raises only when the database itself refuses the set-aside; the task's
        lease then lapses and recovery tries again one lease period later.
        """
        handler_ = REGISTRY.get(task["task_type"])
        try:
            with self.db.write() as conn:
                if queue.fail(conn, task, message, worker_id) and handler_ is not None:
                    handler_.fail(conn, task, message)
            return
        except Exception as exc:  # noqa: BLE001 - the undo is buggy or met a state it cannot handle
            undo_error = describe(exc)
            log.exception(
                "task %s (%s): its failure path raised; setting it aside", task["id"], task["task_type"]
            )
        reason = f"{message} (and undoing it failed: {undo_error}; set aside for an operator)"
        with self.db.write() as conn:
            if queue.fail(conn, task, reason, worker_id, set_aside=True):
                lifecycle.release(conn, task["id"], task["lock_key"])
        log.error("task %s (%s) set aside: %s", task["id"], task["task_type"], reason)

    def claim_in(self, conn: Any, task_id: str) -> dict[str, Any] | None:
        """Claim a task in the caller's transaction if it heads its queue (the emulator's requests)."""
        return queue.claim(conn, self.id, self.lease, task_id=task_id)

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
        """Recover dead workers' tasks now and then, then claim and run one; False if idle."""
        if time.monotonic() >= self._next_recovery:
            self._next_recovery = time.monotonic() + self.lease / 4
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
        """Take over tasks whose lease lapsed: re-queue them, or fail those that keep dying."""
        with self.db.read() as conn:
            stale = queue.expired(conn)
        for task in stale:
            try:
                with self.db.write() as conn:
                    if not queue.take_over(conn, task["id"], self.id, self.lease):
                        continue  # another worker recovers it
                if task["attempts"] >= MAX_INTERRUPTIONS:
                    self.fail_task(
                        task, f"the task was interrupted {task['attempts']} times; giving up", self.id
                    )
                    continue
                with self.db.write() as conn:
                    if queue.requeue(conn, task["id"], self.id):
                        log.warning("task %s lost its worker; re-queued", task["id"])
            except Exception:  # noqa: BLE001 - one broken task must not stop recovering the others
                log.exception("recovering task %s failed; retrying after its lease", task["id"])

    def drain(self, max_tasks: int = 10_000) -> int:
        """Run tasks until none is runnable (tests and tooling)."""
        self._next_recovery = 0.0
        done = 0
        while done < max_tasks and self.run_once():
            done += 1
        return done

    # -- background threads -------------------------------------------------
    def start(self) -> None:
        """Start the worker threads and the lease heartbeat."""
        for _ in range(self.threads):
            self._start_loop()
        hb = threading.Thread(target=self._heartbeat, name="lbaas-heartbeat", daemon=True)
        hb.start()
        self._threads.append(hb)

    def _start_loop(self) -> None:
        t = threading.Thread(target=self._loop, name=f"lbaas-worker-{len(self._threads)}", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; wait for running tasks (their leases cover the rest)."""
        self._stop.set()
        self.wakeup.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            if t.ident not in self._abandoned:
                t.join(max(0.0, deadline - time.monotonic()))

    def _loop(self) -> None:
        me = threading.get_ident()
        look = True
        while not self._stop.is_set() and me not in self._abandoned:
            busy = False
            if look:
                try:
                    busy = self.run_once()
                except Exception:  # noqa: BLE001 - the loop must survive a database hiccup
                    log.exception("worker loop error")
            if busy:
                continue
            woken = self.wakeup.wait(IDLE_LOOK_S)
            self.wakeup.clear()
            # Woken (a task queued in this process): every idle thread looks. Timed out: one
            # look per IDLE_LOOK_S among all of them, for tasks other processes queued and
            # retries coming due (4 threads looking 5 times a second each were 1.6 % of a core).
            look = woken or self._look_due()

    def _look_due(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if now < self._next_look:
                return False
            self._next_look = now + IDLE_LOOK_S
            return True

    def housekeeping(self) -> None:
        """Forget request fingerprints no retry can match any more; settle orphaned PENDING rows."""
        with self.db.write() as conn:
            conn.execute(
                tables.idempotency.delete().where(
                    tables.idempotency.c.created_at < utcnow() - KEEP_FINGERPRINTS
                )
            )
        with self.db.write() as conn:
            for what in lifecycle.repair_orphans(conn):
                log.warning("settled a row no task held any more: %s", what)

    def _watchdog(self) -> list[str]:
        """Ids of tasks whose lease is still worth renewing; replace loop threads stuck past the timeout."""
        now = time.monotonic()
        with self._lock:
            stuck = {
                tid: ident for tid, (start, ident) in self._running.items() if now - start > self.task_timeout
            }
            for tid in stuck:
                self._running.pop(tid)
            ids = list(self._running)
        loops = {t.ident for t in self._threads if t.name.startswith("lbaas-worker")}
        for tid, ident in stuck.items():
            log.error(
                "task %s ran past %.0f s; its lease will lapse and it will be recovered",
                tid,
                self.task_timeout,
            )
            if ident in loops and ident not in self._abandoned and not self._stop.is_set():
                self._abandoned.add(ident)  # it exits its loop if the task ever returns
                self._start_loop()
        return ids

    def _heartbeat(self) -> None:
        last_housekeeping = 0.0
        while not self._stop.wait(self.lease / 4):
            if time.monotonic() - last_housekeeping > 60:
                last_housekeeping = time.monotonic()
                try:
                    self.housekeeping()
                except Exception:  # noqa: BLE001
                    log.exception("housekeeping failed")
            ids = self._watchdog()
            if ids:
                try:
                    with self.db.write() as conn:
                        queue.renew(conn, ids, self.id, self.lease)
                except Exception:  # noqa: BLE001
                    log.exception("lease renewal failed")
