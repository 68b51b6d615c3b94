"""Floor cost on PostgreSQL: baseline_minimal.py's app on psycopg 3 (the driver lbaas uses).

The same three endpoints, auth and 10,000 seeded rows, in a fresh database created at start and
dropped at exit (BENCH_PG_URL names the server's admin database, default
postgresql://postgres@127.0.0.1:5432/test). One connection in autocommit mode, called from the
event loop like the SQLite app; tags are a jsonb column, merged with ``||`` and ``-`` (keys with null
values deleted), which is RFC 7386 for the flat string maps the bench sends.

    BENCH_API_KEY=k python -m uvicorn baseline_minimal_pg:app --app-dir bench --loop uvloop --http httptools
"""

import contextlib
import hashlib
import json
import os
import secrets
from datetime import UTC, datetime

import psycopg
from fastapi import Depends, FastAPI, Header, HTTPException, Query
from fastapi.responses import JSONResponse
from gcore_shape import lb_dict, seed_row
from pydantic import BaseModel, Field

SEED = 10_000
COLS = "id, name, created_at, updated_at, tags"
ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
db: psycopg.Connection


def seed(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TABLE api_keys (digest TEXT PRIMARY KEY, project_id INTEGER)")
    conn.execute("""CREATE TABLE lbs (id TEXT PRIMARY KEY, project_id INTEGER NOT NULL,
                    region_id INTEGER NOT NULL, name TEXT NOT NULL, created_at TEXT NOT NULL,
                    updated_at TEXT, tags JSONB NOT NULL DEFAULT '{}')""")
    conn.execute("CREATE INDEX lbs_page ON lbs (project_id, region_id, created_at DESC, id)")
    key = os.environ.get("BENCH_API_KEY", "bench")
    conn.execute("INSERT INTO api_keys VALUES (%s, NULL)", (hashlib.sha256(key.encode()).hexdigest(),))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO lbs (id, project_id, region_id, name, created_at, tags)"
            " VALUES (%s, 1, 1, %s, %s, %s)",
            [(i, n, c, json.dumps(t)) for i, n, c, t in (seed_row(i) for i in range(1, SEED + 1))],
        )
    conn.execute("ANALYZE lbs")


@contextlib.asynccontextmanager
async def lifespan(_app):
    global db
    name = "bench_minimal_" + secrets.token_hex(4)
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    db = psycopg.connect(ADMIN_URL.rsplit("/", 1)[0] + "/" + name, autocommit=True)
    try:
        seed(db)
        yield
    finally:
        db.close()
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


app = FastAPI(lifespan=lifespan)


async def auth(project_id: int, authorization: str = Header("")) -> None:
    scheme, _, key = authorization.partition(" ")
    if scheme != "APIKey" or not key:
        raise HTTPException(401, "missing APIKey")
    row = db.execute(
        "SELECT project_id FROM api_keys WHERE digest = %s", (hashlib.sha256(key.encode()).hexdigest(),)
    ).fetchone()
    if row is None or row[0] not in (None, project_id):
        raise HTTPException(403, "forbidden")


class LBPatch(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=255)
    tags: dict[str, str | None] | None = None


def body(row) -> dict:
    return lb_dict(row[0], row[1], row[2], row[3], row[4])


@app.get("/cloud/v1/loadbalancers/{project_id}/{region_id}/{lb_id}", dependencies=[Depends(auth)])
async def get_lb(project_id: int, region_id: int, lb_id: str):
    row = db.execute(
        f"SELECT {COLS} FROM lbs WHERE id = %s AND project_id = %s AND region_id = %s",
        (lb_id, project_id, region_id),
    ).fetchone()
    if row is None:
        raise HTTPException(404, "load balancer not found")
    return JSONResponse(body(row))


@app.patch("/cloud/v1/loadbalancers/{project_id}/{region_id}/{lb_id}", dependencies=[Depends(auth)])
async def patch_lb(project_id: int, region_id: int, lb_id: str, patch: LBPatch):
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
    tags = patch.tags or {}
    kept = {k: v for k, v in tags.items() if v is not None}
    gone = [k for k, v in tags.items() if v is None]
    row = db.execute(
        f"UPDATE lbs SET name = coalesce(%s, name), tags = (tags || %s::jsonb) - %s::text[], updated_at = %s "
        f"WHERE id = %s AND project_id = %s AND region_id = %s RETURNING {COLS}",
        (patch.name, json.dumps(kept), gone, now, lb_id, project_id, region_id),
    ).fetchone()
    if row is None:
        raise HTTPException(404, "load balancer not found")
    return JSONResponse(body(row))


@app.get("/cloud/v1/loadbalancers/{project_id}/{region_id}", dependencies=[Depends(auth)])
async def list_lbs(
    project_id: int, region_id: int, limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)
):
    scope = (project_id, region_id)
    count = db.execute("SELECT count(*) FROM lbs WHERE project_id = %s AND region_id = %s", scope).fetchone()[
        0
    ]
    rows = db.execute(
        f"SELECT {COLS} FROM lbs WHERE project_id = %s AND region_id = %s "
        "ORDER BY created_at DESC, id LIMIT %s OFFSET %s",
        (*scope, limit, offset),
    ).fetchall()
    return JSONResponse({"count": count, "results": [body(r) for r in rows]})
