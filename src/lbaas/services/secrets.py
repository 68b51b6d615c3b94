"""Secrets: TLS certificate bundles for TERMINATED_HTTPS listeners and pool TLS.

An upload is parsed and checked at request time (bad input is a 400 and
nothing is stored); the HAProxy-ready PEM bundle is stored encrypted with
:class:`lbaas.certs.SecretBox` and never returned. Tasks use the secret's id
as lock key. A secret in use by a listener or a pool cannot be deleted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas import certs
from lbaas.clock import new_id, utcnow
from lbaas.db import queue, tables
from lbaas.domain import references
from lbaas.errors import Conflict, NotFound, ValidationFailed
from lbaas.services.common import Ctx, fetch_page, get_row, lock_row, page

S = tables.secrets
T = tables.tasks
KIND = "Secret"
OCTET_STREAM = {"default": "application/octet-stream"}
# The v1 create stores TLS bundles only; Octavia-style deployments label them either way.
V1_TYPES = ("certificate", "opaque")


# -- reading -----------------------------------------------------------------
def _fmt(ts: dt.datetime | None) -> str | None:
    """The secret timestamp format of the spec: ``2020-01-01T12:00:00+00:00``."""
    return None if ts is None else ts.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _view(row: Any) -> dict[str, Any]:
    """``Secret``: metadata only, never the payload."""
    return {
        "id": row.id,
        "name": row.name,
        "secret_type": row.secret_type,
        "status": row.status,
        "created": _fmt(row.created_at),
        "expiration": _fmt(row.expiration),
        "algorithm": row.algorithm,
        "bit_length": row.bit_length,
        "mode": row.mode,
        "content_types": row.content_types,
    }


def get(conn: Connection, ctx: Ctx, secret_id: str) -> dict[str, Any]:
    """One secret of the caller's project and region."""
    return _view(get_row(conn, S, secret_id, ctx, KIND))


def list_(conn: Connection, ctx: Ctx, *, limit: int, offset: int) -> dict[str, Any]:
    """A page of secrets (newest first) and the total."""
    where = [S.c.project_id == ctx.project_id, S.c.region_id == ctx.region_id]
    total, rows = fetch_page(conn, S, where, (S.c.created_at.desc(), S.c.id.desc()), limit, offset)
    return page(total, [_view(r) for r in rows])


def decrypt_bundle(conn: Connection, secret_id: str, box: certs.SecretBox) -> str:
    """The HAProxy PEM (leaf, chain, key) of a secret, for the data plane."""
    token = conn.execute(sa.select(S.c.payload).where(S.c.id == secret_id)).scalar()
    if token is None:
        raise NotFound.of(KIND, secret_id)
    return box.decrypt(token)


def lock_for_use(conn: Connection, ctx: Ctx, secret_id: str, field: str = "secret_id") -> Any:
    """A secret a listener or pool is about to reference: locked, so a delete cannot pass it.

    400 naming ``field`` if it is not the caller's or is being deleted.
    """
    try:
        row = lock_row(conn, S, str(secret_id), ctx, KIND)
    except NotFound:
        raise ValidationFailed.field(field, f"Secret {secret_id} could not be found") from None
    # A certificate on its way out (or that failed) cannot be taken up by a listener or pool.
    if _deleting(conn, row.id) is not None or row.status == "ERROR":
        raise ValidationFailed.field(field, f"Secret {secret_id} is being deleted or in ERROR")
    return row


# -- writing -----------------------------------------------------------------
def _utc(value: dt.datetime | str | None, field: str = "expiration") -> dt.datetime | None:
    """Naive UTC (what the database stores); an expiration in the past is refused."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    if value <= utcnow():  # Barbican (Gcore's secret store): an expiration in the past is a 400
        raise ValidationFailed.field(field, "must be in the future")
    return value


def create_v2(conn: Connection, ctx: Ctx, body: dict[str, Any], box: certs.SecretBox) -> str:
    """Store a PEM certificate, chain and key (the SDK's upload_tls_certificate)."""
    expiration = _utc(body.get("expiration"))
    p = body["payload"]
    bundle = certs.parse_pem_bundle(p["certificate"], p["private_key"], p.get("certificate_chain"))
    meta = {"algorithm": bundle.algorithm, "bit_length": bundle.bit_length, "mode": None}
    return _insert(conn, ctx, body["name"], "certificate", bundle, box, expiration, meta, OCTET_STREAM)


def create_v1(conn: Connection, ctx: Ctx, body: dict[str, Any], box: certs.SecretBox) -> str:
    """Store a base64 PKCS#12 archive (the deprecated v1 create)."""
    # lbaas stores TLS bundles only (the listener and pool fields that take a secret need one).
    if body["secret_type"] not in V1_TYPES:
        raise ValidationFailed.field(
            "secret_type", "only TLS bundles are stored here: use 'certificate' (or 'opaque') with PKCS#12"
        )
    expiration = _utc(body.get("expiration"))
    bundle = certs.parse_pkcs12(body["payload"])
    # User metadata wins (it is informational); the certificate's fills the gaps.
    meta = {
        "algorithm": body.get("algorithm") or bundle.algorithm,
        "bit_length": body.get("bit_length") or bundle.bit_length,
        "mode": body.get("mode"),
    }
    content_types = {"default": body["payload_content_type"]}
    return _insert(conn, ctx, body["name"], body["secret_type"], bundle, box, expiration, meta, content_types)


def _insert(
    conn: Connection,
    ctx: Ctx,
    name: str,
    secret_type: str,
    bundle: certs.CertBundle,
    box: certs.SecretBox,
    expiration: dt.datetime | None,
    meta: dict[str, Any],
    content_types: dict[str, str],
) -> str:
    secret_id, task_id = new_id(), new_id()
    conn.execute(
        S.insert().values(
            id=secret_id,
            project_id=ctx.project_id,
            region_id=ctx.region_id,
            name=name,
            secret_type=secret_type,
            status="PENDING",
            content_types=content_types,
            expiration=expiration,
            payload=box.encrypt(bundle.pem),
            task_id=task_id,
            creator_task_id=task_id,
            created_at=utcnow(),
            **meta,
        )
    )
    return queue.enqueue(
        conn,
        ctx.task_scope,
        "create_secret",
        lock_key=secret_id,
        task_id=task_id,
        created={"secrets": [secret_id]},
        data={"name": name},
    )


def _deleting(conn: Connection, secret_id: str) -> str | None:
    return conn.execute(
        sa.select(T.c.id).where(
            T.c.lock_key == secret_id, T.c.task_type == "delete_secret", T.c.state.in_(queue.ACTIVE_STATES)
        )
    ).scalar()


def users(conn: Connection, ctx: Ctx, secret_id: str) -> list[str]:
    """Listeners and pools (not being deleted) that reference the secret."""
    L, P = tables.listeners, tables.pools
    found = []
    for r in conn.execute(
        sa.select(L.c.id, L.c.secret_id, L.c.sni_secret_id).where(
            L.c.project_id == ctx.project_id,
            L.c.region_id == ctx.region_id,
            L.c.provisioning_status != "PENDING_DELETE",
        )
    ):
        if r.secret_id == secret_id or secret_id in (r.sni_secret_id or []):
            found.append(f"listener {r.id}")
    for r in conn.execute(
        sa.select(P.c.id).where(
            P.c.project_id == ctx.project_id,
            P.c.region_id == ctx.region_id,
            P.c.provisioning_status != "PENDING_DELETE",
            sa.or_(P.c.secret_id == secret_id, P.c.ca_secret_id == secret_id, P.c.crl_secret_id == secret_id),
        )
    ):
        found.append(f"pool {r.id}")
    return found


def delete(conn: Connection, ctx: Ctx, secret_id: str) -> str:
    """Queue the deletion; 400 while a listener or pool uses the secret."""
    row = lock_row(conn, S, secret_id, ctx, KIND)
    pending = _deleting(conn, secret_id)
    if pending is not None:
        raise Conflict(f"Secret {secret_id} is being deleted by task {pending}")
    references.check_secret_unused(secret_id, users(conn, ctx, secret_id))
    task_id = queue.enqueue(conn, ctx.task_scope, "delete_secret", lock_key=secret_id)
    if row.task_id is None:
        conn.execute(S.update().where(S.c.id == secret_id).values(task_id=task_id))
    return task_id


# -- task bodies -------------------------------------------------------------
# The bundle was checked and stored at request time; the data plane reads it
# when a listener that uses it is applied, so the tasks only settle the row.
