"""Listener endpoints: create, list, get, PATCH v2 (and the deprecated v1 rename), delete."""

from __future__ import annotations

import uuid

import gcore
import pytest

from lbaas.clock import utcnow
from lbaas.db import tables
from lbaas.services import quotas

X_FORWARDED = {"X-Forwarded-For": "true", "X-Forwarded-Port": "true", "X-Forwarded-Proto": "true"}


def base(client, version: str = "v1") -> str:
    return f"/cloud/{version}/lblisteners/{client.cloud_project_id}/1"


def add_secret(server, project_id: int) -> str:
    """A secret row of the project (the secrets API is another module's)."""
    sid = str(uuid.uuid4())
    with server.db.write() as conn:
        conn.execute(
            tables.secrets.insert().values(
                id=sid,
                project_id=project_id,
                region_id=1,
                name="cert",
                secret_type="certificate",
                status="ACTIVE",
                created_at=utcnow(),
            )
        )
    return sid


def add_pool(client, lb, protocol: str = "HTTP", listener_id: str | None = None) -> str:
    """A pool with one member and a monitor, through the pools API."""
    extra = {"listener_id": listener_id} if listener_id else {}
    return client.cloud.load_balancers.pools.create_and_poll(
        load_balancer_id=lb.id,
        name="pool-a",
        protocol=protocol,
        lb_algorithm="ROUND_ROBIN",
        members=[{"address": "127.0.0.5", "protocol_port": 80}],
        healthmonitor={"type": "TCP", "delay": 5, "timeout": 3, "max_retries": 2},
        **extra,
    ).id


def add_redirect_policy(client, listener_id: str, pool_id: str) -> str:
    return client.cloud.load_balancers.l7_policies.create_and_poll(
        listener_id=listener_id, name="to-pool", action="REDIRECT_TO_POOL", redirect_pool_id=pool_id
    ).id


def pool_listener(client, pool_id: str) -> str | None:
    """The id of the listener whose default pool this is, or None."""
    pool = client.cloud.load_balancers.pools.get(pool_id)
    return pool.listeners[0].id if pool.listeners else None


@pytest.fixture
def lb(client):
    return client.cloud.load_balancers.create_and_poll(name="lb-listeners")


def test_create_and_poll_shape(client, lb) -> None:
    li = client.cloud.load_balancers.listeners.create_and_poll(
        load_balancer_id=lb.id,
        name="web",
        protocol="HTTP",
        protocol_port=80,
        connection_limit=-1,
        insert_x_forwarded=True,
        allowed_cidrs=["10.0.0.0/8"],
        timeout_client_data=5000,
        user_list=[{"username": "admin", "encrypted_password": "$5$x$abc"}],
    )
    assert li.provisioning_status == "ACTIVE" and li.operating_status == "ONLINE" and li.task_id is None
    assert li.load_balancer_id == lb.id and li.protocol == "HTTP" and li.protocol_port == 80
    assert li.connection_limit == 100000 and li.insert_headers == X_FORWARDED
    assert li.allowed_cidrs == ["10.0.0.0/8"] and li.timeout_client_data == 5000
    assert li.timeout_member_connect is None and li.secret_id is None and li.sni_secret_id == []
    assert [(u.username, u.encrypted_password) for u in li.user_list] == [("admin", "$5$x$abc")]
    assert li.pool_count == 0 and li.stats is None and li.admin_state_up is True
    task = client.cloud.tasks.get(li.creator_task_id)
    assert task.task_type == "create_lblistener" and task.created_resources.listeners == [li.id]
    assert client.cloud.load_balancers.get(lb.id).listeners[0].id == li.id
    stats = client.cloud.load_balancers.listeners.get(li.id, show_stats=True).stats
    assert stats.total_connections == 0 and stats.bytes_in == 0
    tcp = client.cloud.load_balancers.listeners.create_and_poll(
        load_balancer_id=lb.id, name="tcp", protocol="TCP", protocol_port=443
    )
    assert tcp.insert_headers == {} and tcp.user_list == [] and tcp.allowed_cidrs is None


def test_list_filters_and_pages(client, lb) -> None:
    listeners = client.cloud.load_balancers.listeners
    other = client.cloud.load_balancers.create_and_poll(name="lb-other")
    a = listeners.create_and_poll(load_balancer_id=lb.id, name="alpha", protocol="TCP", protocol_port=1)
    b = listeners.create_and_poll(load_balancer_id=lb.id, name="bravo", protocol="UDP", protocol_port=1)
    c = listeners.create_and_poll(
        load_balancer_id=other.id, name="alpha", protocol="HTTP", protocol_port=8080
    )
    assert [x.id for x in listeners.list()] == [a.id, b.id, c.id]
    assert [x.id for x in listeners.list(load_balancer_id=lb.id)] == [a.id, b.id]
    assert [x.id for x in listeners.list(name="alpha")] == [a.id, c.id]
    page = listeners.list(limit=1, offset=1)
    assert page.count == 3 and [x.id for x in page.results] == [b.id]
    assert [x.id for x in listeners.list(limit=1)] == [a.id, b.id, c.id]  # auto-pagination
    assert all(x.stats is None for x in listeners.list())
    assert all(x.stats.active_connections == 0 for x in listeners.list(show_stats=True))


def test_update_and_poll(client, server, lb) -> None:
    listeners = client.cloud.load_balancers.listeners
    s1, s2, s3 = (add_secret(server, client.cloud_project_id) for _ in range(3))
    li = listeners.create_and_poll(
        load_balancer_id=lb.id,
        name="tls",
        protocol="TERMINATED_HTTPS",
        protocol_port=443,
        sni_secret_id=[s1],
        timeout_client_data=100,
    )
    assert li.secret_id is None and li.sni_secret_id == [s1]
    got = listeners.update_and_poll(
        li.id,
        name="tls-2",
        connection_limit=-1,
        sni_secret_id=[s2, s3],
        secret_id=s1,
        timeout_client_data=None,
        allowed_cidrs=["192.0.2.0/24"],
        user_list=[{"username": "bob", "encrypted_password": "x"}],
    )
    assert got.name == "tls-2" and got.connection_limit == 100000 and got.sni_secret_id == [s2, s3]
    assert got.secret_id == s1 and got.timeout_client_data is None and got.allowed_cidrs == ["192.0.2.0/24"]
    assert got.provisioning_status == "ACTIVE" and got.task_id is None and got.user_list[0].username == "bob"
    assert client.cloud.tasks.list(task_type="patch_lblistener").count == 1
    # Nothing changes: no task (the SDK helper tolerates the empty list).
    assert len(listeners.update(li.id, name="tls-2", connection_limit=100000).tasks) == 1
    same = listeners.update_and_poll(li.id, sni_secret_id=[s2, s3])
    assert same.name == "tls-2"
    off = listeners.update(li.id, admin_state_up=False, allowed_cidrs=None, user_list=None)
    assert len(off.tasks) == 1
    got = listeners.get(li.id)
    assert got.admin_state_up is False and got.allowed_cidrs is None and got.user_list == []


async def test_async_create_update_delete(aclient) -> None:
    lb = await aclient.cloud.load_balancers.create_and_poll(name="lb-async")
    listeners = aclient.cloud.load_balancers.listeners
    li = await listeners.create_and_poll(
        load_balancer_id=lb.id, name="a-web", protocol="HTTP", protocol_port=80
    )
    got = await listeners.update_and_poll(li.id, name="a-web-2")
    assert got.name == "a-web-2"
    assert (await listeners.list(load_balancer_id=lb.id)).count == 1
    await listeners.delete_and_poll(li.id)
    assert (await listeners.list()).count == 0
    with pytest.raises(gcore.NotFoundError):
        await listeners.get(li.id)


def test_v1_rename(client, lb) -> None:
    li = client.cloud.load_balancers.listeners.create_and_poll(
        load_balancer_id=lb.id, name="old-name", protocol="TCP", protocol_port=22
    )
    out = client.patch(f"{base(client)}/{li.id}", body={"name": "new-name"}, cast_to=object)
    assert out["name"] == "new-name" and out["id"] == li.id and out["provisioning_status"] == "ACTIVE"
    assert client.cloud.load_balancers.listeners.get(li.id).name == "new-name"
    with pytest.raises(gcore.BadRequestError):
        client.patch(f"{base(client)}/{li.id}", body={"name": "x"}, cast_to=object)
    with pytest.raises(gcore.BadRequestError):
        client.patch(f"{base(client)}/{li.id}", body={"name": "abc", "protocol_port": 1}, cast_to=object)
    assert client.cloud.load_balancers.listeners.get(li.id).name == "new-name"


def test_default_pool_attach_and_delete(client, lb) -> None:
    listeners, pools = client.cloud.load_balancers.listeners, client.cloud.load_balancers.pools
    pool_id = add_pool(client, lb)
    attach = {"default_pool_id": pool_id}
    li = listeners.create_and_poll(
        load_balancer_id=lb.id, name="web", protocol="HTTP", protocol_port=80, extra_body=attach
    )
    assert li.pool_count == 1 and pool_listener(client, pool_id) == li.id
    assert pools.get(pool_id).provisioning_status == "ACTIVE"
    listeners.delete_and_poll(li.id)
    assert pool_listener(client, pool_id) is None  # detached, kept
    li2 = listeners.create_and_poll(
        load_balancer_id=lb.id, name="web2", protocol="HTTP", protocol_port=80, extra_body=attach
    )
    client.cloud.tasks.poll(listeners.delete(li2.id, delete_default_pool=True).tasks[0])
    with pytest.raises(gcore.NotFoundError):
        pools.get(pool_id)
    assert listeners.list().count == 0 and pools.list().count == 0
    assert client.cloud.load_balancers.statuses.get(lb.id).listeners == []


def test_delete_removes_l7_policies(client, lb) -> None:
    listeners = client.cloud.load_balancers.listeners
    li = listeners.create_and_poll(load_balancer_id=lb.id, name="web", protocol="HTTP", protocol_port=80)
    pool_id = add_pool(client, lb)
    pol = add_redirect_policy(client, li.id, pool_id)
    listeners.delete_and_poll(li.id)
    with pytest.raises(gcore.NotFoundError):
        client.cloud.load_balancers.l7_policies.get(pol)
    assert client.cloud.load_balancers.pools.get(pool_id).provisioning_status == "ACTIVE"


def test_delete_default_pool_refused_when_redirect_target(client, lb) -> None:
    listeners = client.cloud.load_balancers.listeners
    pool_id = add_pool(client, lb)
    a = listeners.create_and_poll(
        load_balancer_id=lb.id,
        name="web-a",
        protocol="HTTP",
        protocol_port=80,
        extra_body={"default_pool_id": pool_id},
    )
    b = listeners.create_and_poll(load_balancer_id=lb.id, name="web-b", protocol="HTTP", protocol_port=81)
    add_redirect_policy(client, b.id, pool_id)
    with pytest.raises(gcore.BadRequestError) as exc:
        listeners.delete(a.id, delete_default_pool=True)
    assert "delete_default_pool" in exc.value.body["invalid_fields"]
    assert listeners.get(a.id).provisioning_status == "ACTIVE"
    assert client.cloud.load_balancers.pools.get(pool_id).provisioning_status == "ACTIVE"
    listeners.delete_and_poll(a.id)  # without the pool: fine
    assert pool_listener(client, pool_id) is None


@pytest.mark.parametrize(
    "protocol, listener_id, other_lb, field_or_status",
    [
        ("TCP", None, False, "default_pool_id"),  # HTTP listener cannot carry a TCP pool
        ("HTTP", "attached", False, "default_pool_id"),
        ("HTTP", None, True, "default_pool_id"),
    ],
)
def test_default_pool_refused(client, lb, protocol, listener_id, other_lb, field_or_status) -> None:
    listeners = client.cloud.load_balancers.listeners
    owner = client.cloud.load_balancers.create_and_poll(name="lb-owner") if other_lb else lb
    holder = None
    if listener_id:
        holder = listeners.create_and_poll(
            load_balancer_id=lb.id, name="holder", protocol="HTTP", protocol_port=81
        )
    pool_id = add_pool(client, owner, protocol, holder.id if holder else None)
    before = listeners.list().count
    with pytest.raises(gcore.BadRequestError) as exc:
        listeners.create(
            load_balancer_id=lb.id,
            name="web",
            protocol="HTTP",
            protocol_port=80,
            extra_body={"default_pool_id": pool_id},
        )
    assert field_or_status in exc.value.body["invalid_fields"]
    assert listeners.list().count == before
    assert pool_listener(client, pool_id) == (holder.id if holder else None)


BAD_CREATES = [
    ({"name": "x", "protocol": "HTTP", "protocol_port": 80}, "name"),
    ({"name": "web", "protocol": "SMTP", "protocol_port": 80}, "protocol"),
    ({"name": "web", "protocol": "HTTP", "protocol_port": 0}, "protocol_port"),
    ({"name": "web", "protocol": "HTTP", "protocol_port": 80, "connection_limit": -2}, "connection_limit"),
    (
        {"name": "web", "protocol": "TCP", "protocol_port": 80, "insert_x_forwarded": True},
        "insert_x_forwarded",
    ),
    (
        {"name": "web", "protocol": "HTTP", "protocol_port": 80, "allowed_cidrs": ["2001:db8::/32"]},
        "allowed_cidrs.0",
    ),
    (
        {"name": "web", "protocol": "HTTP", "protocol_port": 80, "allowed_cidrs": ["10.0.0.1/8"]},
        "allowed_cidrs.0",
    ),
    ({"name": "web", "protocol": "TERMINATED_HTTPS", "protocol_port": 443}, "secret_id"),
    (
        {
            "name": "web",
            "protocol": "TCP",
            "protocol_port": 80,
            "user_list": [{"username": "abc", "encrypted_password": "x"}],
        },
        "user_list",
    ),
    (
        {
            "name": "web",
            "protocol": "HTTP",
            "protocol_port": 80,
            "user_list": [{"username": f"user{i}", "encrypted_password": "x"} for i in range(4)],
        },
        "user_list",
    ),
    (
        {"name": "web", "protocol": "HTTP", "protocol_port": 80, "timeout_client_data": -1},
        "timeout_client_data",
    ),
    ({"name": "web", "protocol": "HTTP", "protocol_port": 80, "bogus": 1}, "bogus"),
    ({"name": "web", "protocol": "HTTP", "protocol_port": 22}, "protocol_port"),  # TCP 22 is taken
]


@pytest.mark.parametrize("body, field", BAD_CREATES)
def test_create_validation(client, lb, body, field) -> None:
    listeners = client.cloud.load_balancers.listeners
    listeners.create_and_poll(load_balancer_id=lb.id, name="ssh", protocol="TCP", protocol_port=22)
    tasks_before = client.cloud.tasks.list().count
    with pytest.raises(gcore.BadRequestError) as exc:
        client.post(base(client), body={"load_balancer_id": lb.id, **body}, cast_to=object)
    assert exc.value.body["exception_class"] == "ValidationError"
    assert field in exc.value.body["invalid_fields"], exc.value.body
    assert listeners.list().count == 1 and client.cloud.tasks.list().count == tasks_before


def test_ports_share_across_l4_protocols(client, lb) -> None:
    listeners = client.cloud.load_balancers.listeners
    listeners.create_and_poll(load_balancer_id=lb.id, name="tcp", protocol="TCP", protocol_port=80)
    listeners.create_and_poll(load_balancer_id=lb.id, name="udp", protocol="UDP", protocol_port=80)
    with pytest.raises(gcore.BadRequestError):
        listeners.create(load_balancer_id=lb.id, name="http", protocol="HTTP", protocol_port=80)
    assert listeners.list().count == 2


def test_not_found_cases(client, server, lb) -> None:
    listeners = client.cloud.load_balancers.listeners
    other_client_project, _ = server.new_project()
    foreign_secret = add_secret(server, other_client_project)
    missing = str(uuid.uuid4())
    cases = [
        {"load_balancer_id": missing},
        {"load_balancer_id": lb.id, "protocol": "TERMINATED_HTTPS", "secret_id": foreign_secret},
        {"load_balancer_id": lb.id, "protocol": "TERMINATED_HTTPS", "sni_secret_id": [missing]},
        {"load_balancer_id": lb.id, "default_pool_id": missing},
    ]
    for extra in cases:
        body = {"name": "web", "protocol": "HTTP", "protocol_port": 80, **extra}
        with pytest.raises(gcore.NotFoundError):
            client.post(base(client), body=body, cast_to=object)
    assert listeners.list().count == 0
    for call in (
        lambda: listeners.get(missing),
        lambda: listeners.delete(missing),
        lambda: listeners.update(missing, name="abc"),
    ):
        with pytest.raises(gcore.NotFoundError):
            call()


def test_other_project_cannot_see(client, server, lb) -> None:
    from tests.conftest import make_client

    li = client.cloud.load_balancers.listeners.create_and_poll(
        load_balancer_id=lb.id, name="web", protocol="HTTP", protocol_port=80
    )
    stranger = make_client(server)
    for call in (
        lambda: stranger.cloud.load_balancers.listeners.get(li.id),
        lambda: stranger.cloud.load_balancers.listeners.delete(li.id),
        lambda: stranger.cloud.load_balancers.listeners.update(li.id, name="mine"),
        lambda: stranger.cloud.load_balancers.listeners.create(
            load_balancer_id=lb.id, name="web", protocol="HTTP", protocol_port=81
        ),
    ):
        with pytest.raises(gcore.NotFoundError):
            call()
    assert stranger.cloud.load_balancers.listeners.list().count == 0
    assert client.cloud.load_balancers.listeners.get(li.id).name == "web"


def test_patch_validation(client, server, lb) -> None:
    listeners = client.cloud.load_balancers.listeners
    li = listeners.create_and_poll(load_balancer_id=lb.id, name="web", protocol="HTTP", protocol_port=80)
    bad = [
        ({"protocol_port": 81}, "protocol_port"),
        ({"protocol": "TCP"}, "protocol"),
        ({"name": None}, "name"),
        ({"connection_limit": 2_000_000}, "connection_limit"),
        ({"allowed_cidrs": ["fe80::/10"]}, "allowed_cidrs.0"),
        ({"secret_id": add_secret(server, client.cloud_project_id)}, "secret_id"),  # not a TLS listener
    ]
    for body, field in bad:
        with pytest.raises(gcore.BadRequestError) as exc:
            client.patch(f"{base(client, 'v2')}/{li.id}", body=body, cast_to=object)
        assert field in exc.value.body["invalid_fields"], (body, exc.value.body)
    with pytest.raises(gcore.NotFoundError):
        tls = listeners.create_and_poll(
            load_balancer_id=lb.id,
            name="tls",
            protocol="TERMINATED_HTTPS",
            protocol_port=443,
            sni_secret_id=[add_secret(server, lb.project_id)],
        )
        listeners.update(tls.id, secret_id=str(uuid.uuid4()))
    got = listeners.get(li.id)
    assert (got.name, got.connection_limit, got.allowed_cidrs) == ("web", 100000, None)
    assert client.cloud.tasks.list(task_type="patch_lblistener").count == 0


def test_quota(client, server, lb) -> None:
    with server.db.write() as conn:
        quotas.set_limit(conn, client.cloud_project_id, "listeners_per_lb", 1)
    listeners = client.cloud.load_balancers.listeners
    listeners.create_and_poll(load_balancer_id=lb.id, name="one", protocol="TCP", protocol_port=1)
    with pytest.raises(gcore.BadRequestError) as exc:
        listeners.create(load_balancer_id=lb.id, name="two", protocol="TCP", protocol_port=2)
    assert exc.value.body["exception_class"] == "QuotaLimitExceed"
    assert listeners.list().count == 1


def test_pending_states_and_queued_port(slow_client) -> None:
    client = slow_client
    lb = client.cloud.load_balancers.create_and_poll(name="lb-slow")
    listeners = client.cloud.load_balancers.listeners
    first = listeners.create(load_balancer_id=lb.id, name="one", protocol="HTTP", protocol_port=80).tasks[0]
    # The queued create binds its port already.
    with pytest.raises(gcore.BadRequestError):
        listeners.create(load_balancer_id=lb.id, name="two", protocol="TCP", protocol_port=80)
    (pending,) = listeners.list().results
    assert pending.provisioning_status == "PENDING_CREATE" and pending.task_id == first
    assert client.cloud.load_balancers.get(lb.id).provisioning_status == "PENDING_UPDATE"
    client.cloud.tasks.poll(first)
    assert listeners.get(pending.id).provisioning_status == "ACTIVE"
    deleting = listeners.delete(pending.id).tasks[0]
    assert listeners.get(pending.id).provisioning_status == "PENDING_DELETE"
    with pytest.raises(gcore.ConflictError):
        listeners.update(pending.id, name="again")
    # A port being freed is free for a new listener at once.
    listeners.create(load_balancer_id=lb.id, name="three", protocol="TCP", protocol_port=80)
    client.cloud.tasks.poll(deleting)
    lb_delete = client.cloud.load_balancers.delete(lb.id).tasks[0]
    with pytest.raises(gcore.ConflictError):
        listeners.create(load_balancer_id=lb.id, name="four", protocol="TCP", protocol_port=81)
    client.cloud.tasks.poll(lb_delete)
    assert listeners.list().count == 0
