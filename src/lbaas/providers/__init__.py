"""Data-plane providers; only this package knows how traffic is carried."""

from __future__ import annotations

from typing import Any

from lbaas.providers.noop import NoopProvider


def make_provider(name: str, *, noop_delay_ms: int = 0) -> Any:
    """The provider named on the command line."""
    if name == "noop":
        return NoopProvider(noop_delay_ms)
    raise SystemExit(
        "lbaas: the haproxy provider arrives with the data-plane work; "
        "run with --provider noop (the emulator) for now"
    )
