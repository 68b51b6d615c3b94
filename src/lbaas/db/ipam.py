"""Address pools for VIPs and floating IPs.

Never-used addresses go first, in order; a released address joins the back
of a queue and is handed out again only when the fresh ones are gone, so a
client holding a stale address of a deleted load balancer is unlikely to
reach a new one. The unique columns on the owners are the last guard
against two live objects holding one address.
"""

from __future__ import annotations

import ipaddress

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.clock import utcnow
from lbaas.db import tables
from lbaas.db.prepared import Prepared
from lbaas.errors import ValidationFailed

P = tables.address_pools
R = tables.released_addresses
_RESERVED = {ipaddress.ip_address("127.0.0.1")}

# Pool name -> CIDR, set once at start from the settings (LBAAS_VIP_POOL, LBAAS_FIP_POOL).
POOLS: dict[str, str] = {"vip": "127.1.0.0/16", "fip": "127.2.0.0/16"}


def configure(**pools: str) -> None:
    """Set the CIDR of named pools for this process."""
    POOLS.update(pools)


def _nth_host(net: ipaddress.IPv4Network | ipaddress.IPv6Network, index: int):
    """The index-th usable host of a network, skipping the network address and 127.0.0.1."""
    first = int(net.network_address) + 1
    last = int(net.broadcast_address) - 1
    while first + index <= last:
        addr = ipaddress.ip_address(first + index)
        if addr not in _RESERVED:
            return addr
        index += 1
    return None


def _insert(conn: Connection):
    """The dialect's INSERT, which knows ON CONFLICT DO NOTHING (SQLite and PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


# Prepared (lbaas.db.prepared): every create allocates a VIP this way.
_LOCKED = Prepared(sa.select(P.c.next_index).where(P.c.name == sa.bindparam("pool")).with_for_update())
_ADVANCE = Prepared(
    P.update()
    .where(P.c.name == sa.bindparam("pool"))
    .values(next_index=sa.bindparam("next_index", type_=P.c.next_index.type))
)


def allocate(conn: Connection, pool: str, field: str = "vip_address") -> str:
    """Hand out one address of ``pool``; 400 when the pool is exhausted."""
    cidr = POOLS[pool]
    net = ipaddress.ip_network(cidr, strict=False)
    row = _LOCKED.first(conn, pool=pool)
    if row is None:
        # The pool's first address: concurrent first creates (PostgreSQL) all see no row; the
        # first insert wins, the others' do nothing, and everyone then waits on the one row's lock.
        conn.execute(_insert(conn)(P).values(name=pool, next_index=0).on_conflict_do_nothing())
        row = _LOCKED.first(conn, pool=pool)
    index = row.next_index
    addr = _nth_host(net, index)
    if addr is not None:
        skipped = int(addr) - (int(net.network_address) + 1)
        _ADVANCE.execute(conn, pool=pool, next_index=skipped + 1)
        return str(addr)
    oldest = conn.execute(
        sa.select(R.c.address)
        .where(R.c.pool == pool)
        .order_by(R.c.released_at, R.c.address)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if oldest is None:
        raise ValidationFailed.field(field, f"no free address left in the {pool} pool {cidr}")
    conn.execute(R.delete().where(R.c.pool == pool, R.c.address == oldest.address))
    return str(oldest.address)


def release(conn: Connection, pool: str, address: str | None) -> None:
    """Return an address to the back of the reuse queue."""
    if address is None:
        return
    conn.execute(R.delete().where(R.c.pool == pool, R.c.address == address))
    conn.execute(R.insert().values(pool=pool, address=address, released_at=utcnow()))
