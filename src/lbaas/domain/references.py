"""Delete and reference rules of the object graph, as one table.

``RULES`` is the documentation (``docs/api-compat.md`` quotes it, and a test keeps the two
equal); each row names its source. The check functions below are the only places these
refusals are raised, and each has a unit test in tests/unit/test_references.py. Cascades are
carried out by the services (rows marked PENDING_DELETE under the same task); a refusal is
always a 400 that changes nothing.

A pool may be deleted while it is a listener's default pool: Octavia refuses only a pool
that an L7 policy redirects to (``PoolInUseByL7Policy``), Gcore's Terraform provider destroys
a pool before the listener it names, and Gcore's listener PATCH has no ``default_pool_id``, so
refusing would leave such a pool impossible to remove without its load balancer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from lbaas.errors import ValidationFailed


class Rule(NamedTuple):
    operation: str
    condition: str
    outcome: str
    source: str


_OCTAVIA = "Octavia"
RULES: tuple[Rule, ...] = (
    Rule(
        "delete load balancer",
        "always",
        "whole tree removed; floating IPs detached and kept; runs after every task already queued on the LB",
        "Gcore: DELETE removes the LB with its listeners and pools; Octavia cascade delete",
    ),
    Rule(
        "delete load balancer",
        "already being deleted",
        "409 ConflictError, x-should-retry: false",
        "lbaas: a second delete of the same LB has nothing left to do (Octavia: 409 ImmutableObject)",
    ),
    Rule(
        "delete listener",
        "always",
        "its L7 policies and rules go with it; its default pool is detached and kept",
        "Octavia (policies belong to the listener; the pool belongs to the LB)",
    ),
    Rule(
        "delete listener, delete_default_pool=true",
        "the default pool is a REDIRECT_TO_POOL target of another listener's policy",
        "400",
        "Octavia: PoolInUseByL7Policy",
    ),
    Rule(
        "delete listener, delete_default_pool=true",
        "otherwise",
        "the default pool, its members and health monitor go too",
        'Gcore: delete_default_pool "Delete default pool attached directly to the listener"',
    ),
    Rule(
        "delete pool",
        "it is the target of a REDIRECT_TO_POOL policy not being deleted",
        "400",
        "Octavia: PoolInUseByL7Policy",
    ),
    Rule(
        "delete pool",
        "otherwise (also when it is a listener's default pool)",
        "its members and health monitor go with it; its listener is left without a default pool",
        "Octavia pool DELETE; Gcore's Terraform provider deletes pools before their listener",
    ),
    Rule("delete L7 policy", "always", "its rules go with it", _OCTAVIA),
    Rule(
        "delete secret",
        "a listener or pool uses it",
        "400",
        "Gcore: refused (400 ValidationError) while a listener uses it (spec/API.md §12.3)",
    ),
    Rule(
        "create pool for a listener",
        "the listener already has a default pool",
        "400",
        "Octavia: DuplicatePoolEntry",
    ),
    Rule(
        "REDIRECT_TO_POOL / default_pool_id",
        "the pool belongs to another load balancer",
        "400",
        "Octavia: the pool is looked up on the listener's load balancer",
    ),
    Rule(
        "default_pool_id",
        "the pool is already another listener's default pool",
        "400",
        "lbaas limit: a pool has one listener (Gcore docs and Octavia allow sharing one)",
    ),
    Rule(
        "any reference by id",
        "the object belongs to another project (or does not exist)",
        "404",
        "Gcore: NotFoundError for another project's resource",
    ),
)


def check_pool_deletable(pool_id: str, redirected_by: Sequence[str]) -> None:
    """A pool that an L7 policy still redirects to stays (Octavia: PoolInUseByL7Policy).

    Being a listener's default pool does not keep a pool: the listener is left without one.
    """
    if redirected_by:
        raise ValidationFailed.field(
            "pool_id", f"Pool {pool_id} is the redirect target of L7 policy {', '.join(redirected_by)}"
        )


def check_default_pool_deletable(pool_id: str, redirected_by_others: Sequence[str]) -> None:
    """``delete_default_pool`` may not take a pool another listener's policy routes to (Octavia)."""
    if redirected_by_others:
        raise ValidationFailed.field(
            "delete_default_pool",
            f"Pool {pool_id} is the REDIRECT_TO_POOL target of L7 policy {', '.join(redirected_by_others)}",
        )


def check_no_default_pool(listener_id: str, existing_pool_id: str | None, field: str = "listener_id") -> None:
    """A listener has at most one default pool (Octavia: DuplicatePoolEntry)."""
    if existing_pool_id is not None:
        raise ValidationFailed.field(
            field, f"Listener {listener_id} already has a default pool ({existing_pool_id})"
        )


def check_same_load_balancer(pool_id: str, pool_lb: str, expected_lb: str, field: str) -> None:
    """Pools are only ever routed to from their own load balancer (Octavia looks them up there)."""
    if pool_lb != expected_lb:
        raise ValidationFailed.field(field, f"Pool {pool_id} belongs to another load balancer")


def check_pool_unattached(pool_id: str, listener_id: str | None, field: str = "default_pool_id") -> None:
    """A pool serves one listener in lbaas's data model.

    Stricter than Gcore ("A single pool can be used by multiple listeners within the same
    Load Balancer") and Octavia: a known limit, not reached by Gcore's Terraform provider
    (gcore_lblistener has no default_pool_id) or the SDK examples.
    """
    if listener_id is not None:
        raise ValidationFailed.field(field, f"Pool {pool_id} is already the pool of listener {listener_id}")


def check_secret_unused(secret_id: str, used_by: Sequence[str]) -> None:
    """A certificate in use stays until its users let go of it (Gcore, spec/API.md §12.3).

    Data plane: the listener's next configuration would have no certificate to load.
    """
    if used_by:
        raise ValidationFailed.field("secret_id", f"Secret {secret_id} is in use by {', '.join(used_by)}")
