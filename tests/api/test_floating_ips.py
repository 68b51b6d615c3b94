"""Floating IPs through the SDK: create, list, get, PATCH v2, delete, assign/unassign."""

from __future__ import annotations

import json
import uuid

import gcore
import pytest
import sqlalchemy as sa

from lbaas.db import tables
from lbaas.errors import Conflict
from lbaas.services import floating_ips as fips
from lbaas.services import tags as tag_service
from lbaas.services.common import authorize


def _tags(obj) -> list[tuple[str, str, bool]]:
    return [(t.key, t.value, t.read_only) for t in obj.tags]


def _count(client) -> int:
    return client.cloud.floating_ips.list().count


def _task_type(client, task_id: str) -> str:
    return client.cloud.tasks.get(task_id).task_type


# -- create / get / list ------------------------------------------------------------
def test_create_detached_get_and_list(client) -> None:
    fip = client.cloud.floating_ips.create_and_poll(tags={"env": "prod"})
    assert fip.status == "DOWN"
    assert fip.floating_ip_address.startswith("127.2.")
    assert fip.port_id is None and fip.fixed_ip_address is None and fip.router_id is None
    assert fip.task_id is None and fip.creator_task_id is not None
    assert _tags(fip) == [("env", "prod", False)]
    assert fip.region and fip.created_at and fip.updated_at
    task = client.cloud.tasks.get(fip.creator_task_id)
    assert task.task_type == "create_fip" and task.created_resources.floatingips == [fip.id]
    got = client.cloud.floating_ips.get(fip.id)
    assert got.floating_ip_address == fip.floating_ip_address
    page = client.cloud.floating_ips.list()
    assert page.count == 1
    item = page.results[0]
    assert item.id == fip.id and item.loadbalancer is None and item.instance is None


def test_create_attached_to_lb_port(client) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="lb-fip")
    fip = client.cloud.floating_ips.create_and_poll(port_id=lb.vip_port_id, fixed_ip_address=lb.vip_address)
    assert fip.status == "ACTIVE"
    assert (fip.port_id, fip.fixed_ip_address) == (lb.vip_port_id, lb.vip_address)
    got_lb = client.cloud.load_balancers.get(lb.id)
    assert [f.id for f in got_lb.floating_ips] == [fip.id]
    detailed = client.cloud.floating_ips.list(port_ids=[lb.vip_port_id]).results
    assert [d.id for d in detailed] == [fip.id]
    assert detailed[0].loadbalancer.id == lb.id and detailed[0].loadbalancer.vip_address == lb.vip_address
    assert client.cloud.floating_ips.list(port_ids=[str(uuid.uuid4())]).count == 0
    assert client.cloud.load_balancers.list(assigned_floating=True).count == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"port_id": "UNKNOWN"}, "port_id"),
        ({"fixed_ip_address": "127.1.0.9"}, "fixed_ip_address"),
        ({"port_id": "LB", "fixed_ip_address": "10.0.0.1"}, "fixed_ip_address"),
        ({"port_id": "not-a-uuid"}, "port_id"),
        ({"tags": {"bad key": "v"}}, "tags"),
    ],
)
def test_create_rejects_bad_input(client, kwargs, field) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="lb-bad")
    port = {"UNKNOWN": str(uuid.uuid4()), "LB": lb.vip_port_id}
    if "port_id" in kwargs:
        kwargs = {**kwargs, "port_id": port.get(kwargs["port_id"], kwargs["port_id"])}
    with pytest.raises(gcore.BadRequestError) as exc:
        client.cloud.floating_ips.create(**kwargs)
    body = exc.value.body
    assert body["exception_class"] == "ValidationError"
    assert any(k.startswith(field) for k in body["invalid_fields"]), body
    assert _count(client) == 0
    assert client.cloud.load_balancers.get(lb.id).floating_ips == []


def test_a_port_takes_one_floating_ip(client) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="lb-one")
    first = client.cloud.floating_ips.create_and_poll(port_id=lb.vip_port_id)
    with pytest.raises(gcore.BadRequestError, match="already has floating IP"):
        client.cloud.floating_ips.create(port_id=lb.vip_port_id)
    spare = client.cloud.floating_ips.create_and_poll()
    with pytest.raises(gcore.BadRequestError):
        client.cloud.floating_ips.update(spare.id, port_id=lb.vip_port_id)
    assert _count(client) == 2
    assert client.cloud.floating_ips.get(spare.id).status == "DOWN"
    assert [f.id for f in client.cloud.load_balancers.get(lb.id).floating_ips] == [first.id]


def test_list_filters_and_pagination(client) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="lb-list")
    a = client.cloud.floating_ips.create_and_poll(tags={"env": "prod", "team": "a"})
    b = client.cloud.floating_ips.create_and_poll(tags={"env": "dev"}, port_id=lb.vip_port_id)
    c = client.cloud.floating_ips.create_and_poll()
    fl = client.cloud.floating_ips
    assert {f.id for f in fl.list(status="ACTIVE").results} == {b.id}
    assert {f.id for f in fl.list(status="DOWN").results} == {a.id, c.id}
    assert {f.id for f in fl.list(tag_key=["env"]).results} == {a.id, b.id}
    assert {f.id for f in fl.list(tag_key=["env", "team"]).results} == {a.id}
    assert {f.id for f in fl.list(tag_key_value=json.dumps({"env": "dev"})).results} == {b.id}
    first = fl.list(limit=2)
    assert first.count == 3 and len(first.results) == 2
    assert [f.id for f in fl.list(limit=2, offset=2).results] == [a.id]  # newest first
    assert {f.id for f in fl.list(limit=1)} == {a.id, b.id, c.id}  # auto-pagination
    with pytest.raises(gcore.BadRequestError):
        fl.list(status="UP")  # type: ignore[arg-type]
    with pytest.raises(gcore.BadRequestError):
        fl.list(tag_key_value="not json")


# -- PATCH v2 -------------------------------------------------------------------------
def test_update_attach_detach_and_tags(client) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="lb-upd")
    fip = client.cloud.floating_ips.create_and_poll(tags={"env": "prod", "old": "x"})
    fl = client.cloud.floating_ips
    attached = fl.update_and_poll(fip.id, port_id=lb.vip_port_id)
    assert attached.status == "ACTIVE" and attached.fixed_ip_address == lb.vip_address
    assert attached.task_id is None
    assert client.cloud.load_balancers.list(assigned_floating=True).count == 1
    tagged = fl.update_and_poll(fip.id, tags={"env": "staging", "old": None, "new": "y"})
    assert _tags(tagged) == [("env", "staging", False), ("new", "y", False)]
    assert tagged.status == "ACTIVE"
    detached = fl.update_and_poll(fip.id, port_id=None)
    assert (detached.status, detached.port_id, detached.fixed_ip_address) == ("DOWN", None, None)
    assert client.cloud.load_balancers.get(lb.id).floating_ips == []
    assert client.cloud.load_balancers.list(assigned_floating=False).count == 1
    cleared = fl.update_and_poll(fip.id, tags=None)
    assert cleared.tags == []
    task_types = {_task_type(client, t) for t in fl.update(fip.id, tags={"k": "v"}).tasks}
    assert task_types == {"update_floating_ip"}


def test_update_without_change_still_answers_one_task(client) -> None:
    """Gcore documents an empty task list only for pool, member and monitor updates."""
    lb = client.cloud.load_balancers.create_and_poll(name="lb-noop")
    fip = client.cloud.floating_ips.create_and_poll(port_id=lb.vip_port_id, tags={"env": "prod"})
    fl = client.cloud.floating_ips
    for kwargs in ({"port_id": lb.vip_port_id}, {"tags": {"env": "prod"}}, {"tags": {}}, {}):
        tasks = fl.update(fip.id, **kwargs).tasks
        assert len(tasks) == 1 and client.cloud.tasks.get(tasks[0]).state == "FINISHED"
    after = fl.get(fip.id)
    assert after.port_id == lb.vip_port_id and [t.key for t in after.tags] == ["env"]


def test_update_rejects_bad_input_and_changes_nothing(client, server) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="lb-upd-bad")
    fip = client.cloud.floating_ips.create_and_poll(port_id=lb.vip_port_id, tags={"env": "prod"})
    with server.db.write() as conn:
        tag_service.add_read_only(conn, fip.id, "owner", "ops")
    fl = client.cloud.floating_ips
    cases = [
        ({"port_id": str(uuid.uuid4())}, "port_id"),
        ({"port_id": lb.vip_port_id, "fixed_ip_address": "127.9.9.9"}, "fixed_ip_address"),
        ({"port_id": None, "fixed_ip_address": lb.vip_address}, "fixed_ip_address"),
        ({"fixed_ip_address": "127.9.9.9"}, "fixed_ip_address"),
        ({"tags": {"owner": "me"}, "port_id": None}, "tags.owner"),
        ({"tags": {"env": "a\tb"}}, "tags.env"),
    ]
    for kwargs, field in cases:
        with pytest.raises(gcore.BadRequestError) as exc:
            fl.update(fip.id, **kwargs)
        assert field in exc.value.body["invalid_fields"], (kwargs, exc.value.body)
    with pytest.raises(gcore.BadRequestError):
        fl.update(fip.id, extra_body={"unknown": 1})
    got = fl.get(fip.id)
    assert (got.status, got.port_id, got.updated_at) == ("ACTIVE", lb.vip_port_id, fip.updated_at)
    assert _tags(got) == [("env", "prod", False), ("owner", "ops", True)]
    # tags=null drops user tags only
    assert _tags(fl.update_and_poll(fip.id, tags=None)) == [("owner", "ops", True)]


def test_update_detached_fixed_ip_needs_a_port(client) -> None:
    fip = client.cloud.floating_ips.create_and_poll()
    with pytest.raises(gcore.BadRequestError, match="requires port_id"):
        client.cloud.floating_ips.update(fip.id, fixed_ip_address="127.1.0.5")


# -- delete ---------------------------------------------------------------------------
def test_delete_releases_the_address(client, server) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="lb-del")
    fip = client.cloud.floating_ips.create_and_poll(port_id=lb.vip_port_id, tags={"env": "x"})
    tasks = client.cloud.floating_ips.delete(fip.id).tasks
    assert len(tasks) == 1 and _task_type(client, tasks[0]) == "delete_fip"
    client.cloud.tasks.poll(tasks[0])
    with pytest.raises(gcore.NotFoundError):
        client.cloud.floating_ips.get(fip.id)
    assert client.cloud.load_balancers.get(lb.id).floating_ips == []
    R, tags = tables.released_addresses, tables.tags
    with server.db.read() as conn:
        assert conn.execute(
            sa.select(R.c.address).where(R.c.pool == "fip", R.c.address == fip.floating_ip_address)
        ).first()
        assert conn.execute(sa.select(tags.c.key).where(tags.c.resource_id == fip.id)).first() is None
    other = client.cloud.floating_ips.create_and_poll()
    client.cloud.floating_ips.delete_and_poll(other.id)
    assert _count(client) == 0
    with pytest.raises(gcore.NotFoundError):
        client.cloud.floating_ips.delete(other.id)


def test_no_change_once_a_delete_is_queued(client, server, project) -> None:
    fip = client.cloud.floating_ips.create_and_poll()

    class Rollback(Exception):
        pass

    # One transaction, rolled back: the delete stays queued while the update is tried.
    with pytest.raises(Rollback), server.db.write() as conn:
        ctx = authorize(conn, project[1], project[0], 1, None)
        fips.delete(conn, ctx, fip.id)
        for attempt in (
            lambda: fips.update(conn, ctx, fip.id, {"tags": {"a": "b"}}),
            lambda: fips.delete(conn, ctx, fip.id),
            lambda: fips.unassign(conn, ctx, fip.id),
        ):
            with pytest.raises(Conflict, match="being deleted"):
                attempt()
        raise Rollback
    assert client.cloud.floating_ips.get(fip.id).task_id is None


# -- LB interplay -------------------------------------------------------------------
def test_lb_delete_keeps_its_floating_ip_down(client) -> None:
    lbs = client.cloud.load_balancers
    lb = lbs.create_and_poll(name="lb-with-fip", floating_ip={"source": "new"})
    assert len(lb.floating_ips) == 1
    fip_id = lb.floating_ips[0].id
    assert client.cloud.floating_ips.get(fip_id).status == "ACTIVE"
    other = lbs.create_and_poll(name="lb-without-fip")
    assert [x.id for x in lbs.list(assigned_floating=True).results] == [lb.id]
    assert [x.id for x in lbs.list(assigned_floating=False).results] == [other.id]
    assert client.cloud.floating_ips.list().results[0].loadbalancer.id == lb.id
    lbs.delete_and_poll(lb.id)
    fip = client.cloud.floating_ips.get(fip_id)
    assert (fip.status, fip.port_id, fip.fixed_ip_address) == ("DOWN", None, None)
    assert client.cloud.floating_ips.list().results[0].loadbalancer is None
    assert lbs.list(assigned_floating=True).count == 0
    # The kept address can go to another LB.
    moved = client.cloud.floating_ips.update_and_poll(fip_id, port_id=other.vip_port_id)
    assert moved.status == "ACTIVE" and moved.fixed_ip_address == other.vip_address


def test_attach_to_lb_being_deleted_is_409(slow_client) -> None:
    lbs = slow_client.cloud.load_balancers
    lb = lbs.create_and_poll(name="lb-going")
    fip = slow_client.cloud.floating_ips.create_and_poll()
    task = lbs.delete(lb.id).tasks[0]
    with pytest.raises(gcore.ConflictError):
        slow_client.cloud.floating_ips.update(fip.id, port_id=lb.vip_port_id)
    slow_client.cloud.tasks.poll(task)
    assert slow_client.cloud.floating_ips.get(fip.id).status == "DOWN"


# -- deprecated assign / unassign -------------------------------------------------------
def test_assign_and_unassign(client) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="lb-assign")
    fip = client.cloud.floating_ips.create_and_poll()
    fl = client.cloud.floating_ips
    assigned = fl.assign(fip.id, port_id=lb.vip_port_id)
    assert (assigned.status, assigned.port_id, assigned.fixed_ip_address) == (
        "ACTIVE",
        lb.vip_port_id,
        lb.vip_address,
    )
    assert [f.id for f in client.cloud.load_balancers.get(lb.id).floating_ips] == [fip.id]
    assert fl.assign(fip.id, port_id=lb.vip_port_id, fixed_ip_address=lb.vip_address).status == "ACTIVE"
    with pytest.raises(gcore.BadRequestError):
        fl.assign(fip.id, port_id=str(uuid.uuid4()))
    with pytest.raises(gcore.BadRequestError):
        fl.assign(fip.id, port_id=lb.vip_port_id, fixed_ip_address="127.9.9.9")
    unassigned = fl.unassign(fip.id)
    assert (unassigned.status, unassigned.port_id) == ("DOWN", None)
    assert fl.unassign(fip.id).status == "DOWN"
    assert client.cloud.load_balancers.get(lb.id).floating_ips == []


# -- scoping --------------------------------------------------------------------------
def test_other_projects_floating_ips_are_404(client, server) -> None:
    from tests.conftest import make_client

    fip = client.cloud.floating_ips.create_and_poll(tags={"k": "v"})
    lb = client.cloud.load_balancers.create_and_poll(name="lb-mine")
    stranger = make_client(server)
    fl = stranger.cloud.floating_ips
    for call in (
        lambda: fl.get(fip.id),
        lambda: fl.update(fip.id, tags={"k": "x"}),
        lambda: fl.delete(fip.id),
        lambda: fl.unassign(fip.id),
    ):
        with pytest.raises(gcore.NotFoundError):
            call()
    with pytest.raises(gcore.BadRequestError, match="not found"):
        fl.create(port_id=lb.vip_port_id)  # another project's port is unknown here
    assert fl.list().count == 0
    assert _tags(client.cloud.floating_ips.get(fip.id)) == [("k", "v", False)]


async def test_async_client(aclient) -> None:
    fip = await aclient.cloud.floating_ips.create_and_poll(tags={"a": "b"})
    assert fip.status == "DOWN"
    updated = await aclient.cloud.floating_ips.update_and_poll(fip.id, tags={"a": None})
    assert updated.tags == []
    page = await aclient.cloud.floating_ips.list()
    assert [f.id for f in page.results] == [fip.id]
    await aclient.cloud.floating_ips.delete_and_poll(fip.id)
    assert (await aclient.cloud.floating_ips.list()).count == 0
