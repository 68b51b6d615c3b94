"""Prepared statements give the same rows, with the same Python values, as SQLAlchemy Core.

Run on both databases over a real landscape (an LB with tags, a listener, a pool, members),
for every statement the hot paths prepare: authentication, one LB's view, a page of LBs in
every order, rows by id of every table, tags, and the seed PATCH's writes.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from lbaas.db import tables
from lbaas.db.prepared import Prepared
from lbaas.services import common
from lbaas.services import load_balancers as lbs
from lbaas.services.auth import digest
from tests.conftest import ADMIN_TOKEN


def _landscape(client) -> str:
    lb = client.cloud.load_balancers.create_and_poll(
        name="prep-lb",
        tags={"env": "prod", "team": "a"},
        logging={"enabled": True, "retention_policy": {"period": 3}},
        listeners=[
            {
                "name": "web",
                "protocol": "HTTP",
                "protocol_port": 80,
                "pools": [
                    {
                        "name": "pool-a",
                        "protocol": "HTTP",
                        "lb_algorithm": "ROUND_ROBIN",
                        "members": [{"address": "127.0.0.5", "protocol_port": 80}],
                    }
                ],
            }
        ],
    )
    client.cloud.load_balancers.create_and_poll(name="prep-lb2")
    return lb.id


def test_prepared_rows_equal_core_rows(server, client) -> None:
    lb_id = _landscape(client)
    with server.db.read() as conn:
        project, region = conn.execute(
            sa.select(tables.load_balancers.c.project_id, tables.load_balancers.c.region_id).where(
                tables.load_balancers.c.id == lb_id
            )
        ).one()
        scope = {"project_id": project, "region_id": region}

        core = conn.execute(common._AUTH_SCOPE, {"digest": digest(ADMIN_TOKEN), **scope}).first()
        fast = common._AUTH_SCOPE_FAST.first(conn, digest=digest(ADMIN_TOKEN), **scope)
        assert tuple(fast) == tuple(core)

        core = conn.execute(lbs._GET, {"id": lb_id, **scope}).first()
        fast = lbs._GET_FAST.first(conn, id=lb_id, **scope)
        assert tuple(fast) == tuple(core)
        assert isinstance(fast.created_at, dt.datetime) and fast.admin_state_up is True
        assert fast.logging["retention_policy"]["period"] == 3 and "env" in fast.tags_agg

        for order in lbs.ORDER_COLUMNS:
            for direction in ("asc", "desc"):
                order_by = f"{order}.{direction}"
                count, page_of = lbs._plain_page(order_by)
                statement = (
                    lbs.LB_VIEW.where(tables.load_balancers.c.project_id == project)
                    .where(tables.load_balancers.c.region_id == region)
                    .order_by(*lbs.parse_order(order_by, lbs.ORDER_COLUMNS, "created_at.desc"))
                    .limit(10)
                )
                assert [tuple(r) for r in page_of.all(conn, **scope, lim=10, off=0)] == [
                    tuple(r) for r in conn.execute(statement).all()
                ]
                assert count.first(conn, **scope)[0] == 2

        for table in (tables.load_balancers, *tables.LB_CHILDREN):
            for row in conn.execute(sa.select(table.c.id, table.c.project_id, table.c.region_id)).all():
                ids = {"id": row.id, "project_id": row.project_id, "region_id": row.region_id}
                fast = common._by_id(table, False).first(conn, **ids)
                core = conn.execute(sa.select(table).where(table.c.id == row.id)).first()
                assert tuple(fast) == tuple(core), table.name

        assert {k: t.value for k, t in common.load_tags(conn, [lb_id])[lb_id].items()} == {
            "env": "prod",
            "team": "a",
        }


def test_prepared_writes_store_what_core_would(server, client) -> None:
    lb_id = _landscape(client)
    when = dt.datetime(2026, 11, 30, 12, 0, 0)  # no microseconds: the text form must still be Core's
    with server.db.write() as conn:
        lbs._update_statement(("name", "updated_at")).execute(
            conn, b_id=lb_id, name="renamed", updated_at=when
        )
    with server.db.read() as conn:
        row = conn.execute(
            sa.select(tables.load_balancers.c.name, tables.load_balancers.c.updated_at).where(
                tables.load_balancers.c.id == lb_id
            )
        ).one()
        assert row.name == "renamed" and row.updated_at == when
        if conn.dialect.name == "sqlite":
            text = conn.exec_driver_sql(
                "SELECT updated_at FROM load_balancers WHERE id = ?", (lb_id,)
            ).scalar()
            assert text == "2026-11-30 12:00:00.000000"  # SQLAlchemy's storage format, as Core writes it


def test_postcompile_literals_are_inlined(server) -> None:
    q = sa.select(sa.func.aggregate_strings(tables.regions.c.name, "\n").label("names")).where(
        tables.regions.c.id == sa.bindparam("id")
    )
    with server.db.read() as conn:
        assert Prepared(q).first(conn, id=1).names == conn.execute(q, {"id": 1}).scalar()


def test_task_path_statements_read_what_core_reads(server, client) -> None:
    """The statements every task runs (lifecycle, snapshot, queue) on Prepared, against Core."""
    from lbaas.db import lifecycle, queue, snapshot

    lb_id = _landscape(client)
    with server.db.read() as conn:
        for table in tables.LB_CHILDREN:
            core = [dict(r) for r in conn.execute(sa.select(table).where(table.c.lb_id == lb_id)).mappings()]
            assert [r._asdict() for r in lifecycle._ROWS_OF_LB[table.name].all(conn, lb_id=lb_id)] == core
            assert [r._asdict() for r in snapshot._ROWS_OF_LB[table.name].all(conn, lb_id=lb_id)] == core
        lb = conn.execute(sa.select(tables.load_balancers).where(tables.load_balancers.c.id == lb_id))
        assert lifecycle._LB_ROW.first(conn, lb_id=lb_id)._asdict() == dict(lb.mappings().one())
        assert snapshot._LB_ROW.first(conn, lb_id=lb_id) == lifecycle._LB_ROW.first(conn, lb_id=lb_id)

        assert queue.queue_head(conn, lb_id) is None

    # The one-statement look-up names exactly the tables holding a task's rows (rolled back).
    with server.db.writer.connect() as conn:
        tx = conn.begin()
        assert lifecycle._held_tables(conn, "t-held") == []
        m = tables.members
        conn.execute(m.update().where(m.c.lb_id == lb_id).values(task_id="t-held"))
        assert lifecycle._held_tables(conn, "t-held") == [m]
        tx.rollback()


def test_applied_snapshot_statements_match_core(server, client) -> None:
    """The applied snapshot written on Prepared reads back on Core as the same JSON; running and
    member health read on Prepared as Core reads them."""
    import dataclasses

    from lbaas.db import dataplane

    lb_id = _landscape(client)
    DS, MH = tables.dataplane_state, tables.member_health
    with server.db.read() as conn:
        snap = dataplane.applied(conn, lb_id)
        stored = conn.execute(sa.select(DS.c.applied).where(DS.c.lb_id == lb_id)).scalar()
        assert snap is not None and snap.to_dict() == stored
        running = conn.execute(sa.select(DS.c.running).where(DS.c.lb_id == lb_id)).scalar()
        assert dataplane.is_running(conn, lb_id) == running
        health = dict(conn.execute(sa.select(MH.c.member_id, MH.c.health).where(MH.c.lb_id == lb_id)).all())
        assert dataplane.member_health(conn, lb_id) == health
    with server.db.writer.connect() as conn:
        tx = conn.begin()
        again = dataclasses.replace(snap, name="re-applied")
        dataplane.record_applied(conn, again)
        stored = conn.execute(sa.select(DS.c.applied, DS.c.applied_at).where(DS.c.lb_id == lb_id)).one()
        assert stored.applied == again.to_dict() and stored.applied["name"] == "re-applied"
        assert isinstance(stored.applied_at, dt.datetime)
        tx.rollback()
