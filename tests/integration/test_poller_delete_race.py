"""A poll that reads an LB just before its delete stops the HAProxy is not a failure.

The poller reads the served LBs, then asks HAProxy; a delete may stop the HAProxy in between.
It used to log "data plane down ...; restarting it from the desired state" at every delete (a new
user's trial found it). An LB that is gone or PENDING_DELETE is neither healed nor reported down;
an ACTIVE LB seen down still is (the control case below).
"""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from lbaas.db import dataplane, tables
from lbaas.providers.base import Observation
from lbaas.providers.noop import NoopProvider
from lbaas.tasks import poller as poller_mod
from tests.integration.engine_harness import LB, held_server


@pytest.fixture
def lb(tmp_path):
    with held_server("sqlite", tmp_path, provider=NoopProvider()) as h:
        task = h.tasks("POST", LB, {"name": "removed"})[0]
        lb_id = h.http.get(f"/cloud/v1/tasks/{task}").json()["created_resources"]["loadbalancers"][0]
        yield h, lb_id


def _down(lb_id: str) -> Observation:
    return Observation(lb_id, running=False, reason="HAProxy socket unavailable: No such file or directory")


def _apply_tasks(h, lb_id: str) -> int:
    T = tables.tasks
    with h.db.read() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(T).where(T.c.lock_key == lb_id, T.c.internal.is_(True))
        ).scalar()


def _set_status(h, lb_id: str, status: str) -> None:
    L = tables.load_balancers
    with h.db.write() as conn:
        conn.execute(L.update().where(L.c.id == lb_id).values(provisioning_status=status))


def test_an_lb_being_deleted_is_not_healed_nor_reported_down(lb, caplog) -> None:
    h, lb_id = lb
    _set_status(h, lb_id, "PENDING_DELETE")
    poller = poller_mod.Poller(h.db, h.provider)
    poller.restart_backoff = (0.0, 0.3)
    with caplog.at_level(logging.INFO, logger=poller_mod.__name__):
        poller.store({lb_id: _down(lb_id)})
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert poller.give_up_state(lb_id) is None
    assert _apply_tasks(h, lb_id) == 0
    with h.db.read() as conn:
        assert dataplane.running_of(conn)[lb_id] is not False


def test_an_active_lb_seen_down_is_still_restarted_and_reported(lb, caplog) -> None:
    h, lb_id = lb
    poller = poller_mod.Poller(h.db, h.provider)
    poller.restart_backoff = (0.0, 0.3)
    with caplog.at_level(logging.INFO, logger=poller_mod.__name__):
        poller.store({lb_id: _down(lb_id)})
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert "data plane DOWN" in warned and "restarting it from the desired state" in warned
    assert poller.give_up_state(lb_id) == {"attempts": 1, "gave_up": False}
    assert _apply_tasks(h, lb_id) == 1
    with h.db.read() as conn:
        assert dataplane.running_of(conn)[lb_id] is False
