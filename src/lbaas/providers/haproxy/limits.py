"""Host limits for HAProxy: descriptors, the ``maxconn`` they allow, CPUs, version, ``ping``.

HAProxy 2.6 sizes its descriptor need from the global ``maxconn`` (src/haproxy.c,
``compute_ideal_maxsock``)::

    maxsock = 2 * maxconn + 2 * maxpipes + 3 * nbthread + sockets

two descriptors per connection (client and server side), two per pipe (``maxpipes`` is
``maxconn / 4`` when a proxy uses ``option splice-*``, else 0), per thread one poller and
one wake-up pipe, and ``sockets``: 10 reserved plus one per listener (each ``bind``, each
``stats socket``), one per server with a health check, and the master-worker plumbing.
It must fit under the hard ``RLIMIT_NOFILE`` (HAProxy raises the soft limit itself), else
the process refuses to start, after ``haproxy -c`` passed: "Cannot raise FD limit to N,
limit is L". Measured on 2.6.12: ``sockets = 32 + listeners + checked servers`` (master-worker
with a master CLI); with 20,000 descriptors, 2 threads, one bind and one stats socket, the
largest ``maxconn`` that starts is 9,979 (HAPROXY_NOTES.md), one more fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lbaas.providers.haproxy.errors import UnsupportedHaproxy

MIN_VERSION = (2, 6)
#: Descriptors 2.6.12 holds besides listeners, checks and threads (measured; see module docstring).
FIXED_SOCKETS = 32


@dataclass(frozen=True)
class FdLimit:
    soft: int
    hard: int


def fd_limit() -> FdLimit:
    """This process's ``RLIMIT_NOFILE``; HAProxy inherits it. ``RLIM_INFINITY`` reads as 2**31-1."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = 2**31 - 1
    return FdLimit(
        cap if soft == resource.RLIM_INFINITY else soft, cap if hard == resource.RLIM_INFINITY else hard
    )


def fds_needed(
    maxconn: int, *, nbthread: int = 1, listeners: int = 1, checks: int = 0, splice: bool = False
) -> int:
    """Descriptors HAProxy 2.6 reserves for a global ``maxconn`` (``Maxsock`` in ``show info``).

    ``listeners``: every ``bind`` line and ``stats socket``; ``checks``: servers with
    ``check`` (and ``agent-check``); ``splice``: any proxy with ``option splice-*``.
    """
    pipes = maxconn // 4 if splice and maxconn >= 4 else 0
    return 2 * maxconn + 2 * pipes + 3 * nbthread + FIXED_SOCKETS + listeners + checks


def max_maxconn(
    limit: int | None = None, *, nbthread: int = 1, listeners: int = 1, checks: int = 0, splice: bool = False
) -> int:
    """The largest global ``maxconn`` whose :func:`fds_needed` fits in ``limit`` (default: the hard limit).

    Raises ``ValueError`` when the limit leaves no room for even one connection.
    """
    limit = fd_limit().hard if limit is None else limit
    spare = limit - (3 * nbthread + FIXED_SOCKETS + listeners + checks)
    best = max(0, spare * 2 // 5 if splice else spare // 2)

    def fits(maxconn: int) -> bool:
        return (
            fds_needed(maxconn, nbthread=nbthread, listeners=listeners, checks=checks, splice=splice) <= limit
        )

    while fits(best + 1):  # the estimate is within a step or two of the answer
        best += 1
    while best > 0 and not fits(best):
        best -= 1
    if best < 1:
        raise ValueError(f"a descriptor limit of {limit} leaves no room for a connection")
    return best


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


_VERSION = re.compile(r"HA-?Proxy version (\d+)\.(\d+)(?:\.(\d+))?(\S*)")


@dataclass(frozen=True)
class HaproxyVersion:
    major: int
    minor: int
    patch: int
    text: str

    @property
    def tuple(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)


def parse_version(output: str) -> HaproxyVersion:
    """``HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/`` → 2.6.12."""
    match = _VERSION.search(output)
    if not match:
        raise UnsupportedHaproxy(f"cannot read a version from {output.strip()[:200]!r}")
    major, minor, patch = int(match[1]), int(match[2]), int(match[3] or 0)
    return HaproxyVersion(major, minor, patch, f"{major}.{minor}.{patch}{match[4]}")


def haproxy_version(
    haproxy_bin: str = "haproxy", *, require: tuple[int, int] = MIN_VERSION
) -> HaproxyVersion:
    """Run ``haproxy -v``; raise :class:`UnsupportedHaproxy` when it is missing or older than ``require``."""
    try:
        proc = subprocess.run([haproxy_bin, "-v"], capture_output=True, timeout=10, check=False)
    except (FileNotFoundError, PermissionError) as exc:
        raise UnsupportedHaproxy(f"HAProxy binary {haproxy_bin!r} not found: install haproxy >= 2.6") from exc
    version = parse_version((proc.stdout + proc.stderr).decode("utf-8", "replace"))
    if (version.major, version.minor) < require:
        raise UnsupportedHaproxy(
            f"HAProxy {version.text} is too old: lbaas needs {require[0]}.{require[1]} or newer"
        )
    return version


def ping_path() -> str | None:
    """The ``ping`` binary PING health monitors run (``external-check``), or None (iputils-ping)."""
    return shutil.which("ping")


@dataclass(frozen=True)
class HostLimits:
    """Everything above, read once (e.g. at start-up, to log and to feed the renderer)."""

    fd: FdLimit
    cpus: int
    version: HaproxyVersion
    ping: str | None

    def max_maxconn(self, **shape: int | bool) -> int:
        return max_maxconn(self.fd.hard, **shape)  # type: ignore[arg-type]


def host_limits(haproxy_bin: str = "haproxy") -> HostLimits:
    return HostLimits(fd_limit(), cpu_count(), haproxy_version(haproxy_bin), ping_path())


#: Memory budgeted per load balancer. Measured (bench/bench_density.py, docs/PERFORMANCE.md
#: "Density"): an idle master + worker with one HTTP listener, two checked members is 6.6-7.3 MiB
#: PSS at 10 to 1,000 LBs; a reload briefly runs a second worker, and TLS or many members add more.
PER_LB_MIB = 16
#: Left to the OS, lbaas and the database.
HOST_RESERVE_MIB = 2048
#: Pids left to everything but HAProxy (lbaas, its workers, the database, the OS).
HOST_RESERVE_TASKS = 4096


def memory_mib() -> int:
    """The host's total memory in MiB (``MemTotal`` of /proc/meminfo)."""
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise OSError("no MemTotal in /proc/meminfo")


def task_limit() -> int | None:
    """How many tasks (processes and threads: each takes a pid) the host runs at most: the lowest
    of ``kernel.pid_max`` and ``kernel.threads-max``; None when /proc does not say."""
    found = []
    for name in ("pid_max", "threads-max"):
        with contextlib.suppress(OSError, ValueError):
            found.append(int(Path(f"/proc/sys/kernel/{name}").read_text()))
    return min(found) if found else None


def tasks_per_lb(cpus: int) -> int:
    """Pids one LB may hold: its master, a worker of up to ``cpus`` threads (``nbthread`` is the
    flavor's vCPUs, at most the host's cores), and the old worker of a reload until it is done.
    Measured: 2 per LB idle on the default flavor (bench_density: 2,000 threads for 1,000 LBs)."""
    return 1 + 2 * max(1, cpus)


def max_load_balancers(total_mib: int, *, tasks: int | None = None, cpus: int = 1) -> int:
    """How many LBs this host holds: the lower of what its memory allows (what is left after the
    reserve, per LB budget) and, when ``tasks`` (see :func:`task_limit`) is known, its pids.

    Descriptors do not bind: ~19 per idle LB (measured), each HAProxy under its own
    ``RLIMIT_NOFILE``, against ``fs.file-max`` in the millions. Memory binds first on this 2-core,
    24 GiB host (1,378 LBs against 5,734 by pids); pids bind first on a larger one with the default
    ``pid_max`` of 32,768 (e.g. 128 GiB: 8,064 by memory, 5,734 by pids).
    """
    by_memory = (total_mib - HOST_RESERVE_MIB) // PER_LB_MIB
    if tasks is not None:
        by_memory = min(by_memory, (tasks - HOST_RESERVE_TASKS) // tasks_per_lb(cpus))
    return max(1, by_memory)
