"""Snapshots: one project's whole state as one JSON document, and back, ids kept.

A snapshot holds the project (name, description, quotas), its load balancers with every
child (listeners, pools, members, health monitors, L7 policies and rules), its floating IPs,
its secrets and the tags of all of them: the rows as stored, one list per table. Task
history is not part of it; a project with unfinished tasks cannot be exported (409), so a
snapshot never holds a PENDING state that no task would settle.

Import writes the rows into a project (the document's, or another one given; created when
missing). Ids are kept, so an id that already exists anywhere is refused with 409 unless
``replace`` asks to remove what holds it first (the whole load balancer that holds a
colliding id, the colliding floating IP or secret). Addresses are kept when they belong to
this server's pools and are free, and otherwise replaced by new ones (the answer lists
them). Secret payloads travel encrypted: they survive only when the importing server can
decrypt them (both share ``LBAAS_SECRET_KEY``); otherwise the secret arrives as metadata
without a payload (the answer lists those).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas import __version__
from lbaas.clock import utcnow
from lbaas.db import ipam, lifecycle, statuses, tables
from lbaas.db.queue import ACTIVE_STATES
from lbaas.emulator.controls import bump
from lbaas.emulator.reset import restart_sequences
from lbaas.errors import Conflict, NotFound, ValidationFailed
from lbaas.tasks.handlers import delete_lb_rows

FORMAT = "lbaas-snapshot"
VERSION = 1
t = tables
LB = t.load_balancers
FIP = t.floating_ips
# Insert order (parents first); every one has an ``id`` and a ``project_id``.
RESOURCE_TABLES: tuple[sa.Table, ...] = (LB, *t.LB_CHILDREN, FIP, t.secrets)
ALL_TABLES = {str(table.name): table for table in (*RESOURCE_TABLES, t.tags)}


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def _rows(conn: Connection, query: sa.Select) -> list[dict[str, Any]]:
    return [{str(k): _plain(v) for k, v in row.items()} for row in conn.execute(query).mappings()]


def export(conn: Connection, project_id: int) -> dict[str, Any]:
    """The snapshot document of one project (see the module doc)."""
    project = conn.execute(sa.select(t.projects).where(t.projects.c.id == project_id)).first()
    if project is None or project.deleted_at is not None:
        raise NotFound.of("Project", project_id)
    busy = conn.execute(
        sa.select(sa.func.count())
        .select_from(t.tasks)
        .where(
            t.tasks.c.project_id == project_id,
            t.tasks.c.state.in_(ACTIVE_STATES),
            t.tasks.c.internal.is_(False),  # an internal apply holds no row (lbaas.db.lifecycle)
        )
    ).scalar_one()
    if busy:
        raise Conflict(
            f"Project {project_id} has {busy} unfinished task(s); wait for them (or release held tasks) "
            "before taking a snapshot"
        )
    out: dict[str, list[dict[str, Any]]] = {}
    ids: list[str] = []
    for table in RESOURCE_TABLES:
        rows = _rows(conn, sa.select(table).where(table.c.project_id == project_id).order_by(table.c.id))
        out[str(table.name)] = rows
        ids += [r["id"] for r in rows]
    out["tags"] = (
        _rows(
            conn,
            sa.select(t.tags)
            .where(t.tags.c.resource_id.in_(ids))
            .order_by(t.tags.c.resource_id, t.tags.c.key),
        )
        if ids
        else []
    )
    quotas = conn.execute(
        sa.select(t.quotas.c.name, t.quotas.c.limit).where(t.quotas.c.project_id == project_id)
    )
    return {
        "format": FORMAT,
        "version": VERSION,
        "lbaas_version": __version__,
        "exported_at": utcnow().isoformat() + "Z",
        "project": {"id": project.id, "name": project.name, "description": project.description},
        "quotas": {q.name: q.limit for q in quotas},
        "tables": out,
    }


# -- import ---------------------------------------------------------------------------------


def _bad(message: str) -> ValidationFailed:
    return ValidationFailed.field("snapshot", message)


def _parse(doc: Any) -> dict[str, list[dict[str, Any]]]:
    """The document's rows per table, each checked against the schema and typed for insert."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _bad(f"not an lbaas snapshot (format must be {FORMAT!r})")
    if doc.get("version") != VERSION:
        raise _bad(f"unsupported snapshot version {doc.get('version')!r}; this server reads {VERSION}")
    raw = doc.get("tables")
    if not isinstance(raw, dict):
        raise _bad("tables must be an object")
    unknown = set(raw) - set(ALL_TABLES)
    if unknown:
        raise _bad(f"unknown tables: {', '.join(sorted(unknown))}")
    parsed: dict[str, list[dict[str, Any]]] = {}
    for name, table in ALL_TABLES.items():
        rows = raw.get(name, [])
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise _bad(f"tables.{name} must be a list of objects")
        out = []
        for row in rows:
            extra = set(row) - set(table.c.keys())
            if extra:
                raise _bad(f"tables.{name}: unknown columns {', '.join(sorted(extra))}")
            typed = {}
            for key, value in row.items():
                if isinstance(table.c[key].type, sa.DateTime) and isinstance(value, str):
                    try:
                        value = dt.datetime.fromisoformat(value.removesuffix("Z"))
                    except ValueError as exc:
                        raise _bad(f"tables.{name}.{key}: not a date-time: {value!r}") from exc
                typed[key] = value
            key_columns = ("resource_id", "key") if name == "tags" else ("id",)
            if any(typed.get(k) in (None, "") for k in key_columns):
                raise _bad(f"tables.{name}: every row needs {' and '.join(key_columns)}")
            out.append(typed)
        parsed[name] = out
    return parsed


def _collisions(conn: Connection, rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[Any]]:
    """Existing rows, per table, that hold an id of the snapshot."""
    found: dict[str, list[Any]] = {}
    for table in RESOURCE_TABLES:
        ids = [r["id"] for r in rows[table.name]]
        hits: list[Any] = []
        for start in range(0, len(ids), 500):
            cols = [table.c.id] + ([table.c.lb_id] if "lb_id" in table.c else [])
            hits += list(conn.execute(sa.select(*cols).where(table.c.id.in_(ids[start : start + 500]))))
        if hits:
            found[str(table.name)] = hits
    return found


def _remove(conn: Connection, found: dict[str, list[Any]]) -> list[str]:
    """Make room for a replacing import; returns the load balancers removed."""
    lb_ids: set[str] | list[str]
    children = {c.name for c in t.LB_CHILDREN}
    lb_ids = {h.id for h in found.get("load_balancers", [])}
    lb_ids |= {h.lb_id for name, hits in found.items() if name in children for h in hits}
    lb_ids = sorted(lb_ids)
    if lb_ids:
        T = t.tasks
        busy = conn.execute(
            sa.select(T.c.lock_key).where(
                T.c.lock_key.in_(lb_ids), T.c.state.in_(ACTIVE_STATES), T.c.internal.is_(False)
            )
        ).first()
        if busy is not None:
            raise Conflict(f"Load balancer {busy.lock_key} has unfinished tasks; it cannot be replaced now")
        # An internal apply still waiting on a replaced LB would only find it gone.
        conn.execute(T.delete().where(T.c.lock_key.in_(lb_ids), T.c.state == "NEW", T.c.internal.is_(True)))
    for lb_id in lb_ids:
        delete_lb_rows(conn, lb_id)
    for hit in found.get("floating_ips", []):
        address = conn.execute(sa.select(FIP.c.floating_ip_address).where(FIP.c.id == hit.id)).scalar()
        conn.execute(t.tags.delete().where(t.tags.c.resource_id == hit.id))
        conn.execute(FIP.delete().where(FIP.c.id == hit.id))
        ipam.release(conn, "fip", address)
    for hit in found.get("secrets", []):
        conn.execute(t.secrets.delete().where(t.secrets.c.id == hit.id))
    return lb_ids


def _reserve(conn: Connection, pool: str, address: str | None, owner: sa.Column) -> bool:
    """Keep ``address`` if it lies in this server's pool and nobody holds it; mark it taken."""
    if not address:
        return False
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        return False
    net = ipaddress.ip_network(ipam.POOLS[pool], strict=False)
    if addr not in net or addr == ipaddress.ip_address("127.0.0.1"):
        return False
    if conn.execute(sa.select(owner).where(owner == address)).first() is not None:
        return False
    index = int(addr) - (int(net.network_address) + 1)
    if index < 0:
        return False
    P, R = t.address_pools, t.released_addresses
    current = conn.execute(sa.select(P.c.next_index).where(P.c.name == pool)).scalar()
    if current is None:
        conn.execute(P.insert().values(name=pool, next_index=index + 1))
    elif current <= index:
        conn.execute(P.update().where(P.c.name == pool).values(next_index=index + 1))
    conn.execute(R.delete().where(R.c.pool == pool, R.c.address == address))
    return True


def _ensure_project(conn: Connection, project_id: int, meta: dict[str, Any]) -> None:
    P = t.projects
    row = conn.execute(sa.select(P.c.id, P.c.deleted_at).where(P.c.id == project_id)).first()
    if row is None:
        name = str(meta.get("name") or f"project-{project_id}")[:63]
        conn.execute(
            P.insert().values(
                id=project_id,
                client_id=1,
                name=name,
                description=meta.get("description"),
                is_default=False,
                state="ACTIVE",
                created_at=utcnow(),
            )
        )
        restart_sequences(conn)
    elif row.deleted_at is not None:
        conn.execute(
            P.update().where(P.c.id == project_id).values(deleted_at=None, state="ACTIVE", task_id=None)
        )


def import_(
    conn: Connection,
    doc: Any,
    *,
    project_id: int | None,
    replace: bool,
    reencrypt: Callable[[str], str | None],
) -> dict[str, Any]:
    """Write a snapshot into a project (see the module doc).

    ``reencrypt(ciphertext)`` returns the payload encrypted for this server, or None when this
    server cannot decrypt it. The answer lists what was imported, the load balancers removed to
    make room (``replaced``), new addresses (``readdressed``), secrets without payload, and
    the internal tasks that bring the imported LBs to the data plane (``apply_tasks``).
    """
    rows = _parse(doc)
    meta = doc.get("project") if isinstance(doc.get("project"), dict) else {}
    target = project_id if project_id is not None else meta.get("id")
    if not isinstance(target, int) or target < 1:
        raise _bad("the snapshot names no project; give project_id")
    regions = {r[0] for r in conn.execute(sa.select(t.regions.c.id))}
    for table in RESOURCE_TABLES:
        for row in rows[table.name]:
            if row.get("region_id") not in regions:
                raise _bad(f"tables.{table.name}: region {row.get('region_id')!r} does not exist here")
    found = _collisions(conn, rows)
    if found and not replace:
        sample = "; ".join(f"{name} {hits[0].id}" for name, hits in found.items())
        total = sum(map(len, found.values()))
        raise Conflict(
            f"The snapshot's ids already exist ({sample}; {total} in all); "
            "import with replace=true to replace them"
        )
    replaced = _remove(conn, found) if found else []
    _ensure_project(conn, target, meta)
    readdressed: dict[str, str] = {}
    new_vips: dict[str, str] = {}
    for lb in rows["load_balancers"]:
        if not _reserve(conn, "vip", lb.get("vip_address"), LB.c.vip_address):
            lb["vip_address"] = ipam.allocate(conn, "vip")
            readdressed[lb["id"]] = lb["vip_address"]
        new_vips[lb["id"]] = lb["vip_address"]
    for fip in rows["floating_ips"]:
        if not _reserve(conn, "fip", fip.get("floating_ip_address"), FIP.c.floating_ip_address):
            fip["floating_ip_address"] = ipam.allocate(conn, "fip", "floating_ip_address")
            readdressed[fip["id"]] = fip["floating_ip_address"]
        if fip.get("lb_id") in new_vips:
            fip["fixed_ip_address"] = new_vips[fip["lb_id"]]
        elif fip.get("lb_id") is not None:  # its LB is not in the snapshot
            fip.update(lb_id=None, port_id=None, fixed_ip_address=None, status="DOWN")
    without_payload = []
    for secret in rows["secrets"]:
        if secret.get("payload"):
            secret["payload"] = reencrypt(secret["payload"])
            if secret["payload"] is None:
                without_payload.append(secret["id"])
    counts: dict[str, int] = {}
    for table in RESOURCE_TABLES:
        batch = [{**r, "project_id": target, "task_id": None} for r in rows[table.name]]
        if batch:
            conn.execute(table.insert(), batch)
        counts[str(table.name)] = len(batch)
    if rows["tags"]:
        conn.execute(t.tags.insert(), rows["tags"])
    counts["tags"] = len(rows["tags"])
    for name, limit in (doc.get("quotas") or {}).items():
        if isinstance(limit, int):
            conn.execute(t.quotas.delete().where(t.quotas.c.project_id == target, t.quotas.c.name == name))
            conn.execute(t.quotas.insert().values(project_id=target, name=str(name)[:64], limit=limit))
    applies = []
    for lb in rows["load_balancers"]:
        statuses.refresh(conn, lb["id"])
        # The data plane takes the imported LB through the task engine (an internal apply).
        task_id = lifecycle.request_apply(conn, lb["id"])
        if task_id is not None:
            applies.append(task_id)
    bump(conn)
    return {
        "project_id": target,
        "imported": counts,
        "replaced": replaced,
        "readdressed": readdressed,
        "secrets_without_payload": without_payload,
        "load_balancers": [lb["id"] for lb in rows["load_balancers"]],
        "apply_tasks": applies,
    }
