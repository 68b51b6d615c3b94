"""SQLite's WAL is checkpointed by a thread of its own, not by whichever commit crosses a size."""

from __future__ import annotations

import datetime as dt
import time

from lbaas.db import migrate, tables
from lbaas.db.engine import Database


def test_the_wal_is_checkpointed_off_the_request_path(tmp_path) -> None:
    path = tmp_path / "wal.db"
    db = Database(f"sqlite:///{path}")
    try:
        migrate.upgrade(db)
        with db.write() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0  # no commit does it
        time.sleep(1)  # the migration's pages reach the file
        before = path.stat().st_size
        for i in range(300):
            with db.write() as conn:
                conn.execute(
                    tables.regions.insert().values(id=1000 + i, name="r" * 250, created_at=dt.datetime.now())
                )
        # The rows are in the WAL; the checkpointer (and nothing else: no commit checkpoints, no
        # connection has closed) copies them into the database file.
        deadline = time.monotonic() + 10
        while path.stat().st_size <= before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert path.stat().st_size > before
    finally:
        db.dispose()
