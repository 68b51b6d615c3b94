"""Recognise a retried request and answer it with the original response.

The SDK retries POSTs on 408/409/429/5xx and lost connections without an
idempotency key. Every accepted task-creating request is recorded in the
transaction that accepted it, under a fingerprint of caller, method, path
and body (or of an ``Idempotency-Key`` header when one is sent); a retry
(``x-stainless-retry-count > 0``) with the same fingerprint within 60 s, or a
repeated key within 24 h, gets the stored response and creates nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.clock import utcnow
from lbaas.db import tables
from lbaas.db.prepared import Prepared

I = tables.idempotency  # noqa: E741
RETRY_WINDOW = dt.timedelta(seconds=60)
KEY_WINDOW = dt.timedelta(hours=24)


def fingerprint(method: str, path: str, body: bytes, key: str | None) -> str:
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), (key or "").encode(), b"" if key else body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def lookup(conn: Connection, principal: int, fp: str, window: dt.timedelta) -> tuple[int, bytes] | None:
    """The stored response of the same request accepted within ``window``."""
    if conn.dialect.name == "postgresql":
        # Two copies of one request racing: the second waits for the first to commit.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:fp))"), {"fp": fp})
    row = conn.execute(
        sa.select(I.c.status_code, I.c.body)
        .where(I.c.principal == principal, I.c.fingerprint == fp, I.c.created_at >= utcnow() - window)
        .order_by(I.c.id.desc())
        .limit(1)
    ).first()
    return (row.status_code, row.body.encode()) if row else None


# Prepared (lbaas.db.prepared): every accepted task-creating request records its answer.
_RECORD = Prepared(
    I.insert().values(
        {
            c: sa.bindparam(c, type_=I.c[c].type)
            for c in ("principal", "fingerprint", "status_code", "body", "created_at")
        }
    )
)


def record(conn: Connection, principal: int, fp: str, status: int, body: bytes) -> None:
    _RECORD.execute(
        conn, principal=principal, fingerprint=fp, status_code=status, body=body.decode(), created_at=utcnow()
    )
