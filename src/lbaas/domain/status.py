"""Operating-status roll-up: member -> pool -> listener -> load balancer.

Providers only report RAW health per member (a ``MemberHealth`` sample, or ``None`` when they have
nothing yet); every operating status shown by the API is derived here, by pure functions shared by
all providers, so that two providers never disagree on what "DEGRADED" means.

Rules (the tables at the bottom of this module pin every edge case and are run as unit tests):

* Severity order used by every parent: ERROR > DEGRADED > ONLINE = NO_MONITOR = DRAINING. A child
  that reads OFFLINE (admin-down, or a member in MAINT) is left out of its parent's computation.
* Any object with ``admin_state_up=False`` reads OFFLINE, whatever its children or health say.
* Member: OFFLINE when admin-down; NO_MONITOR when its pool has no active health monitor (none, or
  an admin-down one), because a raw sample without a monitor proves nothing; otherwise the raw
  sample maps UP->ONLINE, DOWN->ERROR, DRAIN->DRAINING, MAINT->OFFLINE, NO_CHECK->NO_MONITOR, and
  ``None`` (or an unrecognised value) -> ONLINE, the same assumption the noop provider makes.
* Pool: OFFLINE when admin-down. With an active monitor, a pool in which no enabled member accepts
  new connections (none ONLINE or NO_MONITOR: empty, all ERROR, all DRAINING, ERROR+DRAINING, all
  MAINT) is ERROR. Otherwise the shared parent rule applies.
* Listener: OFFLINE when admin-down; otherwise the shared parent rule over the pools it routes to
  (its default pool plus the pools of its REDIRECT_TO_POOL L7 policies).
* Load balancer: OFFLINE when admin-down; ERROR when its provisioning status is ERROR; otherwise
  the shared parent rule over its listeners. Pools that no listener uses do not affect it.
* Shared parent rule: no enabled child -> ONLINE; every enabled child ERROR -> ERROR; any enabled
  child ERROR or DEGRADED -> DEGRADED; otherwise ONLINE. So a parent is never healthier than its
  worst enabled child, where "healthier" counts an ERROR child as demanding at least DEGRADED: one
  dead branch among working ones degrades the parent rather than killing it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

from lbaas.domain.enums import OperatingStatus, ProvisioningStatus

__all__ = [
    "LB_CASES",
    "LISTENER_CASES",
    "MEMBER_CASES",
    "POOL_CASES",
    "LbCase",
    "ListenerCase",
    "ListenerView",
    "LoadBalancerView",
    "MemberCase",
    "MemberHealth",
    "MemberView",
    "PoolCase",
    "PoolView",
    "StatusTree",
    "hm_status",
    "lb_status",
    "listener_status",
    "member_status",
    "pool_status",
    "roll_up",
    "severity",
]


class MemberHealth(StrEnum):
    """Raw health sample of one member, as a provider observes it (HAProxy vocabulary)."""

    UP = "UP"
    DOWN = "DOWN"
    DRAIN = "DRAIN"
    MAINT = "MAINT"
    NO_CHECK = "NO_CHECK"


_S = OperatingStatus

_HEALTH_TO_STATUS: Mapping[MemberHealth, OperatingStatus] = MappingProxyType(
    {
        MemberHealth.UP: _S.ONLINE,
        MemberHealth.DOWN: _S.ERROR,
        MemberHealth.DRAIN: _S.DRAINING,
        MemberHealth.MAINT: _S.OFFLINE,
        MemberHealth.NO_CHECK: _S.NO_MONITOR,
    }
)

# OFFLINE ranks with the healthy states because a disabled child can never make its parent worse;
# parents also filter it out explicitly, so "all children ERROR" ignores disabled ones.
_SEVERITY: Mapping[OperatingStatus, int] = MappingProxyType(
    {
        _S.ONLINE: 0,
        _S.NO_MONITOR: 0,
        _S.DRAINING: 0,
        _S.OFFLINE: 0,
        _S.DEGRADED: 1,
        _S.ERROR: 2,
    }
)

# States in which a member still takes new connections; DRAINING only finishes existing ones.
# DEGRADED never comes out of member_status but is accepted for callers passing arbitrary statuses.
_ACCEPTING: frozenset[OperatingStatus] = frozenset({_S.ONLINE, _S.NO_MONITOR, _S.DEGRADED})


@dataclass(frozen=True, slots=True)
class MemberView:
    """What the roll-up needs to know about one member."""

    id: str
    admin_state_up: bool
    health: str | None


@dataclass(frozen=True, slots=True)
class PoolView:
    """What the roll-up needs to know about one pool.

    ``has_monitor`` must be True only when the pool has a health monitor that is admin-up: an
    admin-down monitor checks nothing, so its members read NO_MONITOR.
    """

    id: str
    admin_state_up: bool
    has_monitor: bool
    members: tuple[MemberView, ...] = ()


@dataclass(frozen=True, slots=True)
class ListenerView:
    """What the roll-up needs to know about one listener.

    ``pool_ids`` lists its default pool and the pools of its REDIRECT_TO_POOL L7 policies; each id
    must be the id of a pool in ``LoadBalancerView.pools``.
    """

    id: str
    admin_state_up: bool
    pool_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LoadBalancerView:
    """A consistent snapshot of one load balancer and everything under it."""

    id: str
    admin_state_up: bool
    provisioning_status: str
    listeners: tuple[ListenerView, ...] = ()
    pools: tuple[PoolView, ...] = ()


# eq=False keeps Mapping's equality, so a tree compares equal to a plain dict of the same statuses.
@dataclass(frozen=True, eq=False)
class StatusTree(Mapping[str, OperatingStatus]):
    """Operating status of every object of a load balancer, by level and as one id -> status map."""

    lb_id: str
    lb: OperatingStatus
    listeners: Mapping[str, OperatingStatus]
    pools: Mapping[str, OperatingStatus]
    members: Mapping[str, OperatingStatus]

    def __getitem__(self, object_id: str) -> OperatingStatus:
        """Return the status of the object with this id, whatever its level."""
        if object_id == self.lb_id:
            return self.lb
        for level in (self.listeners, self.pools, self.members):
            if object_id in level:
                return level[object_id]
        raise KeyError(object_id)

    def __iter__(self) -> Iterator[str]:
        """Iterate over every id, load balancer first, then listeners, pools and members."""
        yield self.lb_id
        yield from self.listeners
        yield from self.pools
        yield from self.members

    def __len__(self) -> int:
        """Return the number of objects in the tree."""
        return 1 + len(self.listeners) + len(self.pools) + len(self.members)


def severity(status: OperatingStatus | str) -> int:
    """Return the rank of a status in the parent order (higher is worse); OFFLINE ranks lowest."""
    return _SEVERITY[OperatingStatus(status)]


def _parse_health(health: str | None) -> MemberHealth | None:
    # Tolerate casing and HAProxy's own spelling ("no check"): a near-miss must not silently fall
    # back to the optimistic None branch.
    if health is None:
        return None
    key = health.strip().upper().replace(" ", "_").replace("-", "_")
    try:
        return MemberHealth(key)
    except ValueError:
        return None


def _enabled(children: Iterable[OperatingStatus | str]) -> tuple[OperatingStatus, ...]:
    return tuple(s for s in map(OperatingStatus, children) if s is not _S.OFFLINE)


def _parent_status(enabled: tuple[OperatingStatus, ...]) -> OperatingStatus:
    if not enabled:
        return _S.ONLINE
    ranks = [severity(s) for s in enabled]
    if min(ranks) == severity(_S.ERROR):
        return _S.ERROR
    if max(ranks) >= severity(_S.DEGRADED):
        return _S.DEGRADED
    return _S.ONLINE


def member_status(admin_state_up: bool, has_monitor: bool, health: str | None) -> OperatingStatus:
    """Return a member's operating status from its admin state, its pool's monitor and its raw health."""
    if not admin_state_up:
        return _S.OFFLINE
    if not has_monitor:
        return _S.NO_MONITOR
    parsed = _parse_health(health)
    if parsed is None:
        return _S.ONLINE
    return _HEALTH_TO_STATUS[parsed]


def pool_status(
    admin_state_up: bool, has_monitor: bool, member_statuses: Iterable[OperatingStatus | str]
) -> OperatingStatus:
    """Return a pool's operating status from its admin state, its monitor and its members' statuses."""
    if not admin_state_up:
        return _S.OFFLINE
    enabled = _enabled(member_statuses)
    # Only a monitor can tell that nothing answers; without one an empty pool is merely unchecked.
    if has_monitor and not any(s in _ACCEPTING for s in enabled):
        return _S.ERROR
    return _parent_status(enabled)


def listener_status(admin_state_up: bool, pool_statuses: Iterable[OperatingStatus | str]) -> OperatingStatus:
    """Return a listener's operating status from its admin state and the statuses of the pools it uses."""
    if not admin_state_up:
        return _S.OFFLINE
    return _parent_status(_enabled(pool_statuses))


def lb_status(
    admin_state_up: bool, provisioning_status: str, listener_statuses: Iterable[OperatingStatus | str]
) -> OperatingStatus:
    """Return a load balancer's operating status from its admin state, provisioning and listeners."""
    if not admin_state_up:
        return _S.OFFLINE
    if provisioning_status == ProvisioningStatus.ERROR:
        return _S.ERROR
    return _parent_status(_enabled(listener_statuses))


def hm_status(admin_state_up: bool) -> OperatingStatus:
    """Return a health monitor's operating status, which only reflects its admin state."""
    return _S.ONLINE if admin_state_up else _S.OFFLINE


def _check_unique_ids(lb: LoadBalancerView) -> None:
    # The flat id -> status view is only meaningful if ids never collide across levels.
    seen: set[str] = {lb.id}
    ids = [listener.id for listener in lb.listeners]
    ids += [pool.id for pool in lb.pools]
    ids += [member.id for pool in lb.pools for member in pool.members]
    for object_id in ids:
        if object_id in seen:
            raise ValueError(f"duplicate object id {object_id!r} in load balancer {lb.id!r}")
        seen.add(object_id)


def roll_up(lb: LoadBalancerView) -> StatusTree:
    """Compute the operating status of a load balancer and of every listener, pool and member under it."""
    _check_unique_ids(lb)
    members: dict[str, OperatingStatus] = {}
    pools: dict[str, OperatingStatus] = {}
    # Pools first and once each: a pool shared by several listeners feeds all of them the same value.
    for pool in lb.pools:
        statuses = []
        for member in pool.members:
            status = member_status(member.admin_state_up, pool.has_monitor, member.health)
            members[member.id] = status
            statuses.append(status)
        pools[pool.id] = pool_status(pool.admin_state_up, pool.has_monitor, statuses)
    listeners: dict[str, OperatingStatus] = {}
    for listener in lb.listeners:
        unknown = [pool_id for pool_id in listener.pool_ids if pool_id not in pools]
        if unknown:
            # A dangling reference means the snapshot is inconsistent; guessing would hide the bug.
            raise ValueError(
                f"listener {listener.id!r} uses pools {unknown!r} not in load balancer {lb.id!r}"
            )
        listeners[listener.id] = listener_status(
            listener.admin_state_up, [pools[pool_id] for pool_id in listener.pool_ids]
        )
    return StatusTree(
        lb_id=lb.id,
        lb=lb_status(lb.admin_state_up, lb.provisioning_status, listeners.values()),
        listeners=MappingProxyType(listeners),
        pools=MappingProxyType(pools),
        members=MappingProxyType(members),
    )


# --- Edge-case tables: documentation and unit tests at once (tests/unit/test_status.py runs them). ---


class MemberCase(NamedTuple):
    """One row of the member table: ``member_status(admin_state_up, has_monitor, health) == expected``."""

    admin_state_up: bool
    has_monitor: bool
    health: str | None
    expected: OperatingStatus
    why: str


class PoolCase(NamedTuple):
    """One row of the pool table: ``pool_status(admin_state_up, has_monitor, members) == expected``."""

    admin_state_up: bool
    has_monitor: bool
    members: tuple[OperatingStatus, ...]
    expected: OperatingStatus
    why: str


class ListenerCase(NamedTuple):
    """One row of the listener table: ``listener_status(admin_state_up, pools) == expected``."""

    admin_state_up: bool
    pools: tuple[OperatingStatus, ...]
    expected: OperatingStatus
    why: str


class LbCase(NamedTuple):
    """One row of the load-balancer table: ``lb_status(admin, provisioning, listeners) == expected``."""

    admin_state_up: bool
    provisioning_status: str
    listeners: tuple[OperatingStatus, ...]
    expected: OperatingStatus
    why: str


_H = MemberHealth
_P = ProvisioningStatus

# admin_state_up, has_monitor, raw health -> expected, why
MEMBER_CASES: tuple[MemberCase, ...] = (
    MemberCase(False, True, _H.UP, _S.OFFLINE, "admin-down wins over a healthy sample"),
    MemberCase(
        False, True, _H.DOWN, _S.OFFLINE, "admin-down wins over a failing sample: operator took it out"
    ),
    MemberCase(False, False, None, _S.OFFLINE, "admin-down wins over having no monitor"),
    MemberCase(True, False, _H.DOWN, _S.NO_MONITOR, "no active monitor: a raw sample proves nothing"),
    MemberCase(True, False, _H.UP, _S.NO_MONITOR, "no active monitor, even if the sample looks healthy"),
    MemberCase(True, False, None, _S.NO_MONITOR, "no active monitor and nothing reported"),
    MemberCase(True, True, _H.UP, _S.ONLINE, "monitor says up"),
    MemberCase(True, True, _H.DOWN, _S.ERROR, "monitor says down"),
    MemberCase(True, True, _H.DRAIN, _S.DRAINING, "draining: finishes existing connections only"),
    MemberCase(True, True, _H.MAINT, _S.OFFLINE, "maintenance takes it out like admin-down"),
    MemberCase(True, True, _H.NO_CHECK, _S.NO_MONITOR, "the backend runs no check for this member"),
    MemberCase(True, True, None, _S.ONLINE, "not reported yet: assume healthy, as the noop provider does"),
    MemberCase(True, True, "BOGUS", _S.ONLINE, "unrecognised sample is treated as not reported"),
    MemberCase(True, True, "down", _S.ERROR, "samples are matched case-insensitively"),
    MemberCase(True, True, "no check", _S.NO_MONITOR, "HAProxy's own spelling of NO_CHECK is accepted"),
)

# admin_state_up, has_monitor, member statuses -> expected, why
POOL_CASES: tuple[PoolCase, ...] = (
    PoolCase(False, True, (_S.ERROR,), _S.OFFLINE, "admin-down wins over failing members"),
    PoolCase(False, False, (), _S.OFFLINE, "admin-down wins over an empty pool"),
    PoolCase(True, False, (), _S.ONLINE, "no members and no monitor: nothing known to be wrong"),
    PoolCase(True, True, (), _S.ERROR, "monitored pool with no member: no member up"),
    PoolCase(
        True, True, (_S.OFFLINE, _S.OFFLINE), _S.ERROR, "disabled/MAINT members are left out: same as empty"
    ),
    PoolCase(True, False, (_S.OFFLINE,), _S.ONLINE, "unmonitored pool whose only member is disabled"),
    PoolCase(True, False, (_S.NO_MONITOR, _S.NO_MONITOR), _S.ONLINE, "unmonitored members count as up"),
    PoolCase(True, True, (_S.ONLINE, _S.ONLINE), _S.ONLINE, "all members up"),
    PoolCase(True, True, (_S.ERROR, _S.ERROR), _S.ERROR, "every enabled member down"),
    PoolCase(True, True, (_S.ONLINE, _S.ERROR), _S.DEGRADED, "some enabled members down, some up"),
    PoolCase(True, True, (_S.ONLINE, _S.ERROR, _S.OFFLINE), _S.DEGRADED, "disabled member does not count"),
    PoolCase(True, True, (_S.ERROR, _S.OFFLINE), _S.ERROR, "a disabled member does not rescue the pool"),
    PoolCase(True, True, (_S.DRAINING, _S.DRAINING), _S.ERROR, "no member takes new connections"),
    PoolCase(True, True, (_S.DRAINING, _S.ERROR), _S.ERROR, "no member takes new connections (not DEGRADED)"),
    PoolCase(True, True, (_S.DRAINING, _S.ONLINE), _S.ONLINE, "draining is routine and ranks like ONLINE"),
    PoolCase(True, True, (_S.NO_MONITOR,), _S.ONLINE, "a NO_CHECK member is assumed up by the backend"),
    PoolCase(True, True, (_S.NO_MONITOR, _S.ERROR), _S.DEGRADED, "one member serves, one is down"),
    PoolCase(True, True, (_S.DEGRADED, _S.ONLINE), _S.DEGRADED, "never healthier than the worst child"),
    PoolCase(
        True, False, (_S.ERROR, _S.ERROR), _S.ERROR, "explicit ERROR children still count without monitor"
    ),
    PoolCase(True, False, (_S.DRAINING,), _S.ONLINE, "'no member up' needs a monitor to be ERROR"),
)

# admin_state_up, pool statuses (default pool + REDIRECT_TO_POOL pools) -> expected, why
LISTENER_CASES: tuple[ListenerCase, ...] = (
    ListenerCase(False, (_S.ERROR,), _S.OFFLINE, "admin-down wins over failing pools"),
    ListenerCase(False, (), _S.OFFLINE, "admin-down wins over having no pool"),
    ListenerCase(True, (), _S.ONLINE, "no pool (e.g. REJECT/redirect-only): nothing to be unhealthy"),
    ListenerCase(True, (_S.OFFLINE,), _S.ONLINE, "disabled pools are left out"),
    ListenerCase(True, (_S.ONLINE, _S.ONLINE), _S.ONLINE, "all pools healthy"),
    ListenerCase(True, (_S.ERROR,), _S.ERROR, "its only pool is down"),
    ListenerCase(True, (_S.ERROR, _S.ERROR), _S.ERROR, "every enabled pool down"),
    ListenerCase(True, (_S.ONLINE, _S.ERROR), _S.DEGRADED, "e.g. default pool fine, an L7 pool down"),
    ListenerCase(True, (_S.ERROR, _S.OFFLINE), _S.ERROR, "a disabled pool does not rescue the listener"),
    ListenerCase(True, (_S.DEGRADED,), _S.DEGRADED, "never healthier than the worst child"),
    ListenerCase(True, (_S.DEGRADED, _S.ONLINE), _S.DEGRADED, "one degraded pool degrades the listener"),
    ListenerCase(True, (_S.DEGRADED, _S.ERROR), _S.DEGRADED, "not every enabled pool is ERROR"),
    ListenerCase(True, (_S.ONLINE, _S.ONLINE, _S.ONLINE), _S.ONLINE, "a shared pool may appear twice"),
)

# admin_state_up, provisioning_status, listener statuses -> expected, why
LB_CASES: tuple[LbCase, ...] = (
    LbCase(False, _P.ERROR, (_S.ERROR,), _S.OFFLINE, "admin-down wins over everything, provisioning too"),
    LbCase(False, _P.ACTIVE, (), _S.OFFLINE, "admin-down wins over having no listener"),
    LbCase(True, _P.ERROR, (), _S.ERROR, "failed provisioning: nothing can be trusted"),
    LbCase(True, _P.ERROR, (_S.ONLINE,), _S.ERROR, "failed provisioning beats healthy listeners"),
    LbCase(True, _P.ACTIVE, (), _S.ONLINE, "no listener: nothing to be unhealthy"),
    LbCase(True, _P.PENDING_UPDATE, (_S.ONLINE,), _S.ONLINE, "pending provisioning does not affect health"),
    LbCase(True, _P.ACTIVE, (_S.OFFLINE,), _S.ONLINE, "disabled listeners are left out"),
    LbCase(True, _P.ACTIVE, (_S.ERROR, _S.ERROR), _S.ERROR, "every enabled listener down"),
    LbCase(True, _P.ACTIVE, (_S.ERROR, _S.ONLINE), _S.DEGRADED, "some listeners still serve"),
    LbCase(True, _P.ACTIVE, (_S.ERROR, _S.OFFLINE), _S.ERROR, "a disabled listener does not rescue the LB"),
    LbCase(True, _P.ACTIVE, (_S.DEGRADED, _S.ONLINE), _S.DEGRADED, "never healthier than the worst child"),
    LbCase(True, _P.ACTIVE, (_S.DEGRADED, _S.ERROR), _S.DEGRADED, "not every enabled listener is ERROR"),
)
