"""What a data plane serves when some objects are in ERROR: the one rule, as a pure function.

A child in ERROR is one whose last change did not take (its task failed). The data plane
keeps serving what it had: such a child is rendered **from its last applied values**
(the snapshot stored when the last task of its load balancer succeeded), and **left out**
when it was never applied (a failed create). Its own children are judged one by one: an
ACTIVE member of a pool whose update failed stays served, under the pool's old values.

This keeps one failed change from failing every later task of the same load balancer (the
desired state would otherwise carry the values the data plane refused), and keeps a
failed update from taking down what served before it. Deleting or fixing the ERROR object
(any later successful change to it) brings it back to the desired values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import TypeVar

from lbaas.domain.enums import L7Action, ProvisioningStatus
from lbaas.domain.model import (
    HealthMonitor,
    L7Policy,
    L7Rule,
    Listener,
    LoadBalancerSnapshot,
    Member,
    Pool,
)

_T = TypeVar("_T", Listener, Pool, Member, HealthMonitor, L7Policy, L7Rule)
_ERROR = ProvisioningStatus.ERROR


def _last_good(obj: _T, applied: dict[str, object]) -> _T | None:
    """``obj`` itself unless it is in ERROR; then its applied version, or None."""
    if obj.provisioning_status != _ERROR:
        return obj
    old = applied.get(obj.id)
    return old if isinstance(old, type(obj)) else None


def _each(items: Iterable[_T], keep: Callable[[_T], _T | None]) -> tuple[_T, ...]:
    return tuple(x for x in (keep(i) for i in items) if x is not None)


def _index(snapshot: LoadBalancerSnapshot | None) -> dict[str, object]:
    out: dict[str, object] = {}
    if snapshot is None:
        return out
    for listener in snapshot.listeners:
        out[listener.id] = listener
        for policy in listener.l7policies:
            out[policy.id] = policy
            for rule in policy.rules:
                out[rule.id] = rule
    for pool in snapshot.pools:
        out[pool.id] = pool
        if pool.healthmonitor is not None:
            out[pool.healthmonitor.id] = pool.healthmonitor
        for member in pool.members:
            out[member.id] = member
    return out


def servable(desired: LoadBalancerSnapshot, applied: LoadBalancerSnapshot | None) -> LoadBalancerSnapshot:
    """``desired`` with every ERROR child replaced by its applied values, or left out (see module)."""
    old = _index(applied)

    def pool(p: Pool) -> Pool | None:
        base = _last_good(p, old)
        if base is None:
            return None
        hm = None if p.healthmonitor is None else _last_good(p.healthmonitor, old)
        return dataclasses.replace(
            base, members=_each(p.members, lambda m: _last_good(m, old)), healthmonitor=hm
        )

    pools = _each(desired.pools, pool)
    pool_ids = {p.id for p in pools}

    def policy(p: L7Policy) -> L7Policy | None:
        base = _last_good(p, old)
        if base is None or (
            base.action is L7Action.REDIRECT_TO_POOL and base.redirect_pool_id not in pool_ids
        ):
            return None
        return dataclasses.replace(base, rules=_each(p.rules, lambda r: _last_good(r, old)))

    def listener(li: Listener) -> Listener | None:
        base = _last_good(li, old)
        if base is None:
            return None
        default = li.default_pool_id if li.default_pool_id in pool_ids else None
        return dataclasses.replace(base, l7policies=_each(li.l7policies, policy), default_pool_id=default)

    return dataclasses.replace(
        desired,
        listeners=_each(desired.listeners, listener),
        pools=pools,
        certificates=dict(desired.certificates),
    )
