"""One load balancer's HAProxy master process: start, reload (verified), stop, status.

The master runs as ``haproxy -W -S <run>/<lb>.master.sock,mode,600 -p <lb>/haproxy.pid -f
<lb>/haproxy.cfg`` in a session of its own (``setsid``), so it outlives lbaas. It runs
without ``-D``: in 2.6, ``-D`` points the daemon's stderr at /dev/null, and that stderr is
the only place a failed reload says why ("Cannot raise FD limit to 40041, limit is
20000"). lbaas detaches it instead and sends its stdout and stderr to ``haproxy.log``.

A reload goes through the master CLI and is verified: 2.6's ``reload`` replies nothing,
and a configuration that passed ``haproxy -c`` can still fail to load, in which case the
old worker silently keeps the old configuration. :meth:`HaproxyProcess.reload` reads
``show proc`` before and after (the reload counter, ``[failed: N]``, the worker pids) and
raises :class:`ReloadFailed` (retriable) with the log's words when no new worker came up.

Discovery through ``/proc`` (adopting what a previous lbaas left, strays) is in
:mod:`.discovery`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from lbaas.providers.haproxy.discovery import (
    STOP_GRACE,
    MasterProcess,
    alive,
    all_masters,
    is_master_of,
    pidfile_pid,
    reap,
    register_child,
    terminate,
)
from lbaas.providers.haproxy.errors import (
    NotRunning,
    ReloadFailed,
    SocketUnavailable,
    StartFailed,
    alerts,
    has_alert,
)
from lbaas.providers.haproxy.files import ensure_state_file, write_atomic
from lbaas.providers.haproxy.paths import LbPaths
from lbaas.providers.haproxy.runtime import MasterSocket, ProcInfo

START_TIMEOUT = 10.0
RELOAD_TIMEOUT = 10.0
LOG_ROTATE_BYTES = 1 << 20
LOG_KEEP_BYTES = 64 << 10
_POLL = 0.005
#: The longest wait between two ``show proc`` while a start or reload completes: the wait doubles
#: from ``_POLL``, so a quick start is seen within milliseconds and the 1,000 starts of a host
#: reboot (4 at a time, each 0.1-1 s on 2 busy cores) do not ask their masters 200 times a second.
_POLL_MAX = 0.05


def _pause(attempt: int) -> None:
    time.sleep(min(_POLL_MAX, _POLL * 2 ** min(attempt, 8)))


@dataclass(frozen=True)
class HaproxyStatus:
    """What runs for one LB. ``config_sha256`` is the hash recorded when this master was last
    started or reloaded successfully (None when unknown, e.g. a master lbaas did not start)."""

    running: bool
    master_pid: int | None = None
    worker_pids: tuple[int, ...] = ()
    old_worker_pids: tuple[int, ...] = ()
    reloads: int = 0
    failed_reloads: int = 0
    uptime_s: int = 0
    version: str = ""
    config_sha256: str | None = None


@dataclass(frozen=True)
class Started:
    status: HaproxyStatus
    seconds: float
    adopted: bool


@dataclass(frozen=True)
class Reloaded:
    status: HaproxyStatus
    seconds: float
    old_worker_pids: tuple[int, ...]
    new_worker_pid: int


def _loads(info: ProcInfo) -> int:
    """Reloads that took (a failed reload counts in ``reloads`` too, and changed nothing)."""
    return info.master.reloads - info.failed_reloads


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class HaproxyProcess:
    """The master process of one LB (see the module docstring)."""

    def __init__(
        self,
        paths: LbPaths,
        *,
        haproxy_bin: str = "haproxy",
        start_timeout: float = START_TIMEOUT,
        reload_timeout: float = RELOAD_TIMEOUT,
        masters: Sequence[MasterProcess] | None = None,
    ) -> None:
        self.paths = paths
        # ``masters``: what a scan of /proc the caller just made found (reconcile scans once for
        # every LB); None: scan when needed. Each scan costs ~1 ms per 100 processes on the host.
        self._known = masters
        self._scan_once = False  # within one_scan(): keep the first scan for the block
        self.haproxy_bin = haproxy_bin
        self.start_timeout = start_timeout
        self.reload_timeout = reload_timeout
        self.master = MasterSocket(paths.master_socket)

    # Inspection

    def _masters(self) -> list[MasterProcess]:
        """Live masters running this LB's configuration, whatever their CLI socket."""
        found = self._known
        if found is None:
            found = all_masters()
            if self._scan_once:
                self._known = found
        return [m for m in found if m.config == self.paths.config]

    @contextlib.contextmanager
    def one_scan(self, *, none_running: bool = False) -> Iterator[HaproxyProcess]:
        """Within the block, scan /proc at most once until this process starts a master: a
        deployment asks whether a master runs (``status``), then again in ``start``, and each
        scan reads every process of the host (1,000 LBs: 66% of lbaas's CPU while creating).
        ``none_running``: the caller knows no master of this LB can run (its first deployment)."""
        given, self._scan_once = self._known, True
        if none_running:  # the caller knows no master of this LB can run: no scan at all
            self._known = []
        try:
            yield self
        finally:
            self._scan_once, self._known = False, given

    def master_pid(self) -> int | None:
        """The live master of this LB (``-f`` our config, ``-S`` our master socket): the pid
        file's when it is one, else the newest found in ``/proc``. Reaps ours that exited."""
        pid = pidfile_pid(self.paths)
        if pid is not None and not alive(pid):
            reap(pid)
        elif pid is not None and is_master_of(pid, self.paths.config, self.paths.master_socket):
            return pid  # the usual case, without scanning /proc
        ours = [m.pid for m in self._masters() if m.master_socket == self.paths.master_socket]
        if pid in ours:
            return pid
        return ours[-1] if ours else None

    def _recorded_hash(self, master_pid: int, loads: int | None = None) -> str | None:
        """The hash lbaas recorded for this master, or None when it may serve something else:
        another master, or one reloaded since without lbaas (a hand reload of an edited file)."""
        try:
            record = json.loads(self.paths.running_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        if record.get("master_pid") != master_pid:
            return None
        if loads is not None and record.get("loads") is not None and record["loads"] != loads:
            return None
        return record.get("config_sha256")

    def _record(self, master_pid: int, config_sha256: str, loads: int | None = None) -> None:
        if loads is None:
            with contextlib.suppress(SocketUnavailable):
                loads = _loads(self.master.show_proc())
        record = {
            "master_pid": master_pid,
            "config_sha256": config_sha256,
            "loads": loads,
            "at": time.time(),
        }
        write_atomic(self.paths.running_file, json.dumps(record).encode())

    def record_running(self, config_sha256: str) -> None:
        """Record that the running master now serves ``config_sha256`` (after runtime-API changes
        that made the running worker equal to the installed configuration without a reload)."""
        pid = self.master_pid()
        if pid is not None:
            self._record(pid, config_sha256)

    def _status(self, info: ProcInfo) -> HaproxyStatus:
        return HaproxyStatus(
            running=True,
            master_pid=info.master.pid,
            worker_pids=info.worker_pids,
            old_worker_pids=tuple(w.pid for w in info.old_workers),
            reloads=info.master.reloads,
            failed_reloads=info.failed_reloads,
            uptime_s=info.master.uptime_s,
            version=info.master.version,
            config_sha256=self._recorded_hash(info.master.pid, _loads(info)),
        )

    def status(self) -> HaproxyStatus:
        """The master's ``show proc`` (and the recorded config hash); ``running=False`` when
        no master lives. A master whose socket does not answer is reported with its pid only."""
        try:
            return self._status(self.master.show_proc())
        except SocketUnavailable:
            pid = self.master_pid()
            if pid is None:
                return HaproxyStatus(running=False)
            return HaproxyStatus(running=True, master_pid=pid, config_sha256=self._recorded_hash(pid))

    def log_since(self, offset: int, limit: int = 8192) -> str:
        """The master's log from byte ``offset`` (at most ``limit`` bytes, the last ones)."""
        try:
            with open(self.paths.log_file, "rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except FileNotFoundError:
            return ""
        return data[-limit:].decode("utf-8", "replace")

    def _trim_log(self) -> None:
        """Keep the master's log under ``LOG_ROTATE_BYTES``: past it, only its last 64 KiB stay.
        Truncating in place is safe: the master appends (``O_APPEND``)."""
        if self._log_size() <= LOG_ROTATE_BYTES:
            return
        with open(self.paths.log_file, "r+b") as fh:
            fh.seek(-LOG_KEEP_BYTES, os.SEEK_END)
            tail = fh.read()
            fh.seek(0)
            fh.truncate()
            fh.write(tail[tail.find(b"\n") + 1 :])

    def _log_size(self) -> int:
        try:
            return self.paths.log_file.stat().st_size
        except FileNotFoundError:
            return 0

    # Start

    def start(self, config_sha256: str | None = None, *, takeover: bool = False) -> Started:
        """Start the master unless one already runs for this LB (then adopt it).

        ``takeover``: when one runs, start a fresh master anyway that takes the listening
        sockets over from the running worker (``-x`` on its stats socket, which the
        configuration exposes with ``expose-fd listeners``), then soft-stop the old master:
        the port is never closed, and the old worker finishes its connections.

        Returns once ``show proc`` lists a worker. Raises :class:`StartFailed` with the
        log's words when the master exits (not retriable: the configuration or the host
        refuses) or no worker appears within ``start_timeout`` (retriable).
        """
        began = time.monotonic()
        existing = self.master_pid()
        old = self._masters() if takeover and existing is not None else []
        if existing is not None and not old:
            return Started(self.status(), time.monotonic() - began, adopted=True)
        paths = self.paths
        for foreign in (m for m in self._masters() if m.master_socket != paths.master_socket):
            # runs our configuration but answers on another CLI socket (LBAAS_RUN_DIR changed):
            # lbaas cannot drive it, so it makes way
            terminate(foreign.pid, foreign.worker_pids, grace=2.0)
        paths.prepare()
        if not paths.config.exists():
            raise StartFailed(f"no configuration at {paths.config}")
        ensure_state_file(paths)
        if not old:
            for sock in (paths.master_socket, paths.stats_socket):
                sock.unlink(missing_ok=True)
        self._trim_log()
        offset = self._log_size()
        config_sha256 = config_sha256 or _sha256(paths.config)
        argv = [
            self.haproxy_bin,
            "-W",
            "-S",
            f"{paths.master_socket},mode,600",
            "-p",
            str(paths.pid_file),
            "-f",
            str(paths.config),
        ]
        if old and paths.stats_socket.exists():
            argv += ["-x", str(paths.stats_socket)]
        fd = os.open(paths.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
                cwd=paths.dir,
                start_new_session=True,
                close_fds=True,
                umask=0o077,  # the pid file and anything else HAProxy creates: private
            )
        except FileNotFoundError as exc:
            raise StartFailed(f"HAProxy binary {self.haproxy_bin!r} not found") from exc
        finally:
            os.close(fd)
        register_child(child)
        self._known = None  # a master of ours started since the caller's scan: scan from now on
        deadline = began + self.start_timeout
        attempt = 0
        while True:
            if child.poll() is not None:
                reap(child.pid)
                log = self.log_since(offset)
                raise StartFailed(
                    f"HAProxy exited with status {child.returncode} at start: {alerts(log)}", detail=log
                )
            try:
                info = self.master.show_proc()
                if info.master.pid == child.pid and info.workers:
                    self._record(child.pid, config_sha256, _loads(info))
                    for master in old:  # the new worker holds the sockets: the old one may go
                        terminate(master.pid, master.worker_pids)
                        reap(master.pid)
                    return Started(self._status(info), time.monotonic() - began, adopted=False)
            except SocketUnavailable:
                pass
            if time.monotonic() >= deadline:
                terminate(child.pid, (), grace=0.5)
                reap(child.pid)
                log = self.log_since(offset)
                raise StartFailed(
                    f"HAProxy started no worker within {self.start_timeout}s: {alerts(log)}",
                    retriable=True,
                    detail=log,
                )
            _pause(attempt)
            attempt += 1

    # Reload

    def _send_reload(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.master.timeout)
        try:
            sock.connect(str(self.paths.master_socket))
        except OSError as exc:
            sock.close()
            raise SocketUnavailable(f"master socket {self.paths.master_socket} unavailable: {exc}") from exc
        try:
            sock.sendall(b"reload\n")
            sock.shutdown(socket.SHUT_WR)
            with contextlib.suppress(OSError):
                while sock.recv(4096):
                    pass
        finally:
            sock.close()

    def reload(self, config_sha256: str | None = None) -> Reloaded:
        """Reload the master with the configuration on disk and verify a new worker took it.

        Raises :class:`NotRunning` when no master answers, :class:`ReloadFailed`
        (retriable) when the master counts a failed reload (the log's words in the
        message) or no new worker appears within ``reload_timeout``.
        """
        began = time.monotonic()
        try:
            before = self.master.show_proc()
        except SocketUnavailable as exc:
            if self.master_pid() is None:
                raise NotRunning(f"no HAProxy master runs for {self.paths.lb_id}") from exc
            raise
        config_sha256 = config_sha256 or _sha256(self.paths.config)
        self._trim_log()
        offset = self._log_size()
        self._send_reload()
        old = set(before.worker_pids)
        deadline = began + self.reload_timeout
        attempt = 0
        while True:
            try:
                info = self.master.show_proc()
            except SocketUnavailable:
                info = None  # the master re-executes itself: its socket is away for ~30 ms
            if info is not None:
                if info.master.pid != before.master.pid:
                    raise ReloadFailed(
                        f"the master changed from {before.master.pid} to {info.master.pid} during the reload",
                        retriable=True,
                    )
                if info.failed_reloads > before.failed_reloads:
                    log = self.log_since(offset)
                    raise ReloadFailed(
                        f"HAProxy kept the old configuration, the reload failed: {alerts(log)}",
                        retriable=not has_alert(log),  # a taken port or a limit: again won't help
                        detail=log,
                    )
                new = [w.pid for w in info.workers if w.pid not in old]
                if info.master.reloads > before.master.reloads and new:
                    self._record(info.master.pid, config_sha256, _loads(info))
                    return Reloaded(self._status(info), time.monotonic() - began, before.worker_pids, new[0])
            if time.monotonic() >= deadline:
                log = self.log_since(offset)
                raise ReloadFailed(
                    f"no new HAProxy worker within {self.reload_timeout}s of the reload: {alerts(log)}",
                    retriable=True,
                    detail=log,
                )
            _pause(attempt)
            attempt += 1

    # Stop

    def stop(self, grace: float = STOP_GRACE) -> bool:
        """Stop every master of this LB (soft stop, then SIGTERM, then SIGKILL after ``grace``)
        and remove its sockets, pid file and running record. Returns whether one ran."""
        masters = self._masters()
        for master in masters:
            terminate(master.pid, master.worker_pids, grace)
            reap(master.pid)
        for path in (self.paths.master_socket, self.paths.stats_socket, self.paths.pid_file):
            path.unlink(missing_ok=True)
        self.paths.running_file.unlink(missing_ok=True)
        return bool(masters)
