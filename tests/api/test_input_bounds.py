"""Every integer that can enter the API is bounded to what the database can hold.

The check reads the service's own OpenAPI document (path, query and body
schemas as FastAPI and Pydantic see them), so a new route or field declared
with a plain ``int`` fails here before a fuzzer finds the 500.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from lbaas.api.params import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN
from lbaas.api.routes import floating_ips, l7, listeners, load_balancers, metadata, pools, secrets, tasks


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    app = FastAPI()
    for module in (load_balancers, listeners, pools, l7, floating_ips, secrets, tasks, metadata):
        app.include_router(module.router)
    return app.openapi()


def _integers(node: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    """Every integer schema below ``node``, with where it is."""
    found = []
    if isinstance(node, dict):
        if node.get("type") == "integer" and "enum" not in node and "const" not in node:
            found.append((where, node))
        for key, value in node.items():
            found += _integers(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _integers(value, f"{where}[{i}]")
    return found


def _low(s: dict[str, Any]) -> int | None:
    return s["minimum"] if "minimum" in s else s.get("exclusiveMinimum")


def _high(s: dict[str, Any]) -> int | None:
    return s["maximum"] if "maximum" in s else s.get("exclusiveMaximum")


def test_every_integer_is_bounded(openapi) -> None:
    # FastAPI's own 422 schemas describe responses (which lbaas never sends), not input.
    schemas = {k: v for k, v in openapi["components"]["schemas"].items() if "ValidationError" not in k}
    found = _integers(openapi["paths"], "paths") + _integers(schemas, "schemas")
    assert len(found) > 50
    unbounded = [w for w, s in found if _low(s) is None or _high(s) is None]
    assert unbounded == []
    too_wide = [w for w, s in found if _low(s) < INT64_MIN or _high(s) > INT64_MAX]
    assert too_wide == []


def test_project_and_region_ids_are_32_bit(openapi) -> None:
    """They are compared with 32-bit columns, which PostgreSQL refuses to compare past 32 bits."""
    seen = 0
    for path, ops in openapi["paths"].items():
        for op in ops.values():
            for param in op.get("parameters", []):
                if param["name"] in ("project_id", "region_id"):
                    schema = param["schema"]
                    schema = schema.get("items", schema) if "items" in schema else schema
                    for s in schema.get("anyOf", [schema]):
                        if s.get("type") == "array":
                            s = s["items"]
                        if s.get("type") == "integer":
                            seen += 1
                            assert (_low(s), _high(s)) == (INT32_MIN, INT32_MAX), (path, param)
    assert seen > 100
