"""Which changes the provider makes through the runtime API (no reload), and which reload."""

from __future__ import annotations

import dataclasses

from samples import http_basic, persistence

from lbaas.domain.model import LoadBalancerSnapshot, Member, Pool
from lbaas.providers.haproxy.provider import checked_servers, runtime_plan
from lbaas.providers.haproxy.render import Env, render

ENV = Env(run_dir="/run/lbaas", lb_dir="/var/lib/lbaas/lb")


def _with_members(
    snapshot: LoadBalancerSnapshot, pool_id: str, members: tuple[Member, ...]
) -> LoadBalancerSnapshot:
    pools = tuple(dataclasses.replace(p, members=members) if p.id == pool_id else p for p in snapshot.pools)
    return dataclasses.replace(snapshot, pools=pools)


def _pool(snapshot: LoadBalancerSnapshot, pool_id: str) -> Pool:
    pool = snapshot.pool(pool_id)
    assert pool is not None
    return pool


def _plan(old: LoadBalancerSnapshot, new: LoadBalancerSnapshot) -> list[tuple[str, str]] | None:
    steps = runtime_plan(render(old, ENV), render(new, ENV))
    return None if steps is None else sorted((s.op, s.server.name) for s in steps)


def test_member_changes_are_runtime_steps() -> None:
    old = http_basic(None)  # type: ignore[arg-type]
    members = _pool(old, "pool-web").members
    extra = Member(id="m-5", address="10.0.0.15", protocol_port=8080)
    assert _plan(old, _with_members(old, "pool-web", (*members, extra))) == [("add", "m-5")]
    assert _plan(old, _with_members(old, "pool-web", members[1:])) == [("delete", "m-1")]
    heavier = (dataclasses.replace(members[0], weight=3), *members[1:])
    assert _plan(old, _with_members(old, "pool-web", heavier)) == [("weight", "m-1")]
    disabled = (dataclasses.replace(members[0], admin_state_up=False), *members[1:])
    assert _plan(old, _with_members(old, "pool-web", disabled)) == [("state", "m-1")]


def test_many_members_added_one_by_one_never_reload_within_a_block() -> None:
    """maxconn reserves descriptors for servers in blocks of 256: the 5th to the 256th member
    are each an ``add`` step, not a reload."""
    old = http_basic(None)  # type: ignore[arg-type]
    current = old
    for i in range(5, 257):
        members = (
            *_pool(current, "pool-web").members,
            Member(id=f"m-{i}", address="10.0.0.20", protocol_port=i),
        )
        new = _with_members(current, "pool-web", members)
        assert _plan(current, new) == [("add", f"m-{i}")], i
        current = new
    crossing = _with_members(
        current,
        "pool-web",
        (*_pool(current, "pool-web").members, Member(id="m-x", address="10.0.0.20", protocol_port=99)),
    )
    assert _plan(current, crossing) is None  # the 257th needs more descriptors: a reload


def test_what_needs_a_reload() -> None:
    old = http_basic(None)  # type: ignore[arg-type]
    moved = (
        dataclasses.replace(_pool(old, "pool-web").members[0], protocol_port=9090),
        *_pool(old, "pool-web").members[1:],
    )
    assert _plan(old, _with_members(old, "pool-web", moved)) is None  # address or port: redo the server
    listener = dataclasses.replace(old.listeners[0], timeout_client_data=1000)
    assert _plan(old, dataclasses.replace(old, listeners=(listener,))) is None
    # a pool with HTTP_COOKIE persistence: servers carry a cookie, which 2.6 cannot add at run time
    cookies = persistence(None)  # type: ignore[arg-type]
    named = _pool(cookies, "pool-named")
    added = (*named.members, Member(id="m-new", address="10.0.0.72", protocol_port=80))
    assert _plan(cookies, _with_members(cookies, "pool-named", added)) is None


def test_checked_servers() -> None:
    config = render(http_basic(None), ENV).config  # type: ignore[arg-type]
    assert checked_servers(config) == {("pool-web", f"m-{i}") for i in range(1, 5)}
    unchecked = dataclasses.replace(_pool(http_basic(None), "pool-web"), healthmonitor=None)  # type: ignore[arg-type]
    snapshot = dataclasses.replace(http_basic(None), pools=(unchecked,))  # type: ignore[arg-type]
    assert checked_servers(render(snapshot, ENV).config) == set()
