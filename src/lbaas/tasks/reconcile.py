"""Bring the data plane back to what the database says, when lbaas starts.

HAProxy processes outlive ``lbaas serve``: a restart of lbaas must not interrupt traffic.
Before the worker runs any new task, every load balancer that has an applied snapshot is
handed to the provider's ``reconcile``: masters already serving exactly it are adopted,
the others (re)started or reloaded to it, and processes serving no known LB stopped. The
applied snapshot (what last served), not the desired one: tasks still queued apply their
changes next, in order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from lbaas.db import dataplane, snapshot
from lbaas.db.engine import Database
from lbaas.providers.base import Provider

log = logging.getLogger(__name__)


def bring_up(db: Database, provider: Provider, decrypt: Callable[[str], str]) -> int:
    """Reconcile the data plane with every applied snapshot; returns how many LBs it serves."""
    began = time.monotonic()
    with db.read() as conn:
        wanted = [snapshot.with_certificates(conn, s, decrypt) for s in dataplane.all_applied(conn)]
    provider.reconcile(wanted)
    if wanted:
        log.info(
            "data plane: %d load balancer(s) reconciled in %.1f s", len(wanted), time.monotonic() - began
        )
    return len(wanted)
