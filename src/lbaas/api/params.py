"""Query parameters shared by list endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

Limit = Annotated[int, Query(gt=0, le=1000)]
Offset = Annotated[int, Query(ge=0)]
