"""Health events: every HAProxy tells lbaas at once when a server's check result changes.

Each LB's HAProxy logs, besides any flow log, its own health messages (``option
log-health-checks`` in every backend: "Health check for server <pool>/<member> failed,
reason: ..., status: 0/3 DOWN", "Server <pool>/<member> is UP", "backend <pool> has no server
available!") at level notice and above to one UNIX datagram socket in the run directory,
``events.sock``, in RFC 5424 format with the LB's id as the app name (``log-tag``)::

    <141>1 2026-11-30T12:21:55.455825+00:00 - 02d9e43a-... 26578 - - Server 5ab6.../482c... is UP. ...

:class:`HealthEvents` binds that socket (0600, in the 0700 run directory) and collects the ids
of the LBs that spoke; the poller then reads those LBs' ``show stat`` at once instead of
waiting for its next round. A message is only a hint to look: what is stored always comes
from ``show stat``, so a lost datagram (the socket's queue is full, lbaas restarting) costs
only the wait for the next full round (``LBAAS_STATS_INTERVAL_S``), never a wrong state.
Traffic logs (level info) never reach this socket: its logger takes notice and above.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from pathlib import Path

log = logging.getLogger(__name__)

#: The level range of the events logger: HAProxy's health messages are notice (5) or more
#: severe (alert, emerg); flow logs are info (6) and stay out.
MAX_LEVEL = "notice"
#: Datagrams longer than this are cut by HAProxy (``len``); the id is near the start.
MESSAGE_MAX = 1024
#: Ids held between two takes at most (more LBs than that speaking at once: the rest wait for
#: the next full round).
PENDING_MAX = 100_000


def lb_of(datagram: bytes) -> str | None:
    """The LB id (RFC 5424 APP-NAME, HAProxy's ``log-tag``) of one message, or None."""
    parts = datagram.split(b" ", 4)
    if len(parts) < 5 or not parts[0].startswith(b"<") or not parts[0].endswith(b">1"):
        return None
    tag = parts[3]
    if not tag or tag == b"-" or len(tag) > 64:
        return None
    try:
        return tag.decode("ascii")
    except UnicodeDecodeError:
        return None


class HealthEvents:
    """The receiver of ``events.sock``: a daemon thread that notes which LBs sent a message."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._arrived = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.received = 0  # messages, for tests and ``dataplane status``

    def start(self) -> None:
        """Bind the socket (replacing a stale file of an earlier run) and start listening."""
        if self._sock is not None:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._sock = sock
        self._thread = threading.Thread(target=self._loop, name="lbaas-health-events", daemon=True)
        self._thread.start()

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        if self._thread is not None:
            self._thread.join(2)

    def _loop(self) -> None:
        sock = self._sock
        while sock is not None and self._sock is sock:
            try:
                data = sock.recv(MESSAGE_MAX + 64)
            except OSError:
                return  # closed
            if not data:
                continue
            lb_id = lb_of(data)
            if lb_id is None:
                continue
            with self._lock:
                self.received += 1
                if len(self._pending) < PENDING_MAX:
                    self._pending.add(lb_id)
            self._arrived.set()

    def wait(self, timeout: float) -> set[str]:
        """The LBs heard from since the last call, waiting up to ``timeout`` seconds for one."""
        if timeout > 0 and not self._pending:
            self._arrived.wait(timeout)
        with self._lock:
            self._arrived.clear()
            ids, self._pending = self._pending, set()
        return ids
