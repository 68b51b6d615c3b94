"""What the renderer needs from the host (:class:`Env`) and what it produces (:class:`Bundle`)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

CONFIG_FILE = "haproxy.cfg"
SERVER_STATE_FILE = "server-state"
SOCKET_PATH_MAX = 97  # "too long (max 97)": HAProxy's limit for a UNIX socket path


@dataclass(frozen=True, slots=True)
class Env:
    """Host facts for one LB's configuration; paths are absolute, ``[A-Za-z0-9._/-]`` only.

    ``run_dir``: where the stats socket ``<run_dir>/<lb_id>.sock`` goes; keep it short
    (the whole path must fit in 97 characters). ``lb_dir``: the LB's own directory, where
    the provider writes the bundle's files and keeps the ``server-state`` file (which the
    provider creates, empty, before the first start and refreshes before each reload:
    the bundle never contains it). ``log_socket``: the UNIX stream socket the flow log is
    forwarded to (from a ring buffer, :func:`.globaldefs.ring_section`), or None.
    ``events_socket``: the UNIX datagram socket the health messages go to (every LB,
    :mod:`lbaas.providers.haproxy.events`), or None (no health messages are sent).
    ``fd_limit``: the open-file limit HAProxy will run under (RLIMIT_NOFILE, hard).
    ``host_cpus``: cores of the host. ``ping_path``: the ``ping`` binary PING
    monitors run. ``hard_stop_after_s``: how long an old worker may keep serving its
    connections after a reload (see docs/haproxy-mapping.md).
    """

    run_dir: str
    lb_dir: str
    fd_limit: int = 20_000
    host_cpus: int = 1
    ping_path: str = "/usr/bin/ping"
    log_socket: str | None = None
    hard_stop_after_s: int = 60
    events_socket: str | None = None


@dataclass(frozen=True, slots=True)
class Bundle:
    """Every file of one LB's configuration, by path relative to ``Env.lb_dir``.

    ``haproxy.cfg`` plus the certificate, CA, CRL and crt-list files and the PING check
    script; the provider writes them 0600 (``executables``: 0700). ``config_hash`` is a
    SHA-256 over all paths and contents, stable across runs. ``repr`` hides the contents
    (they hold private keys).
    """

    files: Mapping[str, bytes]
    executables: frozenset[str] = frozenset()
    config_hash: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", MappingProxyType(dict(self.files)))
        digest = hashlib.sha256()
        for name in sorted(self.files):
            content = self.files[name]
            mode = b"x" if name in self.executables else b"-"
            for part in (name.encode(), mode, content):
                digest.update(len(part).to_bytes(8, "big"))
                digest.update(part)
        object.__setattr__(self, "config_hash", digest.hexdigest())

    @property
    def config(self) -> str:
        """The text of ``haproxy.cfg``."""
        return self.files[CONFIG_FILE].decode()

    def __repr__(self) -> str:
        names = ", ".join(sorted(self.files))
        return f"Bundle(files=[{names}], config_hash={self.config_hash!r})"
