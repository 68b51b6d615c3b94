"""Worker internals that the API tests cannot reach directly."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from lbaas.clock import utcnow
from lbaas.db import tables


def test_housekeeping_forgets_old_fingerprints(server) -> None:
    idem = tables.idempotency
    with server.db.write() as conn:
        for age in (dt.timedelta(hours=25), dt.timedelta(minutes=1)):
            conn.execute(
                idem.insert().values(
                    principal=-1,
                    fingerprint=f"hk-{age}",
                    status_code=200,
                    body="{}",
                    created_at=utcnow() - age,
                )
            )
    server.app.state.worker.housekeeping()
    with server.db.read() as conn:
        left = conn.execute(sa.select(idem.c.fingerprint).where(idem.c.principal == -1)).scalars().all()
    assert left == ["hk-0:01:00"]
