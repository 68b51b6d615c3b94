"""Where one load balancer's HAProxy keeps its files and sockets.

Two roots, both created 0700:

- ``<LBAAS_DATA_DIR>/haproxy/<lb_id>/``: the configuration bundle (``haproxy.cfg``,
  certificates, crt-lists, scripts: 0600, scripts 0700), the ``server-state`` file, the
  master's pid file, its log (the master's stderr: start and reload errors) and two
  sidecars of ours (``bundle.json``: which files the installed bundle owns;
  ``running.json``: the hash of the configuration the master last loaded).
- ``LBAAS_RUN_DIR`` (default ``/run/lbaas`` for root, else ``/tmp/lbaas-<uid>``): the UNIX
  sockets, ``<lb_id>.sock`` (stats socket, level admin) and ``<lb_id>.master.sock`` (master
  CLI), both mode 0600, ``logs.sock``, where every HAProxy sends its flow log (bound by
  lbaas's access-log receiver, :mod:`lbaas.accesslogs`), and ``events.sock``, where it sends
  its health messages (bound by the poller's process, :mod:`.events`). HAProxy refuses a socket path over
  97 characters ("too long (max 97)"), which a deep data directory plus a UUID can exceed,
  hence the separate short root.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: HAProxy 2.6's limit for a UNIX socket path (it binds ``<path>.<pid>.tmp`` first).
SOCKET_PATH_MAX = 97
CONFIG_FILE = "haproxy.cfg"
SERVER_STATE_FILE = "server-state"
PID_FILE = "haproxy.pid"
LOG_FILE = "haproxy.log"
RUNNING_FILE = "running.json"
MANIFEST_FILE = "bundle.json"
#: The access-log receiver's UNIX stream socket, in the run directory (docs/logging.md).
LOG_SOCKET = "logs.sock"
#: Where every HAProxy sends its health messages (UNIX datagram socket, :mod:`.events`).
EVENTS_SOCKET = "events.sock"
#: Names of the LB directory a bundle may not use: they belong to the process layer.
RESERVED_FILES = frozenset({SERVER_STATE_FILE, PID_FILE, LOG_FILE, RUNNING_FILE, MANIFEST_FILE})
#: A load balancer id becomes a file name: letters, digits, ``-``, ``_``, ``.`` (not leading).
_LB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: The longest id the layout must fit (a UUID).
_ID_LEN = 36


def run_root() -> Path:
    """``/run/lbaas`` when ``/run`` is writable (root), else ``/tmp/lbaas-<uid>``."""
    if os.access("/run", os.W_OK):
        return Path("/run/lbaas")
    return Path(f"/tmp/lbaas-{os.getuid()}")


def default_run_dir(data_dir: Path | str | None = None) -> Path:
    """The run directory of the deployment whose data lives in ``data_dir``: a short directory of
    its own under :func:`run_root`, named by a hash of the data directory's absolute path, so two
    deployments on one host never share a socket (``/run/lbaas/3f2a9c1e/...``)."""
    if data_dir is None:
        return run_root()
    tag = hashlib.sha256(os.path.abspath(data_dir).encode()).hexdigest()[:8]
    return run_root() / tag


def _ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) and make it 0700; refuse one owned by someone else."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = path.stat()
    if st.st_uid != os.getuid():
        raise PermissionError(f"{path} belongs to uid {st.st_uid}, not to us ({os.getuid()})")
    if st.st_mode & 0o777 != 0o700:
        path.chmod(0o700)


@dataclass(frozen=True)
class LbPaths:
    """Every path of one load balancer; build it with :meth:`Layout.lb`."""

    lb_id: str
    dir: Path
    run_dir: Path

    @property
    def config(self) -> Path:
        return self.dir / CONFIG_FILE

    @property
    def state_file(self) -> Path:
        """``server-state-file``: ``show servers state`` saved before each reload."""
        return self.dir / SERVER_STATE_FILE

    @property
    def pid_file(self) -> Path:
        return self.dir / PID_FILE

    @property
    def log_file(self) -> Path:
        """The master's stdout and stderr: HAProxy's start and reload messages."""
        return self.dir / LOG_FILE

    @property
    def running_file(self) -> Path:
        return self.dir / RUNNING_FILE

    @property
    def manifest_file(self) -> Path:
        return self.dir / MANIFEST_FILE

    @property
    def stats_socket(self) -> Path:
        """The worker's stats socket; the configuration must bind it ``mode 600 level admin``."""
        return self.run_dir / f"{self.lb_id}.sock"

    @property
    def master_socket(self) -> Path:
        return self.run_dir / f"{self.lb_id}.master.sock"

    def prepare(self) -> None:
        """Create the LB directory and the run directory, both 0700."""
        _ensure_private_dir(self.dir)
        _ensure_private_dir(self.run_dir)


@dataclass(frozen=True)
class Layout:
    """The two roots of every LB's files (absolute paths); see the module docstring."""

    data_dir: Path
    run_dir: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(os.path.abspath(self.data_dir)))
        object.__setattr__(self, "run_dir", Path(os.path.abspath(self.run_dir)))
        longest = self.run_dir / ("x" * _ID_LEN + ".master.sock")
        if len(str(longest)) > SOCKET_PATH_MAX:
            raise ValueError(
                f"run directory {self.run_dir} is too long: a socket path such as {longest} "
                f"would exceed HAProxy's {SOCKET_PATH_MAX} characters; set LBAAS_RUN_DIR to a short path"
            )

    @classmethod
    def from_settings(cls, settings: Any) -> Layout:
        """``<settings.data_dir>/haproxy`` and ``settings.run_dir`` (or the default run directory)."""
        run_dir = getattr(settings, "run_dir", None) or default_run_dir(settings.data_dir)
        return cls(Path(settings.data_dir) / "haproxy", Path(run_dir))

    @property
    def log_socket(self) -> Path:
        """Where every LB's HAProxy sends its flow log (the access-log receiver binds it)."""
        return self.run_dir / LOG_SOCKET

    @property
    def events_socket(self) -> Path:
        """The UNIX datagram socket HAProxy's health messages go to (see :mod:`.events`)."""
        return self.run_dir / EVENTS_SOCKET

    def lb(self, lb_id: str) -> LbPaths:
        """The paths of one LB; ``ValueError`` for an id that cannot be a file name."""
        if not _LB_ID.fullmatch(lb_id) or ".." in lb_id:
            raise ValueError(f"load balancer id {lb_id!r} cannot name a file")
        paths = LbPaths(lb_id, self.data_dir / lb_id, self.run_dir)
        for sock in (paths.stats_socket, paths.master_socket):
            if len(str(sock)) > SOCKET_PATH_MAX:
                raise ValueError(f"socket path {sock} exceeds HAProxy's {SOCKET_PATH_MAX} characters")
        return paths

    def lb_from_config(self, config: Path) -> LbPaths | None:
        """The LB whose configuration is ``config``, or None when it is not one of ours."""
        config = Path(os.path.abspath(config))
        if config.name != CONFIG_FILE or config.parent.parent != self.data_dir:
            return None
        try:
            return self.lb(config.parent.name)
        except ValueError:
            return None

    def lb_ids(self) -> list[str]:
        """Ids of the LBs that have a directory under the data root."""
        if not self.data_dir.is_dir():
            return []
        return sorted(p.name for p in self.data_dir.iterdir() if p.is_dir() and _LB_ID.fullmatch(p.name))
