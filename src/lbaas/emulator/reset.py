"""Reset: back to a freshly started server, or one project back to empty, in one transaction.

Everything is removed with set-wide statements (no per-row work), so a reset costs about the
same with 1 or 1,000 load balancers. What a fresh server started with the same settings has
survives a full reset:

* region 1 and the default project 1 (its name, description and state as at the first start);
* the admin key and the live keys of project 1 (an operator made those); every other project
  goes, and its keys with it;
* operator quotas (``lbaas quota set``): configuration, not state;
* the emulator's start settings (``LBAAS_EMULATOR_JOURNAL_SIZE``, ``LBAAS_EMULATOR_TASK_TIMING``).

Address pools start again at their first address and id sequences continue from what is left
(PostgreSQL sequences are moved back), so ids and addresses handed out after a reset are those a
fresh server hands out. The caller removes the returned load balancers from the data plane.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.clock import utcnow
from lbaas.db import ipam, tables
from lbaas.emulator.controls import STATE, bump
from lbaas.errors import NotFound

log = logging.getLogger("lbaas.emulator")

t = tables
LB = t.load_balancers
# Tables with a generated integer key whose PostgreSQL sequence follows the rows.
_SERIAL = ((t.projects, "id"), (t.api_keys, "id"), (t.tasks, "seq"), (t.idempotency, "id"))
_SERIAL += ((t.emulator_faults, "id"), (t.emulator_journal, "id"))


def restart_sequences(conn: Connection) -> None:
    """Move PostgreSQL's id sequences to just past the rows that exist (after deletes or explicit ids)."""
    if conn.dialect.name != "postgresql":
        return  # SQLite hands out max(rowid) + 1 by itself
    for table, column in _SERIAL:
        conn.execute(
            sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column}'), "
                f"COALESCE((SELECT max({column}) FROM {table.name}), 0) + 1, false)"
            )
        )


def reset_all(conn: Connection, *, project_name: str, journal_size: int) -> list[str]:
    """Empty the deployment (see the module doc); returns the ids of the removed LBs."""
    lb_ids = [r[0] for r in conn.execute(sa.select(LB.c.id))]
    conn.execute(t.tags.delete())
    for table in (t.member_health, t.dataplane_state, t.lb_metrics):  # what the data plane reported
        conn.execute(table.delete())
    for table in reversed(t.LB_CHILDREN):
        conn.execute(table.delete())
    conn.execute(t.floating_ips.delete())
    conn.execute(LB.delete())
    for table in (t.secrets, t.tasks, t.idempotency, t.address_pools, t.released_addresses):
        conn.execute(table.delete())
    for table in (t.emulator_faults, t.emulator_timing, t.emulator_held_tasks, t.emulator_journal):
        conn.execute(table.delete())
    keys = t.api_keys
    keep = sa.and_(keys.c.revoked_at.is_(None), sa.or_(keys.c.project_id.is_(None), keys.c.project_id == 1))
    conn.execute(keys.delete().where(~keep))
    conn.execute(t.projects.delete().where(t.projects.c.id != 1))
    conn.execute(
        t.projects.update()
        .where(t.projects.c.id == 1)
        .values(name=project_name, description=None, state="ACTIVE", deleted_at=None, task_id=None)
    )
    conn.execute(STATE.update().where(STATE.c.id == 1).values(journal_size=journal_size))
    bump(conn)
    restart_sequences(conn)
    return lb_ids


def reset_project(conn: Connection, project_id: int) -> list[str]:
    """Remove every resource, task and control of one project; the project and its keys stay."""
    project = conn.execute(sa.select(t.projects.c.id).where(t.projects.c.id == project_id)).first()
    if project is None:
        raise NotFound.of("Project", project_id)
    lbs = list(conn.execute(sa.select(LB.c.id, LB.c.vip_address).where(LB.c.project_id == project_id)))
    lb_ids = [r.id for r in lbs]
    fips = list(
        conn.execute(
            sa.select(t.floating_ips.c.id, t.floating_ips.c.floating_ip_address).where(
                t.floating_ips.c.project_id == project_id
            )
        )
    )
    owned: list[Any] = [LB.c.project_id == project_id]
    resource_ids = [sa.select(LB.c.id).where(*owned)]
    resource_ids += [sa.select(c.c.id).where(c.c.project_id == project_id) for c in t.LB_CHILDREN]
    resource_ids.append(sa.select(t.floating_ips.c.id).where(t.floating_ips.c.project_id == project_id))
    conn.execute(t.tags.delete().where(t.tags.c.resource_id.in_(sa.union_all(*resource_ids))))
    if lb_ids:  # what the data plane reported of them
        for table in (t.member_health, t.dataplane_state, t.lb_metrics):
            conn.execute(table.delete().where(table.c.lb_id.in_(lb_ids)))
    for table in reversed(t.LB_CHILDREN):
        conn.execute(table.delete().where(table.c.project_id == project_id))
    conn.execute(t.floating_ips.delete().where(t.floating_ips.c.project_id == project_id))
    if lb_ids:  # another project's floating IP cannot point here, but never leave a dangling one
        conn.execute(
            t.floating_ips.update()
            .where(t.floating_ips.c.lb_id.in_(lb_ids))
            .values(lb_id=None, port_id=None, fixed_ip_address=None, status="DOWN")
        )
    conn.execute(LB.delete().where(*owned))
    conn.execute(t.secrets.delete().where(t.secrets.c.project_id == project_id))
    conn.execute(t.tasks.delete().where(t.tasks.c.project_id == project_id))
    key_ids = sa.select(t.api_keys.c.id).where(t.api_keys.c.project_id == project_id)
    conn.execute(t.idempotency.delete().where(t.idempotency.c.principal.in_(key_ids)))
    f = t.emulator_faults
    scoped = sa.or_(f.c.project_id == project_id, f.c.lb_id.in_(lb_ids) if lb_ids else sa.false())
    conn.execute(f.delete().where(scoped))
    conn.execute(t.emulator_timing.delete().where(t.emulator_timing.c.project_id == project_id))
    conn.execute(t.emulator_held_tasks.delete().where(t.emulator_held_tasks.c.project_id == project_id))
    conn.execute(t.emulator_journal.delete().where(t.emulator_journal.c.project_id == project_id))
    conn.execute(
        t.projects.update()
        .where(t.projects.c.id == project_id)
        .values(state="ACTIVE", deleted_at=None, task_id=None)
    )
    for row in lbs:
        ipam.release(conn, "vip", row.vip_address)
    for row in fips:
        ipam.release(conn, "fip", row.floating_ip_address)
    bump(conn)
    log.info("emulator: project %s reset at %s (%d load balancers)", project_id, utcnow(), len(lb_ids))
    return lb_ids
