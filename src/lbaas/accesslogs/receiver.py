"""The access-log receiver: HAProxy's flow log in, stream files out.

Every HAProxy lbaas runs for an LB whose ``logging.enabled`` is true writes its flow log
(:mod:`lbaas.providers.haproxy.render.logformat`) into a ring buffer of its own and forwards
it, one newline-terminated JSON line per message, over a UNIX stream connection to one socket,
``<run_dir>/logs.sock`` (0600 in the 0700 run directory: only lbaas's own user can connect).
The ring (1 MiB) absorbs bursts and the time lbaas is down: the lines wait in HAProxy and
arrive once the receiver is back. Each line names its LB (``lb``). Two daemon threads in the
process that runs the worker (started by :class:`lbaas.tasks.runner.Runner` before the data
plane is reconciled):

* the *receive* thread accepts HAProxy's connections (one per worker process) and moves
  whole lines into memory; nothing slow runs here;
* the *write* thread, every :data:`FLUSH_SECONDS`, takes what arrived, reads the logging
  settings of the LBs named in it from the database (one query), and appends each line to
  its LB's stream (:mod:`.store`); once a day (and at start) it prunes past retention.

"Turning logging off stops the stream at once": the settings are read *after* the lines
arrived, so a line that reached lbaas after a PATCH switching logging off committed is
dropped, even while the HAProxy that sent it still runs the old configuration (its reload,
by the internal apply task, takes a moment). Lines of an LB that is gone (deleted after its
HAProxy stopped) still go where its lines went, for :data:`GONE_GRACE_SECONDS`.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from lbaas.accesslogs.store import LogStore, Route, group_lines, route_of
from lbaas.db import tables
from lbaas.db.engine import Database
from lbaas.files import ensure_private_dir

log = logging.getLogger(__name__)

LB = tables.load_balancers
#: How often arrived lines are written out (the issue: at least every second).
FLUSH_SECONDS = 0.5
#: How long the lines of a deleted LB still reach its stream.
GONE_GRACE_SECONDS = 30.0
#: Lines held in memory at most (about 100 MB); past that, new lines are dropped and counted.
MAX_BUFFERED = 200_000
_READ_BYTES = 1 << 20
#: A line longer than this (HAProxy's ``maxlen`` is 8192) is not a flow-log line: dropped.
_LINE_MAX = 65536
_SETTINGS = sa.select(LB.c.id, LB.c.project_id, LB.c.logging).where(
    LB.c.id.in_(sa.bindparam("ids", expanding=True))
)


class AccessLogReceiver:
    """Receives flow-log lines on the UNIX stream socket ``socket_path``, writes them to ``store``.

    ``stats`` counts ``received`` and ``written`` lines, ``connections``, and the dropped lines by
    reason: ``logging_off`` (the LB's logging is off, or the LB is unknown),
    ``not_access_log`` (HAProxy's own text events), ``overflow`` (past
    :data:`MAX_BUFFERED`), ``bad_stream`` (a stored topic that cannot name a directory).
    """

    def __init__(
        self,
        db: Database,
        socket_path: Path,
        store: LogStore,
        *,
        flush_seconds: float = FLUSH_SECONDS,
        max_buffered: int = MAX_BUFFERED,
    ) -> None:
        self.db = db
        self.socket_path = Path(socket_path)
        self.store = store
        self.flush_seconds = flush_seconds
        self.max_buffered = max_buffered
        self.stats: collections.Counter[str] = collections.Counter()
        self._buffer: list[bytes] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._inode: int | None = None
        self._receive_thread: threading.Thread | None = None
        self._write_thread: threading.Thread | None = None
        self._routes: dict[str, Route] = {}  # last known route of each LB with logging on
        self._gone: dict[str, float] = {}  # LB id -> when (monotonic) it was first missing
        self._pruned_on: dt.date | None = None
        self._db_warned = 0.0

    @property
    def running(self) -> bool:
        return self._sock is not None

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> bool:
        """Bind the socket and start both threads; False (logged, never raised) when it cannot.

        The socket must exist before any HAProxy starts: one that logs to a missing socket
        loses those lines. A socket another live process already receives on is left to it.
        """
        try:
            self._sock = self._bind()
        except Exception as exc:  # noqa: BLE001 - the worker runs without access logs, said once
            log.error("access logs: cannot receive on %s: %s", self.socket_path, exc)
            return False
        if self._sock is None:
            return False
        self._stop.clear()
        self._receive_thread = threading.Thread(target=self._receive, name="lbaas-accesslog-rx", daemon=True)
        self._write_thread = threading.Thread(target=self._write_loop, name="lbaas-accesslog-wr", daemon=True)
        self._receive_thread.start()
        self._write_thread.start()
        log.info("access logs: receiving on %s, writing under %s", self.socket_path, self.store.root)
        return True

    def stop(self) -> None:
        """Stop both threads, write what arrived, remove the socket (if still ours)."""
        self._stop.set()
        for thread in (self._receive_thread, self._write_thread):
            if thread is not None:
                thread.join(5)
        if self._sock is not None:
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - stopping must not fail
                log.exception("access logs: the last write failed")
            self._sock.close()
            self._sock = None
            with contextlib.suppress(OSError):
                if os.stat(self.socket_path).st_ino == self._inode:
                    os.unlink(self.socket_path)

    def _bind(self) -> socket.socket | None:
        directory = ensure_private_dir(self.socket_path.parent)
        if directory.stat().st_uid != os.geteuid():
            raise PermissionError(f"{directory} belongs to another user")
        if os.path.lexists(self.socket_path):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(self.socket_path))
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.socket_path)  # left by a process that is gone
            else:
                log.warning(
                    "access logs: another lbaas process already receives on %s; this one does not",
                    self.socket_path,
                )
                return None
            finally:
                probe.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(self.socket_path))
            os.chmod(self.socket_path, 0o600)
            self._inode = os.stat(self.socket_path).st_ino
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        return sock

    # -- receive thread -----------------------------------------------------------------
    def _receive(self) -> None:
        listener = self._sock
        assert listener is not None
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ, None)
        partial: dict[socket.socket, bytes] = {}  # the unfinished last line of each connection
        try:
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.25):
                    if key.data is None:
                        with contextlib.suppress(BlockingIOError, InterruptedError):
                            conn, _ = listener.accept()
                            conn.setblocking(False)
                            selector.register(conn, selectors.EVENT_READ, "conn")
                            partial[conn] = b""
                            self.stats["connections"] += 1
                        continue
                    conn = key.fileobj  # type: ignore[assignment]
                    try:
                        data = conn.recv(_READ_BYTES)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if not data:  # HAProxy closed it (a worker that stopped): a cut line is lost
                        selector.unregister(conn)
                        conn.close()
                        partial.pop(conn, None)
                        continue
                    self._take(conn, partial, data)
        except Exception:  # noqa: BLE001 - logged; the write thread and HAProxy's ring go on
            log.exception("access logs: the receive thread failed")
        finally:
            for key in list(selector.get_map().values()):
                if key.data is not None:
                    key.fileobj.close()  # type: ignore[union-attr]
            selector.close()

    def _take(self, conn: socket.socket, partial: dict[socket.socket, bytes], data: bytes) -> None:
        """Keep the whole lines of ``data`` (after what ``conn`` sent before); hold the rest."""
        data = partial[conn] + data
        cut = data.rfind(b"\n")
        if cut < 0:
            partial[conn] = data if len(data) <= _LINE_MAX else b""
            return
        partial[conn] = data[cut + 1 :] if len(data) - cut - 1 <= _LINE_MAX else b""
        lines = data[:cut].split(b"\n")
        with self._lock:
            room = self.max_buffered - len(self._buffer)
            if room < len(lines):
                self.stats["overflow"] += len(lines) - max(room, 0)
                lines = lines[: max(room, 0)]
            self._buffer.extend(lines)
            self.stats["received"] += len(lines)

    # -- write thread -------------------------------------------------------------------
    def _write_loop(self) -> None:
        self._prune_daily()
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - a failed write must not end the stream
                log.exception("access logs: writing failed")
            self._prune_daily()

    def _prune_daily(self) -> None:
        today = dt.datetime.now(dt.UTC).date()
        if today == self._pruned_on:
            return
        self._pruned_on = today
        try:
            self.store.prune(today)
        except Exception:  # noqa: BLE001
            log.exception("access logs: pruning failed")

    def flush(self) -> int:
        """Write every line that arrived so far to its stream; returns how many were written."""
        with self._lock:
            batch, self._buffer = self._buffer, []
        if not batch:
            return 0
        groups, foreign = group_lines(batch)
        self.stats["not_access_log"] += foreign
        routes = self.routes({lb_id for lb_id, _ in groups})
        written = 0
        for (lb_id, day), lines in groups.items():
            route = routes.get(lb_id)
            if route is None:
                self.stats["logging_off"] += len(lines)
                continue
            try:
                stream = route.stream(lb_id)
            except ValueError as exc:
                self.stats["bad_stream"] += len(lines)
                log.warning("access logs of load balancer %s dropped: %s", lb_id, exc)
                continue
            self.store.append(stream, lb_id, route, day, b"\n".join(lines) + b"\n")
            written += len(lines)
        self.stats["written"] += written
        return written

    def routes(self, lb_ids: Iterable[str]) -> dict[str, Route | None]:
        """Where each LB's lines go now (None: drop them), from the database as it is now."""
        ids = list(lb_ids)
        try:
            with self.db.read() as conn:
                rows = conn.execute(_SETTINGS, {"ids": ids}).all()
        except Exception as exc:  # noqa: BLE001 - keep the last known routes while it is down
            if time.monotonic() - self._db_warned > 60:
                self._db_warned = time.monotonic()
                log.warning("access logs: cannot read logging settings (%s); using the last known", exc)
            return {lb_id: self._routes.get(lb_id) for lb_id in ids}
        found: dict[str, Route | None] = {r.id: route_of(r.project_id, r.logging) for r in rows}
        now = time.monotonic()
        out: dict[str, Route | None] = {}
        for lb_id in ids:
            if lb_id in found:
                self._gone.pop(lb_id, None)
                route = found[lb_id]
                if route is None:
                    self._routes.pop(lb_id, None)
                else:
                    self._routes[lb_id] = route
                out[lb_id] = route
                continue
            if now - self._gone.setdefault(lb_id, now) > GONE_GRACE_SECONDS:
                self._gone.pop(lb_id, None)
                self._routes.pop(lb_id, None)
            out[lb_id] = self._routes.get(lb_id)
        return out


def receiver_for(db: Database, provider: Any, data_dir: Path) -> AccessLogReceiver | None:
    """The receiver for a provider that sends flow logs (``provider.log_socket``), else None.

    Lines go under ``<data_dir>/logs``.
    """
    path = getattr(provider, "log_socket", None)
    if not path:
        return None
    return AccessLogReceiver(db, Path(path), LogStore(Path(data_dir) / "logs"))
