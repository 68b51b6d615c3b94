"""Floor cost: a minimal single-file FastAPI + SQLite app doing the same single-row work as lbaas.

- GET   /cloud/v1/loadbalancers/{p}/{r}/{id}   one SELECT by id (tags are a JSON column of the row)
- PATCH /cloud/v1/loadbalancers/{p}/{r}/{id}   {"name": ..., "tags": {"k": "v", "gone": null}}: JSON merge of
                                               the tags + rename in one UPDATE ... RETURNING (one transaction)
- GET   /cloud/v1/loadbalancers/{p}/{r}?limit=100&offset=N   count + one page, created_at desc, id
Auth: `Authorization: APIKey <key>`, SHA-256 digest looked up in a table on every request (async def
dependency). The DB is a temp file (WAL, synchronous=NORMAL, or BENCH_SYNCHRONOUS=FULL) seeded with
10,000 LBs at startup; the key comes from BENCH_API_KEY. SQLite is called directly from the event
loop (single worker, microsecond queries).

    BENCH_API_KEY=k python -m uvicorn baseline_minimal:app --app-dir bench --loop uvloop --http httptools
"""

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
from datetime import UTC, datetime

from fastapi import Depends, FastAPI, Header, HTTPException, Query
from fastapi.responses import JSONResponse
from gcore_shape import lb_dict, seed_row
from pydantic import BaseModel, Field

SEED = 10_000
COLS = "id, name, created_at, updated_at, tags"
db: sqlite3.Connection


def seed(conn: sqlite3.Connection) -> None:
    # NORMAL by default (the bar); BENCH_SYNCHRONOUS=FULL: every commit fsyncs, as lbaas's do.
    conn.execute(f"PRAGMA synchronous={os.environ.get('BENCH_SYNCHRONOUS', 'NORMAL')}")
    conn.executescript("""
        PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000;
        CREATE TABLE api_keys (digest TEXT PRIMARY KEY, project_id INTEGER);  -- NULL project = admin
        CREATE TABLE lbs (id TEXT PRIMARY KEY, project_id INTEGER NOT NULL, region_id INTEGER NOT NULL,
                          name TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT,
                          tags TEXT NOT NULL DEFAULT '{}');
        CREATE INDEX lbs_page ON lbs (project_id, region_id, created_at DESC, id);
    """)
    key = os.environ.get("BENCH_API_KEY", "bench")
    with conn:
        conn.execute("INSERT INTO api_keys VALUES (?, NULL)", (hashlib.sha256(key.encode()).hexdigest(),))
        rows = (seed_row(i) for i in range(1, SEED + 1))
        conn.executemany(
            "INSERT INTO lbs (id, project_id, region_id, name, created_at, tags) VALUES (?, 1, 1, ?, ?, ?)",
            ((i, n, c, json.dumps(t)) for i, n, c, t in rows),
        )


@contextlib.asynccontextmanager
async def lifespan(_app):
    global db
    tmp = tempfile.mkdtemp(prefix="bench-minimal-")
    db = sqlite3.connect(os.path.join(tmp, "db.sqlite"), isolation_level=None, check_same_thread=False)
    seed(db)
    yield
    db.close()
    shutil.rmtree(tmp, ignore_errors=True)


app = FastAPI(lifespan=lifespan)


async def auth(project_id: int, authorization: str = Header("")) -> None:
    scheme, _, key = authorization.partition(" ")
    if scheme != "APIKey" or not key:
        raise HTTPException(401, "missing APIKey")
    row = db.execute(
        "SELECT project_id FROM api_keys WHERE digest = ?", (hashlib.sha256(key.encode()).hexdigest(),)
    ).fetchone()
    if row is None or row[0] not in (None, project_id):
        raise HTTPException(403, "forbidden")


class LBPatch(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=255)
    tags: dict[str, str | None] | None = None


def body(row) -> dict:
    return lb_dict(row[0], row[1], row[2], row[3], json.loads(row[4]))


@app.get("/cloud/v1/loadbalancers/{project_id}/{region_id}/{lb_id}", dependencies=[Depends(auth)])
async def get_lb(project_id: int, region_id: int, lb_id: str):
    row = db.execute(
        f"SELECT {COLS} FROM lbs WHERE id = ? AND project_id = ? AND region_id = ?",
        (lb_id, project_id, region_id),
    ).fetchone()
    if row is None:
        raise HTTPException(404, "load balancer not found")
    return JSONResponse(body(row))


@app.patch("/cloud/v1/loadbalancers/{project_id}/{region_id}/{lb_id}", dependencies=[Depends(auth)])
async def patch_lb(project_id: int, region_id: int, lb_id: str, patch: LBPatch):
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
    rows = db.execute(
        f"UPDATE lbs SET name = coalesce(?, name), tags = json_patch(tags, ?), updated_at = ? "
        f"WHERE id = ? AND project_id = ? AND region_id = ? RETURNING {COLS}",
        (patch.name, json.dumps(patch.tags or {}), now, lb_id, project_id, region_id),
    ).fetchall()  # fetchall: the statement runs to completion, so the autocommit transaction commits
    if not rows:
        raise HTTPException(404, "load balancer not found")
    return JSONResponse(body(rows[0]))


@app.get("/cloud/v1/loadbalancers/{project_id}/{region_id}", dependencies=[Depends(auth)])
async def list_lbs(
    project_id: int, region_id: int, limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)
):
    scope = (project_id, region_id)
    count = db.execute("SELECT count(*) FROM lbs WHERE project_id = ? AND region_id = ?", scope).fetchone()[0]
    rows = db.execute(
        f"SELECT {COLS} FROM lbs WHERE project_id = ? AND region_id = ? "
        "ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
        (*scope, limit, offset),
    ).fetchall()
    return JSONResponse({"count": count, "results": [body(r) for r in rows]})
