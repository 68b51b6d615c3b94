"""Private files: the data directory (0700) and what holds a secret or the database (0600).

lbaas keeps its admin token, the secret-encryption key and (with SQLite) the database with its
``-wal`` and ``-shm`` files in the data directory. Each is created private, independently of the
process umask, and a directory or file left readable by an older version is tightened at start
(when this user owns it), so no other local user can read a token or the database.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def _tighten(path: Path, mode: int) -> None:
    """chmod ``path`` to ``mode`` if group/others have access and this user owns it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    # A shared directory (sticky, like /tmp) or another user's is not lbaas's to change.
    if st.st_uid != os.geteuid() or st.st_mode & stat.S_ISVTX or not st.st_mode & 0o077:
        return
    os.chmod(path, mode)
    log.warning("%s was readable by other users; its mode is now %o", path, mode)


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) with the last component 0700; tighten it if loose."""
    path = Path(path)
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=DIR_MODE)
        os.chmod(path, DIR_MODE)  # mkdir's mode is cut by the umask; make it exact
    else:
        _tighten(path, DIR_MODE)
    return path


def tighten_file(path: Path) -> None:
    """Make an existing file 0600 if group/others can read it (and this user owns it)."""
    _tighten(Path(path), FILE_MODE)


def prepare_sqlite_file(db_path: Path) -> None:
    """Create the SQLite database file 0600 before SQLite opens it, and tighten old ones.

    SQLite creates the ``-wal``, ``-shm`` and ``-journal`` files with the mode of the database
    file, so they come out private too.
    """
    db_path = Path(db_path)
    if not db_path.parent.exists():
        ensure_private_dir(db_path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    for suffix in SQLITE_SUFFIXES:
        tighten_file(db_path.with_name(db_path.name + suffix))


def create_private_file(path: Path, data: bytes) -> bool:
    """Publish ``data`` at ``path`` (0600) atomically, never replacing an existing file.

    Returns False when the file already existed (another process won the race): read it then.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # atomic and no-clobber
        except FileExistsError:
            return False
        except OSError:  # a filesystem without hard links: exclusive create of the final name
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        _fsync_dir(path.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _fsync_dir(directory: Path) -> None:
    """Make a directory entry durable (best effort)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
