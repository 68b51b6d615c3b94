"""Task timing through the SDK and the admin API: hold and release, N polls, delays, start settings."""

from __future__ import annotations

import datetime as dt
import random
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from lbaas import cli
from lbaas.db import tables
from lbaas.emulator.timing import parse
from tests.api.test_emulator_faults import Admin
from tests.conftest import make_client, serve


@pytest.fixture
def admin(server):
    a = Admin(server.url)
    yield a
    a.call("DELETE", "/timing")
    a.call("POST", "/tasks/release")


def wait_state(client, task_id: str, state: str = "FINISHED", timeout: float = 10.0) -> float:
    """Seconds until the task reads ``state`` (polling fast, bounded)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if client.cloud.tasks.get(task_id).state == state:
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"task {task_id} not {state} after {timeout} s")


def test_hold_and_release(server, project, admin) -> None:
    pid, token = project
    client = make_client(server, token, pid)
    lbs = client.cloud.load_balancers
    rule = admin.call("PUT", "/timing", json={"mode": "hold", "project_id": pid})
    assert rule == {"project_id": pid, "task_type": None, "mode": "hold"}
    task_id = lbs.create(name="lb-held").tasks[0]
    time.sleep(0.3)
    assert client.cloud.tasks.get(task_id).state == "NEW"
    lb = lbs.list().results[0]
    assert lb.provisioning_status == "PENDING_CREATE" and lb.task_id == task_id
    # A change of the same LB queues behind the held task, as behind a slow real one.
    listener_task = lbs.listeners.create(
        load_balancer_id=lb.id, name="web", protocol="HTTP", protocol_port=80
    ).tasks[0]
    held = admin.call("GET", "/tasks/held", params={"project_id": pid})["results"]
    assert [(h["task_id"], h["mode"]) for h in held] == [(task_id, "hold"), (listener_task, "hold")]
    assert admin.call("GET", "/timing")["held"] == held
    assert admin.call("POST", f"/tasks/{task_id}/release") == {"released": [task_id]}
    assert client.cloud.tasks.get(task_id).state == "FINISHED"  # ran inside the release
    assert lbs.get(lb.id).provisioning_status == "PENDING_UPDATE"  # the listener's task is still held
    admin.call("POST", f"/tasks/{task_id}/release", 404)
    assert admin.call("POST", "/tasks/release", json={"project_id": pid}) == {"released": [listener_task]}
    wait_state(client, listener_task)
    assert lbs.get(lb.id).provisioning_status == "ACTIVE"
    # Back to immediate: the SDK's helpers return at their first poll again.
    admin.call("PUT", "/timing", json={"mode": "immediate", "project_id": pid})
    started = time.monotonic()
    assert lbs.create_and_poll(name="lb-quick").provisioning_status == "ACTIVE"
    assert time.monotonic() - started < 1.0


def test_finish_after_n_polls(server, project, admin) -> None:
    pid, token = project
    client = make_client(server, token, pid)
    lbs = client.cloud.load_balancers
    admin.call("PUT", "/timing", json={"mode": "polls", "polls": 3, "task_type": "create_loadbalancer"})
    task_id = lbs.create(name="lb-polled").tasks[0]
    assert [client.cloud.tasks.get(task_id).state for _ in range(3)] == ["NEW", "NEW", "FINISHED"]
    assert (
        lbs.get(client.cloud.tasks.get(task_id).created_resources.loadbalancers[0]).provisioning_status
        == "ACTIVE"
    )
    # Other task types are not affected by a rule for one type.
    lb_id = lbs.list(name="lb-polled").results[0].id
    listener = lbs.listeners.create_and_poll(
        load_balancer_id=lb_id, name="tcp-81", protocol="TCP", protocol_port=81
    )
    assert listener.provisioning_status == "ACTIVE"
    # The SDK's poll helper reads FINISHED at its 2nd poll (it sleeps 1 s between polls).
    admin.call("PUT", "/timing", json={"mode": "polls", "polls": 2, "task_type": "create_loadbalancer"})
    started = time.monotonic()
    assert lbs.create_and_poll(name="lb-two-polls").provisioning_status == "ACTIVE"
    assert 1.0 <= time.monotonic() - started < 5.0


def test_delay(server, project, admin) -> None:
    pid, token = project
    client = make_client(server, token, pid)
    admin.call("PUT", "/timing", json={"mode": "delay", "delay_ms": 400, "project_id": pid})
    task_id = client.cloud.load_balancers.create(name="lb-later").tasks[0]
    assert client.cloud.tasks.get(task_id).state == "NEW"
    assert 0.3 <= wait_state(client, task_id) < 5.0


def test_random_delays_are_reproducible_with_a_seed(server, project, admin) -> None:
    pid, token = project
    client = make_client(server, token, pid)

    def delays() -> list[int]:
        admin.call("PUT", "/timing", json={"mode": "delay", "delay_ms": 50, "delay_max_ms": 900, "seed": 5})
        ids = [client.cloud.load_balancers.create(name=f"lb-d{i}").tasks[0] for i in range(3)]
        admin.call("DELETE", "/timing")
        with server.db.read() as conn:
            rows = {
                r.id: r
                for r in conn.execute(
                    sa.select(tables.tasks.c.id, tables.tasks.c.created_on, tables.tasks.c.run_after).where(
                        tables.tasks.c.id.in_(ids)
                    )
                )
            }
        return [round((rows[i].run_after - rows[i].created_on) / dt.timedelta(milliseconds=1)) for i in ids]

    expected = [random.Random(f"5:{n}").randint(50, 900) for n in (1, 2, 3)]
    for got in (delays(), delays()):
        assert all(abs(g - e) <= 50 for g, e in zip(got, expected, strict=True)), (got, expected)


def test_most_specific_rule_wins(server, project, admin) -> None:
    pid, token = project
    other_pid, other_token = server.new_project()
    admin.call("PUT", "/timing", json={"mode": "hold"})
    admin.call("PUT", "/timing", json={"mode": "immediate", "project_id": pid})
    mine, theirs = make_client(server, token, pid), make_client(server, other_token, other_pid)
    assert mine.cloud.load_balancers.create_and_poll(name="lb-free").provisioning_status == "ACTIVE"
    held = theirs.cloud.load_balancers.create(name="lb-held").tasks[0]
    assert theirs.cloud.tasks.get(held).state == "NEW"
    rules = admin.call("GET", "/timing")["rules"]
    assert {(r["project_id"], r["mode"]) for r in rules} == {(None, "hold"), (pid, "immediate")}
    admin.call("DELETE", "/timing", params={"project_id": pid})
    assert [r["project_id"] for r in admin.call("GET", "/timing")["rules"]] == [None]
    admin.call("DELETE", "/timing", 404, params={"project_id": pid})


def test_bad_rules_are_400(admin) -> None:
    for body, field in (
        ({"mode": "delay"}, "delay_ms"),
        ({"mode": "delay", "delay_ms": 500, "delay_max_ms": 100}, "delay_max_ms"),
        ({"mode": "polls"}, "polls"),
        ({"mode": "polls", "polls": 0}, "polls"),
        ({"mode": "sometimes"}, "mode"),
    ):
        reply = admin.call("PUT", "/timing", 400, json=body)
        assert field in reply["invalid_fields"], (body, reply)
    assert admin.call("GET", "/timing")["rules"] == []


def test_snapshot_waits_for_held_tasks(server, project, admin) -> None:
    pid, token = project
    admin.call("PUT", "/timing", json={"mode": "hold", "project_id": pid})
    make_client(server, token, pid).cloud.load_balancers.create(name="lb-held")
    assert "unfinished" in admin.call("GET", "/snapshot", 409, params={"project_id": pid})["message"]
    admin.call("POST", "/tasks/release")
    assert len(admin.call("GET", "/snapshot", params={"project_id": pid})["tables"]["load_balancers"]) == 1


def test_start_settings_and_reset(tmp_path: Path) -> None:
    with serve("sqlite", tmp_path, emulator_task_timing="create_loadbalancer=hold,*=delay:10") as srv:
        admin = Admin(srv.url)
        start = admin.call("GET", "/timing")["rules"]
        assert {(r["task_type"], r["mode"]) for r in start} == {
            ("create_loadbalancer", "hold"),
            (None, "delay"),
        }
        pid, token = srv.new_project()
        client = make_client(srv, token, pid)
        task_id = client.cloud.load_balancers.create(name="lb-held").tasks[0]
        assert client.cloud.tasks.get(task_id).state == "NEW"
        admin.call("PUT", "/timing", json={"mode": "immediate", "task_type": "create_loadbalancer"})
        admin.call("POST", "/reset")
        assert admin.call("GET", "/timing") == {"rules": start, "held": []}
        admin.call("PUT", "/timing", json={"mode": "polls", "polls": 2})
        assert admin.call("DELETE", "/timing") == {"rules": start, "held": []}
    for bad in ("sometimes", "delay", "polls:0", "delay:9-1", "x=hold:1:2"):
        with pytest.raises(ValueError, match="LBAAS_EMULATOR_TASK_TIMING"):
            parse(bad)
    # The command line refuses it before starting anything.
    result = CliRunner().invoke(
        cli.main,
        ["serve", "--database-url", f"sqlite:///{tmp_path / 'x.db'}"],
        env={"LBAAS_EMULATOR_TASK_TIMING": "polls:0", "LBAAS_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code != 0 and "LBAAS_EMULATOR_TASK_TIMING" in result.output
