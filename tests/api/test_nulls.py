"""A request field that Gcore's schema does not let be null refuses null; a nullable one keeps its meaning.

Derived, not listed: every property of every request body (nested objects and
array items included) of every operation of ``tests/data/gcore-lb-openapi.json``
is sent as null, alone, to the real server. Where the schema does not allow
null (no ``anyOf [..., null]``), the answer must be a 400 ValidationError whose
``invalid_fields`` names the field; where it does, the field must not be named
(the request may still fail for other reasons: no such object, missing fields).
The member calls and the health-monitor PATCH, which the file lacks, are held
to the SDK 0.59.0 parameter types (``Optional[...]`` or not).
"""

from __future__ import annotations

import json
import re
import types
import typing
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gcore._utils import PropertyInfo
from gcore.types.cloud.load_balancers.pools import (
    health_monitor_update_params,
    member_create_params,
    member_replace_params,
    member_update_params,
)

from tests.conftest import ADMIN_TOKEN

SPEC = json.loads((Path(__file__).resolve().parents[1] / "data" / "gcore-lb-openapi.json").read_text())
HEADERS = {"Authorization": f"APIKey {ADMIN_TOKEN}"}
MAX_DEPTH = 6
# Enum discriminators (not ``const``): the value that selects the variant with the most fields.
DISCRIMINATORS = {"source": "existing"}


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref = SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        schema = {**ref, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _nullable(schema: dict[str, Any]) -> bool:
    s = _resolve(schema)
    if s.get("nullable") or s.get("type") == "null" or "null" in (s.get("type") or []):
        return True
    return any(_nullable(v) for k in ("anyOf", "oneOf") for v in s.get(k, []))


def _non_null_parts(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The object and array schemas a value of ``schema`` may be (variants of anyOf/oneOf apart)."""
    s = _resolve(schema)
    variants = [p for k in ("anyOf", "oneOf") for v in s.get(k, []) for p in _non_null_parts(v)]
    if s.get("type") in ("object", "array") or "properties" in s:
        variants.append(s)
    return variants


def _consts(s: dict[str, Any]) -> dict[str, Any]:
    """The discriminator values of one variant (``const`` or one-value ``enum`` properties)."""
    out = {}
    for name, prop in (s.get("properties") or {}).items():
        p = _resolve(prop)
        if "const" in p:
            out[name] = p["const"]
        elif len(p.get("enum", [])) == 1:
            out[name] = p["enum"][0]
        elif name in DISCRIMINATORS and DISCRIMINATORS[name] in p.get("enum", []):
            out[name] = DISCRIMINATORS[name]
    return out


def _fields(schema: dict[str, Any], depth: int = 0) -> Iterator[tuple[tuple, bool, Any]]:
    """(path, nullable, a body with null at that path) for every property below ``schema``."""
    if depth > MAX_DEPTH:
        return
    for s in _non_null_parts(schema):
        if s.get("type") == "array":
            for path, nullable, body in _fields(s.get("items", {}), depth + 1):
                yield (0, *path), nullable, [body]
            continue
        consts = _consts(s)
        for name, prop in (s.get("properties") or {}).items():
            yield (name,), _nullable(prop), {**consts, name: None}
            if name in consts:
                continue
            for path, nullable, body in _fields(prop, depth + 1):
                yield (name, *path), nullable, {**consts, name: body}


def _sdk_fields(params: type, *, array: bool = False) -> Iterator[tuple[tuple, bool, Any]]:
    """The same from an SDK TypedDict: ``Optional[...]`` is nullable; path parameters are left out."""
    for name, hint in typing.get_type_hints(params, include_extras=True).items():
        if name in ("project_id", "region_id", "pool_id", "body"):
            continue
        wire = name
        for meta in getattr(hint, "__metadata__", ()):
            if isinstance(meta, PropertyInfo) and meta.alias:
                wire = meta.alias
        inner = hint
        while typing.get_origin(inner) in (typing.Annotated, typing.Required, typing.NotRequired):
            inner = typing.get_args(inner)[0]
        nullable = typing.get_origin(inner) in (typing.Union, types.UnionType) and type(
            None
        ) in typing.get_args(inner)
        yield ((0, wire) if array else (wire,)), nullable, ([{wire: None}] if array else {wire: None})


def _cases() -> list[Any]:
    cases = []
    for path, ops in SPEC["paths"].items():
        for method, op in ops.items():
            content = (op.get("requestBody") or {}).get("content", {}).get("application/json")
            if not content:
                continue
            seen = set()
            for field, nullable, body in _fields(content["schema"]):
                if (field, nullable) in seen:
                    continue
                seen.add((field, nullable))
                name = ".".join(map(str, field))
                label = f"{method.upper()} {path} {name} {'nullable' if nullable else 'not-null'}"
                cases.append(pytest.param(method.upper(), path, field, nullable, body, id=label))
    members = "/cloud/v1/loadbalancers/{project_id}/{region_id}/pools/{pool_id}/members"
    sdk = [
        ("POST", members, member_create_params.MemberCreateParams, False),
        ("PATCH", members + "/{member_id}", member_update_params.MemberUpdateParams, False),
        ("PUT", members, member_replace_params.Body, True),
        (
            "PATCH",
            "/cloud/v1/lbpools/{project_id}/{region_id}/{pool_id}/healthmonitor",
            health_monitor_update_params.HealthMonitorUpdateParams,
            False,
        ),
    ]
    for method, path, params, array in sdk:
        for field, nullable, body in _sdk_fields(params, array=array):
            name = ".".join(map(str, field))
            label = f"{method} {path} {name} {'nullable' if nullable else 'not-null'} (SDK)"
            cases.append(pytest.param(method, path, field, nullable, body, id=label))
    return cases


CASES = _cases()


def _names(key: str, field: tuple) -> bool:
    """Whether an ``invalid_fields`` key names the field (union member names may sit in between)."""
    parts = key.split(".")
    want = [str(p) for p in field]
    if not parts or parts[-1] != want[-1]:
        return False
    it = iter(parts)
    return all(any(p == w for p in it) for w in want)


def test_cases_cover_the_spec() -> None:
    labels = [c.id for c in CASES]
    assert len(labels) > 150
    # The issue's own example, and the documented nullable one beside it.
    assert any(
        "PATCH /cloud/v1/loadbalancers/{project_id}/{region_id}/{load_balancer_id} name not-null" in x
        for x in labels
    )
    assert any(
        "PATCH /cloud/v1/loadbalancers/{project_id}/{region_id}/{load_balancer_id} tags nullable" in x
        for x in labels
    )


def test_seed_patch_name_null_is_400_and_tags_null_clears(server, client) -> None:
    """The issue's input: ``{"name": null}`` on the seed PATCH; ``tags: null`` keeps its meaning."""
    lb = client.cloud.load_balancers.create_and_poll(name="null-lb", tags={"a": "1"})
    url = f"{server.url}/cloud/v1/loadbalancers/{client.cloud_project_id}/1/{lb.id}"
    headers = {"Authorization": f"APIKey {client.api_key}"}
    r = httpx.patch(url, json={"name": None}, headers=headers)
    assert r.status_code == 400 and r.json()["exception_class"] == "ValidationError"
    assert list(r.json()["invalid_fields"]) == ["name"]
    r = httpx.patch(url, json={"logging": None}, headers=headers)
    assert r.status_code == 400 and list(r.json()["invalid_fields"]) == ["logging"]
    assert client.cloud.load_balancers.get(lb.id).name == "null-lb"
    r = httpx.patch(url, json={"tags": None}, headers=headers)
    assert r.status_code == 200 and r.json()["tags_v2"] == []


# Validation does not depend on the database: one backend is enough.
@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("method", "path", "field", "nullable", "body"), CASES)
def test_null_follows_the_schema(server, method, path, field, nullable, body) -> None:
    url = re.sub(
        r"\{(\w+)\}", lambda m: "1" if m[1] in ("project_id", "region_id") else str(uuid.uuid4()), path
    )
    if path == "/cloud/v1/tasks/acknowledge":
        url += "?project_id=1&region_id=1"  # task_ids: null acknowledges all: keep it to project 1
    r = httpx.request(method, server.url + url, json=body, headers=HEADERS, timeout=30)
    assert r.status_code < 500, r.text
    named = [k for k in (r.json().get("invalid_fields") or {}) if _names(k, field)] if r.content else []
    if nullable:
        assert named == [], r.text
    else:
        assert r.status_code == 400 and r.json()["exception_class"] == "ValidationError", r.text
        assert named, r.text
