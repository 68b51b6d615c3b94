"""When a failed task runs again: a decision expressed as a value.

Only a data-plane error that says it is transient
(:class:`lbaas.errors.TransientProviderError`: a reload that did not take, a
busy runtime socket) is retried, with exponential back-off, a bounded number of
times. Everything else (a config HAProxy refuses, a bug) fails the task at once:
retrying cannot help and would only hold the load balancer's queue.
"""

from __future__ import annotations

from dataclasses import dataclass

from lbaas.errors import ProviderError


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
        if not (isinstance(exc, ProviderError) and exc.retriable) or attempts >= self.max_attempts:
            return None
        return min(self.max_delay, self.base_delay * 2 ** (attempts - 1))
