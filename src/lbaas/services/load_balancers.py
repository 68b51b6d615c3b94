"""Load balancer use cases: one function per API operation."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.clock import new_id, utcnow
from lbaas.db import dataplane, ipam, lifecycle, queue, tables
from lbaas.db import metrics as metrics_db
from lbaas.db.prepared import Prepared
from lbaas.domain import metrics as domain_metrics
from lbaas.domain import tags as tags_mod
from lbaas.domain.flavors import DEFAULT_FLAVOR
from lbaas.errors import Conflict, NotFound, ValidationFailed
from lbaas.services import quotas, views
from lbaas.services.common import (
    Ctx,
    check_flavor,
    fetch_page,
    load_tags,
    lock_row,
    page,
    tag_filters,
    write_tags,
)

LB = tables.load_balancers
FIP = tables.floating_ips

ORDER_COLUMNS = {
    "created_at": LB.c.created_at,
    "flavor": LB.c.flavor,
    "name": LB.c.name,
    "operating_status": LB.c.operating_status,
    "provisioning_status": LB.c.provisioning_status,
    "updated_at": LB.c.updated_at,
    "vip_address": LB.c.vip_address,
    "vip_ip_family": LB.c.vip_ip_family,
}


# -- reading -----------------------------------------------------------------
# An LB's view needs its tags and listener ids too. Both come back with the LB
# row, aggregated into one string each by correlated subqueries, so a GET or a
# page of 100 costs one statement (plus one for floating IPs, when there are
# any). Tab and newline can occur in neither tag keys nor values, so they
# separate fields and tags; ids and timestamps contain neither space nor comma.
_T, _L = tables.tags, tables.listeners
_TAGS_AGG = (
    sa.select(
        sa.func.aggregate_strings(
            sa.case((_T.c.read_only, "1"), else_="0") + _T.c.key + "\t" + _T.c.value, "\n"
        )
    )
    .where(_T.c.resource_id == LB.c.id)
    .scalar_subquery()
    .label("tags_agg")
)
_LISTENERS_AGG = (
    sa.select(sa.func.aggregate_strings(sa.cast(_L.c.created_at, sa.String) + " " + _L.c.id, ","))
    .where(_L.c.lb_id == LB.c.id)
    .scalar_subquery()
    .label("listeners_agg")
)
_HAS_FIP = sa.exists().where(FIP.c.lb_id == LB.c.id).label("has_fip")
LB_VIEW = sa.select(LB, _TAGS_AGG, _LISTENERS_AGG, _HAS_FIP)
_FIPS = sa.select(FIP).where(FIP.c.lb_id.in_(sa.bindparam("ids", expanding=True)))
_GET = LB_VIEW.where(
    LB.c.id == sa.bindparam("id"),
    LB.c.project_id == sa.bindparam("project_id"),
    LB.c.region_id == sa.bindparam("region_id"),
)


_GET_FAST = Prepared(_GET)


@functools.cache
def _update_statement(columns: tuple[str, ...]) -> Prepared:
    """``UPDATE load_balancers SET <columns> WHERE id = :b_id``, prepared once per set of columns."""
    values = {c: sa.bindparam(c, type_=LB.c[c].type) for c in columns}
    return Prepared(LB.update().where(LB.c.id == sa.bindparam("b_id")).values(values))


def _tags(agg: str | None) -> dict[str, tags_mod.Tag]:
    out = {}
    for item in (agg or "").split("\n") if agg else ():
        key, _, value = item[1:].partition("\t")
        out[key] = tags_mod.Tag(key, value, item[0] == "1")
    return out


def _listener_ids(agg: str | None) -> list[str]:
    # "created_at id" pairs: sorting them orders listeners by creation, then id.
    return [pair.rpartition(" ")[2] for pair in sorted(agg.split(","))] if agg else []


def _views(conn: Connection, rows: list[Any], ctx: Ctx, show_stats: bool = False) -> list[dict[str, Any]]:
    """Rows of ``LB_VIEW`` to LoadBalancer dicts."""
    fips: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with_fip = [r.id for r in rows if r.has_fip]
    if with_fip:
        fip_rows = conn.execute(_FIPS, {"ids": with_fip}).all()
        fip_tags = load_tags(conn, [f.id for f in fip_rows])
        for f in fip_rows:
            fips[f.lb_id].append(views.floating_ip(f, fip_tags[f.id], ctx.region_name))
    measured = dataplane.stats_of(conn, [r.id for r in rows]) if show_stats else {}
    return [
        views.load_balancer(
            r,
            _tags(r.tags_agg),
            _listener_ids(r.listeners_agg),
            fips[r.id],
            ctx.region_name,
            _stats(measured.get(r.id)) if show_stats else None,
        )
        for r in rows
    ]


_STATS_KEYS = ("active_connections", "bytes_in", "bytes_out", "request_errors", "total_connections")


def _stats(measured: dict[str, Any] | None) -> dict[str, int]:
    """Measured counters (monotonic across reloads; the noop provider measures none: zeros)."""
    lb = (measured or {}).get("lb", {})
    return {k: int(lb.get(k, 0)) for k in _STATS_KEYS}


def get_many(conn: Connection, ctx: Ctx, lb_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Views of several LBs of the caller's project and region, by id (missing ids are left out)."""
    if not lb_ids:
        return {}
    where = [LB.c.id.in_(list(lb_ids)), LB.c.project_id == ctx.project_id, LB.c.region_id == ctx.region_id]
    return {v["id"]: v for v in _views(conn, conn.execute(LB_VIEW.where(*where)).all(), ctx)}


def get(conn: Connection, ctx: Ctx, lb_id: str, *, show_stats: bool = False) -> dict[str, Any]:
    """One load balancer of the caller's project and region."""
    row = _GET_FAST.first(conn, id=lb_id, project_id=ctx.project_id, region_id=ctx.region_id)
    if row is None:
        raise NotFound.of("Load balancer", lb_id)
    return _views(conn, [row], ctx, show_stats)[0]


def parse_order(order_by: str | None, columns: dict[str, Any], default: str) -> list[Any]:
    """``field.asc|desc`` to ORDER BY clauses, with id as the tie-break."""
    field, _, direction = (order_by or default).partition(".")
    if field not in columns or direction not in ("asc", "desc"):  # Gcore: order_by is an enum
        allowed = ", ".join(f"{c}.{d}" for c in columns for d in ("asc", "desc"))
        raise ValidationFailed.field("order_by", f"Input should be one of: {allowed}")
    col = columns[field]
    first = col.asc() if direction == "asc" else col.desc()
    return [
        first.nulls_last() if direction == "asc" else first.nulls_first(),
        LB.c.id.asc() if direction == "asc" else LB.c.id.desc(),
    ]


_SCOPE = (LB.c.project_id == sa.bindparam("project_id"), LB.c.region_id == sa.bindparam("region_id"))
_COUNT_IN_SCOPE = Prepared(sa.select(sa.func.count().label("n")).select_from(LB).where(*_SCOPE))


@functools.cache
def _plain_page(order_by: str) -> tuple[Prepared, Prepared]:
    """(count, page) of the LBs of one project and region in one order, prepared once per order."""
    order = parse_order(order_by, ORDER_COLUMNS, "created_at.desc")
    page_of = LB_VIEW.where(*_SCOPE).order_by(*order).limit(sa.bindparam("lim")).offset(sa.bindparam("off"))
    return _COUNT_IN_SCOPE, Prepared(page_of)


def parse_tag_key_value(raw: str | None) -> dict[str, str] | None:
    """The ``tag_key_value`` query parameter: a JSON object in one string (Gcore: application/json)."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ValidationFailed.field(
            "tag_key_value", 'must be a JSON object such as {"env": "prod"}'
        ) from exc
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValidationFailed.field("tag_key_value", "must be a JSON object of string values")
    return value


def list_(
    conn: Connection,
    ctx: Ctx,
    *,
    limit: int,
    offset: int,
    order_by: str | None = None,
    name: str | None = None,
    tag_key: list[str] | None = None,
    tag_key_value: str | None = None,
    operating_status: str | None = None,
    provisioning_status: str | None = None,
    logging_enabled: bool | None = None,
    assigned_floating: bool | None = None,
    show_stats: bool = False,
) -> dict[str, Any]:
    """A page of load balancers and the total number of matches."""
    where = [LB.c.project_id == ctx.project_id, LB.c.region_id == ctx.region_id]
    if name is not None:
        where.append(LB.c.name == name)
    if operating_status is not None:
        where.append(LB.c.operating_status == operating_status)
    if provisioning_status is not None:
        where.append(LB.c.provisioning_status == provisioning_status)
    if logging_enabled is not None:
        where.append(LB.c.logging_enabled == logging_enabled)
    if assigned_floating is not None:
        has_fip = sa.exists().where(FIP.c.lb_id == LB.c.id)
        where.append(has_fip if assigned_floating else ~has_fip)
    where += tag_filters(LB.c.id, tag_key, parse_tag_key_value(tag_key_value))
    order = parse_order(order_by, ORDER_COLUMNS, "created_at.desc")
    if len(where) == 2:  # the common page: no filter but the scope (prepared, see _plain_page)
        count, page_of = _plain_page(order_by or "created_at.desc")
        scope = {"project_id": ctx.project_id, "region_id": ctx.region_id}
        total = count.first(conn, **scope)[0]
        rows = [] if total <= offset else page_of.all(conn, **scope, lim=limit, off=offset)
        return page(total, _views(conn, rows, ctx, show_stats))
    total, rows = fetch_page(conn, LB, where, order, limit, offset, query=LB_VIEW)
    return page(total, _views(conn, rows, ctx, show_stats))


# -- writing -----------------------------------------------------------------
_LB_INSERT = LB.insert()


def _check_logging(conn: Connection, logging: dict[str, Any] | None) -> None:
    # A reference by id to a region that does not exist (Gcore: unknown ids are refused).
    region = (logging or {}).get("destination_region_id")
    if (
        region is not None
        and conn.execute(sa.select(tables.regions.c.id).where(tables.regions.c.id == region)).first() is None
    ):
        raise ValidationFailed.field("logging.destination_region_id", f"Region {region} does not exist")


def _lock_mutable(conn: Connection, ctx: Ctx, lb_id: str) -> Any:
    row = lock_row(conn, LB, lb_id, ctx, "Load balancer")
    if row.provisioning_status == "PENDING_DELETE":
        raise Conflict(f"Load balancer {lb_id} is being deleted by task {row.task_id}")
    return row


_COUNT_ALL = Prepared(sa.select(sa.func.count()).select_from(LB))  # a create where a capacity limit is set


def create(conn: Connection, ctx: Ctx, body: dict[str, Any]) -> str:
    """Accept a new load balancer: rows PENDING_CREATE and a task, in one transaction."""
    # An LB created without a flavor runs the catalogue's default one (and shows it).
    flavor = check_flavor(body["flavor"]) if body.get("flavor") is not None else DEFAULT_FLAVOR
    ctx.capabilities.check_flavor(flavor)
    ctx.capabilities.check_capacity(lambda: _COUNT_ALL.first(conn)[0])
    # A limit of this deployment, not a rule: VIPs are addresses of LBAAS_VIP_POOL, which is
    # IPv4 on loopback; an IPv6 or dual-stack VIP cannot be given (docs/api-compat.md).
    if body.get("vip_ip_family") not in (None, "ipv4"):
        raise ValidationFailed.field(
            "vip_ip_family", "this deployment serves IPv4 VIPs only (on 127.0.0.0/8)"
        )
    _check_logging(conn, body.get("logging"))
    tags = tags_mod.clean_tag_map(body.get("tags"))
    quotas.check(conn, ctx.project_id, "loadbalancer_count", 1)
    lb_id, task_id, now = new_id(), new_id(), utcnow()
    vip = ipam.allocate(conn, "vip")
    logging = body.get("logging")
    conn.execute(  # the prebuilt INSERT: building .values() per call cost ~0.1 ms
        _LB_INSERT,
        {
            "id": lb_id,
            "project_id": ctx.project_id,
            "region_id": ctx.region_id,
            "name": body["name"],
            "flavor": flavor,
            "vip_address": vip,
            "vip_port_id": str(body.get("vip_port_id") or new_id()),
            "vip_ip_family": "ipv4",
            "vip_network_id": _s(body.get("vip_network_id")),
            "vip_subnet_id": _s(body.get("vip_subnet_id")),
            "preferred_connectivity": body.get("preferred_connectivity") or "L2",
            "admin_state_up": True,
            "logging": logging,
            "logging_enabled": bool(logging and logging.get("enabled")),
            "provisioning_status": "PENDING_CREATE",
            "operating_status": "OFFLINE",
            "task_id": task_id,
            "creator_task_id": task_id,
            "created_at": now,
        },
    )
    write_tags(conn, "loadbalancer", lb_id, {}, {k: tags_mod.Tag(k, v) for k, v in tags.items()})
    created: dict[str, list[str]] = {"loadbalancers": [lb_id]}
    from lbaas.services import nested  # the object graph below the LB

    nested.create_children(conn, ctx, lb_id, body, task_id, created)
    queue.enqueue(
        conn,
        ctx.task_scope,
        "create_loadbalancer",
        lock_key=lb_id,
        created=created,
        task_id=task_id,
        data={"name": body["name"]},
    )
    return task_id


def _s(value: Any) -> str | None:
    return None if value is None else str(value)


def update(conn: Connection, ctx: Ctx, lb_id: str, changes: dict[str, Any], *, apply: bool = True) -> None:
    """The seed PATCH: apply the fields present, at once; tags as a merge patch.

    A change the data plane must carry (``logging``) commits here and queues an
    internal apply task (invisible to clients; the LB stays as it is), unless
    ``apply`` is False because the caller queues a task of its own.
    """
    row = _lock_mutable(conn, ctx, lb_id)
    values = _field_changes(conn, changes)
    if apply and "logging" in values and values["logging"] != row.logging:
        lifecycle.request_apply(conn, lb_id)
    if "tags" in changes:
        before = load_tags(conn, [lb_id])[lb_id]
        after = tags_mod.merge_patch(before, changes["tags"])
        write_tags(conn, "loadbalancer", lb_id, before, after)
    # Whole seconds, as shown (fmt_resource): a PATCH that repeats what the LB already has then
    # rewrites its row with the same bytes, which SQLite skips, so the commit writes nothing and
    # needs no fsync (a retried PATCH, a client re-sending the same fields).
    values["updated_at"] = max(utcnow().replace(microsecond=0), row.updated_at or row.created_at)
    _update_statement(tuple(sorted(values))).execute(conn, b_id=lb_id, **values)


def _field_changes(conn: Connection, changes: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field in ("name", "preferred_connectivity", "admin_state_up"):
        if changes.get(field) is not None:
            values[field] = changes[field]
    if "logging" in changes:
        logging = changes["logging"]
        _check_logging(conn, logging)
        values["logging"] = logging
        values["logging_enabled"] = bool(logging and logging.get("enabled"))
    return values


def update_v2(conn: Connection, ctx: Ctx, lb_id: str, changes: dict[str, Any]) -> str:
    """The asynchronous PATCH: same fields plus admin_state_up, applied by a task."""
    update(conn, ctx, lb_id, changes, apply=False)
    return _enqueue(conn, ctx, lb_id, "update_loadbalancer")


def _enqueue(
    conn: Connection,
    ctx: Ctx,
    lb_id: str,
    task_type: str,
    status: str = "PENDING_UPDATE",
    args: dict[str, Any] | None = None,
) -> str:
    task_id = queue.enqueue(conn, ctx.task_scope, task_type, lock_key=lb_id, args=args)
    lifecycle.hold_lb(conn, lb_id, task_id, status)
    return task_id


def delete(conn: Connection, ctx: Ctx, lb_id: str) -> str:
    """Queue the deletion of an LB and its whole tree, behind its queue."""
    _lock_mutable(conn, ctx, lb_id)
    return _enqueue(conn, ctx, lb_id, "delete_loadbalancer", "PENDING_DELETE")


def failover(conn: Connection, ctx: Ctx, lb_id: str, *, force: bool = False) -> str:
    """Queue a restart of the LB's data plane."""
    row = _lock_mutable(conn, ctx, lb_id)
    # Gcore: force "Validate current load balancer status before failover or not".
    if not force and row.provisioning_status == "ERROR":
        raise ValidationFailed.field("force", "the load balancer is in ERROR; use force=true to fail it over")
    return _enqueue(conn, ctx, lb_id, "failover_loadbalancer")


def resize(conn: Connection, ctx: Ctx, lb_id: str, flavor: str) -> str:
    """Queue a move to another flavor."""
    _lock_mutable(conn, ctx, lb_id)
    check_flavor(flavor)
    ctx.capabilities.check_flavor(flavor)
    conn.execute(LB.update().where(LB.c.id == lb_id).values(flavor=flavor, updated_at=utcnow()))
    return _enqueue(conn, ctx, lb_id, "resize_loadbalancer", args={"flavor": flavor})


def metrics(
    conn: Connection,
    ctx: Ctx,
    lb_id: str,
    time_interval: int,
    time_unit: str,
    *,
    interval: int = 60,
    now: float | None = None,
) -> dict[str, Any]:
    """The LB's samples over the window, oldest first (:func:`lbaas.domain.metrics.window`).

    ``time_unit=hour``: one entry per sampling interval (``interval`` s, the sampler's); ``day``:
    one per hour, the samples averaged. An entry with no sample has every value null (the
    emulator measures nothing: all null). ``network_Bps_*`` are bits per second (the SDK's
    unit), ``network_pps_*`` are never measured (null). ``time``: the start of the entry's
    period, UTC (Gcore's form, ``2020-07-07T12:57:00Z``).
    """
    get(conn, ctx, lb_id)
    now = utcnow().replace(tzinfo=dt.UTC).timestamp() if now is None else now
    win = domain_metrics.window(now, interval, time_unit, time_interval)
    measured = metrics_db.slots(conn, lb_id, win.begin, win.end, win.width)
    samples = []
    for start in win.starts:
        values = measured.get(start) or {}
        samples.append(
            {
                "time": dt.datetime.fromtimestamp(start, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "cpu_util": values.get("cpu_util"),
                "memory_util": values.get("memory_util"),
                "network_Bps_egress": values.get("network_bps_egress"),
                "network_Bps_ingress": values.get("network_bps_ingress"),
                "network_pps_egress": None,
                "network_pps_ingress": None,
            }
        )
    return page(len(samples), samples)


def check_limits(conn: Connection, ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    """What creating one more LB (with the given options) would use of the quotas."""
    wants_fip = 1 if body.get("floating_ip") and body["floating_ip"].get("source") == "new" else 0
    out: dict[str, Any] = {}
    for name, requested in (
        ("loadbalancer_count", 1),
        ("floating_count", wants_fip),
        ("external_ip_count", 1),
        ("laas_topic_count", 0),
    ):
        limit, usage = quotas.usage(conn, ctx.project_id, name)
        out[f"{name}_limit"], out[f"{name}_usage"], out[f"{name}_requested"] = limit, usage, requested
    return out
