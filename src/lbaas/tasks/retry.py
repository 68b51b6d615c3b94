"""When a failed task runs again: a decision expressed as a value.

Only an error that says it is transient is retried, with exponential back-off, a
bounded number of times: a data-plane error that says so
(:class:`lbaas.errors.TransientProviderError`: a reload that did not take, a busy
runtime socket), and a database collision (a deadlock between the task's
transaction and another, a busy SQLite). Everything else (a config HAProxy
refuses, a bug) fails the task at once: retrying cannot help and would only hold
the load balancer's queue.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from lbaas.errors import ProviderError

# What a database says when two transactions collide, not when something is wrong:
# PostgreSQL's deadlock (40P01), serialization failure (40001) and lock timeout (55P03),
# SQLite's busy timeout ("database is locked").
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})


def transient(exc: BaseException) -> bool:
    """Whether trying again later can help: a data plane error that says so, or a database collision."""
    if isinstance(exc, ProviderError):
        return exc.retriable
    if isinstance(exc, sa.exc.OperationalError):
        orig = exc.orig
        if getattr(orig, "sqlstate", None) in _TRANSIENT_SQLSTATES:
            return True
        return "database is locked" in str(orig)
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """Back-off of ``base_delay * 2**(attempt-1)`` seconds, capped, for at most ``max_attempts`` runs."""

    max_attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 4.0

    def retry_in(self, exc: BaseException, attempts: int) -> float | None:
        """Seconds until the next run, or None when the task should fail now.

        ``attempts``: how many times the task has run, this run included.
        """
        if not transient(exc) or attempts >= self.max_attempts:
            return None
        return min(self.max_delay, self.base_delay * 2 ** (attempts - 1))
