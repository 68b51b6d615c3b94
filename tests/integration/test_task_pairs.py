"""Every pair (running task, task queued behind it) the API can produce ends cleanly.

For each pair the first task is in flight (RUNNING, or NEW at the head of its
queue) when the second request arrives, as with a slow data plane; then both
run, the first once succeeding and once failing. Whatever the pair, every
accepted task ends FINISHED or ERROR, nothing is left PENDING_*, and an LB
whose delete was accepted is gone. A pair the API refuses at request time
(4xx) cannot happen and is recorded as such.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.integration.engine_harness import (
    LB,
    NESTED,
    OPS,
    Held,
    build_landscape,
    held_server,
    last_seq,
    queued_ids,
)

FIRST = [op.task_type for op in OPS]


@pytest.fixture(scope="module")
def held():
    # Hundreds of small commits: the database lives in memory-backed /dev/shm where
    # there is one (fsync costs there nothing), as the engine, not the disk, is under test.
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=shm) as tmp, held_server("sqlite", Path(tmp)) as h:
        yield h


def _check_ended(h: Held, ids: list[str], lb_id: str, lb_deleted: bool, what: str) -> None:
    states = h.task_states(ids)
    assert all(s in ("FINISHED", "ERROR") for s in states.values()), (what, states)
    assert h.pending_rows() == [], what
    res = h.call("GET", LB + f"/{lb_id}")
    if lb_deleted:
        assert res.status_code == 404, (what, res.text)
    else:
        assert res.status_code == 200, (what, res.text)
        assert res.json()["provisioning_status"] in ("ACTIVE", "ERROR"), what


def _run_pair(h: Held, first: str, second: str, first_fails: bool) -> str:
    """Queue ``first`` then ``second`` on a fresh landscape; drain; check. Returns what happened."""
    what = f"{first} then {second}, first {'fails' if first_fails else 'succeeds'}"
    if first == "create_loadbalancer":
        seq = last_seq(h)
        task = h.tasks("POST", LB, NESTED)[0]
        with h.db.read() as conn:
            import sqlalchemy as sa

            from lbaas.db import tables

            lb_id = conn.execute(
                sa.select(tables.tasks.c.lock_key).where(tables.tasks.c.id == task)
            ).scalar_one()
        if first_fails:
            h.fail_next("apply", lb_id)
        res = h.call("DELETE", LB + f"/{lb_id}") if second == "delete_loadbalancer" else None
        if res is not None and res.status_code != 200:
            h.drain()
            return f"{what}: refused {res.status_code}"
        h.drain()
        _check_ended(h, queued_ids(h, seq), lb_id, second == "delete_loadbalancer", what)
        return what
    land = build_landscape(h)
    op1, op2 = next(o for o in OPS if o.task_type == first), next(o for o in OPS if o.task_type == second)
    if first_fails:
        h.fail_next(op1.provider_op, land.lb)
    seq = last_seq(h)
    res1 = op1.request(h, land)
    assert res1.status_code in (200, 204), (what, res1.text)
    res2 = op2.request(h, land)
    outcome = what if res2.status_code in (200, 204) else f"{what}: second refused {res2.status_code}"
    assert res2.status_code < 500, (what, res2.text)
    h.drain()
    deleted = res2.status_code == 200 and second == "delete_loadbalancer"
    deleted = deleted or (first == "delete_loadbalancer" and not first_fails)
    _check_ended(h, queued_ids(h, seq), land.lb, deleted, what)
    return outcome


@pytest.mark.parametrize("first_fails", [False, True], ids=["first-ok", "first-fails"])
@pytest.mark.parametrize("first", ["create_loadbalancer", *FIRST])
def test_every_pair_ends_cleanly(held: Held, first: str, first_fails: bool) -> None:
    outcomes = [_run_pair(held, first, op.task_type, first_fails) for op in OPS]
    accepted = [o for o in outcomes if "refused" not in o]
    if first == "delete_loadbalancer":
        # An LB being deleted takes nothing more: 409, x-should-retry false (LIFECYCLE.md).
        assert not accepted and all(o.endswith("refused 409") for o in outcomes), outcomes
    else:
        # At least the LB delete can queue behind anything the API accepted.
        assert any(o.startswith(f"{first} then delete_loadbalancer") for o in accepted), outcomes


def test_listener_delete_then_lb_delete_with_a_slow_data_plane(tmp_path) -> None:
    """The reported input: both deletes answer 200, both tasks FINISH, the LB is gone."""
    from lbaas.providers.noop import NoopProvider

    with held_server("sqlite", tmp_path, provider=NoopProvider(delay_ms=200, inline=False)) as h:
        land = build_landscape(h)
        seq = last_seq(h)
        t1 = h.tasks("DELETE", "/cloud/v1/lblisteners/{p}/{r}" + f"/{land.listener}")
        t2 = h.tasks("DELETE", LB + f"/{land.lb}")
        h.drain()
        assert h.task_states(t1 + t2) == {t1[0]: "FINISHED", t2[0]: "FINISHED"}
        assert h.call("GET", LB + f"/{land.lb}").status_code == 404
        assert queued_ids(h, seq) == t1 + t2


@pytest.mark.pg
def test_dangerous_pairs_on_postgresql(tmp_path) -> None:
    """The same engine on PostgreSQL, for the pairs that used to wedge the queue."""
    with held_server("pg", tmp_path) as h:
        for first, second in (
            ("delete_lblistener", "delete_loadbalancer"),
            ("create_loadbalancer", "delete_loadbalancer"),
            ("delete_lbpool", "delete_loadbalancer"),
            ("apply_loadbalancer", "delete_loadbalancer"),
        ):
            for fails in (False, True):
                _run_pair(h, first, second, fails)
