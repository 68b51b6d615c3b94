"""Time and identifiers, in one place so tests and formats agree."""

from __future__ import annotations

import datetime as dt
import uuid


def utcnow() -> dt.datetime:
    """Naive UTC, microsecond precision: what the database stores."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_id() -> str:
    """A UUID4 string, the id form of every resource and task."""
    return str(uuid.uuid4())


def fmt_resource(ts: dt.datetime | None) -> str | None:
    """Resource timestamps, Gcore style: ``2019-06-18T11:56:16+0000``."""
    # isoformat is C and ~5x faster than strftime; the same text for every year lbaas stores.
    return None if ts is None else ts.isoformat(timespec="seconds") + "+0000"


def fmt_task(ts: dt.datetime | None) -> str | None:
    """Task timestamps: naive ISO, as in Gcore's fixtures."""
    return None if ts is None else ts.isoformat(timespec="seconds")
