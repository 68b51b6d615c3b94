"""Key/value tags and the RFC 7386 merge patch of the seed endpoint.

A tag set is a mapping ``key -> Tag``. User PATCHes are merge patches:
a value sets a key, ``null`` deletes it, ``"tags": null`` deletes every
user tag. Read-only tags (set by an operator) survive every patch, and a
patch that names one is refused as a whole, so a request either applies
completely or changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from lbaas.errors import ValidationFailed

MAX_LEN = 255
_KEY_RE = re.compile(r"^[^\s=]+$")
_VALUE_RE = re.compile(r"^[^ \t\n\r\f\v]([^\t\n\r\f\v]*[^ \t\n\r\f\v])?$")


@dataclass(frozen=True, slots=True)
class Tag:
    key: str
    value: str
    read_only: bool = False

    def to_wire(self) -> dict[str, object]:
        """The ``TagSerializer`` shape."""
        return {"key": self.key, "value": self.value, "read_only": self.read_only}


def clean_key(key: str, field: str = "tags") -> str:
    """Strip surrounding whitespace, then apply the spec's key rule."""
    k = key.strip() if isinstance(key, str) else key
    if not isinstance(k, str) or not k or len(k) > MAX_LEN or not _KEY_RE.match(k):
        raise ValidationFailed.field(
            field, f"Invalid tag key {key!r}: 1-255 characters, no whitespace and no '='"
        )
    return k


def clean_value(value: str, key: str, field: str = "tags") -> str:
    """Strip surrounding whitespace, then apply the spec's value rule."""
    if not isinstance(value, str):
        raise ValidationFailed.field(f"{field}.{key}", "Tag value must be a string or null")
    v = value.strip()
    if not v or len(v) > MAX_LEN or not _VALUE_RE.match(v):
        raise ValidationFailed.field(
            f"{field}.{key}",
            f"Invalid tag value {value!r}: 1-255 characters, no tab, newline or other control whitespace",
        )
    return v


def clean_tag_map(tags: Mapping[str, str] | None, field: str = "tags") -> dict[str, str]:
    """Validate a plain ``{key: value}`` map (creation); values may not be null."""
    out: dict[str, str] = {}
    for raw_key, raw_value in (tags or {}).items():
        key = clean_key(raw_key, field)
        if raw_value is None:
            raise ValidationFailed.field(f"{field}.{key}", "Tag value must not be null on creation")
        out[key] = clean_value(raw_value, key, field)
    return out


def merge_patch(
    current: Mapping[str, Tag], patch: Mapping[str, str | None] | None, field: str = "tags"
) -> dict[str, Tag]:
    """Apply an RFC 7386 merge patch to a tag set; read-only tags always survive.

    Raises ValidationFailed, and changes nothing, if the patch names a
    read-only key or holds an invalid key or value.
    """
    if patch is None:
        return {k: t for k, t in current.items() if t.read_only}
    cleaned: dict[str, str | None] = {}
    for raw_key, raw_value in patch.items():
        key = clean_key(raw_key, field)
        cleaned[key] = None if raw_value is None else clean_value(raw_value, key, field)
    locked = sorted(k for k in cleaned if k in current and current[k].read_only)
    if locked:
        raise ValidationFailed(
            f"Validation Error: read-only tags cannot be modified: {', '.join(locked)}",
            fields={f"{field}.{k}": ["This tag is read-only"] for k in locked},
        )
    result = dict(current)
    for key, value in cleaned.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = Tag(key, value)
    return result


def to_wire(tags: Mapping[str, Tag]) -> list[dict[str, object]]:
    """``tags_v2``: the tag list sorted by key."""
    return [tags[k].to_wire() for k in sorted(tags)]
