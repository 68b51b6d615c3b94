"""API keys: random tokens, stored only as SHA-256 digests.

A token looks like Gcore's, ``<key id>$<64 hex>``, so a shell that eats
``$...`` is caught by the truncated-token message. Keys are looked up on
every request (a primary-key read), so a new key works and a revoked key
stops working at once, in every process.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lbaas.clock import utcnow
from lbaas.db import tables
from lbaas.db.prepared import Prepared
from lbaas.errors import Forbidden, NotAuthenticated, NotFound

K = tables.api_keys
ADMIN_ENV_NAME = "admin (LBAAS_ADMIN_API_KEY)"
GENERATED_ADMIN_NAME = "admin (generated at first start)"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a project key, or the admin key (project_id None)."""

    key_id: int
    user_id: int
    project_id: int | None

    @property
    def is_admin(self) -> bool:
        return self.project_id is None

    def check_project(self, project_id: int) -> None:
        """A project key may only name its own project (403 ForbiddenError: Gcore's permission denied)."""
        if self.project_id is not None and self.project_id != project_id:
            raise Forbidden(f"This API key has no access to project {project_id}")

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("This operation needs the admin API key")


def digest(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_header(value: str | None) -> str:
    """The token of an ``Authorization: APIKey <token>`` header (scheme case-insensitive)."""
    if not value or not value.strip():
        raise NotAuthenticated("Authentication credentials were not provided.")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "apikey":
        raise NotAuthenticated("Given token not valid for any token type")
    token = token.strip()
    if not token:
        raise NotAuthenticated("Authentication credentials were not provided.")
    return token


# Built once and run as Prepared (lbaas.db.prepared): every request authenticates.
_BY_DIGEST = Prepared(
    sa.select(K.c.id, K.c.user_id, K.c.project_id, K.c.revoked_at).where(K.c.digest == sa.bindparam("digest"))
)


def authenticate(conn: Connection, token: str) -> Principal:
    """The principal of a token, or 401 with Gcore's wording."""
    row = _BY_DIGEST.first(conn, digest=digest(token))
    if row is None:
        if "$" not in token or len(token.partition("$")[2]) < 64:
            raise NotAuthenticated(f"Bad permanent token: {token[:8]}")
        raise NotAuthenticated("Token is invalid or expired")
    if row.revoked_at is not None:
        raise NotAuthenticated("Token is invalid or expired")
    return Principal(row.id, row.user_id, row.project_id)


def _insert(conn: Connection, name: str, project_id: int | None, token: str | None = None) -> tuple[int, str]:
    next_user = conn.execute(sa.select(sa.func.coalesce(sa.func.max(K.c.user_id), 0) + 1)).scalar_one()
    key_id = conn.execute(
        K.insert()
        .values(
            digest="pending-" + secrets.token_hex(16),
            name=name,
            project_id=project_id,
            user_id=next_user,
            created_at=utcnow(),
        )
        .returning(K.c.id)
    ).scalar_one()
    token = token or f"{key_id}${secrets.token_hex(32)}"
    conn.execute(K.update().where(K.c.id == key_id).values(digest=digest(token)))
    return key_id, token


def create(conn: Connection, project_id: int, name: str | None = None) -> tuple[int, str]:
    """A new project-scoped key; the token is returned once and never stored."""
    P = tables.projects
    if conn.execute(sa.select(P.c.id).where(P.c.id == project_id, P.c.deleted_at.is_(None))).first() is None:
        raise NotFound.of("Project", project_id)
    return _insert(conn, name or f"project-{project_id}", project_id)


def ensure_admin(conn: Connection, token: str) -> None:
    """Make ``token`` the admin key given by the environment, replacing an older one.

    A token this variable set before (then replaced by another, so revoked) works again: digests
    are unique, so it is the same row. ValueError when the token is a project's key or another
    revoked key.
    """
    d = digest(token)
    same = conn.execute(
        sa.select(K.c.id, K.c.name, K.c.project_id, K.c.revoked_at).where(K.c.digest == d)
    ).first()
    if same is not None and same.project_id is not None:
        raise ValueError(
            f"LBAAS_ADMIN_API_KEY is the token of a key of project {same.project_id}; choose another token"
        )
    if same is not None and same.revoked_at is not None and same.name != ADMIN_ENV_NAME:
        raise ValueError(f"LBAAS_ADMIN_API_KEY is the token of key {same.id}, revoked; choose another token")
    current = conn.execute(
        sa.select(K.c.id).where(K.c.name == ADMIN_ENV_NAME, K.c.revoked_at.is_(None), K.c.digest != d)
    ).scalars()
    for key_id in list(current):
        conn.execute(K.update().where(K.c.id == key_id).values(revoked_at=utcnow()))
    if same is None:
        _insert(conn, ADMIN_ENV_NAME, None, token)
    elif same.revoked_at is not None:
        conn.execute(K.update().where(K.c.id == same.id).values(revoked_at=None))


def admin_keys(conn: Connection) -> list[str]:
    """Digests of the admin keys that work (not revoked)."""
    q = sa.select(K.c.digest).where(K.c.project_id.is_(None), K.c.revoked_at.is_(None))
    return list(conn.execute(q).scalars())


def add_admin(conn: Connection, token: str | None = None) -> str:
    """A new admin key (``token``, or a generated one); returns the token."""
    return _insert(conn, GENERATED_ADMIN_NAME, None, token)[1]


def list_keys(conn: Connection) -> list[dict[str, Any]]:
    """Every key, without secrets."""
    rows = conn.execute(
        sa.select(K.c.id, K.c.name, K.c.project_id, K.c.user_id, K.c.created_at, K.c.revoked_at).order_by(
            K.c.id
        )
    )
    return [dict(r._mapping) for r in rows]


def revoke(conn: Connection, key_id: int) -> None:
    """Revoke a key; it stops working at the next request."""
    res = conn.execute(
        K.update().where(K.c.id == key_id, K.c.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
    if res.rowcount != 1:
        raise NotFound.of("API key", key_id)
