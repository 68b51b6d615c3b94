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


# -- a write alone runs on the event loop (Database.write_async, _GroupCommit.run_here) --------------


@pytest.fixture
def database(tmp_path):
    from lbaas.db.engine import Database

    db = Database(f"sqlite:///{tmp_path / 'w.db'}")
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (k TEXT PRIMARY KEY, thread TEXT)")
    yield db
    db.dispose()


def _record(key: str, fail: bool = False):
    """A write that notes which thread ran it."""

    def fn(conn):
        conn.exec_driver_sql("INSERT INTO t VALUES (?, ?)", (key, threading.current_thread().name))
        if fail:
            raise ValueError(f"refused {key}")
        return threading.current_thread().name

    return fn


async def _warm(db, n: int = 40) -> None:
    """Writes one after the other until the writer has measured fast commits (it starts cautious)."""
    for i in range(n):
        await db.write_async(_record(f"warm-{i}"))


def _rows(db) -> dict[str, str]:
    with db.read() as conn:
        return dict(conn.exec_driver_sql("SELECT k, thread FROM t WHERE k NOT LIKE 'warm-%'").all())


def test_a_lone_write_runs_on_the_event_loop_and_is_committed(database) -> None:
    import asyncio

    async def main():
        await _warm(database)
        return await database.write_async(_record("alone"))

    assert asyncio.run(main()) == threading.current_thread().name  # not the writer thread
    assert _rows(database) == {"alone": threading.current_thread().name}  # visible: committed


def test_the_first_writes_go_to_the_writer_thread_until_commits_are_measured(database) -> None:
    import asyncio

    assert asyncio.run(database.write_async(_record("first"))) == "lbaas-group-commit"


def test_writes_with_company_share_the_writer_thread(database) -> None:
    import asyncio

    async def main():
        await _warm(database)
        return await asyncio.gather(*(database.write_async(_record(f"k{i}")) for i in range(8)))

    assert set(asyncio.run(main())) == {"lbaas-group-commit"}
    assert len(_rows(database)) == 8


def test_a_failing_write_on_the_event_loop_raises_and_leaves_nothing(database) -> None:
    import asyncio

    async def main():
        await _warm(database)
        with pytest.raises(ValueError, match="refused bad"):
            await database.write_async(_record("bad", fail=True))
        return await database.write_async(_record("good"))  # the loop's connection still works

    assert asyncio.run(main()) == threading.current_thread().name
    assert _rows(database) == {"good": threading.current_thread().name}


def test_a_lone_write_never_waits_on_the_event_loop_for_another_writer(database, tmp_path) -> None:
    """Another connection holds SQLite's write lock for 0.3 s: the write goes to the writer thread
    (which waits for the lock) and the event loop keeps running meanwhile."""
    import asyncio
    import sqlite3
    import time

    other = sqlite3.connect(tmp_path / "w.db", isolation_level=None, check_same_thread=False)

    async def main():
        await _warm(database)
        other.execute("BEGIN IMMEDIATE")
        threading.Timer(0.3, lambda: other.execute("COMMIT")).start()
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        started = time.monotonic()
        name = await database.write_async(_record("after-lock"))
        waited = time.monotonic() - started
        ticker.cancel()
        return name, waited, ticks

    name, waited, ticks = asyncio.run(main())
    other.close()
    assert name == "lbaas-group-commit"
    assert waited >= 0.2  # it did wait for the lock, in the writer thread
    assert ticks >= 10  # ... while the loop went on (a blocked loop would tick once)
    assert "after-lock" in _rows(database)


def test_slow_commits_keep_writes_off_the_event_loop(database) -> None:
    import asyncio

    from lbaas.db import engine

    async def main():
        await _warm(database)
        database._group.seconds = engine._INLINE_MAX_S * 10  # as after commits on a slow disk
        return await database.write_async(_record("slow"))

    assert asyncio.run(main()) == "lbaas-group-commit"
