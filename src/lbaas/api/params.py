"""The integer types every path, query and body integer is declared with, and the list parameters.

An integer that enters the API is bounded where it enters, so no value reaches
the database that its columns cannot hold: SQLite's INTEGER and PostgreSQL's
BIGINT are 64-bit (a larger value is a 400 here, not an ``OverflowError``, a
500, there), and a value stored in a 32-bit column (PostgreSQL ``integer``) is
bounded to 32 bits. Gcore's schema gives these integers no bounds; Python's
ints are unbounded, so the bound has to come from us.
``tests/api/test_input_bounds.py`` checks that every integer of every route
and body is declared with one of these types (or tighter bounds).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from annotated_types import Ge, Le
from fastapi import Query
from pydantic import AfterValidator, BeforeValidator

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def _not_bool(value: object) -> object:
    # JSON's true/false are not numbers (JSON Schema "integer"); Pydantic's lax mode would take them as 1/0.
    if isinstance(value, bool):
        raise ValueError("Input should be a valid integer, not a boolean")
    return value


NotBool = BeforeValidator(_not_bool)
"""For an integer field with bounds of its own, all within 32 bits: ``Annotated[int, Field(ge=1,
le=65535), NotBool]``. Bounds added to :data:`Int32` are checked after its own, so a value past 32
bits was refused with "less than or equal to 2147483647" even where the field's bound is 65535."""

Int64 = Annotated[int, Ge(INT64_MIN), Le(INT64_MAX), NotBool]
"""An integer that is neither stored nor compared with a 32-bit column (offsets)."""

Int32 = Annotated[int, Ge(INT32_MIN), Le(INT32_MAX), NotBool]
"""An integer that is stored in, or compared with, a 32-bit column."""

# Project and region ids live in 32-bit columns, and PostgreSQL casts a compared value to the column's
# type ("integer out of range"), so an id past 32 bits is a 400, not an unknown id.
ProjectId = Int32
RegionId = Int32

Limit = Annotated[int, Query(gt=0, le=1000), NotBool]
Offset = Annotated[Int64, Query(ge=0)]


def _utc(value: dt.datetime) -> dt.datetime:
    # 9999-12-31T23:59:59-23:59 parses, but is past datetime.max in UTC (an OverflowError later).
    if value.tzinfo is None:
        return value
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("Datetime out of range once converted to UTC") from None


UtcDateTime = Annotated[dt.datetime, AfterValidator(_utc)]
"""A timestamp (path, query or body); one with an offset is converted to UTC here, so it must fit there."""
