"""Changes while traffic flows: 50 member adds and removes through the runtime API (no reload),
then listener and pool changes (reloads), with client threads hammering the VIP over
keep-alive and over new connections: not one request may fail."""

from __future__ import annotations

from tests.dataplane.conftest import DataPlane, Load, create_lb, finish, pools_of, spread


def test_fifty_member_changes_then_listener_and_pool_changes_under_load(dataplane: DataPlane) -> None:
    backends = [dataplane.backend(f"load-{i}") for i in range(8)]
    client = dataplane.client()
    lb = create_lb(
        client,
        name="under-load",
        listeners=[
            {
                "name": "http",
                "protocol": "HTTP",
                "protocol_port": 8080,
                "pools": [
                    {
                        "name": "pool",
                        "protocol": "HTTP",
                        "lb_algorithm": "ROUND_ROBIN",
                        "members": [b.member for b in backends[:2]],
                        "healthmonitor": {
                            "type": "HTTP",
                            "delay": 2,
                            "timeout": 1,
                            "max_retries": 1,
                            "url_path": "/health",
                        },
                    }
                ],
            }
        ],
    )
    pool = pools_of(client, lb.id)["pool"]
    members = client.cloud.load_balancers.pools.members
    url = f"http://{lb.vip_address}:8080/"
    live = {m.protocol_port: m.id for m in pool.members}
    reloads = dataplane.reloads(lb.id)
    pid = dataplane.process(lb.id).pid

    with Load(url, keepalive_threads=1, new_conn_threads=1) as load:
        changes = 0
        spare = [b for b in backends if b.port not in live]
        while changes < 50:
            # add one that is not a member, then remove the oldest: always two or more serve
            added = spare.pop(0)
            task = finish(client, members.create(pool.id, address="127.0.0.1", protocol_port=added.port))
            live[added.port] = task.created_resources.members[0]
            oldest = next(iter(live))
            finish(client, members.delete(live.pop(oldest), pool_id=pool.id))
            spare.append(next(b for b in backends if b.port == oldest))
            changes += 2
        assert dataplane.reloads(lb.id) == reloads, "member changes must not reload"
        assert dataplane.process(lb.id).pid == pid
        member_phase = load.requests_so_far()

        listener = client.cloud.load_balancers.listeners.list(load_balancer_id=lb.id).results[0]
        listeners = client.cloud.load_balancers.listeners
        pools = client.cloud.load_balancers.pools
        finish(client, listeners.update(listener.id, timeout_client_data=30000, connection_limit=5000))
        finish(client, pools.update(pool.id, lb_algorithm="LEAST_CONNECTIONS"))
        finish(client, pools.update(pool.id, timeout_member_data=40000, name="pool-renamed"))
        second = finish(
            client,
            listeners.create(load_balancer_id=lb.id, name="second", protocol="HTTP", protocol_port=8081),
        ).created_resources.listeners[0]
        finish(client, listeners.delete(second))
        finish(client, pools.update(pool.id, lb_algorithm="ROUND_ROBIN"))
        assert dataplane.reloads(lb.id) >= reloads + 6
        assert load.requests_so_far() > member_phase

    assert load.failures == [], load.failures[:10]
    assert load.ok > 200, load.ok
    # every member that was live at some point served
    assert len(load.answers) >= 5, load.answers
    assert set(spread(url, 6)) == {b.name for b in backends if b.port in live}
