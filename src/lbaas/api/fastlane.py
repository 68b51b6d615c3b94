"""A shortcut past FastAPI's routing and parameter machinery for the hottest requests.

FastAPI spends more on a request than lbaas does on its work: matching the path against
~120 routes one regular expression at a time, then solving each parameter as a
dependency. For the few routes clients call most (GET and the seed PATCH of one load
balancer, the LB list, GET of one task: what every SDK ``*_and_poll`` and Terraform read
hit), this lane matches the path by its segments and validates the same parameters with
the same annotations, through Pydantic directly, then calls **the same endpoint
function** that FastAPI would call. So an answer is the endpoint's own.

Anything the lane is not sure of goes down the normal road, unchanged: a parameter that
fails validation, a repeated or unknown query key, a body that is not plain JSON, any
exception raised by the endpoint (a read, or a write whose transaction was rolled back:
running it again gives the same error). Error answers are therefore always produced by
FastAPI and lbaas's error handlers, byte for byte as without the lane
(tests/api/test_fastlane.py compares both roads).
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.datastructures import QueryParams
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from lbaas.api.entry import read_body, replay

_NO_DEFAULT = inspect.Parameter.empty
_NO_LIMIT = 1 << 62


class _Fallback(Exception):
    """Take the normal road."""


@dataclass(frozen=True)
class _Param:
    name: str
    adapter: TypeAdapter[Any]
    default: Any
    is_list: bool


@dataclass(frozen=True)
class HotRoute:
    """One route of the lane: its method, path template and endpoint (an ``async def`` of a router)."""

    method: str
    segments: tuple[str | None, ...]  # fixed segment, or None where a path parameter goes
    path_params: tuple[_Param, ...]
    query: dict[str, _Param]
    body: type[BaseModel] | None
    endpoint: Callable[..., Awaitable[Response]]

    @classmethod
    def of(cls, method: str, template: str, endpoint: Callable[..., Awaitable[Response]]) -> HotRoute:
        """Build the lane's view of a route from the same signature FastAPI reads."""
        hints = typing.get_type_hints(endpoint, include_extras=True)
        parts = template.split("/")[1:]
        names = [p[1:-1] if p.startswith("{") else None for p in parts]
        path_params, query, body = [], {}, None
        for name, param in inspect.signature(endpoint).parameters.items():
            annotation = hints[name]
            if annotation is Request:
                continue
            if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
                body = annotation
                continue
            is_list = _is_list(annotation)
            spec = _Param(name, TypeAdapter(annotation), param.default, is_list)
            if name in names:
                path_params.append(spec)
            else:
                query[name] = spec
        order = {n: i for i, n in enumerate(n for n in names if n)}
        path_params.sort(key=lambda p: order[p.name])
        segments = tuple(None if n else p for p, n in zip(parts, names, strict=True))
        return cls(method, segments, tuple(path_params), query, body, endpoint)

    def match(self, parts: Sequence[str]) -> list[str] | None:
        if len(parts) != len(self.segments):
            return None
        values = []
        for part, fixed in zip(parts, self.segments, strict=True):
            if fixed is None:
                if not part:
                    return None
                values.append(part)
            elif part != fixed:
                return None
        return values

    def arguments(self, values: list[str], query_string: bytes, body: bytes | None) -> dict[str, Any]:
        """The endpoint's keyword arguments, validated as FastAPI would; _Fallback when unsure."""
        kwargs: dict[str, Any] = {}
        try:
            for spec, raw in zip(self.path_params, values, strict=True):
                kwargs[spec.name] = spec.adapter.validate_python(raw)
            if query_string:
                params = QueryParams(query_string)
                for key in params:
                    spec = self.query.get(key)
                    if spec is None:
                        raise _Fallback
                    got = params.getlist(key)
                    if spec.is_list:
                        kwargs[key] = spec.adapter.validate_python(got)
                    elif len(got) == 1:
                        kwargs[key] = spec.adapter.validate_python(got[0])
                    else:
                        raise _Fallback
            for key, spec in self.query.items():
                if key not in kwargs:
                    if spec.default is _NO_DEFAULT:
                        raise _Fallback
                    kwargs[key] = spec.default
            if self.body is not None:
                if not body:
                    raise _Fallback
                kwargs["body"] = self.body.model_validate(orjson.loads(body))
        except (ValidationError, ValueError):
            raise _Fallback from None
        return kwargs


def _is_list(annotation: Any) -> bool:
    """Whether FastAPI reads the parameter as a list (``list[...]``, possibly optional, annotated)."""
    base = annotation
    while typing.get_origin(base) is typing.Annotated:
        base = typing.get_args(base)[0]
    if typing.get_origin(base) in (typing.Union, types.UnionType):
        return any(typing.get_origin(a) is list for a in typing.get_args(base))
    return typing.get_origin(base) is list


def _json_content(scope: Scope) -> bool:
    for key, value in scope["headers"]:
        if key == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == b"application/json"
    return False


class FastLane:
    """ASGI middleware: serve :class:`HotRoute` requests directly, pass everything else on."""

    def __init__(self, app: ASGIApp, routes: Sequence[HotRoute]) -> None:
        self.app = app
        self.served = 0  # requests answered by the lane (not passed on)
        self.by_method: dict[str, list[HotRoute]] = {}
        for route in routes:
            self.by_method.setdefault(route.method, []).append(route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        routes = self.by_method.get(scope.get("method", "")) if scope["type"] == "http" else None
        if routes:
            parts = scope["path"].split("/")[1:]  # a trailing slash is a segment too (FastAPI redirects)
            for route in routes:
                values = route.match(parts)
                if values is not None:
                    await self._serve(route, values, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _serve(
        self, route: HotRoute, values: list[str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        body: bytes | None = None
        if route.body is not None:
            body = await read_body(receive, _NO_LIMIT)  # EntryMiddleware has refused oversized bodies
            receive = replay(body, receive)
        try:
            if route.body is not None and not _json_content(scope):
                raise _Fallback
            kwargs = route.arguments(values, scope.get("query_string", b""), body)
            response = await route.endpoint(Request(scope, receive), **kwargs)
        except Exception:  # noqa: BLE001 - the normal road answers (same handlers, same bytes)
            if body is not None:
                receive = replay(body, receive)
            await self.app(scope, receive, send)
            return
        self.served += 1
        await response(scope, receive, send)
