"""The poller folds an LB's counters only when they moved since the fold it stored.

An LB without traffic reports the same counters every poll; folding them again gives the same
totals, so the poller remembers what it folded and skips it (the fold and the comparison with
the stored totals were a tenth of a poll round for 100 idle LBs). What is stored stays right:
a change is folded, a new poller (a restart) folds again once, a deleted LB is forgotten.
"""

from __future__ import annotations

import pytest

from lbaas.db import dataplane
from lbaas.providers.base import Counters, Observation
from lbaas.providers.noop import NoopProvider
from lbaas.tasks import poller as poller_mod
from tests.integration.engine_harness import LB, held_server


@pytest.fixture
def lb(tmp_path):
    with held_server("sqlite", tmp_path, provider=NoopProvider()) as h:
        task = h.tasks("POST", LB, {"name": "counted"})[0]
        with h.db.read() as conn:
            lb_id = h.http.get(f"/cloud/v1/tasks/{task}").json()["created_resources"]["loadbalancers"][0]
            assert dataplane.applied(conn, lb_id) is not None
        yield h, lb_id


def _obs(lb_id: str, total: int, generation: str = "100") -> Observation:
    c = Counters(total_connections=total, bytes_in=10 * total, generation=generation)
    return Observation(lb_id, counters=c, listener_counters={"listener-1": c})


def _stats(h, lb_id: str) -> dict:
    with h.db.read() as conn:
        return dataplane.served(conn, [lb_id])[lb_id].stats


def test_the_same_counters_are_folded_once(lb, monkeypatch) -> None:
    h, lb_id = lb
    folds = []
    real = dataplane.fold_counters
    monkeypatch.setattr(poller_mod.dataplane, "fold_counters", lambda *a: folds.append(a) or real(*a))
    poller = poller_mod.Poller(h.db, h.provider)

    poller.store({lb_id: _obs(lb_id, 5)})
    assert len(folds) == 1 and _stats(h, lb_id)["lb"]["total_connections"] == 5
    poller.store({lb_id: _obs(lb_id, 5)})
    poller.store({lb_id: _obs(lb_id, 5)})
    assert len(folds) == 1  # nothing moved: not folded again

    poller.store({lb_id: _obs(lb_id, 8)})
    assert len(folds) == 2 and _stats(h, lb_id)["lb"]["total_connections"] == 8
    # a new worker (a reload) starts its counters at zero: folded, and the totals keep growing
    poller.store({lb_id: _obs(lb_id, 2, generation="101")})
    assert len(folds) == 3 and _stats(h, lb_id)["lb"]["total_connections"] == 10
    assert _stats(h, lb_id)["listeners"]["listener-1"]["bytes_in"] == 100

    # a restarted lbaas (a poller with no memory) folds once, and stores nothing new
    again = poller_mod.Poller(h.db, h.provider)
    again.store({lb_id: _obs(lb_id, 2, generation="101")})
    again.store({lb_id: _obs(lb_id, 2, generation="101")})
    assert len(folds) == 4 and _stats(h, lb_id)["lb"]["total_connections"] == 10


class _Quiet:
    """A provider that observes every LB it is asked about with the same counters."""

    def observe(self, lb_ids):
        return {lb_id: _obs(lb_id, 5) for lb_id in lb_ids}


def test_a_deleted_lb_is_forgotten_at_the_next_full_round(lb) -> None:
    h, lb_id = lb
    poller = poller_mod.Poller(h.db, _Quiet())
    poller.poll_once()
    assert lb_id in poller._counters_seen  # noqa: SLF001
    poller.poll_once(only=[lb_id])
    assert lb_id in poller._counters_seen  # noqa: SLF001
    h.tasks("DELETE", LB + f"/{lb_id}")
    poller.poll_once(only=[])  # a partial round forgets nothing
    assert lb_id in poller._counters_seen  # noqa: SLF001
    poller.poll_once()
    assert poller._counters_seen == {}  # noqa: SLF001


class _Probed:
    """A provider whose HAProxys all answer, with the emulator's health flips on one LB."""

    def __init__(self) -> None:
        self.flips: set[str] = set()
        self.observed: list[set[str]] = []

    def unreachable(self, lb_ids):
        return set()

    def flipped(self):
        return set(self.flips)

    def observe(self, lb_ids):
        self.observed.append(set(lb_ids))
        return {lb_id: Observation(lb_id) for lb_id in lb_ids}


def test_the_probe_reads_flipped_lbs_and_once_more_after_the_flip_is_cleared(lb) -> None:
    """With health events, an LB is read between full rounds only when its HAProxy speaks; the
    emulator's flips (--emulator-controls) come from no HAProxy, so the probe reads them."""
    h, lb_id = lb
    provider = _Probed()
    poller = poller_mod.Poller(h.db, provider)
    poller.poll_once()  # a full round: stored as running
    provider.observed.clear()
    poller.probe_once()
    assert provider.observed == []  # answering, not flipped: nothing to read
    provider.flips = {lb_id, "not-served"}
    poller.probe_once()
    poller.probe_once()
    assert provider.observed == [{lb_id}, {lb_id}]
    provider.flips = set()
    poller.probe_once()  # cleared: read once more, so the measured health comes back
    poller.probe_once()
    assert provider.observed == [{lb_id}, {lb_id}, {lb_id}]
