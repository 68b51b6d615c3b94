"""``show stat`` parsed, member health derived from it, and counters kept across reloads.

Pure functions and objects, no I/O: :func:`parse_show_stat` turns HAProxy 2.6's CSV into
per-frontend, per-backend and per-server :class:`StatRow`; :func:`member_health` gives each
server's raw health (``UP``/``DOWN``/``DRAIN``/``MAINT``/``NO_CHECK``, what
:mod:`lbaas.domain.status` rolls up, after Octavia's heartbeat rules, PRIOR_ART.md §4b)
with the reason; :func:`lb_counters` sums the frontends into the API's ``stats``
(Octavia's set, PRIOR_ART.md §3a); :class:`CounterAccumulator` keeps totals monotonic
although every reload starts a worker whose counters are zero.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lbaas.domain.counters import CounterAccumulator

__all__ = ["CounterAccumulator", "StatRow", "StatsPoll", "lb_counters", "member_health", "parse_show_stat"]

#: ``type`` column of ``show stat``.
KINDS = {"0": "frontend", "1": "backend", "2": "server", "3": "listener"}
RAW_HEALTH = ("UP", "DOWN", "DRAIN", "MAINT", "NO_CHECK")
#: Counters that only grow within one worker (the accumulator's business).
MONOTONIC = ("bytes_in", "bytes_out", "total_connections", "request_errors")
_HRSP = ("1xx", "2xx", "3xx", "4xx", "5xx", "other")


def _int(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class StatRow:
    """One line of ``show stat``.

    ``status``: HAProxy's text (``UP``, ``DOWN``, ``UP 1/3``, ``DOWN 1/2``, ``NOLB``,
    ``DRAIN``, ``MAINT``, ``MAINT (via b/s)``, ``MAINT (resolution)``, ``no check``; for
    frontends ``OPEN``/``FULL``/``STOP``). ``check_status``: ``L4OK``, ``L4CON``, ``L4TOUT``,
    ``L6OK``, ``L6RSP``, ``L7OK``, ``L7OKC``, ``L7STS``, ``L7RSP``, ``L7TOUT``, ``SOCKERR``,
    ``INI``, ``UNK``, ``PROCERR``... without the ``* `` HAProxy puts in front while a check
    runs (``check_running``). ``check_code``: the HTTP status of an L7 check.
    ``check_desc``: the status in words; ``last_chk``: the check's own text (``Connection
    refused``, an HTTP reason). Durations in ms; ``lastchg`` in seconds since the last
    state change; byte counters in bytes. ``raw`` (every column by name) and ``hrsp``
    (responses by class) are built when asked for: the poller reads neither.
    """

    proxy: str
    name: str
    kind: str
    status: str
    weight: int | None = None
    scur: int = 0
    stot: int = 0
    bin: int = 0
    bout: int = 0
    ereq: int = 0
    econ: int = 0
    eresp: int = 0
    lastchg: int | None = None
    check_status: str | None = None
    check_running: bool = False
    check_code: int | None = None
    check_duration: int | None = None
    check_desc: str | None = None
    last_chk: str | None = None
    columns: tuple[str, ...] = field(default=(), repr=False, compare=False)
    values: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @property
    def raw(self) -> Mapping[str, str]:
        """Every column of the line by its header name (columns this HAProxy does not print are absent)."""
        return dict(zip(self.columns, self.values, strict=False))

    @property
    def hrsp(self) -> Mapping[str, int]:
        """HTTP responses by class (``1xx`` ... ``5xx``, ``other``); zeros where not counted."""
        raw = self.raw
        return {k: _int(raw.get(f"hrsp_{k}")) or 0 for k in _HRSP}


@dataclass(frozen=True)
class StatsPoll:
    """One ``show stat``: frontends and backends by name, servers by ``(backend, server)``."""

    frontends: dict[str, StatRow]
    backends: dict[str, StatRow]
    servers: dict[tuple[str, str], StatRow]


#: The columns :class:`StatRow` reads (besides ``pxname``/``svname``/``type``).
_READ = (
    "status", "weight", "scur", "stot", "bin", "bout", "ereq", "econ", "eresp", "lastchg",
    "check_status", "check_code", "check_duration", "check_desc", "last_chk",
)  # fmt: skip


@functools.lru_cache(maxsize=8)
def _header(line: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The column names of a ``# pxname,svname,...`` header, and where each of ``_READ`` and
    ``pxname``, ``svname``, ``type`` is (-1: not printed). One header per HAProxy version: cached."""
    names = tuple(line[2:].rstrip(",").split(","))
    where = {n: i for i, n in enumerate(names)}
    return names, tuple(where.get(n, -1) for n in ("pxname", "svname", "type", *_READ))


def _row(names: tuple[str, ...], at: tuple[int, ...], values: list[str]) -> StatRow:
    n = len(values)
    got = [values[i] if 0 <= i < n else "" for i in at]
    (px, sv, kind, status, weight, scur, stot, bin_, bout,
     ereq, econ, eresp, lastchg, chk, code, dur, desc, last) = got  # fmt: skip
    running = chk.startswith("* ")
    if running:
        chk = chk[2:]
    return StatRow(
        proxy=px,
        name=sv,
        kind=KINDS.get(kind, "unknown"),
        status=status,
        weight=_int(weight),
        scur=_int(scur) or 0,
        stot=_int(stot) or 0,
        bin=_int(bin_) or 0,
        bout=_int(bout) or 0,
        ereq=_int(ereq) or 0,
        econ=_int(econ) or 0,
        eresp=_int(eresp) or 0,
        lastchg=_int(lastchg),
        check_status=chk or None,
        check_running=running,
        check_code=_int(code),
        check_duration=_int(dur),
        check_desc=desc or None,
        last_chk=last or None,
        columns=names,
        values=tuple(values),
    )


def parse_show_stat(text: str) -> StatsPoll:
    """Parse ``show stat`` CSV (header ``# pxname,svname,...``); every column stays in ``raw``.

    A line is split on commas unless it holds a quote (HAProxy quotes a field that contains a
    comma or a quote, e.g. a check's text): then it goes through :mod:`csv`. (The csv module and
    a dict per line cost ~250 µs per LB of the poller's round; splitting, ~20 µs.)
    """
    lines = text.strip("\n").splitlines()
    if not lines or not lines[0].startswith("# "):
        raise ValueError("show stat output has no '# pxname,...' header")
    names, at = _header(lines[0])
    frontends: dict[str, StatRow] = {}
    backends: dict[str, StatRow] = {}
    servers: dict[tuple[str, str], StatRow] = {}
    for line in lines[1:]:
        if not line:
            continue
        values = next(csv.reader([line])) if '"' in line else line.split(",")
        row = _row(names, at, values)
        if row.kind == "frontend":
            frontends[row.proxy] = row
        elif row.kind == "backend":
            backends[row.proxy] = row
        elif row.kind == "server":
            servers[(row.proxy, row.name)] = row
    return StatsPoll(frontends, backends, servers)


def raw_health(status: str) -> str:
    """HAProxy's server status → ``UP``/``DOWN``/``DRAIN``/``MAINT``/``NO_CHECK``.

    Transitional forms count as the side they are on: ``UP 1/3`` (up, failing checks) is
    UP, ``DOWN 1/2`` (down, passing checks) is DOWN. ``NOLB`` (up but taking no new
    traffic) is DRAIN. Anything unknown is DOWN, never a guess at UP.
    """
    word = status.strip().split(" ", 1)[0].upper()
    if status.strip().lower() == "no check":
        return "NO_CHECK"
    if word in ("UP", "DOWN", "DRAIN", "MAINT"):
        return word
    if word == "NOLB":
        return "DRAIN"
    return "DOWN"


@dataclass(frozen=True)
class MemberHealth:
    """A server's raw health and why: check status, HTTP code or error text, timings."""

    health: str
    status: str
    check_status: str | None
    check_code: int | None
    check_text: str | None
    check_duration_ms: int | None
    since_change_s: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "health": self.health,
            "status": self.status,
            "check_status": self.check_status,
            "check_code": self.check_code,
            "check_text": self.check_text,
            "check_duration_ms": self.check_duration_ms,
            "since_change_s": self.since_change_s,
        }


def member_health(poll: StatsPoll) -> dict[tuple[str, str], MemberHealth]:
    """Raw health of every server, by ``(backend, server)``."""
    out = {}
    for key, row in poll.servers.items():
        text = row.last_chk or row.check_desc
        out[key] = MemberHealth(
            health=raw_health(row.status),
            status=row.status,
            check_status=row.check_status,
            check_code=row.check_code,
            check_text=text,
            check_duration_ms=row.check_duration,
            since_change_s=row.lastchg,
        )
    return out


@dataclass(frozen=True)
class Counters:
    """The API's ``stats``: a gauge and four counters (bytes, connections, errors)."""

    active_connections: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    request_errors: int = 0
    total_connections: int = 0

    def monotonic(self) -> dict[str, int]:
        """The counters that grow within one worker (what :class:`CounterAccumulator` takes)."""
        return {name: getattr(self, name) for name in MONOTONIC}


def _counters(rows: Iterable[StatRow]) -> Counters:
    rows = list(rows)
    return Counters(
        active_connections=sum(r.scur for r in rows),
        bytes_in=sum(r.bin for r in rows),
        bytes_out=sum(r.bout for r in rows),
        request_errors=sum(r.ereq for r in rows),
        total_connections=sum(r.stot for r in rows),
    )


def lb_counters(
    poll: StatsPoll, frontends: Iterable[str] | None = None
) -> tuple[Counters, dict[str, Counters]]:
    """The LB's counters (sum over its frontends) and each frontend's.

    ``frontends`` limits both to those names (leave out internal ones, such as a
    Prometheus exporter's); None takes every frontend.
    """
    names = set(poll.frontends) if frontends is None else set(frontends) & set(poll.frontends)
    per = {name: _counters([poll.frontends[name]]) for name in sorted(names)}
    return _counters(poll.frontends[n] for n in names), per
