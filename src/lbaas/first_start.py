"""First start of ``lbaas serve``: an admin API key exists, and the user is told where it is.

Unless ``LBAAS_ADMIN_API_KEY`` is set, the admin token lives in ``$LBAAS_DATA_DIR/admin-api-key``
(mode 0600, data directory 0700), on SQLite and PostgreSQL alike:

* a fresh database gets the token in that file, or a new token written there;
* a database whose admin key is the file's says where the file is;
* a database with admin keys but not the file's (one set earlier with ``LBAAS_ADMIN_API_KEY``,
  or a file of another deployment) is left alone, and the note says so.

Safe when several processes start together: the file is published atomically (the first writer
wins and the others adopt its token) and a token registered twice loses on the unique digest.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from lbaas import files
from lbaas.config import Settings
from lbaas.db.engine import Database
from lbaas.services import auth

ADMIN_KEY_FILE = "admin-api-key"


class _LostRace(Exception):
    """Another process published the key file first: start over and adopt its token."""


def admin_key_path(settings: Settings) -> Path:
    return Path(settings.data_dir).resolve() / ADMIN_KEY_FILE


def ensure_admin_key(db: Database, settings: Settings) -> str | None:
    """Make sure an admin key works; return one line for the user (None when the env var set it)."""
    if settings.admin_api_key:
        return None  # create_app registered it
    path = admin_key_path(settings)
    files.ensure_private_dir(path.parent)
    for _ in range(5):
        try:
            with db.write() as conn:
                return _ensure(conn, path)
        except (_LostRace, sa.exc.IntegrityError):
            continue
    raise RuntimeError(f"could not settle the admin API key in {path}")


def _read(path: Path) -> str | None:
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        return None
    files.tighten_file(path)
    return token or None


def _ensure(conn: sa.Connection, path: Path) -> str:
    stored = set(auth.admin_keys(conn))
    token = _read(path)
    if token is not None and auth.digest(token) in stored:
        return f"admin API key in {path}"
    if stored:
        why = "holds another key" if token is not None else "does not exist"
        return f"admin API key: the one set earlier with LBAAS_ADMIN_API_KEY ({path} {why})"
    if token is not None:  # a fresh database next to a key file: that token becomes the admin key
        auth.add_admin(conn, token)
        return f"admin API key in {path}"
    token = auth.add_admin(conn)
    if not files.create_private_file(path, (token + "\n").encode()):
        raise _LostRace
    return f"generated an admin API key into {path}"
