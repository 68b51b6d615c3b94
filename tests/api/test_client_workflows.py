"""Real client workflows that lbaas once refused with rules of its own (issue: robustness, part 4).

Each test is one input of the issue, driven through the SDK on both backends: Gcore's Terraform
provider destroys resources in dependency order (pool, then listener, then load balancer), and
Gcore's published Terraform example puts APP_COOKIE persistence on a TCP pool.
"""

from __future__ import annotations

import gcore
import pytest


@pytest.fixture
def lb(client):
    return client.cloud.load_balancers.create_and_poll(name="lb-workflows", flavor="lb1-1-2")


def test_default_pool_can_be_deleted_before_its_listener(client, lb) -> None:
    """DELETE of a listener's default pool: 200 with a task, the listener keeps no pool."""
    listeners, pools = client.cloud.load_balancers.listeners, client.cloud.load_balancers.pools
    listener = listeners.create_and_poll(
        load_balancer_id=lb.id, name="http-80", protocol="HTTP", protocol_port=80
    )
    pool = pools.create_and_poll(
        name="web",
        protocol="HTTP",
        lb_algorithm="ROUND_ROBIN",
        listener_id=listener.id,
        load_balancer_id=lb.id,
    )
    assert listeners.get(listener.id).pool_count == 1
    answer = pools.delete(pool.id)
    assert len(answer.tasks) == 1
    task = client.cloud.tasks.poll(answer.tasks[0])
    assert (task.state, task.task_type) == ("FINISHED", "delete_lbpool")
    with pytest.raises(gcore.NotFoundError):
        pools.get(pool.id)
    after = listeners.get(listener.id)
    assert (after.provisioning_status, after.pool_count) == ("ACTIVE", 0)
    assert pools.list(listener_id=listener.id).count == 0
    # The listener can take a new default pool, and the rest of the tree goes as Terraform takes it.
    again = pools.create_and_poll(
        name="web-2", protocol="HTTP", lb_algorithm="ROUND_ROBIN", listener_id=listener.id
    )
    assert again.listeners[0].id == listener.id
    pools.delete_and_poll(again.id)
    listeners.delete_and_poll(listener.id)
    client.cloud.load_balancers.delete_and_poll(lb.id)
    with pytest.raises(gcore.NotFoundError):
        client.cloud.load_balancers.get(lb.id)


def test_a_redirect_target_still_cannot_be_deleted(client, lb) -> None:
    """Octavia's one pool-delete refusal (PoolInUseByL7Policy) stays."""
    listeners, pools = client.cloud.load_balancers.listeners, client.cloud.load_balancers.pools
    listener = listeners.create_and_poll(
        load_balancer_id=lb.id, name="http-80", protocol="HTTP", protocol_port=80
    )
    target = pools.create_and_poll(
        name="target", protocol="HTTP", lb_algorithm="ROUND_ROBIN", load_balancer_id=lb.id
    )
    policy = client.cloud.load_balancers.l7_policies.create_and_poll(
        action="REDIRECT_TO_POOL", listener_id=listener.id, redirect_pool_id=target.id
    )
    with pytest.raises(gcore.BadRequestError) as exc:
        pools.delete(target.id)
    assert policy.id in exc.value.body["invalid_fields"]["pool_id"][0]
    assert pools.get(target.id).provisioning_status == "ACTIVE"


def test_gcore_terraform_example_tcp_80(client, lb) -> None:
    """examples/resources/gcore_lbpool/tcp-80.tf of G-Core/terraform-provider-gcore, as the SDK sends it."""
    listener = client.cloud.load_balancers.listeners.create_and_poll(
        load_balancer_id=lb.id, name="My first tcp listener with pool", protocol="TCP", protocol_port=80
    )
    pool = client.cloud.load_balancers.pools.create_and_poll(
        load_balancer_id=lb.id,
        listener_id=listener.id,
        name="My first tcp pool",
        protocol="TCP",
        lb_algorithm="ROUND_ROBIN",
        healthmonitor={"type": "PING", "delay": 10, "max_retries": 5, "timeout": 5},
        session_persistence={"type": "APP_COOKIE", "cookie_name": "test_new_cookie"},
    )
    assert (pool.protocol, pool.healthmonitor.type) == ("TCP", "PING")
    assert (pool.session_persistence.type, pool.session_persistence.cookie_name) == (
        "APP_COOKIE",
        "test_new_cookie",
    )
    # Terraform's destroy order: the pool first, then the listener.
    client.cloud.load_balancers.pools.delete_and_poll(pool.id)
    client.cloud.load_balancers.listeners.delete_and_poll(listener.id)


def test_gcore_terraform_example_proxy_8080(client, lb) -> None:
    """examples/resources/gcore_lbpool/proxy-8080.tf: a PROXY pool on a TCP listener."""
    listener = client.cloud.load_balancers.listeners.create_and_poll(
        load_balancer_id=lb.id, name="My first proxy listener with pool", protocol="TCP", protocol_port=8080
    )
    pool = client.cloud.load_balancers.pools.create_and_poll(
        load_balancer_id=lb.id,
        listener_id=listener.id,
        name="My first proxy pool",
        protocol="PROXY",
        lb_algorithm="LEAST_CONNECTIONS",
    )
    client.cloud.load_balancers.pools.delete_and_poll(pool.id)
    client.cloud.load_balancers.listeners.delete_and_poll(listener.id)


def test_gcore_terraform_example_prometheus_9101(client, lb) -> None:
    """examples/resources/gcore_lblistener/prometheus-9101.tf: basic-auth users on PROMETHEUS."""
    listener = client.cloud.load_balancers.listeners.create_and_poll(
        load_balancer_id=lb.id,
        name="prometheus-9101",
        protocol="PROMETHEUS",
        protocol_port=9101,
        allowed_cidrs=["10.0.0.0/8"],
        user_list=[{"username": "admin1", "encrypted_password": "$2a$10$" + "a" * 53}],
    )
    assert [u.username for u in listener.user_list] == ["admin1"]
