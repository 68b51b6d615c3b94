"""One load balancer's HAProxy master process: start, reload (verified), stop, status, discovery.

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

:func:`find_running` scans ``/proc`` for the masters of a :class:`Layout` (``-f`` under its
data directory, ``-S`` under its run directory), so a starting lbaas can adopt the
processes a previous one left and find strays (a second master for one LB, or a master
whose LB directory is gone).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from lbaas.providers.haproxy.errors import NotRunning, ReloadFailed, SocketUnavailable, StartFailed, alerts
from lbaas.providers.haproxy.files import ensure_state_file, write_atomic
from lbaas.providers.haproxy.paths import Layout, LbPaths
from lbaas.providers.haproxy.runtime import MasterSocket, ProcInfo

START_TIMEOUT = 10.0
RELOAD_TIMEOUT = 10.0
STOP_GRACE = 10.0
LOG_ROTATE_BYTES = 1 << 20
LOG_KEEP_BYTES = 64 << 10
_POLL = 0.005

# Masters this process started: reaped when they stop, so they leave no zombie behind.
_children: dict[int, subprocess.Popen] = {}
_children_lock = threading.Lock()


# /proc helpers


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name: [state, ppid, ...]; None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw[raw.rfind(")") + 2 :].split()


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (an exited child nobody reaped yet)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X", "x")


def _ppid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def _start_ticks(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else 0


def _argv(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def _option(argv: list[str], flag: str) -> str | None:
    for i, arg in enumerate(argv[:-1]):
        if arg == flag:
            return argv[i + 1]
    return None


def _reap(pid: int) -> None:
    with _children_lock:
        child = _children.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=1)
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _wait_gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        for pid in pids:
            if not alive(pid):
                _reap(pid)
        if not any(alive(p) for p in pids):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


# Discovery


@dataclass(frozen=True)
class MasterProcess:
    """A running HAProxy master of a layout, as found in ``/proc``."""

    pid: int
    lb_id: str
    config: Path
    master_socket: Path
    worker_pids: tuple[int, ...]
    argv: tuple[str, ...]


def _abs(path: str | None) -> Path | None:
    return Path(os.path.abspath(path)) if path else None


def all_masters() -> list[MasterProcess]:
    """Every live master-worker HAProxy master on the host (``lb_id`` left empty), with its workers."""
    procs: dict[int, tuple[list[str], Path | None, Path | None]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        argv = _argv(pid)
        if not argv or "haproxy" not in os.path.basename(argv[0]) or "-W" not in argv or not alive(pid):
            continue
        procs[pid] = (argv, _abs(_option(argv, "-f")), _abs((_option(argv, "-S") or "").split(",")[0]))
    parents = {pid: _ppid(pid) for pid in procs}
    masters = []
    for pid, (argv, config, sock) in procs.items():
        parent = parents[pid]
        if parent in procs and procs[parent][2] == sock:
            continue  # a worker: its parent is the master with the same CLI socket
        workers = tuple(sorted(p for p, ppid in parents.items() if ppid == pid and procs[p][2] == sock))
        masters.append(MasterProcess(pid, "", config or Path(), sock or Path(), workers, tuple(argv)))
    masters.sort(key=lambda m: (_start_ticks(m.pid), m.pid))
    return masters


def find_running(layout: Layout) -> list[MasterProcess]:
    """Every live HAProxy master whose ``-f`` is under the layout's data directory and
    ``-S`` under its run directory, with its workers; sorted by LB id, then age."""
    found = []
    for master in all_masters():
        sock, config = master.master_socket, master.config
        if config.is_relative_to(layout.data_dir) and sock.is_relative_to(layout.run_dir):
            lb = layout.lb_from_config(master.config)
            found.append(dataclasses.replace(master, lb_id=lb.lb_id if lb else ""))
    found.sort(key=lambda m: m.lb_id)  # stable: age order within an LB
    return found


def _pidfile_pid(paths: LbPaths) -> int | None:
    try:
        return int(paths.pid_file.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def find_strays(layout: Layout) -> list[MasterProcess]:
    """Masters that should not run: a second master for the same LB (all but the one in its
    pid file, else all but the newest), or a master whose LB directory or config is gone."""
    by_lb: dict[str, list[MasterProcess]] = {}
    strays = []
    for master in find_running(layout):
        lb = layout.lb_from_config(master.config)
        if lb is None or not lb.config.exists() or master.master_socket != lb.master_socket:
            strays.append(master)
        else:
            by_lb.setdefault(lb.lb_id, []).append(master)
    for lb_id, masters in by_lb.items():
        if len(masters) < 2:
            continue
        keep = _pidfile_pid(layout.lb(lb_id))
        if keep not in {m.pid for m in masters}:
            keep = masters[-1].pid
        strays += [m for m in masters if m.pid != keep]
    return strays


def terminate(master: int, workers: tuple[int, ...] = (), grace: float = STOP_GRACE) -> None:
    """Stop a master and its workers: soft stop (SIGUSR1: finish the connections), after
    ``grace`` seconds hard stop (SIGTERM), after 2 more seconds SIGKILL."""
    pids = [master, *workers]
    _signal(master, signal.SIGUSR1)
    if _wait_gone(pids, grace):
        return
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    if _wait_gone(pids, 2.0):
        return
    for pid in pids:
        _signal(pid, signal.SIGKILL)
    _wait_gone(pids, 2.0)


def kill_strays(layout: Layout, grace: float = 2.0) -> list[int]:
    """Stop every stray master (see :func:`find_strays`); return their pids."""
    strays = find_strays(layout)
    for stray in strays:
        terminate(stray.pid, stray.worker_pids, grace)
    return [s.pid for s in strays]


# One LB


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
    ) -> None:
        self.paths = paths
        self.haproxy_bin = haproxy_bin
        self.start_timeout = start_timeout
        self.reload_timeout = reload_timeout
        self.master = MasterSocket(paths.master_socket)

    # Inspection

    def _masters(self) -> list[MasterProcess]:
        """Live masters running this LB's configuration, whatever their CLI socket."""
        return [m for m in all_masters() if m.config == self.paths.config]

    def master_pid(self) -> int | None:
        """The live master of this LB (``-f`` our config, ``-S`` our master socket): the pid
        file's when it is one, else the newest found in ``/proc``. Reaps ours that exited."""
        pid = _pidfile_pid(self.paths)
        if pid is not None and not alive(pid):
            _reap(pid)
        ours = [m.pid for m in self._masters() if m.master_socket == self.paths.master_socket]
        if pid in ours:
            return pid
        return ours[-1] if ours else None

    def _recorded_hash(self, master_pid: int) -> str | None:
        try:
            record = json.loads(self.paths.running_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return record.get("config_sha256") if record.get("master_pid") == master_pid else None

    def _record(self, master_pid: int, config_sha256: str) -> None:
        record = {"master_pid": master_pid, "config_sha256": config_sha256, "at": time.time()}
        write_atomic(self.paths.running_file, json.dumps(record).encode())

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
            config_sha256=self._recorded_hash(info.master.pid),
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

    def start(self, config_sha256: str | None = None) -> Started:
        """Start the master unless one already runs for this LB (then adopt it).

        Returns once ``show proc`` lists a worker. Raises :class:`StartFailed` with the
        log's words when the master exits (not retriable: the configuration or the host
        refuses) or no worker appears within ``start_timeout`` (retriable).
        """
        began = time.monotonic()
        existing = self.master_pid()
        if existing is not None:
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
        with _children_lock:
            _children[child.pid] = child
        deadline = began + self.start_timeout
        while True:
            if child.poll() is not None:
                _reap(child.pid)
                log = self.log_since(offset)
                raise StartFailed(
                    f"HAProxy exited with status {child.returncode} at start: {alerts(log)}", detail=log
                )
            try:
                info = self.master.show_proc()
                if info.master.pid == child.pid and info.workers:
                    self._record(child.pid, config_sha256)
                    return Started(self._status(info), time.monotonic() - began, adopted=False)
            except SocketUnavailable:
                pass
            if time.monotonic() >= deadline:
                terminate(child.pid, (), grace=0.5)
                _reap(child.pid)
                log = self.log_since(offset)
                raise StartFailed(
                    f"HAProxy started no worker within {self.start_timeout}s: {alerts(log)}",
                    retriable=True,
                    detail=log,
                )
            time.sleep(_POLL)

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
                        retriable=True,
                        detail=log,
                    )
                new = [w.pid for w in info.workers if w.pid not in old]
                if info.master.reloads > before.master.reloads and new:
                    self._record(info.master.pid, config_sha256)
                    return Reloaded(self._status(info), time.monotonic() - began, before.worker_pids, new[0])
            if time.monotonic() >= deadline:
                log = self.log_since(offset)
                raise ReloadFailed(
                    f"no new HAProxy worker within {self.reload_timeout}s of the reload: {alerts(log)}",
                    retriable=True,
                    detail=log,
                )
            time.sleep(_POLL)

    # Stop

    def stop(self, grace: float = STOP_GRACE) -> bool:
        """Stop every master of this LB (soft stop, then SIGTERM, then SIGKILL after ``grace``)
        and remove its sockets, pid file and running record. Returns whether one ran."""
        masters = self._masters()
        for master in masters:
            terminate(master.pid, master.worker_pids, grace)
            _reap(master.pid)
        for path in (self.paths.master_socket, self.paths.stats_socket, self.paths.pid_file):
            path.unlink(missing_ok=True)
        self.paths.running_file.unlink(missing_ok=True)
        return bool(masters)
