"""Delete and reference rules of the object graph, as one table.

``RULES`` is the documentation (and ``docs/api-compat.md`` quotes it); the
check functions below are the only places these refusals are raised, and
each has a unit test in tests/unit/test_references.py. Cascades are carried
out by the services (rows marked PENDING_DELETE under the same task); a
refusal is always a 400 that changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from lbaas.errors import ValidationFailed


class Rule(NamedTuple):
    operation: str
    condition: str
    outcome: str


RULES: tuple[Rule, ...] = (
    Rule(
        "delete load balancer",
        "always",
        "whole tree removed; floating IPs detached and kept; runs after every task already queued on the LB",
    ),
    Rule("delete load balancer", "already being deleted", "409 ConflictError, x-should-retry: false"),
    Rule(
        "delete listener",
        "always",
        "its L7 policies and rules go with it; its default pool is detached and kept",
    ),
    Rule(
        "delete listener, delete_default_pool=true",
        "the default pool is a REDIRECT_TO_POOL target of another listener's policy",
        "400",
    ),
    Rule(
        "delete listener, delete_default_pool=true",
        "otherwise",
        "the default pool, its members and health monitor go too",
    ),
    Rule("delete pool", "it is the default pool of a listener that is not being deleted", "400"),
    Rule("delete pool", "it is the target of a REDIRECT_TO_POOL policy not being deleted", "400"),
    Rule("delete pool", "otherwise", "its members and health monitor go with it"),
    Rule("delete L7 policy", "always", "its rules go with it"),
    Rule("delete secret", "a listener or pool uses it", "400"),
    Rule("create pool for a listener", "the listener already has a default pool", "400"),
    Rule("REDIRECT_TO_POOL / default_pool_id", "the pool belongs to another load balancer", "400"),
    Rule("any reference by id", "the object belongs to another project (or does not exist)", "404"),
)


def check_pool_deletable(pool_id: str, default_of: str | None, redirected_by: Sequence[str]) -> None:
    """A pool still routed to stays: default pool of a live listener, or a redirect target."""
    if default_of is not None:
        raise ValidationFailed.field(
            "pool_id",
            f"Pool {pool_id} is the default pool of listener {default_of}; delete the listener first",
        )
    if redirected_by:
        raise ValidationFailed.field(
            "pool_id", f"Pool {pool_id} is the redirect target of L7 policy {', '.join(redirected_by)}"
        )


def check_default_pool_deletable(pool_id: str, redirected_by_others: Sequence[str]) -> None:
    """``delete_default_pool`` may not take a pool another listener's policy routes to."""
    if redirected_by_others:
        raise ValidationFailed.field(
            "delete_default_pool",
            f"Pool {pool_id} is the REDIRECT_TO_POOL target of L7 policy {', '.join(redirected_by_others)}",
        )


def check_no_default_pool(listener_id: str, existing_pool_id: str | None, field: str = "listener_id") -> None:
    """A listener has at most one default pool."""
    if existing_pool_id is not None:
        raise ValidationFailed.field(
            field, f"Listener {listener_id} already has a default pool ({existing_pool_id})"
        )


def check_same_load_balancer(pool_id: str, pool_lb: str, expected_lb: str, field: str) -> None:
    """Pools are only ever routed to from their own load balancer."""
    if pool_lb != expected_lb:
        raise ValidationFailed.field(field, f"Pool {pool_id} belongs to another load balancer")


def check_secret_unused(secret_id: str, used_by: Sequence[str]) -> None:
    """A certificate in use stays until its users let go of it."""
    if used_by:
        raise ValidationFailed.field("secret_id", f"Secret {secret_id} is in use by {', '.join(used_by)}")
