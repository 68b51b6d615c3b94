"""The object graph end to end: nested create, growth, queued mutations of every part, teardown.

Runs on the slow server (each noop task holds 300 ms), so several changes are
queued on the LB at once and the PENDING states are really observed.
"""

from __future__ import annotations

import time

HM = {"type": "HTTP", "delay": 5, "max_retries": 3, "timeout": 3, "url_path": "/health"}


def members(base: int) -> list[dict]:
    return [{"address": f"127.0.3.{base + i}", "protocol_port": 8080} for i in range(5)]


def wait(client, task_ids, timeout=30.0) -> None:
    deadline = time.time() + timeout
    pending = list(task_ids)
    while pending and time.time() < deadline:
        pending = [t for t in pending if client.cloud.tasks.get(t).state not in ("FINISHED", "ERROR")]
        time.sleep(0.05)
    assert not pending, pending
    assert {client.cloud.tasks.get(t).state for t in task_ids} == {"FINISHED"}


def tree_statuses(tree) -> list[tuple[str, str, str]]:
    """Every (kind, provisioning, operating) of a status tree."""
    out = [("lb", tree.provisioning_status, tree.operating_status)]
    for li in tree.listeners:
        out.append(("listener", li.provisioning_status, li.operating_status))
        for pool in li.pools:
            out.append(("pool", pool.provisioning_status, pool.operating_status))
            out += [("member", m.provisioning_status, m.operating_status) for m in pool.members]
            if pool.health_monitor:
                hm = pool.health_monitor
                out.append(("hm", hm.provisioning_status, hm.operating_status))
    return out


def assert_settled(client, lb_id) -> None:
    statuses = tree_statuses(client.cloud.load_balancers.statuses.get(lb_id))
    assert {p for _, p, _ in statuses} == {"ACTIVE"}, statuses
    assert {o for _, _, o in statuses} <= {"ONLINE", "NO_MONITOR", "OFFLINE"}, statuses


def test_whole_graph_lifecycle(slow_client) -> None:
    c = slow_client
    lbs = c.cloud.load_balancers
    listeners = [
        {
            "name": f"web-{n}",
            "protocol": "HTTP",
            "protocol_port": port,
            "pools": [
                {
                    "name": f"pool-{n}",
                    "protocol": "HTTP",
                    "lb_algorithm": "ROUND_ROBIN",
                    "members": members(10 * n + 1),
                    "healthmonitor": HM,
                }
            ],
        }
        for n, port in ((1, 80), (2, 8080))
    ]
    lb = lbs.create_and_poll(name="scenario-lb", listeners=listeners)
    task = c.cloud.tasks.get(lb.creator_task_id)
    made = task.created_resources
    assert len(made.listeners) == 2 and len(made.pools) == 2 and len(made.members) == 10
    assert len(made.healthmonitors) == 2 and made.loadbalancers == [lb.id]
    tree = lbs.statuses.get(lb.id)
    assert [len(li.pools) for li in tree.listeners] == [1, 1]
    assert all(m.operating_status == "ONLINE" for li in tree.listeners for m in li.pools[0].members)
    assert_settled(c, lb.id)

    # Grow: a third pool without a listener, then four L7 policies with rules on listener web-1.
    web1 = next(li for li in tree.listeners if li.name == "web-1")
    pool3 = lbs.pools.create_and_poll(
        name="pool-3",
        protocol="HTTP",
        lb_algorithm="LEAST_CONNECTIONS",
        load_balancer_id=lb.id,
        members=members(50)[:2],
    )
    policies = [
        lbs.l7_policies.create_and_poll(
            listener_id=web1.id, action="REDIRECT_TO_POOL", redirect_pool_id=pool3.id, name="to-pool-3"
        ),
        lbs.l7_policies.create_and_poll(
            listener_id=web1.id, action="REJECT", name="reject-admin", position=1
        ),
        lbs.l7_policies.create_and_poll(
            listener_id=web1.id, action="REDIRECT_TO_URL", redirect_url="https://example.org/", name="to-url"
        ),
        lbs.l7_policies.create_and_poll(
            listener_id=web1.id,
            action="REDIRECT_PREFIX",
            redirect_prefix="https://example.net",
            name="to-prefix",
        ),
    ]
    for policy, (rtype, value) in zip(
        policies,
        [("PATH", "/api"), ("PATH", "/admin"), ("HOST_NAME", "old.example.org"), ("PATH", "/legacy")],
        strict=True,
    ):
        lbs.l7_policies.rules.create_and_poll(
            l7policy_id=policy.id, type=rtype, compare_type="STARTS_WITH", value=value
        )
    by_name = {p.name: p for p in lbs.l7_policies.list().results}
    assert by_name["reject-admin"].position == 1 and by_name["to-pool-3"].position == 2
    tree = lbs.statuses.get(lb.id)
    web1_tree = next(li for li in tree.listeners if li.id == web1.id)
    assert {p.id for p in web1_tree.pools} == {pool3.id, web1.pools[0].id}  # default pool and redirect target
    assert_settled(c, lb.id)

    # Mutate every part at once: the tasks queue on the LB and run in order.
    pool1 = web1.pools[0]
    member0 = pool1.members[0]
    queued = [
        lbs.listeners.update(web1.id, connection_limit=500).tasks,
        lbs.pools.update(pool1.id, lb_algorithm="SOURCE_IP").tasks,
        lbs.pools.members.update(member0.id, pool_id=pool1.id, weight=7).tasks,
        lbs.pools.health_monitors.update(pool1.id, delay=10).tasks,
        lbs.l7_policies.update(
            policies[2].id, action="REDIRECT_TO_URL", redirect_url="https://example.com/"
        ).tasks,
        lbs.pools.members.replace(pool3.id, body=members(60)[:3]).tasks,
    ]
    ids = [t for ts in queued for t in ts]
    assert len(ids) == 6
    lb_now = lbs.get(lb.id)
    assert lb_now.provisioning_status == "PENDING_UPDATE" and lb_now.task_id in ids
    assert [c.cloud.tasks.get(t).state for t in ids].count("NEW") >= 4
    wait(c, ids)
    assert lbs.listeners.get(web1.id).connection_limit == 500
    assert lbs.pools.get(pool1.id).lb_algorithm == "SOURCE_IP"
    assert lbs.pools.members.get(member0.id, pool_id=pool1.id).weight == 7
    assert lbs.pools.health_monitors.get(pool1.id).delay == 10
    assert len(lbs.pools.get(pool3.id).members) == 3
    assert lbs.get(lb.id).provisioning_status == "ACTIVE"
    assert_settled(c, lb.id)

    # Tear down: the LB takes its whole tree with it.
    lbs.delete_and_poll(lb.id)
    assert lbs.list().count == 0
    assert lbs.listeners.list().count == 0 and lbs.pools.list().count == 0
    assert lbs.l7_policies.list().count == 0
