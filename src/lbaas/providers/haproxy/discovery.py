"""Find and stop HAProxy masters through ``/proc``: whatever started them, whoever their parent.

:func:`find_running` returns the masters of a :class:`Layout` (``-f`` under its data
directory, ``-S`` under its run directory) with their workers, so a starting lbaas can adopt
what a previous one left; :func:`find_strays` names those that should not run (a second
master for one LB, a master whose LB is gone). A zombie (an exited process nobody reaped,
e.g. under a PID 1 that does not reap) counts as dead everywhere here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from lbaas.providers.haproxy.paths import Layout, LbPaths

STOP_GRACE = 10.0

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


def argv_of(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def option(argv: list[str], flag: str) -> str | None:
    for i, arg in enumerate(argv[:-1]):
        if arg == flag:
            return argv[i + 1]
    return None


def register_child(child: subprocess.Popen) -> None:
    """Remember a master this process started, to reap it when it exits."""
    with _children_lock:
        _children[child.pid] = child


def reap(pid: int) -> None:
    """Collect the exit status of ``pid`` if it is our child (no zombie left behind)."""
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
                reap(pid)
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
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        argv = argv_of(pid)
        if not argv or "haproxy" not in os.path.basename(argv[0]) or "-W" not in argv:
            continue
        fields = _stat_fields(pid)  # once: state, parent and start time
        if fields is None or fields[0] in ("Z", "X", "x"):
            continue
        procs[pid] = (argv, _abs(option(argv, "-f")), _abs((option(argv, "-S") or "").split(",")[0]))
        parents[pid] = int(fields[1])
        ticks[pid] = int(fields[19]) if len(fields) > 19 else 0
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    masters = []
    for pid, (argv, config, sock) in procs.items():
        parent = parents[pid]
        if parent in procs and procs[parent][2] == sock:
            continue  # a worker: its parent is the master with the same CLI socket
        workers = tuple(sorted(p for p in children.get(pid, ()) if procs[p][2] == sock))
        masters.append(MasterProcess(pid, "", config or Path(), sock or Path(), workers, tuple(argv)))
    masters.sort(key=lambda m: (ticks[m.pid], m.pid))
    return masters


def is_master_of(pid: int, config: Path, master_socket: Path) -> bool:
    """Whether ``pid`` is a live master-worker HAProxy master loading ``config`` with its CLI on
    ``master_socket``: a look at that one process, not the scan of /proc :func:`all_masters` makes
    (which costs ~1 ms per 100 processes on the host: 2,000 HAProxys made it most of a member add)."""
    argv = argv_of(pid)
    if not argv or "haproxy" not in os.path.basename(argv[0]) or "-W" not in argv or not alive(pid):
        return False
    wanted = (_abs(str(config)), _abs(str(master_socket)))
    if (_abs(option(argv, "-f")), _abs((option(argv, "-S") or "").split(",")[0])) != wanted:
        return False
    parent = _ppid(pid)
    return parent is None or argv_of(parent) != argv  # a worker has its master's argv


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


def pidfile_pid(paths: LbPaths) -> int | None:
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
        keep = pidfile_pid(layout.lb(lb_id))
        if keep not in {m.pid for m in masters}:
            keep = masters[-1].pid
        strays += [m for m in masters if m.pid != keep]
    return strays


def soft_stop(masters: list[int]) -> None:
    """Ask masters to stop once their connections finish (SIGUSR1), without waiting."""
    for pid in masters:
        _signal(pid, signal.SIGUSR1)


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
