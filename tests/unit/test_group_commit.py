"""The group commit: writes queued together share one transaction; one that raises is left out
and answered with its error, the others land, and nothing of the failing one does."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from lbaas.db.engine import _GroupCommit


@pytest.fixture
def group(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'g.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (k TEXT PRIMARY KEY)")
    g = _GroupCommit(engine)
    yield g, engine
    g.close()
    engine.dispose()


def _insert(key: str, fail: bool = False):
    def fn(conn):
        conn.exec_driver_sql("INSERT INTO t VALUES (?)", (key,))
        if fail:
            raise ValueError(f"refused {key}")
        return key

    return fn


def _batch(g: _GroupCommit, fns) -> list:
    """Submit ``fns`` while the writer is held, so that they form one batch."""
    held, release = threading.Event(), threading.Event()

    def hold(_conn):
        held.set()
        release.wait(5)

    first = g.submit(hold)
    held.wait(5)
    futures = [g.submit(fn) for fn in fns]
    release.set()
    first.result(5)
    return futures


def test_a_failing_write_is_left_out_and_the_others_land(group) -> None:
    g, engine = group
    futures = _batch(g, [_insert("a"), _insert("b", fail=True), _insert("c"), _insert("d", fail=True)])
    assert futures[0].result(5) == "a" and futures[2].result(5) == "c"
    for f, key in ((futures[1], "b"), (futures[3], "d")):
        with pytest.raises(ValueError, match=f"refused {key}"):
            f.result(5)
    with engine.connect() as conn:
        assert sorted(r[0] for r in conn.exec_driver_sql("SELECT k FROM t")) == ["a", "c"]


def test_every_write_failing_answers_each_with_its_own_error(group) -> None:
    g, engine = group
    futures = _batch(g, [_insert("x", fail=True), _insert("y", fail=True)])
    for f, key in zip(futures, "xy", strict=True):
        with pytest.raises(ValueError, match=f"refused {key}"):
            f.result(5)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 0


def test_a_write_that_conflicts_with_an_earlier_one_of_its_batch(group) -> None:
    """The second insert of a key fails on the state the first made: only the first lands."""
    g, engine = group
    futures = _batch(g, [_insert("k"), _insert("k"), _insert("m")])
    assert futures[0].result(5) == "k" and futures[2].result(5) == "m"
    with pytest.raises(sa.exc.IntegrityError):
        futures[1].result(5)
    with engine.connect() as conn:
        assert sorted(r[0] for r in conn.exec_driver_sql("SELECT k FROM t")) == ["k", "m"]


def test_a_write_alone_lands_or_fails_alone(group) -> None:
    g, engine = group
    assert g.submit(_insert("solo")).result(5) == "solo"
    with pytest.raises(ValueError, match="refused lone"):
        g.submit(_insert("lone", fail=True)).result(5)
    with engine.connect() as conn:
        assert [r[0] for r in conn.exec_driver_sql("SELECT k FROM t")] == ["solo"]
