"""Install one LB's configuration bundle atomically, checked by ``haproxy -c`` first.

A bundle maps paths relative to the LB directory to bytes; it holds ``haproxy.cfg`` and
whatever the configuration references (certificates, crt-lists, check scripts).
:func:`install`:

1. writes every changed file to a temporary name beside its target (0600, scripts named in
   ``executables`` 0700) and fsyncs it;
2. renames the other files into place, then checks the candidate configuration with
   ``haproxy -c -f <candidate>`` (so it sees the files it references);
3. on success renames the candidate over ``haproxy.cfg``, removes the files of the previous
   bundle that the new one no longer has, and records the bundle in ``bundle.json``;
4. on failure keeps the candidate as ``haproxy.cfg.failed``, puts every file back as it
   was and raises :class:`ConfigInvalid` with HAProxy's message: the live configuration is
   untouched.

A configuration can pass ``haproxy -c`` and still fail to start (the descriptor limit):
:meth:`Installed.rollback` puts the previous bundle back after a failed reload.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lbaas.providers.haproxy.errors import ConfigInvalid, HaproxyError, alerts
from lbaas.providers.haproxy.paths import CONFIG_FILE, RESERVED_FILES, LbPaths

CHECK_TIMEOUT = 30.0
#: A file as it was: bytes and mode, or None for "absent".
_Saved = tuple[bytes, int] | None


def _relative(name: str) -> str:
    """A bundle path: relative, no ``..``, no reserved or temporary names."""
    pure = PurePosixPath(name)
    if (
        not name
        or pure.is_absolute()
        or any(part in ("", ".", "..") for part in name.split("/"))
        or pure.name.startswith(".")
        or pure.name.endswith((".failed", ".new"))
        or name in RESERVED_FILES
    ):
        raise ValueError(f"bundle path {name!r} is not allowed")
    return name


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(target: Path, content: bytes, mode: int) -> Path:
    """Write ``content`` to a fresh temporary file beside ``target``; fsynced, ``mode`` set."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = target.with_name(f".{target.name}.tmp-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    return tmp


def write_atomic(target: Path, content: bytes, mode: int = 0o600) -> None:
    """Replace ``target`` with ``content`` (temporary file, fsync, rename, fsync of the directory)."""
    tmp = _write_temp(target, content, mode)
    try:
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def check_config(config: Path, haproxy_bin: str = "haproxy", timeout: float = CHECK_TIMEOUT) -> str:
    """Run ``haproxy -c -f config``; return its output (warnings) or raise :class:`ConfigInvalid`."""
    try:
        proc = subprocess.run(
            [haproxy_bin, "-c", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise HaproxyError(f"HAProxy binary {haproxy_bin!r} not found", detail=str(exc)) from exc
    except subprocess.TimeoutExpired as exc:
        raise HaproxyError(f"haproxy -c took over {timeout}s", retriable=True) from exc
    output = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    if proc.returncode != 0:
        raise ConfigInvalid("HAProxy refused the configuration: " + alerts(output), detail=output)
    return output


@dataclass
class Installed:
    """What :func:`install` did; :meth:`rollback` restores the bundle that was there before."""

    paths: LbPaths
    changed: bool
    config_sha256: str
    written: list[str]
    removed: list[str]
    warnings: str = ""
    check_seconds: float = 0.0
    _previous: dict[str, _Saved] = field(default_factory=dict, repr=False)
    _previous_manifest: bytes | None = field(default=None, repr=False)

    @property
    def first(self) -> bool:
        """Nothing was installed here before (no ``bundle.json``): the first bundle of this LB."""
        return self._previous_manifest is None

    def rollback(self) -> None:
        """Put back every file as it was before this install (files it added are deleted)."""
        _restore(self.paths, self._previous)
        if self._previous_manifest is None:
            self.paths.manifest_file.unlink(missing_ok=True)
        else:
            write_atomic(self.paths.manifest_file, self._previous_manifest)
        _fsync_dir(self.paths.dir)


def _restore(paths: LbPaths, previous: Mapping[str, _Saved]) -> None:
    for name, old in previous.items():
        target = paths.dir / name
        if old is None:
            target.unlink(missing_ok=True)
        else:
            write_atomic(target, old[0], old[1])


def _save(path: Path) -> _Saved:
    """A file's bytes and mode, or None when it does not exist."""
    try:
        return path.read_bytes(), path.stat().st_mode & 0o777
    except FileNotFoundError:
        return None


def _manifest(paths: LbPaths) -> dict:
    try:
        return json.loads(paths.manifest_file.read_bytes())
    except (FileNotFoundError, ValueError):
        return {}


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def installed_files(paths: LbPaths) -> list[str]:
    """The relative paths of the bundle installed now (from ``bundle.json``)."""
    return sorted(_manifest(paths).get("files", {}))


def install(
    paths: LbPaths,
    files: Mapping[str, bytes],
    *,
    executables: Collection[str] = (),
    haproxy_bin: str = "haproxy",
    check: bool = True,
) -> Installed:
    """Install ``files`` into the LB's directory; see the module docstring.

    Raises :class:`ConfigInvalid` (not retriable) when ``haproxy -c`` refuses the
    configuration, ``ValueError`` for a bundle without ``haproxy.cfg`` or with a path
    outside the LB directory. Idempotent: an identical bundle changes nothing and is not
    checked again.
    """
    if CONFIG_FILE not in files:
        raise ValueError(f"a bundle needs {CONFIG_FILE}")
    names = {_relative(n) for n in files}
    for name in executables:
        if name not in names:
            raise ValueError(f"executable {name!r} is not in the bundle")
    paths.prepare()
    ensure_state_file(paths)
    old_manifest_bytes = _read(paths.manifest_file)
    old_files = set(_manifest(paths).get("files", {}))
    modes = {n: (0o700 if n in executables else 0o600) for n in names}

    previous: dict[str, _Saved] = {}
    changed = []
    for name in sorted(names):
        old = _save(paths.dir / name)
        if old != (files[name], modes[name]):
            previous[name] = old
            changed.append(name)
    stale = sorted(old_files - names)
    config_sha = hashlib.sha256(files[CONFIG_FILE]).hexdigest()
    result = Installed(paths, bool(changed or stale), config_sha, changed, stale)
    result._previous_manifest = old_manifest_bytes
    if not result.changed and old_manifest_bytes is not None:
        return result

    temps: dict[str, Path] = {}
    try:
        for name in changed:
            temps[name] = _write_temp(paths.dir / name, files[name], modes[name])
        # The configuration's companions go into place first so the check sees them.
        placed: dict[str, _Saved] = {}
        for name in changed:
            if name != CONFIG_FILE:
                os.replace(temps.pop(name), paths.dir / name)
                placed[name] = previous[name]
        if CONFIG_FILE in temps:
            candidate = paths.dir / (CONFIG_FILE + ".new")
            os.replace(temps.pop(CONFIG_FILE), candidate)
            if check:
                started = time.monotonic()
                try:
                    result.warnings = check_config(candidate, haproxy_bin)
                except BaseException:
                    os.replace(candidate, paths.dir / (CONFIG_FILE + ".failed"))
                    _restore(paths, placed)
                    raise
                result.check_seconds = time.monotonic() - started
            os.replace(candidate, paths.config)
        elif check and changed:
            started = time.monotonic()
            try:
                result.warnings = check_config(paths.config, haproxy_bin)
            except BaseException:
                _restore(paths, placed)
                raise
            result.check_seconds = time.monotonic() - started
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
    for name in stale:
        previous[name] = _save(paths.dir / name)
        (paths.dir / name).unlink(missing_ok=True)
    with contextlib.suppress(FileNotFoundError):
        (paths.dir / (CONFIG_FILE + ".failed")).unlink()
    manifest = {
        "files": {n: hashlib.sha256(files[n]).hexdigest() for n in sorted(names)},
        "modes": {n: modes[n] for n in sorted(names) if modes[n] != 0o600},
        "config_sha256": config_sha,
    }
    write_atomic(paths.manifest_file, json.dumps(manifest, indent=1).encode())
    _fsync_dir(paths.dir)
    result._previous = previous
    return result


#: A server-state file with no servers: HAProxy warns about a missing or empty one.
EMPTY_SERVER_STATE = b"1\n"


def ensure_state_file(paths: LbPaths) -> None:
    """Create the LB's ``server-state`` file (version line only) if it does not exist."""
    if not paths.state_file.exists():
        write_atomic(paths.state_file, EMPTY_SERVER_STATE)


def remove_all(paths: LbPaths) -> None:
    """Delete the LB's directory and its sockets (call once its process is stopped)."""
    shutil.rmtree(paths.dir, ignore_errors=True)
    for sock in (paths.stats_socket, paths.master_socket):
        sock.unlink(missing_ok=True)
