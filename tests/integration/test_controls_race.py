"""The emulator's controls cache: a change that lands while another thread's read is under way.

A thread reading the version row (a worker's idle look, a request) could read it just before an
admin's change committed; the admin's ``changed()`` then ran, and the reader stored its stale view
as checked *after* it, so the next 0.25 s of requests ignored the new control (CI: an injected
429 was not injected, PostgreSQL). A read that ``changed()`` overtook is not kept as fresh.
"""

from __future__ import annotations

import pytest

from lbaas.db.engine import Database
from lbaas.db.migrate import upgrade
from lbaas.emulator import controls as controls_mod


@pytest.fixture
def db(tmp_path):
    d = Database(f"sqlite:///{tmp_path / 'controls.sqlite'}")
    upgrade(d)
    yield d
    d.dispose()


def test_a_change_during_a_read_is_seen_by_the_next_view(db, monkeypatch) -> None:
    controls = controls_mod.Controls(db, max_age=60.0)  # stale reads would be trusted for a minute
    before = controls.view().version
    real_first = controls_mod._VERSION.first  # noqa: SLF001

    def read_then_change(conn):
        row = real_first(conn)  # the version as it was
        with db.write() as w:  # meanwhile an admin's change commits ...
            controls_mod.bump(w)
        controls.changed()  # ... and its process says so
        return row

    monkeypatch.setattr(controls_mod._VERSION, "first", read_then_change)  # noqa: SLF001
    controls._checked = float("-inf")  # noqa: SLF001
    assert controls.view().version == before  # this read began before the change
    monkeypatch.undo()
    assert controls.view().version == before + 1  # not trusted as fresh: read again


def test_an_undisturbed_read_is_trusted_for_max_age(db) -> None:
    controls = controls_mod.Controls(db, max_age=60.0)
    seen = controls.view().version
    with db.write() as w:
        controls_mod.bump(w)  # another process's change, not announced here
    assert controls.view().version == seen  # within max_age: the cached view
    assert controls.view(max_age=0).version == seen + 1
