"""Load balancer endpoints besides the seed: create, list, get, v2 PATCH, delete, failover, resize."""

from __future__ import annotations

import json

import gcore
import pytest


def raw(client, method: str, path: str, body=None):
    """Call a path the SDK does not wrap, still through the SDK's HTTP stack."""
    return (
        getattr(client, method)(path, body=body, cast_to=object)
        if body is not None or method != "get"
        else client.get(path, cast_to=object)
    )


def base(client) -> str:
    return f"/cloud/v1/loadbalancers/{client.cloud_project_id}/1"


def test_create_task_and_resource_shape(client) -> None:
    created = client.cloud.load_balancers.create(
        name="shape-lb", flavor="lb1-2-4", logging={"enabled": True, "topic_name": "t1"}
    )
    assert len(created.tasks) == 1
    task = client.cloud.tasks.get(created.tasks[0])
    assert task.state == "FINISHED"  # noop: finished before the POST returned
    assert task.task_type == "create_loadbalancer"
    assert task.created_resources.loadbalancers and len(task.created_resources.loadbalancers) == 1
    assert task.created_resources.l7polices == [] and task.project_id == client.cloud_project_id
    lb = client.cloud.load_balancers.get(task.created_resources.loadbalancers[0])
    assert lb.creator_task_id == task.id and lb.task_id is None
    assert lb.flavor.flavor_name == "lb1-2-4" and lb.flavor.vcpus == 2
    assert lb.vip_ip_family == "ipv4" and lb.vip_port_id and lb.vip_address != "127.0.0.1"
    assert lb.listeners == [] and lb.floating_ips == [] and lb.vrrp_ips == [] and lb.additional_vips == []
    assert lb.stats is None and lb.ddos_profile is None and lb.admin_state_up is True
    assert lb.region == "Luxembourg-2" and lb.preferred_connectivity == "L2"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "ok-name", "flavor": "lb9-9-9"}, "flavor"),
        (
            {
                "name": "ok-name",
                "vip_network_id": "8f6f1c1e-25f4-4d4f-bb5e-30f3d2a9f2a1",
                "vip_port_id": "8f6f1c1e-25f4-4d4f-bb5e-30f3d2a9f2a2",
            },
            "body",
        ),
        ({"name": "ok-name", "vip_port_id": "not-a-uuid"}, "vip_port_id"),
        (
            {"name": "ok-name", "floating_ip": {"source": "existing"}},
            "floating_ip.existing.existing_floating_id",
        ),
        ({"name": "ok-name", "tags": {"a b": "c"}}, "tags"),
        ({}, "name"),
    ],
)
def test_create_validation(client, body, field) -> None:
    with pytest.raises(gcore.BadRequestError) as exc:
        client.post(base(client), body=body, cast_to=object)
    fields = exc.value.body["invalid_fields"]
    assert any(k.startswith(field.split(".")[0]) for k in fields), fields
    assert client.cloud.load_balancers.list().count == 0
    assert client.cloud.tasks.list(project_id=[client.cloud_project_id]).count == 0


def test_list_filters_order_and_pages(client) -> None:
    lbs = client.cloud.load_balancers
    a = lbs.create_and_poll(name="alpha", tags={"env": "prod", "team": "x"})
    b = lbs.create_and_poll(name="bravo", tags={"env": "dev"})
    c = lbs.create_and_poll(name="charlie", logging={"enabled": True})
    ids = lambda page: [x.id for x in page.results]  # noqa: E731
    assert ids(lbs.list()) == [c.id, b.id, a.id]  # created_at.desc by default
    assert ids(lbs.list(order_by="name.asc")) == [a.id, b.id, c.id]
    assert ids(lbs.list(name="bravo")) == [b.id]
    assert ids(lbs.list(name="brav")) == []  # exact match
    assert ids(lbs.list(tag_key=["env"], order_by="name.asc")) == [a.id, b.id]
    assert ids(lbs.list(tag_key=["env", "team"])) == [a.id]
    assert ids(lbs.list(tag_key_value=json.dumps({"env": "dev"}))) == [b.id]
    assert ids(lbs.list(logging_enabled=True)) == [c.id]
    assert set(ids(lbs.list(logging_enabled=False))) == {a.id, b.id}
    assert lbs.list(provisioning_status="ACTIVE", operating_status="ONLINE").count == 3
    assert lbs.list(provisioning_status="ERROR").count == 0
    assert ids(lbs.list(assigned_floating=False, order_by="name.desc")) == [c.id, b.id, a.id]
    page = lbs.list(limit=2, offset=1, order_by="name.asc")
    assert page.count == 3 and ids(page) == [b.id, c.id]
    assert [x.id for x in lbs.list(limit=1, order_by="name.asc")] == [a.id, b.id, c.id]  # auto-pagination
    with pytest.raises(gcore.BadRequestError):
        lbs.list(order_by="bogus.asc")
    with pytest.raises(gcore.BadRequestError):
        lbs.list(tag_key_value="{not json")
    with pytest.raises(gcore.BadRequestError):
        lbs.list(limit=0)


def test_order_ties_broken_by_id(client) -> None:
    lbs = client.cloud.load_balancers
    made = [lbs.create_and_poll(name="same-name").id for _ in range(4)]
    asc = [x.id for x in lbs.list(order_by="name.asc").results]
    desc = [x.id for x in lbs.list(order_by="name.desc").results]
    assert asc == sorted(made) and desc == sorted(made, reverse=True)


def test_get_show_stats_and_ddos(client) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="stats-lb")
    got = client.cloud.load_balancers.get(lb.id, show_stats=True, with_ddos=True)
    assert got.stats is not None and got.stats.total_connections == 0
    assert got.ddos_profile is None
    assert client.cloud.load_balancers.list(show_stats=True).results[0].stats is not None


def test_v2_patch_is_a_task(client) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="v2-lb")
    path = f"/cloud/v2/loadbalancers/{client.cloud_project_id}/1/{lb.id}"
    res = client.patch(
        path, body={"admin_state_up": False, "tags": {"a": "b"}, "name": "v2-renamed"}, cast_to=object
    )
    assert len(res["tasks"]) == 1
    task = client.cloud.tasks.get(res["tasks"][0])
    assert task.task_type == "update_loadbalancer" and task.state == "FINISHED"
    got = client.cloud.load_balancers.get(lb.id)
    assert got.name == "v2-renamed" and got.admin_state_up is False and got.operating_status == "OFFLINE"
    assert got.provisioning_status == "ACTIVE"


def test_failover_resize_delete(client) -> None:
    lbs = client.cloud.load_balancers
    lb = lbs.create_and_poll(name="ops-lb")
    assert lbs.failover_and_poll(lb.id).provisioning_status == "ACTIVE"
    resized = lbs.resize_and_poll(lb.id, flavor="lb1-4-8")
    assert resized.flavor.flavor_name == "lb1-4-8"
    with pytest.raises(gcore.BadRequestError):
        lbs.resize(lb.id, flavor="nope")
    lbs.delete_and_poll(lb.id)
    with pytest.raises(gcore.NotFoundError):
        lbs.get(lb.id)
    with pytest.raises(gcore.NotFoundError):
        lbs.delete(lb.id)


def test_statuses_metrics_flavors_check_limits(client) -> None:
    lbs = client.cloud.load_balancers
    lb = lbs.create_and_poll(name="st-lb", tags={"k": "v"})
    tree = lbs.statuses.get(lb.id)
    assert tree.id == lb.id and tree.operating_status == "ONLINE" and tree.listeners == []
    assert [t.key for t in tree.tags] == ["k"]
    assert lbs.statuses.list().count == 1
    metrics = lbs.metrics.list(lb.id, time_interval=1, time_unit="hour")
    # One entry per sampling interval (LBAAS_METRICS_INTERVAL_S, 60 s); the emulator measures nothing.
    assert metrics.count == 60 and len(metrics.results) == 60
    assert all(m.cpu_util is None and m.network_bps_egress is None for m in metrics.results)
    times = [m.time for m in metrics.results]
    assert times == sorted(times)
    assert lbs.metrics.list(lb.id, time_interval=2, time_unit="day").count == 48
    flavors = lbs.flavors.list()
    assert {f.flavor_name for f in flavors.results} >= {"lb1-1-2", "lb1-2-4", "lb1-4-8"}
    limits = client.post(
        f"{base(client)}/check_limits", body={"floating_ip": {"source": "new"}}, cast_to=object
    )
    assert limits["loadbalancer_count_usage"] == 1 and limits["floating_count_requested"] == 1
    assert limits["loadbalancer_count_limit"] >= 100


def test_floating_ip_on_create(client) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="fip-lb", floating_ip={"source": "new"})
    assert len(lb.floating_ips) == 1
    fip = lb.floating_ips[0]
    assert fip.fixed_ip_address == lb.vip_address and fip.port_id == lb.vip_port_id and fip.status == "ACTIVE"
    assert [x.id for x in client.cloud.load_balancers.list(assigned_floating=True).results] == [lb.id]
