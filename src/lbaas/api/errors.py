"""Every error leaves as Gcore's error body, with the request id; never a 422."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from lbaas.api.schemas.common import NAME_PATTERN, TOPIC_PATTERN
from lbaas.api.schemas.listeners import USERNAME_PATTERN
from lbaas.api.schemas.pools import DOMAIN_NAME_PATTERN
from lbaas.errors import LbaasError

log = logging.getLogger(__name__)


def request_id(request: Request) -> str:
    return getattr(request.state, "request_id", "") or ""


def error_body(
    rid: str,
    exception_class: str,
    message: str,
    invalid_fields: dict[str, list[str]] | None = None,
    info: Any = None,
) -> bytes:
    """Gcore's error body (errors.md): class, message, request id, and the invalid fields."""
    body: dict[str, Any] = {"exception_class": exception_class, "message": message, "request_id": rid}
    if invalid_fields is not None:
        body["invalid_fields"] = invalid_fields
    if info is not None:
        body["info"] = info
    return orjson.dumps(body)


def error_response(
    request: Request,
    status: int,
    exception_class: str,
    message: str,
    invalid_fields: dict[str, list[str]] | None = None,
    info: Any = None,
    should_retry: bool | None = None,
) -> Response:
    body = error_body(request_id(request), exception_class, message, invalid_fields, info)
    headers = {}
    if should_retry is not None:
        headers["x-should-retry"] = "true" if should_retry else "false"
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    # Pydantic names the union member it tried; the user sent a field, not a type.
    parts = [p for p in parts if not p[:1].isupper() and "[" not in p and not p.startswith("function-")]
    return ".".join(parts) or "body"


#: What each pattern of the request models asks for, in words: Pydantic's own message
#: ("String should match pattern '<regex>'") tells a person nothing they can act on.
#: A pattern missing here keeps Pydantic's message, so a new or changed pattern is never
#: described wrongly (tests/api/test_pattern_messages.py holds every pattern to this table).
PATTERN_HINTS: dict[str, str] = {
    NAME_PATTERN: (
        "3 to 63 characters: letters (A-Z, a-z), digits, spaces, '.', '_' and '-'; "
        "starts with a letter or digit and ends with a letter, digit, '.' or '_'"
    ),
    USERNAME_PATTERN: (
        "3 to 32 characters: letters (A-Z, a-z), digits, spaces, '.', '_' and '-'; "
        "starts with a letter or digit and ends with a letter, digit, '.' or '_'"
    ),
    TOPIC_PATTERN: (
        "lowercase letters (a-z), digits, '-' and '.'; every '.'-separated part "
        "starts and ends with a lowercase letter or digit"
    ),
    DOMAIN_NAME_PATTERN: "1 to 253 characters: letters (A-Z, a-z), digits, '.', '_' and '-'",
}


def validation_fields(errors: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Pydantic errors to ``{field: [message, ...]}``."""
    fields: dict[str, list[str]] = {}
    for err in errors:
        msg = err.get("msg", "Invalid value")
        msg = msg.removeprefix("Value error, ")  # Pydantic's prefix for a validator's own message
        if err.get("type") == "json_invalid":
            fields.setdefault("body", []).append("Malformed JSON body")
            continue
        if err.get("type") == "missing":
            msg = "Field required"
        elif err.get("type") == "string_pattern_mismatch":
            msg = PATTERN_HINTS.get(str((err.get("ctx") or {}).get("pattern")), msg)
        name = _field_name(tuple(err.get("loc", ())))
        if err.get("type") in ("union_tag_invalid", "union_tag_not_found"):
            # A tagged union (floating_ip's "source") points at the object; the user got the tag wrong.
            tag = str((err.get("ctx") or {}).get("discriminator", "")).strip("'")
            name = f"{name}.{tag}" if tag and name != "body" else name
        fields.setdefault(name, []).append(msg)
    return fields


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into Gcore's shape."""

    @app.exception_handler(LbaasError)
    async def _lbaas(request: Request, exc: LbaasError) -> Response:
        return error_response(
            request,
            exc.status_code,
            exc.exception_class,
            exc.message,
            getattr(exc, "invalid_fields", None),
            exc.extra.get("info"),
            exc.should_retry,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        fields = validation_fields(list(exc.errors()))
        return error_response(request, 400, "ValidationError", f"Validation Error: {fields}", fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_response(
                request, 404, "NotFoundError", f"The requested URL {request.url.path} was not found"
            )
        if exc.status_code == 405:
            return error_response(request, 405, "HTTPError", "HTTP 405: Method Not Allowed")
        return error_response(request, exc.status_code, "HTTPError", f"HTTP {exc.status_code}: {exc.detail}")

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(
            request,
            500,
            "InternalServerError",
            f"Internal server error; see the server log for request {request_id(request)}",
        )
