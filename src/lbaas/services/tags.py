"""Operator-managed (read-only) tags."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.db import tables
from lbaas.domain.tags import Tag, clean_key, clean_value
from lbaas.errors import NotFound
from lbaas.services.common import load_tags, write_tags

TAGGABLE = {"loadbalancer": tables.load_balancers, "floatingip": tables.floating_ips}


def add_read_only(conn: Connection, resource_id: str, key: str, value: str) -> None:
    """Attach a read-only tag; an existing user tag with that key becomes read-only."""
    for kind, table in TAGGABLE.items():  # noqa: B007 - kind is used after the loop
        if conn.execute(sa.select(table.c.id).where(table.c.id == resource_id)).first() is not None:
            break
    else:
        raise NotFound.of("Resource", resource_id)
    k = clean_key(key)
    before = load_tags(conn, [resource_id])[resource_id]
    after = {**before, k: Tag(k, clean_value(value, k), read_only=True)}
    write_tags(conn, kind, resource_id, before, after)
