"""A client for HAProxy 2.6's runtime API: the worker's stats socket and the master CLI.

It talks to the UNIX sockets directly (a ``socat`` subprocess costs ~3 ms per call,
HAPROXY_NOTES.md). A batch of commands goes over one connection in the CLI's
interactive mode (``prompt``), where every reply ends with the ``"\\n> "`` prompt, so
replies are framed exactly; non-interactive ``;`` batches are not, because 2.6 ends some
replies (``del server``) without the blank line that ends the others. Replies carry
their severity (``set severity-output number``): ``[3]: No such server.`` is an error.

Errors: :class:`SocketUnavailable` (retriable) when the socket is missing, refuses,
resets or times out, which is what a reload in progress looks like;
:class:`CommandFailed` when HAProxy answers with an error (retriable only for states
that pass, such as a server that still has connections).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from lbaas.providers.haproxy import stats as stats_mod
from lbaas.providers.haproxy.errors import CommandFailed, HaproxyError, SocketUnavailable

DEFAULT_TIMEOUT = 2.0
_SEVERITY = re.compile(r"\[(\d)\]: ?")
_NAME = re.compile(r"[A-Za-z0-9_.:-]+")
#: Replies that describe a passing state: the same command can succeed later.
_TRANSIENT = ("still has connections", "still has streams", "is still", "try again")
SERVER_STATES = ("ready", "drain", "maint")


def _exchange(path: Path | str, payload: bytes, timeout: float) -> str:
    """Send ``payload``, half-close, read the reply to EOF."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    except (FileNotFoundError, ConnectionError, TimeoutError, OSError) as exc:
        raise SocketUnavailable(f"HAProxy socket {path} unavailable: {exc}", detail=str(exc)) from exc
    finally:
        sock.close()
    return b"".join(chunks).decode("utf-8", "replace")


def _check_word(value: str, what: str) -> str:
    if not value or any(c in value for c in "\n\r;") or value != value.strip():
        raise ValueError(f"{what} {value!r} cannot go into a runtime API command")
    return value


def _name(value: str, what: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not an HAProxy proxy or server name")
    return value


def server_address(address: str, port: int) -> str:
    """``addr:port`` as HAProxy parses it (IPv6 in brackets)."""
    ip = ipaddress.ip_address(address)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range")
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


@dataclass(frozen=True)
class Reply:
    """One command's reply: its text without the severity prefix, and whether it is an error."""

    command: str
    text: str
    severity: int | None

    @property
    def ok(self) -> bool:
        # Levels 0-3 are emerg..err (HAProxy's syslog levels); unprefixed text is data.
        # 2.6 answers an unknown command at level 6 (info), with suggestions.
        if self.text.startswith("Unknown command"):
            return False
        return self.severity is None or self.severity > 3

    def raise_for_error(self) -> Reply:
        if not self.ok:
            lowered = self.text.lower()
            raise CommandFailed(self.command, self.text, retriable=any(t in lowered for t in _TRANSIENT))
        return self


def _reply(command: str, raw: str) -> Reply:
    text = raw.rstrip("\n")
    match = _SEVERITY.match(text)
    if match:
        return Reply(command, _SEVERITY.sub("", text), int(match.group(1)))
    return Reply(command, text, None)


class StatsSocket:
    """The worker's stats socket (``stats socket ... level admin``)."""

    def __init__(self, path: Path | str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = Path(path)
        self.timeout = timeout

    def run(self, *commands: str) -> list[Reply]:
        """Run ``commands`` in order over one connection; one :class:`Reply` each (errors not raised)."""
        for command in commands:
            _check_word(command, "command")
        preamble = ("prompt", "set severity-output number")
        payload = "\n".join((*preamble, *commands, "quit")) + "\n"
        raw = _exchange(self.path, payload.encode(), self.timeout)
        # Interactive mode: every reply (possibly empty) is followed by "\n> "; "quit" says nothing.
        parts = raw.split("\n> ")
        expected = len(preamble) + len(commands) + 1
        if len(parts) != expected or parts[-1].strip():
            raise HaproxyError(
                f"unexpected runtime API framing from {self.path}: {len(parts)} parts for {expected}",
                retriable=True,
                detail=raw[-2000:],
            )
        return [_reply(c, p) for c, p in zip(commands, parts[len(preamble) : -1], strict=True)]

    def execute(self, *commands: str) -> list[Reply]:
        """Like :meth:`run`, raising :class:`CommandFailed` on the first error reply."""
        return [r.raise_for_error() for r in self.run(*commands)]

    def read(self, *commands: str) -> list[str]:
        """The replies of read-only commands whose replies hold no empty line (``show info``,
        ``show stat``), in one non-interactive exchange (``a;b``): HAProxy ends each reply with
        an empty line. Half the CPU of :meth:`run`'s interactive mode, whose prompts come back
        one write at a time (82 against 165 µs per exchange, measured): the poller's path.

        Raises :class:`SocketUnavailable`; :class:`CommandFailed` for an unknown command;
        :class:`HaproxyError` when the replies do not frame as expected (text in ``detail``).
        """
        for command in commands:
            _check_word(command, "command")
        raw = _exchange(self.path, (";".join(commands) + "\n").encode(), self.timeout)
        parts = raw.split("\n\n")
        if len(parts) != len(commands) + 1 or parts[-1].strip():
            raise HaproxyError(
                f"unexpected reply to {'; '.join(commands)} from {self.path}",
                retriable=True,
                detail=raw[-2000:],
            )
        # Without "set severity-output" (its empty reply would shift the framing) an error is
        # told by its words: for these commands only "Unknown command" can come back.
        return [Reply(c, text, None).raise_for_error().text for c, text in zip(commands, parts, strict=False)]

    # Reading

    def show_stat(self) -> stats_mod.StatsPoll:
        """``show stat`` parsed into frontends, backends and servers (see :mod:`.stats`)."""
        return stats_mod.parse_show_stat(self.execute("show stat")[0].text)

    def show_info(self) -> dict[str, str]:
        """``show info`` as ``{field: value}`` (``Pid``, ``CurrConns``, ``Maxconn``, ``Ulimit-n``...)."""
        info = {}
        for line in self.execute("show info")[0].text.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                info[key.strip()] = value.strip()
        return info

    def show_servers_state(self, backend: str | None = None) -> str:
        """``show servers state`` verbatim: the format ``server-state-file`` loads."""
        cmd = "show servers state" + (f" {_name(backend, 'backend')}" if backend else "")
        text = self.execute(cmd)[0].text
        return text + "\n"

    def save_server_state(self, path: Path | str, keep: Collection[tuple[str, str]] | None = None) -> None:
        """Write ``show servers state`` to ``path`` (0600, atomically) so a reload keeps health state.

        The configuration must say ``server-state-file <path>`` in ``global`` and
        ``load-server-state-from-file global`` in ``defaults`` (or per backend).
        ``keep``: the ``(backend, server)`` pairs whose state is carried over (None: all);
        see :func:`filter_server_state`.
        """
        text = self.show_servers_state()
        if keep is not None:
            text = filter_server_state(text, keep)
        target = Path(path)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)

    # Changing servers

    def set_weight(self, backend: str, server: str, weight: int) -> None:
        """``set server <b>/<s> weight N`` (0-256; refused on map-based hashing backends)."""
        if not 0 <= weight <= 256:
            raise ValueError(f"weight {weight} is outside 0-256")
        self.execute(f"set server {_name(backend, 'backend')}/{_name(server, 'server')} weight {int(weight)}")

    def set_state(self, backend: str, server: str, state: str) -> None:
        """``set server <b>/<s> state ready|drain|maint``."""
        if state not in SERVER_STATES:
            raise ValueError(f"server state {state!r} is not one of {SERVER_STATES}")
        self.execute(f"set server {_name(backend, 'backend')}/{_name(server, 'server')} state {state}")

    def add_server(
        self,
        backend: str,
        server: str,
        address: str,
        port: int,
        options: Sequence[str] = (),
        *,
        check: bool = False,
        state: str = "ready",
    ) -> None:
        """Add a server at runtime and put it in ``state``; with ``check``, enable its health checks.

        A dynamic server starts in MAINT with checks off and inherits nothing from
        ``default-server``: pass every option (``weight``, ``check``, ``inter``, ``rise``,
        ``fall``, ``ssl``...). HAProxy 2.6 refuses it on a backend with a static algorithm
        (``balance source`` without ``hash-type consistent``) and refuses ``cookie`` on it.
        It does not survive a reload: write it into the configuration too. On failure the
        half-added server is removed again.
        """
        if state not in SERVER_STATES:
            raise ValueError(f"server state {state!r} is not one of {SERVER_STATES}")
        ident = f"{_name(backend, 'backend')}/{_name(server, 'server')}"
        words = [_check_word(o, "server option") for o in options]
        if check and "check" not in words:
            words.append("check")
        add = " ".join([f"add server {ident}", server_address(address, port), *words])
        self.execute(add)
        follow = ([f"enable health {ident}"] if check else []) + [f"set server {ident} state {state}"]
        try:
            self.execute(*follow)
        except CommandFailed:
            self.run(f"set server {ident} state maint", f"del server {ident}")
            raise

    def del_server(self, backend: str, server: str, *, wait: float = 10.0, force: bool = True) -> bool:
        """Put a server in MAINT and delete it once it has no connections.

        Waits up to ``wait`` seconds for its connections to end; then, with ``force``,
        kills them (``shutdown sessions server``) and deletes. Returns True when sessions
        had to be killed. Raises :class:`CommandFailed` (retriable) when connections remain
        and ``force`` is False; a server that is already gone is not an error.
        """
        ident = f"{_name(backend, 'backend')}/{_name(server, 'server')}"
        first = self.run(f"set server {ident} state maint")[0]
        if not first.ok:
            if "no such server" in first.text.lower():
                return False
            first.raise_for_error()
        deadline = time.monotonic() + wait
        while True:
            reply = self.run(f"del server {ident}")[0]
            if reply.ok:
                return False
            try:
                reply.raise_for_error()
            except CommandFailed as exc:
                if not exc.retriable:
                    raise
                if time.monotonic() >= deadline:
                    if not force:
                        raise
                    self.execute(f"shutdown sessions server {ident}")
                    time.sleep(0.05)
                    self.run(f"del server {ident}")[0].raise_for_error()
                    return True
            time.sleep(0.05)


@dataclass(frozen=True)
class ProcEntry:
    """One line of the master's ``show proc``."""

    pid: int
    kind: str
    reloads: int
    uptime_s: int
    version: str


@dataclass(frozen=True)
class ProcInfo:
    """The master's ``show proc``: its reload counters and its current and old workers."""

    master: ProcEntry
    failed_reloads: int
    workers: tuple[ProcEntry, ...]
    old_workers: tuple[ProcEntry, ...]

    @property
    def worker_pids(self) -> tuple[int, ...]:
        return tuple(w.pid for w in self.workers)


_UPTIME = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_MASTER = re.compile(r"(\d+)\s+master\s+(\d+)\s+\[failed:\s*(\d+)\]\s+(\S+)\s*(\S*)")
_PROC = re.compile(r"(\d+)\s+(\S+)\s+(\d+)\s+(\S+)\s*(\S*)")


def filter_server_state(text: str, keep: Collection[tuple[str, str]]) -> str:
    """``show servers state`` output made fit to be loaded by the next worker.

    Only the servers of ``keep`` (``(backend, server)`` names) stay, and of them only the
    health: their admin state is cleared and their current weight set to their initial
    one, so that the new configuration decides both. HAProxy 2.6 otherwise
    restores from the file (measured on 2.6.12):

    * a saved DOWN even for a server that no longer has checks (its monitor was removed
      or disabled): nothing would ever bring it back up, so it silently takes no traffic.
      Only servers checked in the new configuration belong in ``keep``;
    * a MAINT set through the runtime API even when the new configuration enables the
      server, and a weight set through the runtime API even when the new configuration
      says another one (when its initial weight did not change): a member enabled, or
      re-weighted, together with a change that needs a reload would keep its old value.
    """
    wanted = set(keep)
    columns: list[str] = []
    out = []
    for line in text.splitlines():
        words = line.split()
        if line.startswith("#"):
            columns = words[1:]
        elif len(words) >= 4 and columns:
            row = dict(zip(columns, words, strict=False))
            if (row.get("be_name"), row.get("srv_name")) not in wanted:
                continue
            if "srv_admin_state" in row:
                words[columns.index("srv_admin_state")] = "0"
            if "srv_uweight" in row and "srv_iweight" in row:
                words[columns.index("srv_uweight")] = row["srv_iweight"]
            line = " ".join(words)
        out.append(line)
    return "\n".join(out) + "\n"


def _uptime(text: str) -> int:
    match = _UPTIME.fullmatch(text)
    if not match:
        return 0
    d, h, m, s = (int(g or 0) for g in match.groups())
    return ((d * 24 + h) * 60 + m) * 60 + s


def parse_show_proc(text: str) -> ProcInfo:
    """Parse 2.6's ``show proc`` (``<pid> master <reloads> [failed: N] <uptime> <version>``...)."""
    master: ProcEntry | None = None
    failed = 0
    section = "master"
    groups: dict[str, list[ProcEntry]] = {"workers": [], "old workers": [], "programs": []}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#<"):
            continue
        if line.startswith("#"):
            section = line.lstrip("# ").strip()
            continue
        if section == "master":
            m = _MASTER.match(line)
            if m:
                master = ProcEntry(int(m[1]), "master", int(m[2]), _uptime(m[4]), m[5])
                failed = int(m[3])
            continue
        m = _PROC.match(line)
        if m and section in groups:
            groups[section].append(ProcEntry(int(m[1]), m[2], int(m[3]), _uptime(m[4]), m[5]))
    if master is None:
        raise HaproxyError("no master line in 'show proc'", retriable=True, detail=text[-2000:])
    return ProcInfo(master, failed, tuple(groups["workers"]), tuple(groups["old workers"]))


class MasterSocket:
    """The master CLI (``-S <path>,mode,600``): ``show proc``, ``reload``, ``@!<pid>`` forwarding."""

    def __init__(self, path: Path | str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = Path(path)
        self.timeout = timeout

    def command(self, command: str) -> str:
        """One command, its reply as text (the master CLI has no severity prefixes)."""
        return _exchange(self.path, (_check_word(command, "command") + "\n").encode(), self.timeout)

    def show_proc(self) -> ProcInfo:
        return parse_show_proc(self.command("show proc"))

    def reload(self) -> None:
        """Ask for a reload. 2.6 replies nothing and closes: verify with :meth:`show_proc`."""
        self.command("reload")

    def worker_command(self, pid: int, command: str) -> str:
        """A command for one worker (current or old), through the master."""
        return self.command(f"@!{int(pid)} {_check_word(command, 'command')}")
