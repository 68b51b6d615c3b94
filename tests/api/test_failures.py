"""A data plane that fails: nothing is left PENDING, errors say why, failed LBs can be deleted."""

from __future__ import annotations

import gcore
import pytest

from lbaas.providers.noop import Fault


def named(name: str):
    return lambda _lb_id, snapshot: snapshot is not None and snapshot.name == name


def test_failed_lb_create(server, client) -> None:
    server.provider.inject_fault(Fault("apply", named("fail-create"), "no capacity for this flavor"))
    task_id = client.cloud.load_balancers.create(name="fail-create").tasks[0]
    task = client.cloud.tasks.get(task_id)
    assert task.state == "ERROR" and task.error == "no capacity for this flavor"
    assert task.created_resources is None
    with pytest.raises(ValueError, match="no capacity"):
        client.cloud.tasks.poll(task_id)
    lb = client.cloud.load_balancers.list(name="fail-create").results[0]
    assert lb.provisioning_status == "ERROR" and lb.operating_status == "ERROR" and lb.task_id is None
    client.cloud.load_balancers.delete_and_poll(lb.id)  # an ERROR LB is deletable
    assert client.cloud.load_balancers.list(name="fail-create").count == 0


def test_failed_child_change_leaves_lb_active(server, client) -> None:
    lbs = client.cloud.load_balancers
    lb = lbs.create_and_poll(name="child-fail")
    server.provider.inject_fault(Fault("apply", named("child-fail"), "listener rejected by the data plane"))
    task_id = lbs.listeners.create(
        load_balancer_id=lb.id, name="bad-listener", protocol="TCP", protocol_port=9000
    ).tasks[0]
    task = client.cloud.tasks.get(task_id)
    assert task.state == "ERROR" and "rejected" in task.error and task.created_resources is None
    listener = lbs.listeners.list(load_balancer_id=lb.id).results[0]
    assert listener.provisioning_status == "ERROR" and listener.task_id is None
    got = lbs.get(lb.id)
    assert got.provisioning_status == "ACTIVE" and got.task_id is None
    # The failed child can be deleted, and the LB keeps working.
    lbs.listeners.delete_and_poll(listener.id)
    assert (
        lbs.listeners.create_and_poll(
            load_balancer_id=lb.id, name="good-listener", protocol="TCP", protocol_port=9000
        ).provisioning_status
        == "ACTIVE"
    )


def test_failed_delete_leaves_lb_error_and_deletable(server, client) -> None:
    lbs = client.cloud.load_balancers
    lb = lbs.create_and_poll(name="undeletable")
    server.provider.inject_fault(Fault("remove", lambda lb_id, _g: lb_id == lb.id, "teardown failed"))
    task_id = lbs.delete(lb.id).tasks[0]
    assert client.cloud.tasks.get(task_id).state == "ERROR"
    assert lbs.get(lb.id).provisioning_status == "ERROR"
    lbs.delete_and_poll(lb.id)
    with pytest.raises(gcore.NotFoundError):
        lbs.get(lb.id)
