"""Regular expressions checked by the engine HAProxy uses: PCRE2, through Debian's libpcre2-8.

HAProxy 2.6 (Debian, ``USE_PCRE2_JIT``) compiles every ``-m reg`` pattern with
``pcre2_compile(pattern, PCRE2_ZERO_TERMINATED, flags)``, where ``flags`` is
``PCRE2_NO_AUTO_CAPTURE`` plus ``PCRE2_CASELESS`` under ``-i``, then JIT-compiles it and
refuses the whole configuration when either step fails (``src/regex.c``, ``regex_comp``).
:func:`check_regex` does the same against the same shared library, so a pattern passes
the API exactly when HAProxy accepts it (docs/adr/0005-pcre2-through-ctypes.md).
Python's ``re`` is not a stand-in: it accepts ``\\u0061``, which PCRE2 refuses.

Patterns are UTF-8 bytes without the UTF flag, as HAProxy sees them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

LIBRARY = "libpcre2-8.so.0"
PCRE2_CASELESS = 0x00000008
PCRE2_NO_AUTO_CAPTURE = 0x00002000
PCRE2_JIT_COMPLETE = 0x00000001
PCRE2_ERROR_NOMATCH = -1
PCRE2_ERROR_JIT_BADOPTION = -45

_size_t = ctypes.c_size_t


class Pcre2Unavailable(RuntimeError):
    """libpcre2-8 cannot be loaded (Debian package ``libpcre2-8-0``, which HAProxy needs too)."""


@functools.cache
def _lib() -> ctypes.CDLL:
    name = ctypes.util.find_library("pcre2-8") or LIBRARY
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise Pcre2Unavailable(f"cannot load {name}: {exc}; install libpcre2-8-0") from exc
    lib.pcre2_compile_8.restype = ctypes.c_void_p
    lib.pcre2_compile_8.argtypes = [
        ctypes.c_char_p,
        _size_t,
        ctypes.c_uint32,
        ctypes.POINTER(ctypes.c_int),
        ctypes.POINTER(_size_t),
        ctypes.c_void_p,
    ]
    lib.pcre2_jit_compile_8.restype = ctypes.c_int
    lib.pcre2_jit_compile_8.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.pcre2_code_free_8.restype = None
    lib.pcre2_code_free_8.argtypes = [ctypes.c_void_p]
    lib.pcre2_get_error_message_8.restype = ctypes.c_int
    lib.pcre2_get_error_message_8.argtypes = [ctypes.c_int, ctypes.c_char_p, _size_t]
    lib.pcre2_match_data_create_from_pattern_8.restype = ctypes.c_void_p
    lib.pcre2_match_data_create_from_pattern_8.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.pcre2_match_data_free_8.restype = None
    lib.pcre2_match_data_free_8.argtypes = [ctypes.c_void_p]
    lib.pcre2_match_8.restype = ctypes.c_int
    lib.pcre2_match_8.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        _size_t,
        _size_t,
        ctypes.c_uint32,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    return lib


def _message(code: int) -> str:
    buf = ctypes.create_string_buffer(256)
    _lib().pcre2_get_error_message_8(code, buf, len(buf))
    return buf.value.decode("utf-8", "replace")


class _Compiled:
    """A compiled pattern, freed on exit from the ``with`` block."""

    def __init__(self, pattern: str, caseless: bool) -> None:
        self.error: str | None = None
        self.code: int | None = None
        raw = pattern.encode("utf-8")
        if b"\0" in raw:
            self.error = "a NUL character cannot appear in an HAProxy regex"
            return
        lib = _lib()
        flags = PCRE2_NO_AUTO_CAPTURE | (PCRE2_CASELESS if caseless else 0)
        err, offset = ctypes.c_int(0), _size_t(0)
        code = lib.pcre2_compile_8(raw, len(raw), flags, ctypes.byref(err), ctypes.byref(offset), None)
        if not code:
            self.error = f"{_message(err.value)} at offset {offset.value}"
            return
        self.code = code
        jit = lib.pcre2_jit_compile_8(code, PCRE2_JIT_COMPLETE)
        if jit < 0 and jit != PCRE2_ERROR_JIT_BADOPTION:
            self.error = f"JIT compilation failed: {_message(jit)}"

    def __enter__(self) -> _Compiled:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.code:
            _lib().pcre2_code_free_8(self.code)
            self.code = None


def check_regex(pattern: str, *, caseless: bool = False) -> str | None:
    """Why HAProxy 2.6 would refuse ``pattern`` as a ``-m reg`` pattern, or None if it is fine.

    Raises :class:`Pcre2Unavailable` when libpcre2-8 is missing.
    """
    with _Compiled(pattern, caseless) as compiled:
        return compiled.error


def regex_matches(pattern: str, subject: str, *, caseless: bool = False) -> bool:
    """Whether PCRE2 finds ``pattern`` in ``subject`` (as an HAProxy ``-m reg`` ACL would).

    ValueError when the pattern does not compile.
    """
    with _Compiled(pattern, caseless) as compiled:
        if compiled.error:
            raise ValueError(compiled.error)
        lib = _lib()
        data = lib.pcre2_match_data_create_from_pattern_8(compiled.code, None)
        try:
            raw = subject.encode("utf-8")
            rc = lib.pcre2_match_8(compiled.code, raw, len(raw), 0, 0, data, None)
        finally:
            lib.pcre2_match_data_free_8(data)
    if rc == PCRE2_ERROR_NOMATCH:
        return False
    if rc < 0:
        raise ValueError(f"match failed: {_message(rc)}")
    return True
