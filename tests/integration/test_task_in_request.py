"""The emulator runs a new task inside the request that queued it: one transaction, one commit.

(``Worker.run_in`` under ``Api.tasks``.) What must hold: the task is FINISHED when the answer
arrives, without the worker's own run; a task that raises ends through the usual retry and
failure paths, after the request's commit, with nothing of its half-done finalize kept; and the
emulator's task faults (a write of their own) send tasks back to the usual run.
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from lbaas.db import dataplane, tables
from lbaas.errors import TransientProviderError
from lbaas.providers.noop import Fault, NoopProvider
from lbaas.tasks import handlers
from lbaas.tasks.retry import RetryPolicy
from tests.integration.engine_harness import LB, Held, held_server


@pytest.fixture(params=["sqlite", "pg"])
def inline(request, tmp_path):
    with held_server(request.param, tmp_path, provider=NoopProvider()) as h:
        yield h


def _create(h: Held, name: str) -> tuple[str, str]:
    """(task id, LB id) of an LB create."""
    task_id = h.tasks("POST", LB, {"name": name})[0]
    with h.db.read() as conn:
        planned = conn.execute(
            sa.select(tables.tasks.c.planned_resources).where(tables.tasks.c.id == task_id)
        ).scalar_one()
    return task_id, planned["loadbalancers"][0]


def _lb(h: Held, lb_id: str):
    with h.db.read() as conn:
        return conn.execute(sa.select(tables.load_balancers).where(tables.load_balancers.c.id == lb_id)).one()


def test_the_task_is_finished_in_the_request_without_the_workers_run(inline: Held, monkeypatch) -> None:
    def not_called(*_args):
        raise AssertionError("the task should have run inside the request")

    monkeypatch.setattr(inline.worker, "run_task", not_called)
    monkeypatch.setattr(inline.worker, "run_inline", not_called)
    task_id, lb_id = _create(inline, "in-request")
    assert inline.task_states([task_id]) == {task_id: "FINISHED"}
    lb = _lb(inline, lb_id)
    assert (lb.provisioning_status, lb.operating_status, lb.task_id) == ("ACTIVE", "ONLINE", None)
    assert ("apply", lb_id) in inline.provider.calls
    with inline.db.read() as conn:
        assert dataplane.applied(conn, lb_id) is not None  # the finalize ran too


def test_a_provider_error_fails_the_task_after_the_commit(inline: Held) -> None:
    no_room = Fault("apply", lambda _i, s: s is not None and s.name == "no-room", "no room")
    inline.provider.inject_fault(no_room)
    task_id, lb_id = _create(inline, "no-room")
    with inline.db.read() as conn:
        task = conn.execute(sa.select(tables.tasks).where(tables.tasks.c.id == task_id)).one()
    assert task.state == "ERROR" and task.error == "no room"
    assert _lb(inline, lb_id).provisioning_status == "ERROR"
    assert inline.pending_rows() == []


def test_a_finalize_that_raises_halfway_keeps_nothing_of_it(inline: Held, monkeypatch) -> None:
    """record_applied ran, then the status roll-up raised: the SAVEPOINT takes record_applied back,
    and the failure path (whose own roll-up works) ends the task and the LB in ERROR."""
    real = handlers.statuses.refresh
    raised = []

    def refresh_once(conn, lb_id):
        if not raised:
            raised.append(lb_id)
            raise RuntimeError("roll-up broke")
        return real(conn, lb_id)

    monkeypatch.setattr(handlers.statuses, "refresh", refresh_once)
    task_id, lb_id = _create(inline, "half-done")
    assert raised == [lb_id]
    assert inline.task_states([task_id]) == {task_id: "ERROR"}
    assert _lb(inline, lb_id).provisioning_status == "ERROR"
    with inline.db.read() as conn:
        assert dataplane.applied(conn, lb_id) is None  # rolled back with the savepoint


def test_a_transient_error_is_retried_by_the_worker(inline: Held) -> None:
    inline.worker.retry = RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.05)
    inline.provider.inject_fault(
        Fault("apply", lambda _i, s: s is not None and s.name == "busy", "busy", error=TransientProviderError)
    )
    task_id, lb_id = _create(inline, "busy")
    assert inline.task_states([task_id]) == {task_id: "NEW"}  # rescheduled, not failed
    deadline = time.monotonic() + 10
    while inline.task_states([task_id])[task_id] != "FINISHED" and time.monotonic() < deadline:
        time.sleep(0.1)
        inline.drain()
    assert inline.task_states([task_id]) == {task_id: "FINISHED"}
    assert _lb(inline, lb_id).provisioning_status == "ACTIVE"


def test_not_in_the_request_when_the_provider_says_so(inline: Held, monkeypatch) -> None:
    """The emulator's task faults (and held calls) make ``finishes_in_request`` false: the task
    then runs as before, after the commit, by the worker's ``run_task``."""
    monkeypatch.setattr(inline.provider, "finishes_in_request", lambda: False)
    ran = []
    real = inline.worker.run_task
    monkeypatch.setattr(inline.worker, "run_task", lambda task: (ran.append(task["id"]), real(task)))
    task_id, _lb_id = _create(inline, "after-commit")
    assert ran == [task_id] and inline.task_states([task_id]) == {task_id: "FINISHED"}
