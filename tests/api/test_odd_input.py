"""Odd input of any size or shape is a 4xx in Gcore's error body, never a 5xx, and changes nothing.

Integers that do not fit 64 bits (SQLite's INTEGER, PostgreSQL's BIGINT) in a
path, a query or a body; strings with a NUL (PostgreSQL refuses them); bodies
that are not strict JSON (lone surrogates, other encodings, not JSON at all),
nested too deep or too large; floats and booleans where integers are expected.
Each case names the field the 400 must name.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN

HUGE = "99999999999999999999"
ANY = str(uuid.uuid4())


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, headers={"Authorization": f"APIKey {ADMIN_TOKEN}"}) as c:
        yield c


def _error(r: httpx.Response, status: int, field: str | None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["request_id"] == r.headers["x-request-id"]
    if field is not None:
        assert body["exception_class"] == "ValidationError", body
        named = body["invalid_fields"]
        assert any(k == field or k.startswith(field + ".") for k in named), body
    return body


LB = "/cloud/v1/loadbalancers"

# (path, field the 400 names)
PATH_AND_QUERY = [
    (f"{LB}/1/{HUGE}", "region_id"),
    (f"{LB}/9223372036854775808/1", "project_id"),
    (f"{LB}/1/-18615264537931857920", "region_id"),
    (f"{LB}/1/{HUGE}/{ANY}", "region_id"),
    (f"{LB}/1/1?limit={HUGE}", "limit"),
    (f"{LB}/1/1?offset={HUGE}", "offset"),
    (f"{LB}/1/1?offset=9223372036854775808", "offset"),
    ("/cloud/v1/tasks?project_id=9223372036854775808", "project_id"),
    ("/cloud/v1/tasks?project_id=2147483648", "project_id"),
    (f"{LB}/2147483648/1", "project_id"),
    ("/cloud/v1/projects/9223372036854775807", "project_id"),
    ("/cloud/v1/tasks?region_id=-18615264537931857920", "region_id"),
    (f"/cloud/v1/tasks/{HUGE}/1/active", "project_id"),
    (f"/cloud/v1/projects/{HUGE}", "project_id"),
    (f"/cloud/v1/regions/{HUGE}", "region_id"),
    (f"/cloud/v1/lbpools/1/{HUGE}", "region_id"),
    (f"/cloud/v1/lbflavors/{HUGE}/1", "project_id"),
    (f"{LB}/1/1?name=a%00b", "name"),
    (f"{LB}/1/1?tag_key_value=%7B%22a%22%3A%22%5Cu0000%22%7D", "tag_key_value"),  # {"a":"\u0000"}
    (f"{LB}/1/1?tag_key_value=%7B%22a%22%3A%22%5Cud800%22%7D", "tag_key_value"),  # {"a":"\ud800"}
    ("/cloud/v1/floatingips/1/1?tag_key_value=%7B%22%5Cu0000%22%3A%22v%22%7D", "tag_key_value"),
    ("/cloud/v1/tasks?to_timestamp=9999-12-31T23:59:59-23:59", "to_timestamp"),
    ("/cloud/v1/tasks?from_timestamp=0001-01-01T00:00:00%2B23:59", "from_timestamp"),
    (f"{LB}/1/1?limit=1.5", "limit"),
    (f"{LB}/1/1?limit=true", "limit"),
]


@pytest.mark.parametrize(("path", "field"), PATH_AND_QUERY, ids=[p for p, _ in PATH_AND_QUERY])
def test_path_and_query_integers_out_of_range_are_400(http, path, field) -> None:
    _error(http.get(path), 400, field)


@pytest.mark.parametrize(
    "path",
    [f"{LB}/1/1?offset=9223372036854775807", "/cloud/v1/tasks?project_id=2147483647&limit=1"],
)
def test_the_largest_64_bit_integers_are_served(http, path) -> None:
    r = http.get(path)
    assert r.status_code == 200, r.text
    assert r.json()["results"] == []


def test_unknown_ids_of_32_bits_are_404(http) -> None:
    """Project and region ids are 32-bit: the largest one is an unknown id, one more is a 400."""
    _error(http.get("/cloud/v1/projects/2147483647"), 404, None)
    _error(http.get(f"{LB}/1/2147483647/{ANY}"), 404, None)


def test_acknowledge_all_with_huge_scope_is_400(http) -> None:
    _error(http.post("/cloud/v1/tasks/acknowledge_all", params={"project_id": HUGE}), 400, "project_id")


# (method, path, JSON text of the body, field the 400 names)
BODIES = [
    ("POST", f"{LB}/1/1", '{"name": "lb-1", "logging": {"destination_region_id": <HUGE>}}', "logging"),
    (
        "POST",
        f"{LB}/1/1",
        '{"name": "lb-1", "listeners": [{"name": "l1", "protocol": "TCP", "protocol_port": <HUGE>}]}',
        "listeners.0.protocol_port",
    ),
    ("POST", f"{LB}/1/1/{ANY}/metrics", '{"time_interval": <HUGE>, "time_unit": "day"}', "time_interval"),
    ("POST", f"{LB}/1/1/{ANY}/metrics", '{"time_interval": 1000000000, "time_unit": "day"}', "time_interval"),
    (
        "POST",
        f"{LB}/1/1/pools/{ANY}/members",
        '{"address": "127.0.0.9", "protocol_port": 80, "weight": <HUGE>}',
        "weight",
    ),
    (
        "POST",
        f"{LB}/1/1/pools/{ANY}/members",
        '{"address": "127.0.0.9", "protocol_port": 80.5}',
        "protocol_port",
    ),
    (
        "POST",
        f"{LB}/1/1/pools/{ANY}/members",
        '{"address": "127.0.0.9", "protocol_port": true}',
        "protocol_port",
    ),
    ("POST", f"{LB}/1/1/pools/{ANY}/members", '{"address": "127.0.0.9", "protocol_port": 1e400}', "body"),
    (
        "PUT",
        f"{LB}/1/1/pools/{ANY}/members",
        '[{"address": "127.0.0.9", "protocol_port": <HUGE>}]',
        "0.protocol_port",
    ),
    (
        "POST",
        "/cloud/v1/l7policies/1/1",
        '{"listener_id": "<ANY>", "action": "REJECT", "position": <HUGE>}',
        "position",
    ),
    (
        "POST",
        "/cloud/v1/l7policies/1/1",
        '{"listener_id": "<ANY>", "action": "REJECT", "position": 2147483648}',
        "position",
    ),
    (
        "PATCH",
        f"/cloud/v2/lbpools/1/1/{ANY}",
        '{"session_persistence": {"type": "SOURCE_IP", "persistence_timeout": <HUGE>}}',
        "session_persistence.persistence_timeout",
    ),
    (
        "POST",
        "/cloud/v1/secrets/1/1",
        '{"name": "s", "payload": "eA==", "payload_content_encoding": "base64", '
        '"payload_content_type": "application/octet-stream", '
        '"secret_type": "certificate", '
        '"bit_length": <HUGE>}',
        "bit_length",
    ),
    (
        "POST",
        "/cloud/v2/secrets/1/1",
        '{"name": "s", "payload": {"certificate": "c", "certificate_chain": "", "private_key": "k"}, '
        '"expiration": "9999-12-31T23:59:59-23:59"}',
        "expiration",
    ),
    ("PATCH", f"{LB}/1/1/{ANY}", '{"name": "a\\u0000b"}', "name"),
    ("PATCH", f"{LB}/1/1/{ANY}", '{"tags": {"k\\u0000": "v"}}', "tags"),
    ("PATCH", f"{LB}/1/1/{ANY}", '{"tags": {"k": "v\\u0000"}}', "tags.k"),
    ("PATCH", f"{LB}/1/1/{ANY}", '{"name": "\\ud800"}', "body"),
    ("POST", "/cloud/v1/projects", '{"name": "\\udfff-project"}', "body"),
]


@pytest.mark.parametrize(
    ("method", "path", "text", "field"), BODIES, ids=[f"{m} {p} {t[:60]}" for m, p, t, _ in BODIES]
)
def test_odd_bodies_are_400(http, method, path, text, field) -> None:
    text = text.replace("<HUGE>", HUGE).replace("<ANY>", ANY)
    r = http.request(method, path, content=text.encode(), headers={"content-type": "application/json"})
    _error(r, 400, field)


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"name": "caf\xe9-lb"}', "application/json"),  # Latin-1, not UTF-8
        (b'\xef\xbb\xbf{"name": "bom-lb"}', "application/json"),
        (b"\xff\xfe{\x00}\x00", "application/json"),  # UTF-16
        (b"name=lb-1", "application/x-www-form-urlencoded"),
        (b"hello", "text/plain"),
        (b"[" * 5000 + b"]" * 5000, "application/json"),
        (b'{"a":' * 100 + b"1" + b"}" * 100, "application/json"),
        (b'{"name": NaN}', "application/json"),
    ],
)
def test_bodies_that_are_not_json_are_400(http, content, content_type) -> None:
    r = http.post(f"{LB}/1/1", content=content, headers={"content-type": content_type})
    _error(r, 400, None)
    assert r.json()["exception_class"] == "ValidationError"


def test_chunked_body_past_the_limit_is_413(http) -> None:
    def chunks():
        yield b'{"name": "'
        for _ in range(40):
            yield b"a" * 65536
        yield b'"}'

    r = http.post(f"{LB}/1/1", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["exception_class"] == "RequestEntityTooLarge"


def test_nothing_changed_by_refused_bodies(server, project) -> None:
    pid, token = project
    headers = {"Authorization": f"APIKey {token}", "content-type": "application/json"}
    for text in (
        '{"name": "a\\u0000b"}',
        '{"name": "\\ud800"}',
        '{"name": "x", "logging": {"destination_region_id": <HUGE>}}',
    ):
        r = httpx.post(f"{server.url}{LB}/{pid}/1", content=text.replace("<HUGE>", HUGE), headers=headers)
        assert r.status_code == 400, r.text
    lbs = httpx.get(f"{server.url}{LB}/{pid}/1", headers=headers).json()
    assert lbs["count"] == 0


def test_a_nul_free_body_still_passes(server, client) -> None:
    """The screen refuses only what it must: a UTF-8 name with non-ASCII tags goes through."""
    lb = client.cloud.load_balancers.create_and_poll(name="screen-ok", tags={"owner": "Zoë ✓"})
    got = client.cloud.load_balancers.get(lb.id)
    assert {t.key: t.value for t in got.tags_v2}["owner"] == "Zoë ✓"
    assert json.loads(json.dumps(got.name)) == "screen-ok"


def test_strings_longer_than_their_columns_are_400(client) -> None:
    """PostgreSQL refuses a value wider than its VARCHAR column; the API refuses it first."""
    import gcore

    lb = client.cloud.load_balancers.create_and_poll(
        name="wide-lb",
        listeners=[
            {
                "name": "wide-l1",
                "protocol": "HTTP",
                "protocol_port": 80,
                "pools": [{"name": "wide-p1", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}],
            }
        ],
    )
    pool = client.cloud.load_balancers.pools.list(load_balancer_id=lb.id).results[0]
    hm = {"type": "HTTP", "delay": 5, "max_retries": 3, "api_timeout": 3}
    for field, value in (("url_path", "/" + "a" * 2048), ("expected_codes", "200," * 64 + "200")):
        with pytest.raises(gcore.BadRequestError) as exc:
            client.cloud.load_balancers.pools.health_monitors.create(pool_id=pool.id, **hm, **{field: value})
        assert field in exc.value.body["invalid_fields"]
    assert client.cloud.load_balancers.pools.get(pool.id).healthmonitor is None
