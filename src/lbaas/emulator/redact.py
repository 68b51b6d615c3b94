"""Redaction of request and response bodies before the journal stores them.

The journal must never hold a credential: API tokens, passwords, private keys or certificate
bodies. JSON bodies are redacted by key (every value under a sensitive key, at any depth) and
then by content (PEM blocks and API-token-shaped strings anywhere); other bodies by content and
by ``"key": "value"`` / ``key=value`` patterns. Redaction runs on the whole body before it is
cut to size, so a truncated secret cannot slip through.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

REDACTED = "[REDACTED]"
MAX_CHARS = 16 * 1024

# Keys whose values are credentials wherever they appear (Gcore's secret payloads, listener
# user lists, API keys); compared case-insensitively.
SENSITIVE_KEYS = frozenset(
    {
        "password",
        "encrypted_password",
        "private_key",
        "certificate",
        "certificate_chain",
        "payload",
        "passphrase",
        "api_key",
        "apikey",
        "token",
        "secret",
        "authorization",
        "secret_key",
    }
)
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?(?:-----END [A-Z0-9 ]+-----|\Z)", re.S)
_TOKEN = re.compile(r"\b\d+\$[0-9a-fA-F]{16,}")
_KEYS = "|".join(sorted(SENSITIVE_KEYS))
_JSON_PAIR = re.compile(rf'("(?:{_KEYS})"\s*:\s*)"(?:[^"\\]|\\.)*"', re.I)
_FORM_PAIR = re.compile(rf"\b((?:{_KEYS})=)[^&\s]*", re.I)


def redact_text(text: str) -> str:
    """Remove PEM blocks, API tokens and sensitive key/value pairs from free text."""
    text = _PEM.sub(REDACTED, text)
    text = _TOKEN.sub(REDACTED, text)
    text = _JSON_PAIR.sub(rf'\1"{REDACTED}"', text)
    return _FORM_PAIR.sub(rf"\1{REDACTED}", text)


def redact_value(value: Any) -> Any:
    """A JSON value with every sensitive key's value replaced and every string cleaned."""
    if isinstance(value, dict):
        return {
            k: (
                REDACTED
                if str(k).lower() in SENSITIVE_KEYS and value[k] is not None and not isinstance(v, dict)
                else redact_value(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_body(body: bytes | None) -> str | None:
    """A body as stored in the journal: redacted JSON text, or redacted text, at most MAX_CHARS."""
    if not body:
        return None
    try:
        text = orjson.dumps(redact_value(orjson.loads(body))).decode()
    except orjson.JSONDecodeError:
        text = redact_text(body.decode("utf-8", "replace"))
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS] + f"...[{len(text) - MAX_CHARS} more characters]"
    return text
