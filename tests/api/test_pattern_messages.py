"""A string that fails a request model's pattern is refused with words a person can act on,
not the raw regex: one table in ``lbaas.api.errors`` (``PATTERN_HINTS``), Gcore's error body kept."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import pytest
from pydantic import StringConstraints, TypeAdapter, ValidationError

from lbaas.api.errors import PATTERN_HINTS, validation_fields
from lbaas.api.schemas.common import NAME_PATTERN

NAME_HINT = (
    "3 to 63 characters: letters (A-Z, a-z), digits, spaces, '.', '_' and '-'; "
    "starts with a letter or digit and ends with a letter, digit, '.' or '_'"
)


@pytest.fixture
def http(server, project):
    with httpx.Client(base_url=server.url, headers={"Authorization": f"APIKey {project[1]}"}) as c:
        yield c, project[0]


@pytest.mark.parametrize("name", ["x", "lb/web", "-lb", "lb-"])
def test_lb_name_refused_in_words(http, name: str) -> None:
    c, pid = http
    r = c.post(f"/cloud/v1/loadbalancers/{pid}/1", json={"name": name})
    assert r.status_code == 400, r.text
    body = r.json()
    assert set(body) == {"exception_class", "message", "request_id", "invalid_fields"}
    assert body["exception_class"] == "ValidationError"
    assert body["request_id"] == r.headers["x-request-id"]
    assert body["invalid_fields"] == {"name": [NAME_HINT]}
    assert body["message"] == f"Validation Error: {{'name': [{NAME_HINT!r}]}}"
    assert "pattern" not in body["message"] and NAME_PATTERN not in r.text
    assert c.get(f"/cloud/v1/loadbalancers/{pid}/1").json()["count"] == 0


def _patterns(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["pattern"]} if isinstance(node.get("pattern"), str) else set()
        return found.union(*(_patterns(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_patterns(v) for v in node))
    return set()


def test_every_pattern_of_the_api_has_words(server) -> None:
    """A new pattern in a request model needs its line in PATTERN_HINTS."""
    used = _patterns(server.app.openapi())
    assert NAME_PATTERN in used
    assert used <= set(PATTERN_HINTS), used - set(PATTERN_HINTS)


def _fields(pattern: str, value: str) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as exc:
        TypeAdapter(Annotated[str, StringConstraints(pattern=pattern)]).validate_python(value)
    return validation_fields(exc.value.errors())


@pytest.mark.parametrize("pattern", sorted(PATTERN_HINTS))
def test_each_known_pattern_gets_its_words(pattern: str) -> None:
    assert _fields(pattern, "!") == {"body": [PATTERN_HINTS[pattern]]}


def test_unknown_pattern_keeps_pydantic_message() -> None:
    assert _fields(r"^[0-9]+$", "x") == {"body": ["String should match pattern '^[0-9]+$'"]}
