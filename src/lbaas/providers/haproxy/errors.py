"""Errors of the HAProxy host layer; all are :class:`lbaas.errors.ProviderError`.

``retriable`` says whether the same call can succeed later without a change of input
(a socket that is busy or missing during a reload, a worker that did not come up in
time), as the task engine reads it.
"""

from __future__ import annotations

import re

from lbaas.errors import ProviderError, TransientProviderError

_PREFIX = re.compile(r"^\[(ALERT|WARNING|NOTICE)\]\s+\(\d+\)\s*:\s*")
# "[/var/lib/.../haproxy.cfg:24] " points into the host's files: not for API users.
_WHERE = re.compile(r"\s*\[/[^\]\s]*:\d+\]")


def alerts(output: str) -> str:
    """HAProxy's ``[ALERT]`` lines of some output, without their ``[ALERT] (pid) :`` prefix
    and file positions, joined by `` | ``; its last lines when it has no alert."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    picked = [ln for ln in lines if ln.startswith("[ALERT]")] or lines[-3:]
    return " | ".join(_WHERE.sub("", _PREFIX.sub("", ln)) for ln in picked) or "(HAProxy said nothing)"


def has_alert(output: str) -> bool:
    """Whether HAProxy refused something outright (an ``[ALERT]``: a port taken, a limit): trying
    the same again cannot help."""
    return any(ln.lstrip().startswith("[ALERT]") for ln in output.splitlines())


class HaproxyError(ProviderError):
    """The HAProxy data plane failed."""

    def __init__(self, message: str, *, retriable: bool | None = None, detail: str = "") -> None:
        super().__init__(message)
        if retriable is not None:
            self.retriable = retriable
        #: HAProxy's own words (``haproxy -c`` output, the master's log, a CLI reply).
        self.detail = detail


class UnsupportedHaproxy(HaproxyError):
    """The installed HAProxy is missing or older than lbaas needs."""


class ConfigInvalid(HaproxyError):
    """``haproxy -c`` refused a configuration; the live one was left untouched."""


class StartFailed(HaproxyError):
    """A master process did not come up with a worker."""


class ReloadFailed(HaproxyError, TransientProviderError):
    """A reload did not produce a new worker; the old one keeps the old configuration."""


class NotRunning(HaproxyError):
    """No master process serves this load balancer."""


class SocketUnavailable(HaproxyError, TransientProviderError):
    """A runtime socket is missing, refuses, resets or times out (always retriable)."""


class CommandFailed(HaproxyError):
    """HAProxy answered a runtime command with an error."""

    def __init__(self, command: str, reply: str, *, retriable: bool = False) -> None:
        super().__init__(f"HAProxy refused {command!r}: {reply.strip()}", retriable=retriable, detail=reply)
        self.command = command
        self.reply = reply
