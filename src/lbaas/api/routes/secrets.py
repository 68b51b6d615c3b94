"""Routes of the secrets family (filled in with the object-graph issue)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
