"""The deprecated tag ("metadata") endpoints of load balancers and floating IPs.

Gcore keeps them for old clients (its OpenAPI marks every one deprecated in
favour of the resources' PATCH). Each is a tag merge patch on the resource:

* ``POST .../metadata``: set the given tags (``CreateTagsSerializer``: values, no nulls);
* ``PUT .../metadata``: replace every user tag by the given ones;
* ``DELETE .../metadata_item?key=``: remove one tag (404 if the resource has none by that key);
* ``GET .../metadata`` (``TagCollectionSerializer``) and ``GET .../metadata_item?key=``
  (``TagSerializer``, 404 if there is no such tag).

Read-only tags behave as in the PATCHes: they survive, and naming one is a 400.
The v1 calls are synchronous; the v2 load balancer calls answer the
``update_loadbalancer`` task of the v2 PATCH.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection

from lbaas.db import tables
from lbaas.domain import tags as tags_mod
from lbaas.errors import NotFound
from lbaas.services import floating_ips as fips
from lbaas.services import load_balancers as lbs
from lbaas.services.common import Ctx, get_row, load_tags, page, write_tags

KINDS = {
    "loadbalancer": (tables.load_balancers, "Load balancer"),
    "floatingip": (tables.floating_ips, fips.KIND),
}


def _tags(conn: Connection, ctx: Ctx, kind: str, resource_id: str) -> dict[str, tags_mod.Tag]:
    table, name = KINDS[kind]
    get_row(conn, table, resource_id, ctx, name)  # 404 unless the caller's
    return load_tags(conn, [resource_id])[resource_id]


def collection(conn: Connection, ctx: Ctx, kind: str, resource_id: str) -> dict[str, Any]:
    """``TagCollectionSerializer``: every tag of the resource, by key."""
    items = tags_mod.to_wire(_tags(conn, ctx, kind, resource_id))
    return page(len(items), items)


def item(conn: Connection, ctx: Ctx, kind: str, resource_id: str, key: str) -> dict[str, Any]:
    """``TagSerializer`` of one key; 404 if the resource has no such tag."""
    tag = _tags(conn, ctx, kind, resource_id).get(key.strip())
    if tag is None:
        raise NotFound.of("Tag", key)
    return tag.to_wire()


def replacement(current: Mapping[str, tags_mod.Tag], new: Mapping[str, str]) -> dict[str, str | None]:
    """The merge patch that makes the user tags exactly ``new`` (read-only ones are kept by the patch)."""
    gone = {k: None for k, t in current.items() if not t.read_only and k not in new}
    return {**gone, **new}


def patch_for(
    conn: Connection,
    ctx: Ctx,
    kind: str,
    resource_id: str,
    op: str,
    tags: Mapping[str, Any] | None,
    key: str | None,
) -> dict[str, Any]:
    """The merge patch a metadata call means: ``op`` is ``set``, ``replace`` or ``delete`` (one key)."""
    if op == "set":
        return dict(tags or {})
    current = _tags(conn, ctx, kind, resource_id)
    if op == "replace":
        return replacement(current, tags or {})
    assert key is not None
    if key.strip() not in current:
        raise NotFound.of("Tag", key)
    return {key: None}


def apply(conn: Connection, ctx: Ctx, kind: str, resource_id: str, patch: Mapping[str, Any] | None) -> None:
    """Apply a tag merge patch now (the v1 calls and the v1 floating IP PATCH)."""
    if kind == "loadbalancer":
        lbs.update(conn, ctx, resource_id, {"tags": patch})
        return
    fips.lock_mutable(conn, ctx, resource_id)
    before = load_tags(conn, [resource_id])[resource_id]
    after = tags_mod.merge_patch(before, patch)
    if after != before:
        write_tags(conn, "floatingip", resource_id, before, after)
