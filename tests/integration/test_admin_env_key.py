"""LBAAS_ADMIN_API_KEY across restarts (auth.ensure_admin, run by every start): a token set
again after another replaced it works again (it used to stop lbaas from starting: UNIQUE
constraint on the digest); a project's token or another revoked key is refused in one line."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from lbaas.db import migrate, tables
from lbaas.db.engine import Database
from lbaas.errors import NotAuthenticated
from lbaas.services import auth

A, B = "admin-token-a-0123456789", "admin-token-b-0123456789"


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'keys.db'}")
    migrate.upgrade(database, region_name="r", project_name="p")
    yield database
    database.dispose()


def _set(db: Database, token: str) -> None:
    with db.write() as conn:
        auth.ensure_admin(conn, token)


def _works(db: Database, token: str) -> bool:
    with db.read() as conn:
        try:
            auth.authenticate(conn, token)
        except NotAuthenticated:
            return False
        return True


def test_a_token_set_again_after_another_works_again(db) -> None:
    _set(db, A)
    _set(db, B)  # a restart with another token: A is revoked
    assert _works(db, B) and not _works(db, A)
    _set(db, A)  # ... and back
    assert _works(db, A) and not _works(db, B)
    _set(db, A)  # the same again: nothing changes
    with db.read() as conn:
        K = tables.api_keys
        rows = conn.execute(sa.select(K.c.name, K.c.revoked_at).where(K.c.project_id.is_(None))).all()
    assert len(rows) == 2 and sum(r.revoked_at is None for r in rows) == 1


def test_a_project_token_or_a_revoked_generated_key_is_refused(db) -> None:
    with db.write() as conn:
        project_id = conn.execute(sa.select(tables.projects.c.id)).scalars().first()
        _key_id, project_token = auth.create(conn, project_id, "p-key")
        generated = auth.add_admin(conn)
        gen_id = conn.execute(
            sa.select(tables.api_keys.c.id).where(tables.api_keys.c.digest == auth.digest(generated))
        ).scalar_one()
        conn.execute(
            tables.api_keys.update().where(tables.api_keys.c.id == gen_id).values(revoked_at=sa.func.now())
        )
    with pytest.raises(ValueError, match=f"key of project {project_id}"):
        _set(db, project_token)
    with pytest.raises(ValueError, match="revoked; choose another token"):
        _set(db, generated)
    assert not _works(db, generated)
