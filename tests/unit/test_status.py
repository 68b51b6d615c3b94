"""Tests for the operating-status roll-up: the edge-case tables, graph scenarios and properties."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbaas.domain.enums import OperatingStatus, ProvisioningStatus
from lbaas.domain.status import (
    LB_CASES,
    LISTENER_CASES,
    MEMBER_CASES,
    POOL_CASES,
    LbCase,
    ListenerCase,
    ListenerView,
    LoadBalancerView,
    MemberCase,
    MemberHealth,
    MemberView,
    PoolCase,
    PoolView,
    StatusTree,
    hm_status,
    lb_status,
    listener_status,
    member_status,
    pool_status,
    roll_up,
    severity,
)

S = OperatingStatus
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)


def _ids(cases: Iterable[tuple[object, ...]]) -> list[str]:
    return [case[-1] for case in cases]  # the "why" column doubles as a readable test id


# --- The tables in the module are the specification. ---


@pytest.mark.parametrize("case", MEMBER_CASES, ids=_ids(MEMBER_CASES))
def test_member_table(case: MemberCase) -> None:
    assert member_status(case.admin_state_up, case.has_monitor, case.health) == case.expected


@pytest.mark.parametrize("case", POOL_CASES, ids=_ids(POOL_CASES))
def test_pool_table(case: PoolCase) -> None:
    assert pool_status(case.admin_state_up, case.has_monitor, case.members) == case.expected


@pytest.mark.parametrize("case", LISTENER_CASES, ids=_ids(LISTENER_CASES))
def test_listener_table(case: ListenerCase) -> None:
    assert listener_status(case.admin_state_up, case.pools) == case.expected


@pytest.mark.parametrize("case", LB_CASES, ids=_ids(LB_CASES))
def test_lb_table(case: LbCase) -> None:
    assert lb_status(case.admin_state_up, case.provisioning_status, case.listeners) == case.expected


def test_tables_cover_every_raw_health_value() -> None:
    covered = {case.health for case in MEMBER_CASES if case.admin_state_up and case.has_monitor}
    assert set(MemberHealth) | {None} <= covered


# --- Small helpers. ---


def test_severity_order() -> None:
    assert severity(S.ERROR) > severity(S.DEGRADED) > severity(S.ONLINE)
    assert severity(S.ONLINE) == severity(S.NO_MONITOR) == severity(S.DRAINING)
    assert severity("ERROR") == severity(S.ERROR)
    assert {severity(s) for s in S} <= {0, 1, 2}


def test_severity_rejects_unknown_status() -> None:
    with pytest.raises(ValueError, match="BROKEN"):
        severity("BROKEN")


@pytest.mark.parametrize(("admin_state_up", "expected"), [(True, S.ONLINE), (False, S.OFFLINE)])
def test_hm_status(admin_state_up: bool, expected: OperatingStatus) -> None:
    assert hm_status(admin_state_up) == expected


def test_helpers_accept_plain_strings_and_generators() -> None:
    assert pool_status(True, True, (s for s in ["ONLINE", "ERROR"])) == S.DEGRADED
    assert listener_status(True, iter(["ERROR"])) == S.ERROR
    assert lb_status(True, "ERROR", []) == S.ERROR


# --- Whole-graph scenarios. ---


def _pool(pool_id: str, *healths: str | None, has_monitor: bool = True) -> PoolView:
    members = tuple(MemberView(f"{pool_id}-m{i}", True, h) for i, h in enumerate(healths))
    return PoolView(pool_id, True, has_monitor, members)


def test_shared_pool_feeds_every_listener_using_it() -> None:
    lb = LoadBalancerView(
        "lb",
        True,
        ProvisioningStatus.ACTIVE,
        listeners=(ListenerView("l1", True, ("shared",)), ListenerView("l2", True, ("ok", "shared"))),
        pools=(_pool("shared", "UP", "DOWN"), _pool("ok", "UP")),
    )
    tree = roll_up(lb)
    assert tree.pools == {"shared": S.DEGRADED, "ok": S.ONLINE}
    assert tree.listeners == {"l1": S.DEGRADED, "l2": S.DEGRADED}
    assert tree.lb == S.DEGRADED


def test_dead_l7_pool_degrades_listener_and_lb() -> None:
    lb = LoadBalancerView(
        "lb",
        True,
        ProvisioningStatus.ACTIVE,
        listeners=(ListenerView("l1", True, ("default", "l7")),),
        pools=(_pool("default", "UP"), _pool("l7", "DOWN", "DOWN")),
    )
    tree = roll_up(lb)
    assert (tree["l7"], tree["l1"], tree["lb"]) == (S.ERROR, S.DEGRADED, S.DEGRADED)


def test_only_listener_dead_makes_lb_error() -> None:
    lb = LoadBalancerView(
        "lb",
        True,
        ProvisioningStatus.ACTIVE,
        listeners=(ListenerView("l1", True, ("p",)), ListenerView("off", False, ())),
        pools=(_pool("p", "DOWN"),),
    )
    tree = roll_up(lb)
    assert (tree["l1"], tree["off"], tree.lb) == (S.ERROR, S.OFFLINE, S.ERROR)


def test_orphan_pool_is_reported_but_does_not_affect_lb() -> None:
    lb = LoadBalancerView("lb", True, ProvisioningStatus.ACTIVE, pools=(_pool("orphan", "DOWN"),))
    tree = roll_up(lb)
    assert tree["orphan"] == S.ERROR
    assert tree.lb == S.ONLINE


def test_pool_without_monitor_ignores_raw_health() -> None:
    lb = LoadBalancerView(
        "lb",
        True,
        ProvisioningStatus.ACTIVE,
        listeners=(ListenerView("l1", True, ("p",)),),
        pools=(_pool("p", "DOWN", None, has_monitor=False),),
    )
    tree = roll_up(lb)
    assert dict(tree.members) == {"p-m0": S.NO_MONITOR, "p-m1": S.NO_MONITOR}
    assert tree.lb == S.ONLINE


def test_status_tree_is_a_flat_read_only_mapping() -> None:
    lb = LoadBalancerView(
        "lb",
        True,
        ProvisioningStatus.ACTIVE,
        listeners=(ListenerView("l1", True, ("p",)),),
        pools=(_pool("p", "UP"),),
    )
    tree = roll_up(lb)
    assert isinstance(tree, StatusTree)
    assert list(tree) == ["lb", "l1", "p", "p-m0"]
    assert len(tree) == 4
    assert tree == {"lb": S.ONLINE, "l1": S.ONLINE, "p": S.ONLINE, "p-m0": S.ONLINE}
    assert tree.get("p") == S.ONLINE
    assert "nope" not in tree
    with pytest.raises(KeyError):
        tree["nope"]
    with pytest.raises(TypeError):
        tree.pools["p"] = S.ERROR  # type: ignore[index]


def test_unknown_pool_reference_is_rejected() -> None:
    lb = LoadBalancerView(
        "lb", True, ProvisioningStatus.ACTIVE, listeners=(ListenerView("l1", True, ("ghost",)),)
    )
    with pytest.raises(ValueError, match="ghost"):
        roll_up(lb)


@pytest.mark.parametrize(
    "lb",
    [
        LoadBalancerView("lb", True, "ACTIVE", pools=(_pool("p"), _pool("p"))),
        LoadBalancerView("lb", True, "ACTIVE", listeners=(ListenerView("lb", True),)),
        LoadBalancerView(
            "lb",
            True,
            "ACTIVE",
            pools=(_pool("p", "UP"), PoolView("q", True, True, (MemberView("p-m0", True, "UP"),))),
        ),
    ],
    ids=["duplicate pool", "listener reuses lb id", "member in two pools"],
)
def test_duplicate_ids_are_rejected(lb: LoadBalancerView) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        roll_up(lb)


# --- Properties over random load-balancer graphs. ---

HEALTHS: list[str | None] = [*MemberHealth, None, "garbage"]


@st.composite
def lb_graphs(draw: st.DrawFn, *, healthy: bool = False) -> LoadBalancerView:
    """Draw a load balancer; with healthy=True every enabled member is UP and nothing forces ERROR."""
    pools = []
    member_count = 0
    for p in range(draw(st.integers(0, 4))):
        has_monitor = draw(st.booleans())
        pool_admin = draw(st.booleans())
        members = []
        if healthy and has_monitor and pool_admin:
            # A monitored pool with no enabled member is ERROR by rule, so healthy graphs avoid it.
            members.append(MemberView(f"m{member_count}", True, MemberHealth.UP))
            member_count += 1
        for _ in range(draw(st.integers(0, 4))):
            admin = draw(st.booleans())
            health = MemberHealth.UP if healthy and admin else draw(st.sampled_from(HEALTHS))
            members.append(MemberView(f"m{member_count}", admin, health))
            member_count += 1
        pools.append(PoolView(f"p{p}", pool_admin, has_monitor, tuple(members)))
    pool_ids = [pool.id for pool in pools]
    listeners = tuple(
        ListenerView(
            f"l{i}",
            draw(st.booleans()),
            tuple(draw(st.lists(st.sampled_from(pool_ids), max_size=3))) if pool_ids else (),
        )
        for i in range(draw(st.integers(0, 3)))
    )
    if healthy:
        admin, provisioning = True, draw(st.sampled_from([p for p in ProvisioningStatus if p != "ERROR"]))
    else:
        admin, provisioning = draw(st.booleans()), draw(st.sampled_from(list(ProvisioningStatus)))
    return LoadBalancerView("lb", admin, provisioning, listeners, tuple(pools))


def _assert_not_healthier(parent: OperatingStatus, children: Iterable[OperatingStatus]) -> None:
    """Check the roll-up floor of an enabled parent over its enabled children.

    An ERROR child among working ones only demands DEGRADED (the rule "ERROR only if every enabled
    child is ERROR"), so the floor is the worst child's severity capped at DEGRADED, and a parent
    whose enabled children are all ERROR must itself be ERROR.
    """
    enabled = [c for c in children if c != S.OFFLINE]
    if parent == S.OFFLINE or not enabled:
        return
    floor = min(max(severity(c) for c in enabled), severity(S.DEGRADED))
    assert severity(parent) >= floor, (parent, enabled)
    if all(c == S.ERROR for c in enabled):
        assert parent == S.ERROR, (parent, enabled)


@PROPERTY_SETTINGS
@given(lb_graphs())
def test_parent_never_healthier_than_worst_enabled_child(lb: LoadBalancerView) -> None:
    tree = roll_up(lb)
    for pool in lb.pools:
        _assert_not_healthier(tree.pools[pool.id], (tree.members[m.id] for m in pool.members))
    for listener in lb.listeners:
        _assert_not_healthier(tree.listeners[listener.id], (tree.pools[p] for p in listener.pool_ids))
    _assert_not_healthier(tree.lb, tree.listeners.values())


@PROPERTY_SETTINGS
@given(lb_graphs())
def test_admin_down_is_always_offline(lb: LoadBalancerView) -> None:
    tree = roll_up(lb)
    objects = [(lb.id, lb.admin_state_up)]
    objects += [(listener.id, listener.admin_state_up) for listener in lb.listeners]
    objects += [(pool.id, pool.admin_state_up) for pool in lb.pools]
    objects += [(m.id, m.admin_state_up) for pool in lb.pools for m in pool.members]
    for object_id, admin_state_up in objects:
        if not admin_state_up:
            assert tree[object_id] == S.OFFLINE


@PROPERTY_SETTINGS
@given(lb_graphs())
def test_every_object_id_is_in_the_result(lb: LoadBalancerView) -> None:
    tree = roll_up(lb)
    assert set(tree.listeners) == {listener.id for listener in lb.listeners}
    assert set(tree.pools) == {pool.id for pool in lb.pools}
    assert set(tree.members) == {m.id for pool in lb.pools for m in pool.members}
    assert tree.lb_id == lb.id
    assert len(tree) == 1 + len(tree.listeners) + len(tree.pools) + len(tree.members)


@PROPERTY_SETTINGS
@given(lb_graphs())
def test_roll_up_is_deterministic_and_order_independent(lb: LoadBalancerView) -> None:
    reordered = LoadBalancerView(
        lb.id,
        lb.admin_state_up,
        lb.provisioning_status,
        tuple(reversed(lb.listeners)),
        tuple(PoolView(p.id, p.admin_state_up, p.has_monitor, p.members[::-1]) for p in reversed(lb.pools)),
    )
    first = roll_up(lb)
    assert roll_up(lb) == first
    assert dict(roll_up(reordered)) == dict(first)


@PROPERTY_SETTINGS
@given(lb_graphs(healthy=True))
def test_all_enabled_members_up_means_lb_online(lb: LoadBalancerView) -> None:
    assert roll_up(lb).lb == S.ONLINE


_LEVEL_HELPERS: list[Callable[[bool, list[OperatingStatus]], OperatingStatus]] = [
    lambda admin, children: pool_status(admin, True, children),
    lambda admin, children: pool_status(admin, False, children),
    listener_status,
    lambda admin, children: lb_status(admin, ProvisioningStatus.ACTIVE, children),
]


@PROPERTY_SETTINGS
@given(st.sampled_from(_LEVEL_HELPERS), st.booleans(), st.lists(st.sampled_from(list(S)), max_size=6))
def test_helpers_never_healthier_than_worst_child_for_any_input(
    helper: Callable[[bool, list[OperatingStatus]], OperatingStatus],
    admin_state_up: bool,
    children: list[OperatingStatus],
) -> None:
    result = helper(admin_state_up, children)
    if not admin_state_up:
        assert result == S.OFFLINE
    _assert_not_healthier(result, children)
