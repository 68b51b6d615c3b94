"""Access-log streams on disk: where lines go, how long they stay, how they are read back.

Layout, under ``root`` (``$LBAAS_DATA_DIR/logs``, every directory 0700, every file 0600)::

    <project_id>/topic/<topic_name>/<YYYY-MM-DD>.jsonl   one stream per project and topic
    <project_id>/lb/<lb_id>/<YYYY-MM-DD>.jsonl           an LB whose logging names no topic
    <stream>/stream.json                                 the stream's index (below)

A day file holds the lines whose ``ts`` (the connection's accept time) falls on that UTC
day, one JSON object per line, in the order they arrived. ``topic`` and ``lb`` keep a topic
name from ever meeting an LB id (a UUID matches the topic pattern). Topics are per project,
as Gcore's LaaS topics belong to a project.

``stream.json`` (``{"project_id", "topic", "load_balancers": {lb_id: {"retention_days"}}}``)
names every LB that ever wrote to the stream and the retention each asked for, so pruning
and ``lbaas logs`` work the same for LBs that are gone. A stream keeps its files for the
longest retention of its LBs (:data:`DEFAULT_RETENTION_DAYS` for an LB that gave none); a
day file is removed once its whole day is older than that many days
(:func:`LogStore.prune`), and a stream left without files goes with its index.

Only the receiver writes (one thread); readers (``lbaas logs``) may run at any time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lbaas.files import FILE_MODE, ensure_private_dir

log = logging.getLogger(__name__)

#: Days a stream keeps its lines when its LB gave no ``retention_policy`` (or ``period``
#: null). Gcore documents no default for LaaS retention; a week bounds the disk a busy LB
#: can fill while keeping enough to look back on an incident.
DEFAULT_RETENTION_DAYS = 7
INDEX_FILE = "stream.json"
_DAY_FILE = re.compile(r"(\d{4}-\d{2}-\d{2})\.jsonl")
#: A path segment that can only name a directory below the stream root. Topic names were
#: checked against Gcore's pattern at request time; this only guards the file system.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_LB_FIELD = re.compile(rb'"lb":"([^"\\]{1,64})"')
_TS_FIELD = re.compile(rb'"ts":(\d{1,12}(?:\.\d{1,6})?)[,}]')


def line_fields(line: bytes) -> tuple[str, float] | None:
    """``(lb_id, ts)`` of one flow-log line, or None when it is not one.

    HAProxy also sends its own events (a server going DOWN, a proxy starting) to the log
    socket as plain text; they have no ``lb`` field and are not access-log lines.
    """
    if not (line.startswith(b"{") and line.endswith(b"}")):
        return None
    lb = _LB_FIELD.search(line)
    ts = _TS_FIELD.search(line)
    if lb is None or ts is None:
        return None
    return lb.group(1).decode("ascii", "replace"), float(ts.group(1))


#: The head every rendered flow-log line starts with (logformat.py: time, ts, lb): one match
#: gives both fields the receiver needs, several times faster than :func:`line_fields`.
_HEAD = re.compile(rb'\{"time":"[^"]{0,64}","ts":(\d{1,12})(?:\.\d{1,6})?,"lb":"([^"\\]{1,64})"')
_EPOCH = dt.date(1970, 1, 1)


def group_lines(lines: Iterable[bytes]) -> tuple[dict[tuple[str, dt.date], list[bytes]], int]:
    """Flow-log lines grouped by (LB id, UTC day of ``ts``), in arrival order; and how many
    lines were not flow-log lines (dropped). The receiver's hot path: a few microseconds a line.
    """
    groups: dict[tuple[bytes, int], list[bytes]] = {}
    foreign = 0
    head = _HEAD.match
    for raw in lines:
        m = head(raw)
        if m is not None and raw.endswith(b"}"):
            key = (m.group(2), int(m.group(1)) // 86400)
        else:
            raw = raw.strip()
            fields = line_fields(raw)
            if fields is None:
                foreign += 1
                continue
            key = (fields[0].encode(), int(fields[1]) // 86400)
        group = groups.get(key)
        if group is None:
            groups[key] = group = []
        group.append(raw)
    out = {
        (lb.decode("ascii", "replace"), _EPOCH + dt.timedelta(days=days)): group
        for (lb, days), group in groups.items()
    }
    return out, foreign


def utc_day(ts: float) -> dt.date:
    return dt.datetime.fromtimestamp(ts, dt.UTC).date()


@dataclass(frozen=True)
class Route:
    """Where an LB's lines go now: its project, topic (None: a stream of its own), retention."""

    project_id: int
    topic: str | None
    retention_days: int = DEFAULT_RETENTION_DAYS

    def stream(self, lb_id: str) -> str:
        """The stream's path below the root, e.g. ``12/topic/my-log-name`` or ``12/lb/<lb_id>``."""
        kind, name = ("topic", self.topic) if self.topic else ("lb", lb_id)
        if not _SEGMENT.fullmatch(name) or ".." in name:
            raise ValueError(f"{kind} {name!r} cannot name a log stream directory")
        return f"{int(self.project_id)}/{kind}/{name}"


def route_of(project_id: int, logging_value: Any) -> Route | None:
    """The route of an LB from its stored ``logging`` object; None when logging is off."""
    if not isinstance(logging_value, dict) or not logging_value.get("enabled"):
        return None
    period = (logging_value.get("retention_policy") or {}).get("period")
    return Route(
        project_id,
        logging_value.get("topic_name") or None,
        int(period) if period else DEFAULT_RETENTION_DAYS,
    )


def parse_since(text: str, now: float | None = None) -> float:
    """``--since``: epoch seconds from ``10m`` / ``2h`` / ``3d`` / ``1h30m`` (before ``now``) or
    an ISO time such as ``2026-11-30T10:00`` or ``2026-11-30`` (UTC unless it has an offset).

    Raises ValueError with a message for the user.
    """
    text = text.strip()
    now = time.time() if now is None else now
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if re.fullmatch(r"(\d+[smhdw])+", text):
        return now - sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smhdw])", text))
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r}: give a duration such as 10m, 2h, 3d or a UTC time such as 2026-11-30T10:00"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


class LogStore:
    """The streams below ``root``; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._indexes: dict[str, dict[str, Any]] = {}  # stream -> index as last written

    # -- writing (the receiver's thread) ----------------------------------------------
    def append(self, stream: str, lb_id: str, route: Route, day: dt.date, data: bytes) -> None:
        """Append complete lines (``data`` ends with a newline) to a stream's day file."""
        directory = self.root / stream
        if not directory.is_dir():
            path = ensure_private_dir(self.root)
            for part in Path(stream).parts:  # each level 0700, whatever the umask
                path = ensure_private_dir(path / part)
        self._note(stream, lb_id, route)
        fd = os.open(
            directory / f"{day.isoformat()}.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE
        )
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    def _note(self, stream: str, lb_id: str, route: Route) -> None:
        """Keep ``stream.json`` naming this LB with its retention (rewritten only on change)."""
        path = self.root / stream / INDEX_FILE
        index = self._indexes.get(stream)
        if index is None or not path.exists():
            index = _read_index(path) or {"project_id": route.project_id, "topic": route.topic}
            index.setdefault("load_balancers", {})
        entry = {"retention_days": route.retention_days}
        if index["load_balancers"].get(lb_id) == entry and path.exists():
            self._indexes[stream] = index
            return
        index["load_balancers"][lb_id] = entry
        _write_private(path, json.dumps(index, sort_keys=True).encode())
        self._indexes[stream] = index

    # -- retention --------------------------------------------------------------------
    def prune(self, today: dt.date | None = None) -> list[Path]:
        """Remove day files older than their stream's retention; returns what was removed.

        A stream keeps day ``D`` while ``D >= today - retention``: every line stays at least
        ``retention`` whole days. A stream without day files left is removed with its index.
        """
        today = today or dt.datetime.now(dt.UTC).date()
        removed: list[Path] = []
        for directory in self._stream_dirs():
            index = _read_index(directory / INDEX_FILE) or {}
            keep = max(
                (int(e.get("retention_days") or 0) for e in index.get("load_balancers", {}).values()),
                default=0,
            )
            cutoff = today - dt.timedelta(days=keep or DEFAULT_RETENTION_DAYS)
            left = 0
            for path, day in _day_files(directory):
                if day < cutoff:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    removed.append(path)
                else:
                    left += 1
            if not left:
                shutil.rmtree(directory, ignore_errors=True)
                self._indexes.pop(str(directory.relative_to(self.root)), None)
                for parent in (directory.parent, directory.parent.parent):
                    with contextlib.suppress(OSError):
                        parent.rmdir()  # only when empty
        if removed:
            log.info("access logs: pruned %d day file(s) past their retention", len(removed))
        return removed

    # -- reading ----------------------------------------------------------------------
    def streams_of(self, lb_id: str) -> list[Path]:
        """Every stream directory that holds (or held) lines of ``lb_id``."""
        return [d for d in self._stream_dirs() if lb_id in _lbs_of(d)]

    def read(self, lb_id: str, since: float | None = None) -> Iterator[bytes]:
        """The LB's kept lines with ``ts >= since``, day by day, in ``ts`` order."""
        yield from self._read_days(self.streams_of(lb_id), lb_id, since, {})

    def follow(
        self,
        lb_id: str,
        since: float | None = None,
        *,
        stop: Callable[[], bool] = lambda: False,
        interval: float = 0.25,
    ) -> Iterator[list[bytes]]:
        """What :meth:`read` gives, then each new batch of the LB's lines as they are written.

        Picks up streams the LB starts writing later (a new topic) and new days. Ends when
        ``stop()`` is true (checked every ``interval`` seconds).
        """
        offsets: dict[Path, int] = {}
        first = list(self._read_days(self.streams_of(lb_id), lb_id, since, offsets))
        if first:
            yield first
        start_day = utc_day(since) if since is not None else None
        while not stop():
            time.sleep(interval)
            batch: list[bytes] = []
            for directory in self.streams_of(lb_id):
                for path, day in _day_files(directory):
                    if start_day is not None and day < start_day:
                        continue
                    batch += _new_lines(path, offsets, lb_id, since)
            if batch:
                yield batch

    def _read_days(
        self, streams: Iterable[Path], lb_id: str, since: float | None, offsets: dict[Path, int]
    ) -> Iterator[bytes]:
        by_day: dict[dt.date, list[Path]] = {}
        start_day = utc_day(since) if since is not None else None
        for directory in streams:
            for path, day in _day_files(directory):
                if start_day is None or day >= start_day:
                    by_day.setdefault(day, []).append(path)
        for day in sorted(by_day):
            lines: list[tuple[float, bytes]] = []
            for path in by_day[day]:
                for line in _new_lines(path, offsets, lb_id, since):
                    fields = line_fields(line.rstrip(b"\n"))
                    lines.append((fields[1] if fields else 0.0, line))
            lines.sort(key=lambda pair: pair[0])  # stable: arrival order among equal ts
            for _, line in lines:
                yield line

    def _stream_dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for kind in ("topic", "lb") for p in self.root.glob(f"*/{kind}/*") if p.is_dir())


def _new_lines(path: Path, offsets: dict[Path, int], lb_id: str, since: float | None) -> list[bytes]:
    """Complete lines of ``lb_id`` appended to ``path`` since the last call (``offsets``)."""
    start = offsets.get(path, 0)
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read()
    except FileNotFoundError:  # pruned meanwhile
        offsets.pop(path, None)
        return []
    end = data.rfind(b"\n") + 1  # a line being written is taken once it is whole
    offsets[path] = start + end
    needle = f'"lb":"{lb_id}"'.encode()
    out = []
    for line in data[:end].splitlines(keepends=True):
        if needle not in line:
            continue
        if since is not None:
            fields = line_fields(line.rstrip(b"\n"))
            if fields is None or fields[1] < since:
                continue
        out.append(line)
    return out


def _day_files(directory: Path) -> list[tuple[Path, dt.date]]:
    out = []
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    for name in names:
        m = _DAY_FILE.fullmatch(name)
        if m:
            with contextlib.suppress(ValueError):
                out.append((directory / name, dt.date.fromisoformat(m.group(1))))
    return out


def _read_index(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _lbs_of(directory: Path) -> set[str]:
    index = _read_index(directory / INDEX_FILE) or {}
    lbs = set(index.get("load_balancers", {}))
    if directory.parent.name == "lb":
        lbs.add(directory.name)  # a per-LB stream names its LB even if its index was lost
    return lbs


def _write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with a 0600 file holding ``data``."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
