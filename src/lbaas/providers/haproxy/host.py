"""One host, several lbaas deployments: each registers the addresses it binds, none may overlap.

Two deployments (two data directories, e.g. a second ``lbaas serve`` for a test) on one host each
have their own database, so neither knows which VIPs the other handed out: with the same
``LBAAS_VIP_POOL`` both give the same first address, and the second HAProxy fails to bind. Every
process of a deployment that runs the haproxy provider holds a shared ``flock`` on
``<run_root>/<tag>.instance`` (``/run/lbaas`` or ``/tmp/lbaas-<uid>``; the file names its data
directory and its VIP and floating-IP pools). A process that finds a live instance of *another*
data directory whose pools overlap its own refuses to start, naming the setting to change. Locks
die with their processes, so a crashed deployment blocks nobody.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
from pathlib import Path
from typing import Any

from lbaas.providers.haproxy.errors import HaproxyError
from lbaas.providers.haproxy.paths import default_run_dir, run_root


class AddressPoolsOverlap(HaproxyError):
    """Another lbaas on this host binds addresses from the same pools."""


def _overlap(a: list[str], b: list[str]) -> list[str]:
    out = []
    for x in a:
        for y in b:
            if ipaddress.ip_network(x, strict=False).overlaps(ipaddress.ip_network(y, strict=False)):
                out.append(f"{x} and {y}")
    return out


def serving(data_dir: Path, root: Path | None = None) -> bool:
    """Whether a live process (``lbaas serve`` or ``lbaas worker`` with the haproxy provider) holds
    this data directory's registration. Call it before this process registers itself."""
    path = (root or run_root()) / f"{default_run_dir(data_dir).name}.instance"
    try:
        with open(path) as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
    except OSError:
        pass
    return False


def _forget_if_gone(record: Path, theirs: dict[str, Any]) -> None:
    """Remove the record (held under our exclusive lock) of a stopped deployment whose data
    directory no longer exists (a test's, a removed install), and its run directory if empty:
    nothing can start it again, and such records piled up by the dozen in /run/lbaas."""
    data_dir = theirs.get("data_dir")
    if not data_dir or os.path.isdir(data_dir):
        return
    record.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        (record.parent / record.stem).rmdir()  # its default run directory, when empty


def register(data_dir: Path, pools: dict[str, str], root: Path | None = None) -> Any:
    """Register this deployment on the host; the returned file keeps the registration (keep it open).

    ``root``: where registrations live (default: the host's :func:`~.paths.run_root`, whatever
    ``LBAAS_RUN_DIR`` says, so that every deployment sees every other). Raises
    :class:`AddressPoolsOverlap` when a live deployment of another data directory uses an
    overlapping pool.
    """
    root = root or run_root()
    tag = default_run_dir(data_dir).name
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    mine = {"data_dir": os.path.abspath(data_dir), "pools": pools}
    for other in sorted(root.glob("*.instance")):
        if other.stem == tag:
            continue
        try:
            with open(other, "r+") as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # held: that deployment is running
                    theirs = json.loads(fh.read() or "{}")
                else:  # nobody holds it: a deployment that stopped; gone for good if its data dir is
                    _forget_if_gone(other, json.loads(fh.read() or "{}"))
                    fcntl.flock(fh, fcntl.LOCK_UN)
                    continue
        except (OSError, ValueError):
            continue
        if theirs.get("data_dir") == mine["data_dir"]:
            continue
        clashes = {
            name: _overlap([value], [theirs.get("pools", {}).get(name, "")])
            for name, value in pools.items()
            if theirs.get("pools", {}).get(name)
        }
        for name, pairs in clashes.items():
            if pairs:
                setting = "LBAAS_" + name.upper()
                raise AddressPoolsOverlap(
                    f"another lbaas on this host (data dir {theirs['data_dir']}) uses {name} "
                    f"{theirs['pools'][name]}, which overlaps this one's {pools[name]}: give each its own "
                    f"{setting} (both bind these addresses on loopback)"
                )
    path = root / f"{tag}.instance"
    fh = open(path, "a+")  # noqa: SIM115 - held open: the lock is the registration
    os.chmod(path, 0o600)
    fcntl.flock(fh, fcntl.LOCK_SH)
    fh.seek(0)
    fh.truncate()
    fh.write(json.dumps(mine))
    fh.flush()
    return fh
