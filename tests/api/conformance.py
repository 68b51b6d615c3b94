"""Responses checked against the response schemas of Gcore's OpenAPI subset: tests/data/gcore-lb-openapi.json.

JSON Schema 2020-12 (the file is OpenAPI 3.1), formats asserted, with one
reading of Gcore's own: its timestamps are written ``2019-06-13T13:58:12+0000``
(the file's own examples, and what the SDK parses), which RFC 3339's
``date-time`` spells ``+00:00``; both are accepted.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs

SPEC: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "gcore-lb-openapi.json").read_text()
)
_GCORE_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:?\d\d|Z)$")


def _date_time(value: str) -> bool:
    if not _GCORE_TS.match(value):
        return False
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def operation(method: str, path: str) -> dict[str, Any]:
    return SPEC["paths"][path][method.lower()]


@functools.cache
def _validator(method: str, path: str, status: str) -> Any:
    response = operation(method, path)["responses"][status]
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return None
    return jsonschema_rs.validator_for(
        {**schema, "components": SPEC["components"]}, formats={"date-time": _date_time}, validate_formats=True
    )


def errors(method: str, path: str, status: int, body: bytes) -> list[str]:
    """Why a response does not conform to the schema documented for its status ([] if it does).

    A status the operation does not document (an error) is not checked here.
    """
    responses = operation(method, path)["responses"]
    if str(status) not in responses:
        return []
    validator = _validator(method, path, str(status))
    if validator is None:
        return [] if body == b"" else [f"{status} documents no body, got {body[:200]!r}"]
    instance = json.loads(body)
    return [f"{e.instance_path}: {e.message[:300]}" for e in validator.iter_errors(instance)]
