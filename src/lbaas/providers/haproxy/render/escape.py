"""Quoting user strings so that each means exactly its literal value in haproxy.cfg.

HAProxy 2.6 reads a configuration line in two stages that matter here:

1. ``parse_line`` (src/tools.c) splits the line into words. Outside quotes a space ends
   a word, ``#`` starts a comment, ``"`` and ``'`` open quotes, and backslash escapes
   are decoded; inside double quotes ``$VAR`` is expanded. Inside **single quotes
   nothing is special** except the closing quote; a line break always ends the line.
   Adjacent quoted and unquoted parts form one word, so ``'it'\\''s'`` is ``it's``.
2. Some keywords parse their word again: a sample-fetch argument list
   (``req.fhdr(<name>)``, src/arg.c ``make_arg_list``) splits on ``,`` and ``)``, with
   the same single-quote rule; log-format strings treat ``%`` as special.

So :func:`word` single-quotes anything not plainly safe and writes a ``'`` as ``'\\''``;
:func:`fetch_arg` does the same one level down, before the whole expression goes through
:func:`word`; :func:`logformat_literal` doubles ``%``. Control characters (CR and LF end
a line whatever the quoting, NUL ends the string) cannot be carried safely and raise
:class:`RenderError`; the API refuses them before they are stored.

ACL patterns go after ``--`` so that a value starting with ``-`` is not read as a flag.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SAFE_WORD = re.compile(r"[A-Za-z0-9._:/@+=,()-]+")
_SAFE_ARG = re.compile(r"[A-Za-z0-9._:/@+=-]+")
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._/-]*")


class RenderError(ValueError):
    """The snapshot cannot be turned into a configuration HAProxy would accept as meant."""


def _refuse_control(value: str, what: str) -> None:
    if _CONTROL.search(value):
        raise RenderError(f"{what} {value!r} contains a control character")


def _single_quoted(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def word(value: str, what: str = "value") -> str:
    """``value`` as one configuration word (quoted unless plainly safe)."""
    _refuse_control(value, what)
    return value if _SAFE_WORD.fullmatch(value) else _single_quoted(value)


def fetch_arg(value: str, what: str = "argument") -> str:
    """``value`` as one argument inside a sample fetch's parentheses (before :func:`word`)."""
    _refuse_control(value, what)
    return value if _SAFE_ARG.fullmatch(value) else _single_quoted(value)


def fetch(name: str, arg: str, what: str = "argument") -> str:
    """A sample fetch with one user-supplied argument, e.g. ``req.fhdr(X-Api)``, as one word."""
    return word(f"{name}({fetch_arg(arg, what)})", what)


def logformat_literal(value: str, what: str = "value") -> str:
    """``value`` as literal text inside a log-format string (not yet a word)."""
    _refuse_control(value, what)
    return value.replace("%", "%%")


def path(value: str, what: str = "path") -> str:
    """A host path we compose ourselves: absolute, plain characters only (no quoting needed).

    Certificate paths also appear inside crt-list files, which have their own parser,
    so they are held to characters that need no quoting anywhere.
    """
    if not _SAFE_PATH.fullmatch(value) or "/../" in value + "/":
        raise RenderError(f"{what} {value!r} must be absolute and use only [A-Za-z0-9._/-]")
    return value
