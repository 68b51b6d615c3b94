"""Routes of the l7 family (filled in with the object-graph issue)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
