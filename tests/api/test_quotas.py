"""Per-project quotas: Gcore's QuotaLimitExceed with numbers, nothing created past the limit."""

from __future__ import annotations

import gcore
import pytest

from lbaas.services import quotas


def set_quota(server, project_id: int, name: str, limit: int) -> None:
    with server.db.write() as conn:
        quotas.set_limit(conn, project_id, name, limit)


def assert_quota_error(exc: pytest.ExceptionInfo, attribute: str, limit: int) -> None:
    body = exc.value.body
    assert exc.value.status_code == 400 and body["exception_class"] == "QuotaLimitExceed"
    assert body["info"]["attribute"] == attribute and body["info"]["limit"] == limit


def test_load_balancer_quota_and_check_limits(server, client) -> None:
    pid = client.cloud_project_id
    set_quota(server, pid, "loadbalancer_count", 1)
    client.cloud.load_balancers.create_and_poll(name="only-one")
    with pytest.raises(gcore.BadRequestError) as exc:
        client.cloud.load_balancers.create(name="one-too-many")
    assert_quota_error(exc, "loadbalancer_count", 1)
    assert client.cloud.load_balancers.list().count == 1
    limits = client.post(f"/cloud/v1/loadbalancers/{pid}/1/check_limits", body={}, cast_to=object)
    assert limits["loadbalancer_count_limit"] == 1 and limits["loadbalancer_count_usage"] == 1


def test_pool_and_member_quotas(server, client) -> None:
    pid = client.cloud_project_id
    lbs = client.cloud.load_balancers
    lb = lbs.create_and_poll(name="quota-lb")
    set_quota(server, pid, "pool_count", 1)
    set_quota(server, pid, "members_per_pool", 2)
    pool = lbs.pools.create_and_poll(
        name="p-one", protocol="TCP", lb_algorithm="ROUND_ROBIN", load_balancer_id=lb.id
    )
    with pytest.raises(gcore.BadRequestError) as exc:
        lbs.pools.create(name="p-two", protocol="TCP", lb_algorithm="ROUND_ROBIN", load_balancer_id=lb.id)
    assert_quota_error(exc, "pool_count", 1)
    for port in (81, 82):
        lbs.pools.members.create_and_poll(pool_id=pool.id, address="127.0.4.1", protocol_port=port)
    with pytest.raises(gcore.BadRequestError) as exc:
        lbs.pools.members.create(pool_id=pool.id, address="127.0.4.1", protocol_port=83)
    assert_quota_error(exc, "members_per_pool", 2)
    with pytest.raises(gcore.BadRequestError):
        lbs.pools.members.replace(
            pool.id, body=[{"address": "127.0.4.1", "protocol_port": p} for p in (1, 2, 3)]
        )
    assert len(lbs.pools.get(pool.id).members) == 2


def test_minus_one_is_unlimited(server, client) -> None:
    """-1 (what `lbaas quota set NAME -1` stores) lifts the limit instead of blocking everything."""
    pid = client.cloud_project_id
    set_quota(server, pid, "loadbalancer_count", 0)
    with pytest.raises(gcore.BadRequestError) as exc:
        client.cloud.load_balancers.create(name="blocked")
    assert_quota_error(exc, "loadbalancer_count", 0)
    set_quota(server, pid, "loadbalancer_count", quotas.UNLIMITED)
    client.cloud.load_balancers.create_and_poll(name="unlimited")
    with server.db.read() as conn:
        assert quotas.usage(conn, pid, "loadbalancer_count") == (-1, 1)


def test_limits_of_unknown_projects_and_bad_values_are_refused(server) -> None:
    from lbaas.errors import NotFound

    with server.db.write() as conn, pytest.raises(NotFound):
        quotas.set_limit(conn, 999_999, "loadbalancer_count", 3)
    with server.db.write() as conn, pytest.raises(ValueError):
        quotas.set_limit(conn, 1, "loadbalancer_count", -2)
