"""The task engine's guarantees when things go wrong (issue: no wedged queue).

* a task whose undo raises is set aside once, its LB's queue moves on, operators see it;
* transient data-plane errors retry with back-off while other queues go on, and give up;
* a task that keeps breaking its worker is retried once per lease, never in a hot loop;
* a task that hangs does not stall other load balancers;
* PENDING rows that no task holds are settled by housekeeping;
* internal apply tasks carry seed-PATCH and floating-IP changes without clients seeing them.
"""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from lbaas.cli import main as cli
from lbaas.db import lifecycle, tables
from lbaas.errors import TransientProviderError
from lbaas.providers.noop import Fault, NoopProvider
from lbaas.tasks import worker as worker_mod
from lbaas.tasks.retry import RetryPolicy
from tests.integration.engine_harness import LB, LIS2, Held, build_landscape, held_server


@pytest.fixture
def held(tmp_path):
    with held_server("sqlite", tmp_path) as h:
        yield h


def _task_row(h: Held, task_id: str):
    with h.db.read() as conn:
        return conn.execute(sa.select(tables.tasks).where(tables.tasks.c.id == task_id)).one()


def _status(h: Held, table: sa.Table, row_id: str) -> str:
    with h.db.read() as conn:
        return conn.execute(sa.select(table.c.provisioning_status).where(table.c.id == row_id)).scalar_one()


def test_a_task_whose_undo_raises_is_set_aside_and_its_queue_moves_on(held: Held, monkeypatch) -> None:
    land, other = build_landscape(held), build_landscape(held)
    handler = worker_mod.REGISTRY["patch_lblistener"]

    def broken_undo(conn, task, error):
        raise RuntimeError("bug in the undo")

    monkeypatch.setitem(worker_mod.REGISTRY, "patch_lblistener", worker_mod.Handler(handler.run, broken_undo))
    held.fail_next("apply", land.lb, "the data plane refused")
    broken = held.tasks("PATCH", LIS2 + f"/{land.listener}", {"connection_limit": 10})[0]
    behind = held.tasks("PATCH", "/cloud/v2/loadbalancers/{p}/{r}" + f"/{land.lb}", {"name": "behind"})[0]
    elsewhere = held.tasks(
        "PATCH", "/cloud/v2/loadbalancers/{p}/{r}" + f"/{other.lb}", {"name": "elsewhere"}
    )[0]
    held.drain()

    row = _task_row(held, broken)
    assert row.state == "ERROR" and row.set_aside_at is not None
    assert "the data plane refused" in row.error and "bug in the undo" in row.error
    assert held.task_states([behind, elsewhere]) == {behind: "FINISHED", elsewhere: "FINISHED"}
    assert _status(held, tables.listeners, land.listener) == "ERROR"  # the generic undo
    assert _status(held, tables.load_balancers, land.lb) == "ACTIVE"
    assert held.pending_rows() == []
    # On the wire it is an ordinary failed task.
    wire = held.call("GET", f"/cloud/v1/tasks/{broken}").json()
    assert wire["state"] == "ERROR" and "bug in the undo" in wire["error"]

    result = CliRunner().invoke(cli, ["tasks", "list", "--stuck", "--database-url", held.db.url])
    assert result.exit_code == 0, result.output
    assert broken in result.output and behind not in result.output


def test_transient_errors_retry_with_back_off_while_other_queues_go_on(held: Held) -> None:
    held.worker.retry = RetryPolicy(max_attempts=4, base_delay=0.3, max_delay=0.3)
    land, other = build_landscape(held), build_landscape(held)
    held.provider.inject_fault(
        Fault("apply", lambda i, _g: i == land.lb, "socket busy", times=2, error=TransientProviderError)
    )
    retried = held.tasks("PATCH", LIS2 + f"/{land.listener}", {"connection_limit": 10})[0]
    elsewhere = held.tasks("PATCH", LIS2 + f"/{other.listener}", {"connection_limit": 10})[0]
    held.drain()  # the first try fails and backs off; the other LB's task runs meanwhile
    assert held.task_states([retried, elsewhere]) == {retried: "NEW", elsewhere: "FINISHED"}
    assert _status(held, tables.listeners, land.listener) == "PENDING_UPDATE"
    deadline = time.monotonic() + 10
    while held.task_states([retried])[retried] != "FINISHED" and time.monotonic() < deadline:
        time.sleep(0.1)
        held.drain()
    row = _task_row(held, retried)
    assert row.state == "FINISHED" and row.attempts == 3 and row.error is None
    assert _status(held, tables.listeners, land.listener) == "ACTIVE"


def test_transient_errors_give_up_after_the_bounded_attempts(held: Held) -> None:
    held.worker.retry = RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.05)
    land = build_landscape(held)
    held.provider.inject_fault(
        Fault(
            "apply", lambda i, _g: i == land.lb, "reload did not take", times=99, error=TransientProviderError
        )
    )
    task = held.tasks("PATCH", LIS2 + f"/{land.listener}", {"connection_limit": 10})[0]
    deadline = time.monotonic() + 10
    while held.task_states([task])[task] not in ("FINISHED", "ERROR") and time.monotonic() < deadline:
        time.sleep(0.05)
        held.drain()
    row = _task_row(held, task)
    assert row.state == "ERROR" and row.attempts == 3 and "reload did not take" in row.error
    assert _status(held, tables.listeners, land.listener) == "ERROR"
    assert _status(held, tables.load_balancers, land.lb) == "ACTIVE"


def test_a_task_that_keeps_breaking_is_retried_once_per_lease_not_in_a_hot_loop(
    tmp_path, monkeypatch
) -> None:
    provider = NoopProvider(inline=False)
    with held_server("sqlite", tmp_path, provider=provider, lease_seconds=0.5) as h:
        land, other = build_landscape(h), build_landscape(h)
        handler = worker_mod.REGISTRY["patch_lblistener"]

        def broken(*_a, **_k):
            raise RuntimeError("nothing can end this task")

        monkeypatch.setitem(worker_mod.REGISTRY, "patch_lblistener", worker_mod.Handler(handler.run, broken))
        monkeypatch.setattr(lifecycle, "release", broken)
        provider.inject_fault(Fault("apply", lambda i, _g: i == land.lb, "refused", times=99))
        calls_before = len(provider.calls)
        task = h.tasks("PATCH", LIS2 + f"/{land.listener}", {"connection_limit": 10})[0]
        h.worker.start()
        try:
            elsewhere = h.tasks("PATCH", LIS2 + f"/{other.listener}", {"connection_limit": 10})[0]
            time.sleep(3)
            applies = [c for c in provider.calls[calls_before:] if c == ("apply", land.lb)]
            # Three interruptions at most, each after a lapsed 0.5 s lease: never hundreds.
            assert 1 <= len(applies) <= 3, applies
            assert h.task_states([elsewhere]) == {elsewhere: "FINISHED"}
            assert _task_row(h, task).state == "RUNNING"
            monkeypatch.undo()  # the operator fixes the bug: the next recovery ends it
            deadline = time.monotonic() + 10
            while _task_row(h, task).state == "RUNNING" and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _task_row(h, task).state == "ERROR"
            assert h.pending_rows() == []
        finally:
            h.worker.stop()


def test_a_hung_task_does_not_stall_other_load_balancers(tmp_path) -> None:
    release = threading.Event()

    class Hanging(NoopProvider):
        hung: str | None = None

        def apply(self, desired, previous=None) -> None:
            if desired.id == self.hung:
                self.hung = None
                release.wait(30)
            super().apply(desired, previous)

    provider = Hanging(inline=False)
    with held_server("sqlite", tmp_path, provider=provider, lease_seconds=0.4, worker_threads=1) as h:
        land, other = build_landscape(h), build_landscape(h)
        h.worker.task_timeout = 0.5
        provider.hung = land.lb
        stuck = h.tasks("PATCH", LIS2 + f"/{land.listener}", {"connection_limit": 10})[0]
        h.worker.start()
        try:
            time.sleep(0.3)  # the only worker thread is now inside the hanging call
            elsewhere = h.tasks("PATCH", LIS2 + f"/{other.listener}", {"connection_limit": 10})[0]
            deadline = time.monotonic() + 15
            while h.task_states([elsewhere])[elsewhere] != "FINISHED" and time.monotonic() < deadline:
                time.sleep(0.1)
            assert h.task_states([elsewhere]) == {elsewhere: "FINISHED"}
            # The hung task was taken over and run again by a fresh thread.
            while h.task_states([stuck])[stuck] != "FINISHED" and time.monotonic() < deadline:
                time.sleep(0.1)
            assert h.task_states([stuck]) == {stuck: "FINISHED"}
        finally:
            release.set()
            h.worker.stop()


def test_housekeeping_settles_rows_no_task_holds(held: Held) -> None:
    land = build_landscape(held)
    with held.db.write() as conn:
        conn.execute(
            tables.listeners.update()
            .where(tables.listeners.c.id == land.listener)
            .values(provisioning_status="PENDING_UPDATE", task_id="00000000-0000-4000-8000-000000000000")
        )
        conn.execute(
            tables.load_balancers.update()
            .where(tables.load_balancers.c.id == land.lb)
            .values(provisioning_status="PENDING_UPDATE")
        )
    held.worker.housekeeping()
    assert _status(held, tables.listeners, land.listener) == "ERROR"
    assert _status(held, tables.load_balancers, land.lb) == "ACTIVE"
    assert held.pending_rows() == []


def test_seed_patch_logging_reaches_the_data_plane_through_an_invisible_task(held: Held) -> None:
    land = build_landscape(held)
    calls = len(held.provider.calls)
    res = held.call("PATCH", LB + f"/{land.lb}", {"logging": {"enabled": True}})
    assert res.status_code == 200
    assert res.json()["provisioning_status"] == "ACTIVE"
    assert held.call("GET", LB + f"/{land.lb}").json() == res.json()
    assert held.call("GET", "/cloud/v1/tasks/{p}/{r}/active").json()["count"] == 0
    listed = held.call("GET", "/cloud/v1/tasks?project_id={p}&task_type=apply_loadbalancer").json()
    assert listed["count"] == 0
    held.drain()
    assert held.provider.calls[calls:] == [("apply", land.lb)]
    assert held.call("GET", LB + f"/{land.lb}").json()["provisioning_status"] == "ACTIVE"
    # A change the data plane does not carry queues nothing.
    held.call("PATCH", LB + f"/{land.lb}", {"name": "renamed", "tags": {"a": "b"}})
    held.drain()
    assert held.provider.calls[calls:] == [("apply", land.lb)]


def test_a_client_task_queued_behind_an_internal_one_holds_the_lb(held: Held) -> None:
    land = build_landscape(held)
    held.call("PATCH", LB + f"/{land.lb}", {"logging": {"enabled": True}})
    task = held.tasks("PATCH", LIS2 + f"/{land.listener}", {"connection_limit": 10})[0]
    lb = held.call("GET", LB + f"/{land.lb}").json()
    assert lb["provisioning_status"] == "PENDING_UPDATE" and lb["task_id"] == task
    held.drain()
    lb = held.call("GET", LB + f"/{land.lb}").json()
    assert lb["provisioning_status"] == "ACTIVE" and lb["task_id"] is None


def test_moving_a_floating_ip_re_applies_both_load_balancers(held: Held) -> None:
    a, b = build_landscape(held), build_landscape(held)
    port_a = held.call("GET", LB + f"/{a.lb}").json()["vip_port_id"]
    port_b = held.call("GET", LB + f"/{b.lb}").json()["vip_port_id"]
    fip_task = held.tasks("POST", "/cloud/v1/floatingips/{p}/{r}", {"port_id": port_a})[0]
    held.drain()
    fip = held.call("GET", f"/cloud/v1/tasks/{fip_task}").json()["created_resources"]["floatingips"][0]
    calls = len(held.provider.calls)
    held.tasks("PATCH", "/cloud/v2/floatingips/{p}/{r}" + f"/{fip}", {"port_id": port_b})
    held.drain()
    assert sorted(held.provider.calls[calls:]) == sorted([("apply", a.lb), ("apply", b.lb)])
    calls = len(held.provider.calls)
    held.tasks("DELETE", "/cloud/v1/floatingips/{p}/{r}" + f"/{fip}")
    held.drain()
    assert held.provider.calls[calls:] == [("apply", b.lb)]


def test_an_inline_run_that_raises_still_answers_the_accepted_task(tmp_path, monkeypatch) -> None:
    with held_server("sqlite", tmp_path, provider=NoopProvider()) as h:  # inline: runs in the request
        land = build_landscape(h)

        def explode(_task_id):
            raise RuntimeError("inline run broke")

        monkeypatch.setattr(h.worker, "run_inline", explode)
        # (a task that runs inside its request raises there: see test_task_in_request.py)
        monkeypatch.setattr(h.provider, "finishes_in_request", lambda: False)
        res = h.call("PATCH", LIS2 + f"/{land.listener}", {"connection_limit": 10})
        assert res.status_code == 200 and len(res.json()["tasks"]) == 1
        monkeypatch.undo()
        time.sleep(h.worker.grace + 0.1)  # background workers leave young tasks to their request
        h.drain()  # the task was committed and is still run
        assert h.task_states(res.json()["tasks"]) == {res.json()["tasks"][0]: "FINISHED"}


def test_a_database_collision_is_retried_not_failed() -> None:
    """A deadlock or a busy SQLite in a task's transaction says nothing about the task: run it again."""
    import sqlalchemy as sa

    from lbaas.tasks.retry import transient

    class Deadlock(Exception):
        sqlstate = "40P01"

    assert transient(sa.exc.OperationalError("DELETE ...", {}, Deadlock("deadlock detected")))
    assert transient(sa.exc.OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked")))
    assert not transient(sa.exc.OperationalError("SELECT", {}, Exception("no such table: x")))
    assert not transient(RuntimeError("bug"))
    assert RetryPolicy().retry_in(sa.exc.OperationalError("x", {}, Deadlock()), 1) is not None


def test_idle_worker_threads_share_one_look_at_the_queue(tmp_path, monkeypatch) -> None:
    """Idle, the loop threads look at the queue (for tasks other processes queued, and retries
    coming due) once per IDLE_LOOK_S among all of them, not each: 4 threads made 20 reads a second."""
    with held_server("sqlite", tmp_path) as h:
        w = h.worker
        looks: list[float] = []
        real = w.run_once
        monkeypatch.setattr(w, "run_once", lambda: looks.append(time.monotonic()) or real())
        w.threads = 4
        w.start()
        try:
            time.sleep(0.5)
            looks.clear()
            time.sleep(2.0)
            expected = 2.0 / worker_mod.IDLE_LOOK_S  # 10 (each thread on its own: 40)
            assert expected / 2 <= len(looks) <= expected * 1.5, len(looks)
            # a task queued in this process wakes the idle threads at once
            task = h.tasks("POST", LB, {"name": "woken"})[0]
            deadline = time.monotonic() + 5
            while h.task_states([task])[task] != "FINISHED" and time.monotonic() < deadline:
                time.sleep(0.01)
            assert h.task_states([task]) == {task: "FINISHED"}
        finally:
            w.stop()
