"""Bodies refused where they enter (not JSON, not UTF-8, too deep, a NUL) have the shape of every
other validation error: the field's own message in ``invalid_fields``, and the message
"Validation Error: " with the whole map (a new user's trial found the prefix repeated inside
``invalid_fields``, and invalid UTF-8 described as "surrogates not allowed ... (char 0)")."""

from __future__ import annotations

import httpx
import pytest


@pytest.fixture
def http(server, project):
    with httpx.Client(base_url=server.url, headers={"Authorization": f"APIKey {project[1]}"}) as c:
        yield c, project[0]


def _refused(c: httpx.Client, pid: int, content: bytes) -> dict:
    r = c.post(
        f"/cloud/v1/loadbalancers/{pid}/1", content=content, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["exception_class"] == "ValidationError" and body["request_id"] == r.headers["x-request-id"]
    assert body["message"] == f"Validation Error: {body['invalid_fields']}"
    assert c.get(f"/cloud/v1/loadbalancers/{pid}/1").json()["count"] == 0
    return body["invalid_fields"]


def test_invalid_utf8_names_the_byte_and_its_offset(http) -> None:
    c, pid = http
    fields = _refused(c, pid, b'{"name": "web\xff\xfe"}')
    assert fields == {"body": ["Malformed JSON body: not UTF-8 text (byte 0xff at offset 13)"]}


def test_malformed_json_is_not_prefixed_twice(http) -> None:
    c, pid = http
    [message] = _refused(c, pid, b'{"name": "web",}')["body"]
    assert message.startswith("Malformed JSON body: ") and "Validation Error" not in message


def test_a_nul_names_its_field(http) -> None:
    c, pid = http
    assert _refused(c, pid, b'{"name": "we\\u0000b"}') == {"name": ["May not contain a NUL character"]}
