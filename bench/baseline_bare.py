"""Ceiling: a bare ASGI app (no framework, no DB, no auth) answering the bench paths with fixed
Gcore-shaped JSON. GET/PATCH on .../{id} return one LB (renamed for PATCH); GET on the collection
returns a page of 100.

    python -m uvicorn baseline_bare:app --app-dir bench --loop uvloop --http httptools --no-access-log
"""

import json

from gcore_shape import seeded_lb

ONE = json.dumps(seeded_lb(1)).encode()
PATCHED = json.dumps(
    {
        **seeded_lb(1),
        "name": "lb-renamed",
        "tags_v2": [*seeded_lb(1)["tags_v2"], {"key": "k", "value": "v", "read_only": False}],
    }
).encode()
PAGE = json.dumps({"count": 10000, "results": [seeded_lb(i) for i in range(10000, 9900, -1)]}).encode()
BY_METHOD = {"GET": ONE, "PATCH": PATCHED}
COLLECTION = "/cloud/v1/loadbalancers/1/1"
HEADERS = [(b"content-type", b"application/json")]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    for _ in range(10_000):  # drain the request body (PATCH); bounded
        message = await receive()
        if not message.get("more_body"):
            break
    body = PAGE if scope["path"].rstrip("/") == COLLECTION else BY_METHOD.get(scope["method"], ONE)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": HEADERS + [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
