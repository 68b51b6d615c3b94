"""Data-plane providers; only this package knows how traffic is carried."""

from __future__ import annotations

from typing import Any

from lbaas.providers.base import Provider
from lbaas.providers.noop import NoopProvider


def make_provider(settings: Any) -> Provider:
    """The provider the settings name (``noop`` or ``haproxy``)."""
    if settings.provider == "noop":
        return NoopProvider(settings.noop_task_delay_ms)
    from lbaas.providers.haproxy.provider import HaproxyProvider

    return HaproxyProvider.from_settings(settings)
