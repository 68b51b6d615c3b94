"""Bodies of the L7 policy and L7 rule endpoints.

The policy body is Gcore's ``oneOf`` discriminated by ``action``. It is one flat
model here: which redirect field each action needs (and refuses) is a
cross-field rule held once in ``lbaas.domain.validation.check_l7_policy``, whose
errors name the field the user got wrong ("redirect_url: Required for the
REDIRECT_TO_URL action") where a Pydantic union would name the union member.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from lbaas.api.params import Int32
from lbaas.api.schemas.common import Body, Name, Uuid
from lbaas.domain.enums import L7Action, L7CompareType, L7RuleType

RedirectTarget = Annotated[str, StringConstraints(max_length=2048)]
RedirectCode = Literal[301, 302, 303, 307, 308]
# Checked further (length, duplicates) by validation.check_string_tags.
StringTags = list[str]


class L7PolicyUpdate(Body):
    """PATCH: ``action`` and its redirect field always; the rest only when sent."""

    action: L7Action
    name: Name = None
    position: Annotated[Int32, Field(gt=0)] = None
    redirect_url: RedirectTarget = None
    redirect_prefix: RedirectTarget = None
    redirect_pool_id: Uuid = None
    redirect_http_code: RedirectCode = None
    tags: StringTags = None


class L7PolicyCreate(L7PolicyUpdate):
    listener_id: Uuid


class L7RuleReplace(Body):
    """PUT: every field optional; the given ones replace the stored ones."""

    type: L7RuleType = None
    compare_type: L7CompareType = None
    key: Annotated[str, StringConstraints(max_length=255)] = None
    value: Annotated[str, StringConstraints(min_length=1, max_length=255)] = None
    invert: bool = None
    tags: StringTags = None


class L7RuleCreate(L7RuleReplace):
    type: L7RuleType
    compare_type: L7CompareType
    value: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    invert: bool = False
