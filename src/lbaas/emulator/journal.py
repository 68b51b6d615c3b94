"""The request journal: the last N requests, for debugging a client.

Requests are noted in memory by the request hook (no database work on the request path) and
written in batches by a background thread every ``FLUSH_SECONDS``; reading the journal first
writes what this process still holds, so a client sees its own requests at once. Bodies are
redacted when they are written (:mod:`lbaas.emulator.redact`). The table is cut to the newest
``journal_size`` rows at each write. Size 0 turns the journal off.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.db import tables
from lbaas.db.engine import Database
from lbaas.emulator.controls import STATE, Controls, bump
from lbaas.emulator.redact import redact_body, redact_text
from lbaas.errors import ValidationFailed

log = logging.getLogger("lbaas.emulator")

J = tables.emulator_journal
FLUSH_SECONDS = 0.2
MAX_PENDING = 10_000


class Journal:
    """This process's share of the journal: a buffer and the thread that writes it."""

    def __init__(self, db: Database, controls: Controls) -> None:
        self.db = db
        self.controls = controls
        self._pending: list[tuple[int, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # A reset starts a new generation: requests noted before it are never written after it.
        self.generation = 0

    def note(self, entry: dict[str, Any]) -> None:
        """Keep one request for the next write (called on the request path: memory only)."""
        with self._lock:
            if len(self._pending) < MAX_PENDING:
                self._pending.append((self.generation, entry))

    def discard(self) -> None:
        """Forget every request not yet written (call inside the transaction of a reset)."""
        with self._lock:
            self.generation += 1
            self._pending.clear()

    def flush(self) -> None:
        """Write the buffered requests and cut the table to the configured size."""
        with self._flush_lock:
            with self._lock:
                noted, self._pending = self._pending, []
            batch = [e for _g, e in noted]
            if not batch:
                return
            generation = noted[-1][0]
            rows = [
                {
                    **e,
                    "request_body": redact_body(e["request_body"]),
                    "response_body": redact_body(e["response_body"]),
                    "user_agent": (e["user_agent"] or "")[:255] or None,
                    "path": e["path"][:2048],
                    "query": redact_text(e["query"]) if e["query"] else None,
                    "method": e["method"][:8],
                }
                for e in batch
            ]
            with self.db.write() as conn:
                if generation != self.generation:
                    return  # a reset came between noting and writing
                rows = [r for (g, _e), r in zip(noted, rows, strict=True) if g == generation]
                size = conn.execute(sa.select(STATE.c.journal_size).where(STATE.c.id == 1)).scalar() or 0
                if size <= 0:
                    return
                conn.execute(J.insert(), rows[-size:])
                newest = conn.execute(sa.select(sa.func.max(J.c.id))).scalar() or 0
                conn.execute(J.delete().where(J.c.id <= newest - size))

    def start(self) -> None:
        """Start the background writer."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="lbaas-emulator-journal", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the writer after a last write."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - shutting down: the database may be gone already
            log.exception("journal: last write failed")

    def _loop(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - a busy database must not kill the writer
                log.exception("journal: write failed; will retry")


def set_size(conn: Connection, size: int) -> None:
    """Keep the last ``size`` requests (0 turns the journal off and empties it)."""
    if not 0 <= size <= 100_000:
        raise ValidationFailed.field("size", "between 0 and 100000")
    conn.execute(STATE.update().where(STATE.c.id == 1).values(journal_size=size))
    if size == 0:
        conn.execute(J.delete())
    else:
        newest = conn.execute(sa.select(sa.func.max(J.c.id))).scalar() or 0
        conn.execute(J.delete().where(J.c.id <= newest - size))
    bump(conn)


def size_of(conn: Connection) -> int:
    return conn.execute(sa.select(STATE.c.journal_size).where(STATE.c.id == 1)).scalar() or 0


def _body(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at.isoformat() + "Z",
        "method": row.method,
        "path": row.path,
        "query": row.query or None,
        "status": row.status,
        "latency_ms": round(row.latency_ms, 3),
        "retry_count": row.retry_count,
        "request_id": row.request_id,
        "project_id": row.project_id,
        "injected_fault": row.injected_fault,
        "user_agent": row.user_agent,
        "request_body": _body(row.request_body),
        "response_body": _body(row.response_body),
    }


def query(
    conn: Connection,
    *,
    limit: int = 100,
    method: str | None = None,
    path: str | None = None,
    status: int | None = None,
    min_status: int | None = None,
    project_id: int | None = None,
    injected: bool | None = None,
    since_id: int | None = None,
    retried: bool | None = None,
) -> dict[str, Any]:
    """The newest ``limit`` matching requests, oldest first. ``path`` is a regular expression."""
    where: list[Any] = []
    if method:
        where.append(J.c.method == method.upper())
    if status is not None:
        where.append(J.c.status == status)
    if min_status is not None:
        where.append(J.c.status >= min_status)
    if project_id is not None:
        where.append(J.c.project_id == project_id)
    if injected is not None:
        where.append(J.c.injected_fault.is_not(None) if injected else J.c.injected_fault.is_(None))
    if since_id is not None:
        where.append(J.c.id > since_id)
    if retried is not None:
        where.append(J.c.retry_count > 0 if retried else sa.func.coalesce(J.c.retry_count, 0) == 0)
    pattern = None
    if path:
        try:
            pattern = re.compile(path)
        except re.error as exc:
            raise ValidationFailed.field("path", f"not a valid regular expression: {exc}") from exc
    rows = conn.execute(sa.select(J).where(*where).order_by(J.c.id.desc()))
    out: list[dict[str, Any]] = []
    for row in rows:
        if pattern is not None and not pattern.search(row.path):
            continue
        out.append(view(row))
        if len(out) >= limit:
            break
    out.reverse()
    return {"count": len(out), "size": size_of(conn), "results": out}


def clear(conn: Connection) -> None:
    conn.execute(J.delete())


def entry(
    *,
    method: str,
    path: str,
    query_string: bytes,
    status: int,
    started: float,
    ended: float,
    headers: dict[bytes, bytes],
    request_id: str | None,
    project_id: int | None,
    injected_fault: int | None,
    request_body: bytes,
    response_body: bytes,
) -> dict[str, Any]:
    """One journal row before redaction (built on the request path: cheap)."""
    retry = headers.get(b"x-stainless-retry-count")
    return {
        "at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        "method": method,
        "path": path,
        "query": query_string.decode("latin-1") or None,
        "status": status,
        "latency_ms": (ended - started) * 1000,
        "retry_count": int(retry) if retry and retry.isdigit() else None,
        "request_id": request_id,
        "project_id": project_id,
        "injected_fault": injected_fault,
        "user_agent": headers.get(b"user-agent", b"").decode("latin-1") or None,
        "request_body": request_body,
        "response_body": response_body,
    }
