"""L7 policies and L7 rules, driven through the SDK on both backends."""

from __future__ import annotations

import time

import gcore
import pytest
import sqlalchemy as sa

from lbaas.clock import new_id
from lbaas.db import tables


# -- fixtures: an LB with listeners and pools ---------------------------------
def add_listener(client, lb, protocol: str = "HTTP", port: int = 80) -> str:
    return client.cloud.load_balancers.listeners.create_and_poll(
        load_balancer_id=lb.id, name=f"l-{port}", protocol=protocol, protocol_port=port
    ).id


def add_pool(client, lb, protocol: str = "HTTP") -> str:
    return client.cloud.load_balancers.pools.create_and_poll(
        load_balancer_id=lb.id, name="pool", protocol=protocol, lb_algorithm="ROUND_ROBIN"
    ).id


def finished(client, task_id: str):
    """The task once ended, polled faster than the SDK's 1 s floor.

    With the noop provider a task is usually FINISHED before its POST returns, but not
    always: the background worker may claim it first and still be running it.
    """
    deadline = time.time() + 10
    while (task := client.cloud.tasks.get(task_id)).state not in ("FINISHED", "ERROR"):
        assert time.time() < deadline, f"task {task_id} did not end"
        time.sleep(0.02)
    assert task.state == "FINISHED", task.error
    return task


@pytest.fixture
def lb(client):
    return client.cloud.load_balancers.create_and_poll(name="l7-lb")


@pytest.fixture
def listener_id(client, lb) -> str:
    return add_listener(client, lb)


def l7_rows(server, lb_id: str) -> list[list[dict]]:
    """Every L7 row of an LB: to show a refused request changed nothing."""
    with server.db.read() as conn:
        return [
            [
                dict(r)
                for r in conn.execute(sa.select(t).where(t.c.lb_id == lb_id).order_by(t.c.id)).mappings()
            ]
            for t in (tables.l7_policies, tables.l7_rules)
        ]


def base(client) -> str:
    return f"/cloud/v1/l7policies/{client.cloud_project_id}/1"


def positions(client, listener_id: str) -> list[tuple[str, int]]:
    items = [p for p in client.cloud.load_balancers.l7_policies.list() if p.listener_id == listener_id]
    return sorted(((p.name, p.position) for p in items), key=lambda x: x[1])


# -- policies ------------------------------------------------------------------
def test_create_each_action(client, server, lb, listener_id) -> None:
    l7 = client.cloud.load_balancers.l7_policies
    pool_id = add_pool(client, lb)
    reject = l7.create_and_poll(action="REJECT", listener_id=listener_id, tags=["a", "b"])
    assert reject.name == f"policy-{reject.id[:8]}" and reject.position == 1
    assert reject.provisioning_status == "ACTIVE" and reject.operating_status == "ONLINE"
    assert reject.task_id is None and reject.rules == [] and reject.tags == ["a", "b"]
    assert reject.redirect_http_code is None and reject.redirect_url is None
    assert reject.region == "Luxembourg-2" and reject.region_id == 1
    assert reject.project_id == client.cloud_project_id and reject.listener_id == listener_id
    url = l7.create_and_poll(
        action="REDIRECT_TO_URL", listener_id=listener_id, name="to-url", redirect_url="https://example.com/x"
    )
    assert (url.name, url.redirect_url, url.redirect_http_code, url.position) == (
        "to-url",
        "https://example.com/x",
        302,
        2,
    )
    assert url.tags == [] and url.redirect_prefix is None and url.redirect_pool_id is None
    prefix = l7.create_and_poll(
        action="REDIRECT_PREFIX",
        listener_id=listener_id,
        redirect_prefix="https://example.com",
        redirect_http_code=301,
    )
    assert (prefix.redirect_prefix, prefix.redirect_http_code) == ("https://example.com", 301)
    to_pool = l7.create_and_poll(action="REDIRECT_TO_POOL", listener_id=listener_id, redirect_pool_id=pool_id)
    assert to_pool.redirect_pool_id == pool_id and to_pool.redirect_http_code is None
    assert to_pool.position == 4
    page = l7.list()
    assert page.count == 4 and [p.id for p in page.results] == [reject.id, url.id, prefix.id, to_pool.id]
    assert [p.id for p in l7.list(limit=1, offset=2).results] == [prefix.id]
    assert [p.id for p in l7.list(limit=1)] == [reject.id, url.id, prefix.id, to_pool.id]  # auto-paging
    assert client.cloud.load_balancers.get(lb.id).provisioning_status == "ACTIVE"
    task = finished(client, l7.create(action="REJECT", listener_id=listener_id).tasks[0])
    assert task.task_type == "create_l7policy"
    assert len(task.created_resources.l7polices) == 1 and task.created_resources.l7rules == []


def test_positions(client, listener_id) -> None:
    l7 = client.cloud.load_balancers.l7_policies
    make = lambda name, **kw: l7.create_and_poll(  # noqa: E731
        action="REJECT", listener_id=listener_id, name=name, **kw
    )
    a, b, _c = make("p-a"), make("p-b"), make("p-c")
    assert positions(client, listener_id) == [("p-a", 1), ("p-b", 2), ("p-c", 3)]
    first = make("p-first", position=1)
    assert first.position == 1
    assert positions(client, listener_id) == [("p-first", 1), ("p-a", 2), ("p-b", 3), ("p-c", 4)]
    assert make("p-last", position=99).position == 5  # clamped: appended
    assert make("p-mid", position=3).position == 3
    assert positions(client, listener_id) == [
        ("p-first", 1),
        ("p-a", 2),
        ("p-mid", 3),
        ("p-b", 4),
        ("p-c", 5),
        ("p-last", 6),
    ]
    moved = l7.update_and_poll(first.id, action="REJECT", position=4)
    assert moved.position == 4 and moved.name == "p-first"
    assert positions(client, listener_id) == [
        ("p-a", 1),
        ("p-mid", 2),
        ("p-b", 3),
        ("p-first", 4),
        ("p-c", 5),
        ("p-last", 6),
    ]
    l7.delete_and_poll(a.id)
    l7.delete_and_poll(b.id)
    assert positions(client, listener_id) == [("p-mid", 1), ("p-first", 2), ("p-c", 3), ("p-last", 4)]
    with pytest.raises(gcore.BadRequestError) as exc:
        l7.create(action="REJECT", listener_id=listener_id, position=0)
    assert "position" in exc.value.body["invalid_fields"]


def test_update_and_poll(client, server, lb, listener_id) -> None:
    l7 = client.cloud.load_balancers.l7_policies
    pool_id = add_pool(client, lb)
    pol = l7.create_and_poll(
        action="REDIRECT_TO_URL",
        listener_id=listener_id,
        name="upd",
        redirect_url="http://a.example",
        redirect_http_code=307,
        tags=["x"],
    )
    same_code = l7.update_and_poll(pol.id, action="REDIRECT_PREFIX", redirect_prefix="https://b.example")
    assert same_code.redirect_prefix == "https://b.example" and same_code.redirect_url is None
    assert same_code.redirect_http_code == 307 and same_code.name == "upd" and same_code.tags == ["x"]
    to_pool = l7.update_and_poll(
        pol.id, action="REDIRECT_TO_POOL", redirect_pool_id=pool_id, name="renamed", tags=[]
    )
    assert (
        to_pool.action,
        to_pool.redirect_pool_id,
        to_pool.redirect_prefix,
        to_pool.redirect_http_code,
    ) == ("REDIRECT_TO_POOL", pool_id, None, None)
    assert to_pool.name == "renamed" and to_pool.tags == [] and to_pool.provisioning_status == "ACTIVE"
    back = l7.update_and_poll(pol.id, action="REDIRECT_TO_URL", redirect_url="https://c.example")
    assert back.redirect_http_code == 302 and back.redirect_pool_id is None
    reject = l7.update(pol.id, action="REJECT")
    assert finished(client, reject.tasks[0]).task_type == "update_l7policy"
    got = l7.get(pol.id)
    assert got.action == "REJECT" and got.redirect_url is None and got.redirect_http_code is None
    assert got.task_id is None and got.position == 1


def test_delete_and_poll_takes_rules(client, server, lb, listener_id) -> None:
    l7 = client.cloud.load_balancers.l7_policies
    pol = l7.create_and_poll(action="REJECT", listener_id=listener_id)
    rule = l7.rules.create_and_poll(pol.id, type="PATH", compare_type="STARTS_WITH", value="/api")
    resp = l7.delete(pol.id)
    assert len(resp.tasks) == 1
    assert finished(client, resp.tasks[0]).task_type == "delete_l7policy"
    with pytest.raises(gcore.NotFoundError):
        l7.get(pol.id)
    with pytest.raises(gcore.NotFoundError):
        l7.rules.get(rule.id, l7policy_id=pol.id)
    assert l7_rows(server, lb.id) == [[], []]
    pol2 = l7.create_and_poll(action="REJECT", listener_id=listener_id)
    l7.delete_and_poll(pol2.id)  # the helper needs exactly one task
    assert l7.list().count == 0
    assert client.cloud.load_balancers.get(lb.id).provisioning_status == "ACTIVE"


# -- rules ---------------------------------------------------------------------
def test_rules_create_replace_delete(client, listener_id) -> None:
    l7 = client.cloud.load_balancers.l7_policies
    pol = l7.create_and_poll(action="REJECT", listener_id=listener_id)
    rule = l7.rules.create_and_poll(
        pol.id, type="HEADER", compare_type="EQUAL_TO", key="X-Env", value="prod", tags=["t1"]
    )
    assert (rule.type, rule.compare_type, rule.key, rule.value, rule.invert, rule.tags) == (
        "HEADER",
        "EQUAL_TO",
        "X-Env",
        "prod",
        False,
        ["t1"],
    )
    assert rule.provisioning_status == "ACTIVE" and rule.operating_status == "ONLINE" and rule.task_id is None
    assert rule.region == "Luxembourg-2" and rule.project_id == client.cloud_project_id
    second = l7.rules.create_and_poll(
        pol.id, type="PATH", compare_type="REGEX", value="^/v[12]/", invert=True
    )
    assert second.invert is True and second.key is None
    got = l7.get(pol.id)
    assert [r.id for r in got.rules] == [rule.id, second.id] and got.provisioning_status == "ACTIVE"
    assert got.rules[0].region == "Luxembourg-2" and got.rules[0].region_id == 1
    page = l7.rules.list(pol.id)
    assert page.count == 2 and [r.id for r in page.results] == [rule.id, second.id]
    assert [r.id for r in l7.rules.list(pol.id, limit=1, offset=1).results] == [second.id]
    replaced = l7.rules.replace_and_poll(
        rule.id, l7policy_id=pol.id, type="HEADER", compare_type="CONTAINS", value="stag"
    )
    assert (replaced.compare_type, replaced.value, replaced.key, replaced.tags) == (
        "CONTAINS",
        "stag",
        "X-Env",
        ["t1"],
    )
    to_path = l7.rules.replace_and_poll(
        rule.id, l7policy_id=pol.id, type="PATH", compare_type="EQUAL_TO", value="/x"
    )
    assert to_path.key is None and to_path.provisioning_status == "ACTIVE"
    put = l7.rules.replace(rule.id, l7policy_id=pol.id, value="/y")
    assert finished(client, put.tasks[0]).task_type == "put_l7rule"
    l7.rules.delete_and_poll(rule.id, l7policy_id=pol.id)
    assert [r.id for r in l7.rules.list(pol.id).results] == [second.id]
    assert l7.get(pol.id).provisioning_status == "ACTIVE"
    task = finished(client, l7.rules.delete(second.id, l7policy_id=pol.id).tasks[0])
    assert task.task_type == "delete_l7rule" and l7.rules.list(pol.id).count == 0


async def test_async_policy_and_rule(aclient, server, lb, listener_id) -> None:
    l7 = aclient.cloud.load_balancers.l7_policies
    pol = await l7.create_and_poll(
        action="REDIRECT_TO_URL", listener_id=listener_id, redirect_url="https://example.com"
    )
    rule = await l7.rules.create_and_poll(pol.id, type="HOST_NAME", compare_type="ENDS_WITH", value=".com")
    rule = await l7.rules.replace_and_poll(
        rule.id, l7policy_id=pol.id, type="HOST_NAME", compare_type="EQUAL_TO", value="a.com"
    )
    assert rule.value == "a.com"
    pol = await l7.update_and_poll(pol.id, action="REJECT", name="async-pol")
    assert pol.name == "async-pol" and [r.id for r in pol.rules] == [rule.id]
    await l7.rules.delete_and_poll(rule.id, l7policy_id=pol.id)
    await l7.delete_and_poll(pol.id)
    assert (await l7.list()).count == 0


# -- refusals ------------------------------------------------------------------
BAD_POLICIES = [
    ({"action": "REDIRECT_TO_URL"}, "redirect_url"),
    ({"action": "REDIRECT_TO_URL", "redirect_url": "not a url"}, "redirect_url"),
    ({"action": "REDIRECT_PREFIX", "redirect_prefix": "relative"}, "redirect_prefix"),
    ({"action": "REDIRECT_TO_POOL"}, "redirect_pool_id"),
    ({"action": "REDIRECT_TO_POOL", "redirect_pool_id": "nope"}, "redirect_pool_id"),
    (
        {"action": "REDIRECT_TO_URL", "redirect_url": "https://e.com", "redirect_http_code": 304},
        "redirect_http_code",
    ),
    ({"action": "DROP"}, "action"),
    ({"action": "REJECT", "name": "x"}, "name"),
    ({"action": "REJECT", "tags": ["a", "a"]}, "tags.1"),
    ({"action": "REJECT", "bogus": 1}, "bogus"),
]


def test_create_policy_validation(client, server, lb, listener_id) -> None:
    # One LB for every case: each refusal is checked to leave the L7 rows untouched.
    before = l7_rows(server, lb.id)
    for body, field in BAD_POLICIES:
        with pytest.raises(gcore.BadRequestError) as exc:
            client.post(base(client), body={"listener_id": listener_id, **body}, cast_to=object)
        assert exc.value.body["exception_class"] == "ValidationError"
        assert field in exc.value.body["invalid_fields"], (body, exc.value.body)
    assert l7_rows(server, lb.id) == before


def test_gcore_examples_and_other_actions_fields(client, listener_id) -> None:
    """Gcore's published examples pass; another action's redirect fields are ignored, not refused."""
    l7 = client.cloud.load_balancers.l7_policies
    # CreateL7PolicyRedirectPrefixSerializer's example prefix is a path, not a URL.
    prefix = l7.create_and_poll(
        action="REDIRECT_PREFIX", listener_id=listener_id, redirect_prefix="/api/v1/policies"
    )
    assert (prefix.redirect_prefix, prefix.redirect_http_code) == ("/api/v1/policies", 302)
    # Gcore's rule example: a REGEX PATH rule that also carries a key (kept, unused).
    rule = l7.rules.create_and_poll(
        prefix.id,
        type="PATH",
        compare_type="REGEX",
        value="/images*",
        key="the name of the cookie or header to evaluate.",
        tags=["test_tag_1", "test_tag_2"],
    )
    assert (rule.type, rule.value, rule.key) == (
        "PATH",
        "/images*",
        "the name of the cookie or header to evaluate.",
    )
    # Octavia clears, and Gcore's per-action schemas do not have, the other actions' fields.
    body = {
        "action": "REJECT",
        "listener_id": listener_id,
        "redirect_url": "https://e.com",
        "redirect_http_code": 301,
    }
    task = client.post(base(client), body=body, cast_to=object)["tasks"][0]
    pol = l7.get(finished(client, task).created_resources.l7polices[0])
    assert (pol.action, pol.redirect_url, pol.redirect_http_code) == ("REJECT", None, None)


def test_policy_reference_checks(client, server, lb, listener_id) -> None:
    l7 = client.cloud.load_balancers.l7_policies
    tcp_listener = add_listener(client, lb, protocol="TCP", port=81)
    other_lb = client.cloud.load_balancers.create_and_poll(name="other-lb")
    foreign_pool = add_pool(client, other_lb)
    tcp_pool = add_pool(client, lb, protocol="TCP")
    before = l7_rows(server, lb.id)
    with pytest.raises(gcore.BadRequestError) as exc:
        l7.create(action="REJECT", listener_id=tcp_listener)
    assert "listener_id" in exc.value.body["invalid_fields"]
    with pytest.raises(gcore.BadRequestError) as exc:
        l7.create(action="REDIRECT_TO_POOL", listener_id=listener_id, redirect_pool_id=foreign_pool)
    assert "another load balancer" in exc.value.body["invalid_fields"]["redirect_pool_id"][0]
    with pytest.raises(gcore.BadRequestError) as exc:
        l7.create(action="REDIRECT_TO_POOL", listener_id=listener_id, redirect_pool_id=tcp_pool)
    assert "redirect_pool_id" in exc.value.body["invalid_fields"]
    with pytest.raises(gcore.NotFoundError):
        l7.create(action="REJECT", listener_id=new_id())
    with pytest.raises(gcore.NotFoundError):
        l7.create(action="REDIRECT_TO_POOL", listener_id=listener_id, redirect_pool_id=new_id())
    assert l7_rows(server, lb.id) == before
    pol = l7.create_and_poll(action="REJECT", listener_id=listener_id)
    before = l7_rows(server, lb.id)
    with pytest.raises(gcore.BadRequestError):
        l7.update(pol.id, action="REDIRECT_TO_POOL", redirect_pool_id=foreign_pool)
    with pytest.raises(gcore.BadRequestError) as exc:
        l7.update(pol.id, action="REDIRECT_TO_URL")
    assert "redirect_url" in exc.value.body["invalid_fields"]
    with pytest.raises(gcore.BadRequestError):
        client.patch(f"{base(client)}/{pol.id}", body={"name": "no-action"}, cast_to=object)
    assert l7_rows(server, lb.id) == before


def test_rule_validation(client, server, lb, listener_id) -> None:
    l7 = client.cloud.load_balancers.l7_policies
    pol = l7.create_and_poll(action="REJECT", listener_id=listener_id)
    rule = l7.rules.create_and_poll(pol.id, type="COOKIE", compare_type="EQUAL_TO", key="sid", value="1")
    before = l7_rows(server, lb.id)
    bad = [
        ({"type": "PATH", "compare_type": "REGEX", "value": "(unclosed"}, "value"),
        ({"type": "HEADER", "compare_type": "EQUAL_TO", "value": "x"}, "key"),
        ({"type": "SSL_CONN_HAS_CERT", "compare_type": "EQUAL_TO", "value": "True", "key": "k"}, "key"),
        ({"type": "FILE_TYPE", "compare_type": "CONTAINS", "value": "jpg"}, "compare_type"),
        ({"type": "PATH", "compare_type": "EQUAL_TO", "value": ""}, "value"),
        ({"type": "QUERY", "compare_type": "EQUAL_TO", "value": "x"}, "type"),
        ({"compare_type": "EQUAL_TO", "value": "x"}, "type"),
    ]
    for body, field in bad:
        with pytest.raises(gcore.BadRequestError) as exc:
            client.post(f"{base(client)}/{pol.id}/rules", body=body, cast_to=object)
        assert field in exc.value.body["invalid_fields"], (body, exc.value.body)
    with pytest.raises(gcore.BadRequestError) as exc:  # merged: HEADER without a key
        l7.rules.replace(rule.id, l7policy_id=pol.id, type="HEADER", key=None)
    assert "key" in exc.value.body["invalid_fields"]
    with pytest.raises(gcore.BadRequestError) as exc:
        l7.rules.replace(rule.id, l7policy_id=pol.id, compare_type="REGEX", value="[")
    assert "value" in exc.value.body["invalid_fields"]
    assert l7_rows(server, lb.id) == before


def test_other_project_is_404(client, server, lb, listener_id) -> None:
    from tests.conftest import make_client

    l7 = client.cloud.load_balancers.l7_policies
    pol = l7.create_and_poll(action="REJECT", listener_id=listener_id)
    rule = l7.rules.create_and_poll(pol.id, type="PATH", compare_type="EQUAL_TO", value="/")
    before = l7_rows(server, lb.id)
    other = make_client(server).cloud.load_balancers.l7_policies
    calls = [
        lambda: other.get(pol.id),
        lambda: other.update(pol.id, action="REJECT"),
        lambda: other.delete(pol.id),
        lambda: other.create(action="REJECT", listener_id=listener_id),
        lambda: other.rules.list(pol.id),
        lambda: other.rules.get(rule.id, l7policy_id=pol.id),
        lambda: other.rules.create(pol.id, type="PATH", compare_type="EQUAL_TO", value="/x"),
        lambda: other.rules.replace(rule.id, l7policy_id=pol.id, value="/x"),
        lambda: other.rules.delete(rule.id, l7policy_id=pol.id),
    ]
    for call in calls:
        with pytest.raises(gcore.NotFoundError):
            call()
    assert other.list().count == 0
    other_pol = l7.create_and_poll(action="REJECT", listener_id=listener_id)
    with pytest.raises(gcore.NotFoundError):  # a rule addressed through the wrong policy
        l7.rules.get(rule.id, l7policy_id=other_pol.id)
    l7.delete_and_poll(other_pol.id)
    assert l7_rows(server, lb.id) == before


# -- lifecycle, seen with slow tasks -------------------------------------------
def test_pending_states(slow_client) -> None:
    client = slow_client
    l7 = client.cloud.load_balancers.l7_policies
    lb_task = client.cloud.load_balancers.create(name="slow-l7").tasks[0]
    finished(client, lb_task)
    lb = client.cloud.load_balancers.get(client.cloud.tasks.get(lb_task).created_resources.loadbalancers[0])
    li_task = client.cloud.load_balancers.listeners.create(
        load_balancer_id=lb.id, name="slow-li", protocol="HTTP", protocol_port=80
    ).tasks[0]
    finished(client, li_task)
    listener_id = client.cloud.tasks.get(li_task).created_resources.listeners[0]
    created = l7.create(action="REJECT", listener_id=listener_id)
    pol = l7.list().results[0]
    assert pol.provisioning_status == "PENDING_CREATE" and pol.task_id == created.tasks[0]
    finished(client, created.tasks[0])
    rule_task = l7.rules.create(pol.id, type="PATH", compare_type="EQUAL_TO", value="/a").tasks[0]
    assert l7.get(pol.id).provisioning_status == "ACTIVE"  # a rule change leaves its policy alone
    rule = l7.rules.list(pol.id).results[0]
    assert rule.provisioning_status == "PENDING_CREATE" and rule.task_id == rule_task
    finished(client, rule_task)
    upd = l7.update(pol.id, action="REJECT", name="slow-upd").tasks[0]
    got = l7.get(pol.id)
    assert (got.provisioning_status, got.task_id, got.name) == ("PENDING_UPDATE", upd, "slow-upd")
    assert client.cloud.load_balancers.get(lb.id).provisioning_status == "PENDING_UPDATE"
    finished(client, upd)
    gone = l7.delete(pol.id).tasks[0]
    assert l7.get(pol.id).provisioning_status == "PENDING_DELETE"
    assert l7.rules.get(rule.id, l7policy_id=pol.id).provisioning_status == "PENDING_DELETE"
    with pytest.raises(gcore.ConflictError):
        l7.update(pol.id, action="REJECT")
    finished(client, gone)
    deadline = time.time() + 5
    while client.cloud.load_balancers.get(lb.id).provisioning_status != "ACTIVE" and time.time() < deadline:
        time.sleep(0.05)
    assert l7.list().count == 0
    client.cloud.load_balancers.delete(lb.id)
    with pytest.raises(gcore.ConflictError):  # the LB is being deleted
        l7.create(action="REJECT", listener_id=listener_id)


def test_listener_delete_takes_its_policies(client, server, lb, listener_id) -> None:
    l7 = client.cloud.load_balancers.l7_policies
    pool_id = add_pool(client, lb)
    pol = l7.create_and_poll(action="REDIRECT_TO_POOL", listener_id=listener_id, redirect_pool_id=pool_id)
    l7.rules.create_and_poll(pol.id, type="PATH", compare_type="EQUAL_TO", value="/")
    with pytest.raises(gcore.BadRequestError):  # the pool is still a redirect target
        client.cloud.load_balancers.pools.delete(pool_id)
    client.cloud.load_balancers.listeners.delete_and_poll(listener_id)
    assert l7.list().count == 0 and l7_rows(server, lb.id) == [[], []]
    client.cloud.load_balancers.pools.delete_and_poll(pool_id)
