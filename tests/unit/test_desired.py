"""The ERROR rule: a child whose change failed is served from its last applied values, or left out."""

from __future__ import annotations

import dataclasses

from lbaas.domain.desired import servable
from lbaas.domain.enums import (
    L7Action,
    L7CompareType,
    L7RuleType,
    LbAlgorithm,
    ListenerProtocol,
    PoolProtocol,
    ProvisioningStatus,
)
from lbaas.domain.model import L7Policy, L7Rule, Listener, LoadBalancerSnapshot, Member, Pool

ERR = ProvisioningStatus.ERROR


def tree(**over) -> LoadBalancerSnapshot:
    m1 = Member("m1", "127.0.0.1", 8001, weight=1)
    m2 = Member("m2", "127.0.0.1", 8002)
    pool = Pool("p1", "web", PoolProtocol.HTTP, LbAlgorithm.ROUND_ROBIN, listener_id="l1", members=(m1, m2))
    other = Pool("p2", "other", PoolProtocol.HTTP, LbAlgorithm.ROUND_ROBIN)
    rule = L7Rule("r1", L7RuleType.PATH, L7CompareType.STARTS_WITH, "/a")
    to_pool = L7Policy("po1", L7Action.REDIRECT_TO_POOL, 1, redirect_pool_id="p2", rules=(rule,))
    listener = Listener("l1", "web", ListenerProtocol.HTTP, 80, default_pool_id="p1", l7policies=(to_pool,))
    base = LoadBalancerSnapshot("lb", "lb", "127.1.0.1", listeners=(listener,), pools=(pool, other))
    return dataclasses.replace(base, **over)


def _with_member(snap: LoadBalancerSnapshot, member: Member) -> LoadBalancerSnapshot:
    pool = snap.pool("p1")
    members = tuple(member if m.id == member.id else m for m in pool.members)
    pools = tuple(dataclasses.replace(p, members=members) if p.id == "p1" else p for p in snap.pools)
    return dataclasses.replace(snap, pools=pools)


def test_nothing_in_error_is_served_as_desired() -> None:
    snap = tree()
    assert servable(snap, None) == snap


def test_an_error_member_keeps_its_applied_values() -> None:
    applied = tree()
    desired = _with_member(applied, Member("m1", "127.0.0.1", 8001, weight=99, provisioning_status=ERR))
    out = servable(desired, applied)
    assert out.member("m1").weight == 1 and out.member("m1").provisioning_status is ProvisioningStatus.ACTIVE


def test_an_error_member_never_applied_is_left_out() -> None:
    desired = _with_member(tree(), Member("m1", "127.0.0.1", 8001, provisioning_status=ERR))
    out = servable(desired, None)
    assert out.member("m1") is None and out.member("m2") is not None


def test_an_error_pool_never_applied_takes_its_routes_with_it() -> None:
    snap = tree()
    pools = tuple(dataclasses.replace(p, provisioning_status=ERR) if p.id == "p2" else p for p in snap.pools)
    out = servable(dataclasses.replace(snap, pools=pools), None)
    assert out.pool("p2") is None
    assert out.listener("l1").l7policies == ()  # its REDIRECT_TO_POOL policy cannot route anywhere
    pools = tuple(dataclasses.replace(p, provisioning_status=ERR) if p.id == "p1" else p for p in snap.pools)
    out = servable(dataclasses.replace(snap, pools=pools), None)
    assert out.listener("l1").default_pool_id is None and out.member("m1") is None


def test_an_error_listener_keeps_its_own_applied_fields_and_its_children_are_judged_alone() -> None:
    applied = tree()
    li = applied.listener("l1")
    failed = dataclasses.replace(li, connection_limit=5, provisioning_status=ERR, l7policies=())
    out = servable(dataclasses.replace(applied, listeners=(failed,)), applied)
    assert out.listener("l1").connection_limit == li.connection_limit
    assert out.listener("l1").l7policies == ()  # the desired children (none here), not the applied ones
