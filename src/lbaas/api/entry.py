"""Where every request enters: its id, its size, and the bytes no route can take.

Routes and their Pydantic models check what a value means; this module refuses,
once for all routes, what no value may contain, before any route sees it:

* a body larger than ``max_body`` bytes: 413 ``RequestEntityTooLarge``, whether
  ``Content-Length`` says so up front or a chunked body grows past it;
* a body that is not JSON (not UTF-8, a lone UTF-16 surrogate such as
  ``"\\ud800"``, a BOM, ``NaN``, ...): 400 ``ValidationError`` on ``body``;
* JSON nested deeper than :data:`MAX_DEPTH` levels (no request body of the API
  goes beyond 8): 400 on the field where it gets too deep;
* a NUL character in a body string or key, a query parameter or the path: 400 on
  that field. PostgreSQL cannot store NUL in text ("A string literal cannot
  contain NUL (0x00) characters"), SQLite truncates at it, HAProxy cannot quote it.

The JSON is parsed with orjson, which is strict RFC 8259 (UTF-8 only, no
surrogates); FastAPI parses it again with the standard library for the route.
"""

from __future__ import annotations

import urllib.parse
import uuid
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lbaas.api.errors import error_body

MAX_DEPTH = 32
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class Refusal(Exception):
    """A request refused at entry: status, Gcore exception class, message, invalid fields."""

    def __init__(
        self, status: int, exception_class: str, message: str, fields: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.exception_class = exception_class
        self.message = message
        self.fields = fields


def _invalid(field: str, message: str) -> Refusal:
    # The shape of every other validation error (lbaas.api.errors): the field's own message in
    # invalid_fields, and "Validation Error: " with the whole map as the message.
    fields = {field: [message]}
    return Refusal(400, "ValidationError", f"Validation Error: {fields}", fields)


def _field(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path) or "body"


def json_problem(raw: bytes | str) -> tuple[str, str] | None:
    """(field, message) if ``raw`` is not strict JSON, nests too deep or holds a NUL; else None."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if isinstance(raw, bytes):
            try:
                raw.decode()
            except UnicodeDecodeError as bad:  # orjson's words for it name no byte and a wrong place
                at = bad.start
                return "body", f"Malformed JSON body: not UTF-8 text (byte 0x{raw[at]:02x} at offset {at})"
        return "body", f"Malformed JSON body: {exc}"
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_DEPTH:
            return _field(path[:MAX_DEPTH]), f"Nested deeper than {MAX_DEPTH} levels"
        if isinstance(value, str):
            if "\x00" in value:
                return _field(path), "May not contain a NUL character"
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    return _field(path), "Keys may not contain a NUL character"
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, i)) for i, item in enumerate(value))
    return None


def screen_json(raw: bytes) -> None:
    """Refuse a body that is not strict JSON, too deep, or has a NUL in a string or key."""
    problem = json_problem(raw)
    if problem is not None:
        raise _invalid(*problem)


def _json_text(value: str) -> str:
    problem = json_problem(value)
    if problem is not None:
        field, message = problem
        raise ValueError(
            message.replace("Malformed JSON body", "Malformed JSON")
            + ("" if field == "body" else f" (at {field})")
        )
    return value


JsonQuery = Annotated[str, AfterValidator(_json_text)]
"""A query parameter that carries JSON text (``tag_key_value``): held to the body's rules."""


def screen_query(query_string: bytes) -> None:
    """Refuse a query parameter whose name or value decodes to a NUL character."""
    if b"%00" not in query_string and b"\x00" not in query_string:
        return
    for name, value in urllib.parse.parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            raise _invalid(name.replace("\x00", "") or "query", "May not contain a NUL character")


def screen_path(path: str) -> None:
    if "\x00" in path:
        raise _invalid("path", "May not contain a NUL character")


async def read_body(receive: Receive, max_body: int) -> bytes:
    """The whole body; a :class:`Refusal` (413) as soon as it grows past ``max_body``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away; the route reads no body
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body:
            raise _too_large(max_body)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the app ``body`` (already read) first, then whatever comes next."""
    done = False

    async def again() -> Message:
        nonlocal done
        if done:
            return await receive()
        done = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again


def _too_large(max_body: int) -> Refusal:
    return Refusal(413, "RequestEntityTooLarge", f"Request body larger than {max_body} bytes")


class EntryMiddleware:
    """Give every request an id (``X-Request-ID``) and refuse what :mod:`lbaas.api.entry` refuses.

    ``large_bodies``: path prefixes allowed :attr:`LARGE_BODY` bytes (the emulator's snapshot import).
    """

    LARGE_BODY = 256 << 20

    def __init__(self, app: ASGIApp, max_body: int, large_bodies: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_body = max_body
        self.large_bodies = large_bodies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            app_receive = await self._screen(scope, receive)
        except Refusal as refusal:
            body = error_body(rid, refusal.exception_class, refusal.message, refusal.fields)
            start = {"type": "http.response.start", "status": refusal.status}
            await send_with_id({**start, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, app_receive, send_with_id)

    async def _screen(self, scope: Scope, receive: Receive) -> Receive:
        """Check the request; the ``receive`` the app reads the (already read) body from."""
        max_body = self.max_body
        if self.large_bodies and scope.get("path", "").startswith(self.large_bodies):
            max_body = max(max_body, self.LARGE_BODY)
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and (not length.isdigit() or int(length) > max_body):
            raise _too_large(max_body)
        screen_path(scope.get("path", ""))
        screen_query(scope.get("query_string", b""))
        if scope.get("method") not in BODY_METHODS:
            return receive
        body = await read_body(receive, max_body)
        if body.strip():
            screen_json(body)
        return replay(body, receive)
