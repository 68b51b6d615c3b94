"""Put a bundle live on one LB: install it, then start the master or reload it, verified.

The one sequence the provider runs for ``apply``: :func:`lbaas.providers.haproxy.files.install`
(checked by ``haproxy -c``), then, when no master runs, a start; when one runs and the
bundle or the running configuration differs, ``show servers state`` into the state file
(health survives the reload) and a verified reload. When the start or reload fails the
previous bundle is put back on disk, so the files match what the old worker serves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from lbaas.providers.haproxy.errors import ReloadFailed, SocketUnavailable, StartFailed
from lbaas.providers.haproxy.files import Installed, install
from lbaas.providers.haproxy.paths import LbPaths
from lbaas.providers.haproxy.process import HaproxyProcess, HaproxyStatus
from lbaas.providers.haproxy.runtime import StatsSocket


@dataclass(frozen=True)
class Deployed:
    """``action``: ``started``, ``reloaded`` or ``unchanged``; ``seconds`` of the start or reload."""

    action: str
    status: HaproxyStatus
    installed: Installed
    seconds: float = 0.0


def deploy(
    paths: LbPaths,
    files: Mapping[str, bytes],
    *,
    executables: Collection[str] = (),
    config_hash: str | None = None,
    haproxy_bin: str = "haproxy",
    process: HaproxyProcess | None = None,
    keep_state: Collection[tuple[str, str]] | None = None,
) -> Deployed:
    """Install ``files`` and make the LB's master serve them; idempotent.

    ``config_hash`` names the bundle in the running record (the renderer's
    ``Bundle.config_hash``; default: the SHA-256 of ``haproxy.cfg``). Raises
    :class:`ConfigInvalid` (nothing changed), :class:`StartFailed` or :class:`ReloadFailed`
    (previous bundle restored on disk; the old worker, if any, still serves).
    ``keep_state``: the ``(backend, server)`` pairs whose state a reload carries over
    (None: all; see :func:`lbaas.providers.haproxy.runtime.filter_server_state`).
    """
    process = process or HaproxyProcess(paths, haproxy_bin=haproxy_bin)
    installed = install(paths, files, executables=executables, haproxy_bin=haproxy_bin)
    # The first bundle of an LB, and no pid file: no master can have loaded this configuration
    # (it did not exist), so there is nothing to look for in /proc.
    new_lb = installed.first and not paths.pid_file.exists()
    with process.one_scan(none_running=new_lb):
        return _make_live(process, paths, installed, config_hash or installed.config_sha256, keep_state)


def _make_live(
    process: HaproxyProcess,
    paths: LbPaths,
    installed: Installed,
    wanted: str,
    keep_state: Collection[tuple[str, str]] | None,
) -> Deployed:
    status = process.status()
    if not status.running:
        try:
            started = process.start(wanted)
        except StartFailed:
            installed.rollback()
            raise
        return Deployed("started", started.status, installed, started.seconds)
    if not installed.changed and status.config_sha256 == wanted:
        return Deployed("unchanged", status, installed)
    with contextlib.suppress(SocketUnavailable):  # no worker answers: no state worth keeping
        StatsSocket(paths.stats_socket).save_server_state(paths.state_file, keep_state)
    try:
        reloaded = process.reload(wanted)
    except ReloadFailed:
        installed.rollback()
        raise
    return Deployed("reloaded", reloaded.status, installed, reloaded.seconds)
