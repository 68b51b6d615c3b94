"""Data-plane providers; only this package knows how traffic is carried."""

from __future__ import annotations

import dataclasses
from typing import Any

from lbaas.errors import LbaasError
from lbaas.providers.base import Provider
from lbaas.providers.noop import NoopProvider


def choose(settings: Any) -> tuple[str, str | None]:
    """The provider to run, and a warning to show when ``auto`` fell back to the emulator.

    ``auto``: ``haproxy`` when a usable HAProxy (>= 2.6) is installed, else ``noop``.
    An explicit ``haproxy`` without a usable HAProxy raises (one clear line).
    """
    if settings.provider == "noop":
        return "noop", None
    from lbaas.providers.haproxy import limits

    try:
        limits.haproxy_version(settings.haproxy_bin)
    except LbaasError as exc:
        if settings.provider == "haproxy":
            raise LbaasError(f"--provider haproxy: {exc.message}") from exc
        return "noop", (
            f"no usable HAProxy ({exc.message}); serving with the noop provider (the emulator: "
            "no traffic is carried)"
        )
    return "haproxy", None


def make_provider(settings: Any) -> Provider:
    """The provider the settings name (``noop``, ``haproxy``, or ``auto``: see :func:`choose`)."""
    name, _ = choose(settings)
    if name == "noop":
        return NoopProvider(settings.noop_task_delay_ms)
    from lbaas.providers.haproxy.provider import HaproxyProvider

    return HaproxyProvider.from_settings(dataclasses.replace(settings, provider=name))
