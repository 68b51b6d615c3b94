"""The ``haproxy`` provider: every load balancer is one HAProxy 2.6 master-worker process.

``apply(desired, previous)``:

1. render ``desired`` (:mod:`.render`, pure) into a bundle;
2. when a master serves exactly ``previous`` and the two configurations differ only in
   ``server`` lines that HAProxy 2.6 can change at run time, install the new files
   (checked by ``haproxy -c``, so the next reload keeps the change) and change the
   running worker through the runtime API: ``add server`` / ``del server`` for members
   added and removed, ``set server ... weight`` and ``state`` for weights and admin
   state; no reload;
3. otherwise install and start, or reload (verified in the master's ``show proc``).

The runtime path is not taken for a server 2.6 cannot add dynamically: one with a
``cookie`` (HTTP_COOKIE persistence) or TLS files (``ca-file``, ``crl-file``, ``crt``) not
yet loaded by the worker; nor when anything but ``server`` lines changed. A task is
FINISHED only once the change is live: runtime changes are read back with ``show stat``.

Errors: a snapshot HAProxy cannot serve (:class:`RenderError`) or a configuration ``haproxy
-c`` refuses fails the task (the old configuration keeps serving); a reload that did not
take or a busy socket is a :class:`~lbaas.errors.TransientProviderError`, retried by the
engine with back-off.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import re
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lbaas.domain.capabilities import HAPROXY
from lbaas.domain.model import LoadBalancerSnapshot
from lbaas.errors import ProviderError
from lbaas.providers.base import Counters, MemberCheck, Observation, ProcessInfo, Usage
from lbaas.providers.haproxy import discovery, files, host, limits, stats
from lbaas.providers.haproxy import usage as proc_usage
from lbaas.providers.haproxy.deploy import deploy
from lbaas.providers.haproxy.errors import CommandFailed, HaproxyError, SocketUnavailable
from lbaas.providers.haproxy.events import HealthEvents
from lbaas.providers.haproxy.paths import Layout, LbPaths
from lbaas.providers.haproxy.process import HaproxyProcess
from lbaas.providers.haproxy.render import CONFIG_FILE, Bundle, Env, RenderError, render
from lbaas.providers.haproxy.runtime import StatsSocket

log = logging.getLogger(__name__)

#: How long a removed member's connections may finish before it is deleted; past that it
#: stays in MAINT (no new traffic) until the next reload drops it.
DRAIN_SECONDS = 2.0


@dataclass(frozen=True)
class ServerLine:
    """One ``server`` line of a rendered configuration, split for the runtime API."""

    backend: str
    name: str
    address: str
    port: int
    options: tuple[str, ...]  # every word after the address, ``disabled`` left out
    disabled: bool

    @property
    def weight(self) -> int:
        opts = self.options
        return int(opts[opts.index("weight") + 1]) if "weight" in opts else 1

    def without_weight(self) -> tuple[Any, ...]:
        opts = list(self.options)
        if "weight" in opts:
            i = opts.index("weight")
            del opts[i : i + 2]
        return (self.address, self.port, tuple(opts))

    @property
    def addable(self) -> bool:
        """Whether HAProxy 2.6 can add this server at run time (no cookie, no TLS files)."""
        return not {"cookie", "ca-file", "crl-file", "crt"} & set(self.options)


_SERVER = re.compile(r"^    server (\S+) (\S+)(.*)$")


def _split_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def server_lines(config: str) -> tuple[dict[tuple[str, str], ServerLine], str]:
    """The ``server`` lines of each backend, and the configuration without them."""
    servers: dict[tuple[str, str], ServerLine] = {}
    rest: list[str] = []
    backend: str | None = None
    for line in config.splitlines():
        if line and not line.startswith(" "):
            words = line.split()
            backend = words[1] if words[0] == "backend" and len(words) > 1 else None
        m = _SERVER.match(line)
        if m and backend is not None:
            words = m.group(3).split()
            address, port = _split_address(m.group(2))
            options = tuple(w for w in words if w != "disabled")
            servers[(backend, m.group(1))] = ServerLine(
                backend, m.group(1), address, port, options, "disabled" in words
            )
        else:
            rest.append(line)
    return servers, "\n".join(rest)


def checked_servers(config: str) -> set[tuple[str, str]]:
    """``(backend, server)`` of every server with health checks: the only ones whose saved
    state a reload may restore (a saved DOWN on an unchecked server would never clear)."""
    return {key for key, line in server_lines(config)[0].items() if "check" in line.options}


@dataclass(frozen=True)
class Step:
    """One runtime-API change: ``add``, ``delete``, ``weight`` or ``state``."""

    op: str
    server: ServerLine


def runtime_plan(old: Bundle, new: Bundle) -> list[Step] | None:
    """The runtime-API steps that turn ``old``'s running worker into ``new``, or None (reload)."""
    if {k: v for k, v in old.files.items() if k != CONFIG_FILE} != {
        k: v for k, v in new.files.items() if k != CONFIG_FILE
    }:
        return None
    old_servers, old_rest = server_lines(old.config)
    new_servers, new_rest = server_lines(new.config)
    if old_rest != new_rest:
        return None
    steps: list[Step] = []
    for key in old_servers.keys() - new_servers.keys():
        steps.append(Step("delete", old_servers[key]))
    for key, line in new_servers.items():
        before = old_servers.get(key)
        if before is None:
            if not line.addable:
                return None
            steps.append(Step("add", line))
            continue
        if before.without_weight() != line.without_weight():
            return None  # address, port or check options changed: a reload redoes the server
        if before.weight != line.weight:
            steps.append(Step("weight", line))
        if before.disabled != line.disabled:
            steps.append(Step("state", line))
    return steps


class HaproxyProvider:
    """One HAProxy master-worker per load balancer, files under ``<data_dir>/haproxy``."""

    name = "haproxy"
    inline = False
    capabilities = HAPROXY

    def __init__(
        self,
        layout: Layout,
        *,
        haproxy_bin: str = "haproxy",
        host: limits.HostLimits | None = None,
        log_socket: str | None = None,
        events_socket: str | None = None,
        parallelism: int = 4,
        max_load_balancers: int | None = None,
    ) -> None:
        self.layout = layout
        self.haproxy_bin = haproxy_bin
        self.host = host or limits.host_limits(haproxy_bin)
        self.log_socket = log_socket
        self.events_socket = events_socket
        self._events: HealthEvents | None = None
        self.parallelism = parallelism
        self.registration: Any = None  # this deployment's claim on its address pools (host.register)
        ram = limits.memory_mib()
        self.capabilities = dataclasses.replace(
            HAPROXY,
            max_load_balancers=max_load_balancers
            or limits.max_load_balancers(ram, tasks=limits.task_limit(), cpus=self.host.cpus),
            host_ram_mib=ram,
        )

    @classmethod
    def from_settings(cls, settings: Any) -> HaproxyProvider:
        """Check that a usable HAProxy is installed (>= 2.6) and lay out its directories.

        Access logs: LBs with ``logging.enabled`` send their flow log to the layout's
        ``logs.sock``, which the access-log receiver binds (:mod:`lbaas.accesslogs`).
        """
        layout = Layout.from_settings(settings)
        provider = cls(
            layout,
            haproxy_bin=settings.haproxy_bin,
            max_load_balancers=getattr(settings, "max_load_balancers", None),
            log_socket=str(layout.log_socket),
            events_socket=str(layout.events_socket),
        )
        pools = {"vip_pool": settings.vip_pool, "fip_pool": settings.fip_pool}
        provider.registration = host.register(Path(settings.data_dir), pools)
        return provider

    def close(self) -> None:
        """Give up this deployment's claim on its address pools (:func:`host.register`), so that
        another lbaas may take them, and stop hearing health events. The HAProxy processes keep
        running; idempotent."""
        registration, self.registration = self.registration, None
        if registration is not None:
            registration.close()  # closing the file drops its lock: the registration is gone
        events, self._events = self._events, None
        if events is not None:
            events.close()

    # -- the status channel's signals (used by lbaas.tasks.poller) ------------------------------
    def listen(self) -> bool:
        """Start receiving health events (in the process that polls); False without a socket."""
        if self.events_socket is None:
            return False
        if self._events is None:
            events = HealthEvents(self.events_socket)
            events.start()
            self._events = events
        return True

    def changes(self, timeout: float) -> set[str]:
        """Ids of the LBs whose HAProxy reported a health change since the last call, waiting up
        to ``timeout`` seconds for one (see :mod:`.events`); empty when not listening."""
        events = self._events
        if events is None:
            if timeout > 0:
                time.sleep(timeout)
            return set()
        return events.wait(timeout)

    def unreachable(self, lb_ids: Iterable[str]) -> set[str]:
        """The LBs whose stats socket takes no connection (their HAProxy is down or gone): a
        connect and a close each, with no reply to wait for, read or parse."""
        down = set()
        for lb_id in lb_ids:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(1.0)
            try:
                sock.connect(str(self.paths(lb_id).stats_socket))
            except (OSError, ValueError):
                down.add(lb_id)
            finally:
                sock.close()
        return down

    # -- helpers -------------------------------------------------------------------------
    def paths(self, lb_id: str) -> LbPaths:
        return self.layout.lb(lb_id)

    def env(self, paths: LbPaths) -> Env:
        return Env(
            run_dir=str(paths.run_dir),
            lb_dir=str(paths.dir),
            fd_limit=self.host.fd.hard,
            host_cpus=self.host.cpus,
            ping_path=self.host.ping or "/usr/bin/ping",
            log_socket=self.log_socket,
            events_socket=self.events_socket,
        )

    def render(self, snapshot: LoadBalancerSnapshot) -> Bundle:
        try:
            return render(snapshot, self.env(self.paths(snapshot.id)))
        except RenderError as exc:
            raise ProviderError(f"HAProxy cannot serve this load balancer: {exc}") from exc

    def _process(
        self, paths: LbPaths, masters: Sequence[discovery.MasterProcess] | None = None
    ) -> HaproxyProcess:
        return HaproxyProcess(paths, haproxy_bin=self.haproxy_bin, masters=masters)

    # -- Provider ------------------------------------------------------------------------
    def apply(self, desired: LoadBalancerSnapshot, previous: LoadBalancerSnapshot | None = None) -> None:
        self._apply(desired, previous)

    def _apply(
        self,
        desired: LoadBalancerSnapshot,
        previous: LoadBalancerSnapshot | None,
        masters: Sequence[discovery.MasterProcess] | None = None,
    ) -> None:
        paths = self.paths(desired.id)
        bundle = self.render(desired)
        if previous is not None and self._apply_at_runtime(paths, bundle, previous):
            return
        done = deploy(
            paths,
            bundle.files,
            executables=bundle.executables,
            config_hash=bundle.config_hash,
            haproxy_bin=self.haproxy_bin,
            process=self._process(paths, masters),
            keep_state=checked_servers(bundle.config),
        )
        if done.action != "unchanged":
            log.info("load balancer %s: HAProxy %s in %.0f ms", desired.id, done.action, done.seconds * 1000)

    def _apply_at_runtime(self, paths: LbPaths, bundle: Bundle, previous: LoadBalancerSnapshot) -> bool:
        """Apply member-only changes through the runtime API; False when a reload is needed."""
        process = self._process(paths)
        status = process.status()
        if not status.running or status.config_sha256 is None:
            return False
        if status.config_sha256 == bundle.config_hash:
            # Already serving it (a task run again after a crash, a drift of files on disk):
            # put the files back as they should be; the running worker needs nothing.
            files.install(paths, bundle.files, executables=bundle.executables, haproxy_bin=self.haproxy_bin)
            return True
        try:
            old = render(previous, self.env(paths))
        except RenderError:
            return False
        if status.config_sha256 != old.config_hash:
            return False  # the master serves something else: reload to the desired state
        steps = runtime_plan(old, bundle)
        if steps is None:
            return False
        installed = files.install(
            paths, bundle.files, executables=bundle.executables, haproxy_bin=self.haproxy_bin
        )
        try:
            self._run_steps(paths, steps)
        except HaproxyError:
            installed.rollback()
            raise
        process.record_running(bundle.config_hash)
        log.info("load balancer %s: %d member change(s) through the runtime API", paths.lb_id, len(steps))
        return True

    def _run_steps(self, paths: LbPaths, steps: Sequence[Step]) -> None:
        sock = StatsSocket(paths.stats_socket)
        for step in steps:
            s = step.server
            if step.op == "add":
                sock.add_server(
                    s.backend,
                    s.name,
                    s.address,
                    s.port,
                    s.options,
                    check="check" in s.options,
                    state="maint" if s.disabled else "ready",
                )
            elif step.op == "delete":
                try:
                    sock.del_server(s.backend, s.name, wait=DRAIN_SECONDS, force=False)
                except CommandFailed as exc:
                    if not exc.retriable:
                        raise
                    # Still has connections: it takes no new traffic (MAINT) and the next
                    # reload, which no longer has it, lets its connections finish.
                    log.info("member %s keeps its connections in MAINT until the next reload", s.name)
            elif step.op == "weight":
                sock.set_weight(s.backend, s.name, s.weight)
            elif step.op == "state":
                sock.set_state(s.backend, s.name, "maint" if s.disabled else "ready")
        self._verify(sock, steps)

    @staticmethod
    def _verify(sock: StatsSocket, steps: Sequence[Step]) -> None:
        """Read the worker back: every added server exists, every changed one has its state."""
        servers = sock.show_stat().servers
        for step in steps:
            s = step.server
            row = servers.get((s.backend, s.name))
            if step.op == "add" and row is None:
                raise HaproxyError(
                    f"server {s.name} is not in backend {s.backend} after add server", retriable=True
                )
            if step.op == "state" and row is not None:
                maint = row.status.upper().startswith("MAINT")
                if maint != s.disabled:
                    raise HaproxyError(f"server {s.name} reads {row.status} after set state", retriable=True)

    def remove(self, lb_id: str) -> None:
        paths = self.paths(lb_id)
        self._process(paths).stop()
        files.remove_all(paths)

    def failover(self, desired: LoadBalancerSnapshot) -> None:
        """Rebuild from ``desired`` as a fresh master that takes the listening sockets over from the
        old one (``-x``), which then finishes its connections and exits: the port never closes."""
        paths = self.paths(desired.id)
        bundle = self.render(desired)
        installed = files.install(
            paths, bundle.files, executables=bundle.executables, haproxy_bin=self.haproxy_bin
        )
        try:
            started = self._process(paths).start(bundle.config_hash, takeover=True)
        except HaproxyError:
            installed.rollback()
            raise
        log.info(
            "load balancer %s: failed over to a fresh HAProxy master in %.0f ms",
            desired.id,
            started.seconds * 1000,
        )

    def reconcile(self, desired: Sequence[LoadBalancerSnapshot]) -> None:
        """Adopt masters serving their desired configuration, (re)deploy the rest, stop the others."""
        wanted = {s.id: s for s in desired}
        killed = discovery.kill_strays(self.layout)
        if killed:
            log.warning("stopped %d stray HAProxy process(es): %s", len(killed), killed)
        for master in discovery.find_running(self.layout):
            lb_id = master.lb_id or None
            if lb_id is not None and lb_id not in wanted:
                log.warning("stopping HAProxy of load balancer %s, which lbaas no longer serves", lb_id)
                self.remove(lb_id)

        # One scan of /proc for all of them: a master found down would otherwise scan it three
        # times (1,000 LBs after a reboot: 3,000 scans of a growing /proc, most of the time).
        masters = discovery.all_masters()

        def bring_up(snapshot: LoadBalancerSnapshot) -> None:
            try:
                self._apply(snapshot, None, masters)
            except ProviderError as exc:
                log.error("load balancer %s could not be brought up: %s", snapshot.id, exc.message)

        with concurrent.futures.ThreadPoolExecutor(self.parallelism) as pool:
            list(pool.map(bring_up, wanted.values()))

    def observe(self, lb_ids: Iterable[str]) -> Mapping[str, Observation]:
        """One ``show info; show stat`` per LB, one after the other. (Asked from 4 threads, a round
        of 1,000 LBs ended sooner, but lbaas's idle CPU went from 15 to 58 % of a core and a GET's
        p99 from 3 to 144 ms: the threads queue for the GIL with the API's event loop.)"""
        return {lb_id: self._observe(lb_id) for lb_id in lb_ids}

    def _observe(self, lb_id: str) -> Observation:
        paths = self.paths(lb_id)
        sock = StatsSocket(paths.stats_socket, timeout=2.0)
        try:
            # Frontends and servers only (type mask 1 + 4): backends' lines are not read here.
            info, stat = sock.read("show info", f"show stat -1 {_FRONTENDS_AND_SERVERS} -1")
            poll = stats.parse_show_stat(stat)
        except (SocketUnavailable, CommandFailed, HaproxyError) as exc:
            return Observation(lb_id, running=False, reason=str(exc.message))
        except ValueError as exc:  # not show stat's CSV
            return Observation(lb_id, running=False, reason=f"unexpected show stat reply: {exc}")
        members = {
            server: MemberCheck(
                health=h.health,
                check_status=h.check_status,
                check_code=h.check_code,
                check_desc=h.check_text,
                check_duration_ms=h.check_duration_ms,
                since_s=h.since_change_s,
            )
            for (_backend, server), h in stats.member_health(poll).items()
        }
        pid = _PID.search(info)
        generation = pid.group(1) if pid else ""
        lb, per = stats.lb_counters(poll, [f for f in poll.frontends if not f.startswith("_")])
        return Observation(
            lb_id,
            members=members,
            counters=_counters(lb, generation),
            listener_counters={name: _counters(c, generation) for name, c in per.items()},
        )

    # metrics sampler (lb-metrics): CPU time and memory from /proc, see haproxy/usage.py
    def usage(self, lb_ids: Iterable[str]) -> Mapping[str, Usage]:
        return proc_usage.of_masters(discovery.find_running(self.layout), lb_ids)

    def processes(self) -> list[ProcessInfo]:
        out = []
        for master in discovery.find_running(self.layout):
            if not master.lb_id:
                continue
            status = self._process(self.paths(master.lb_id)).status()
            out.append(
                ProcessInfo(
                    master.lb_id,
                    "running" if status.running else "stopped",
                    status.master_pid,
                    status.reloads,
                    status.config_sha256,
                )
            )
        return out

    def drift(self, desired: LoadBalancerSnapshot) -> str | None:
        paths = self.paths(desired.id)
        try:
            bundle = render(desired, self.env(paths))
        except RenderError:
            return None
        status = self._process(paths).status()
        if not status.running:
            return None  # down is the healer's business
        if status.config_sha256 is None:
            return f"master {status.master_pid} runs a configuration lbaas did not load"
        if status.config_sha256 != bundle.config_hash:
            running, wanted = status.config_sha256[:12], bundle.config_hash[:12]
            return f"the running configuration {running} is not the desired {wanted}"
        for name, content in bundle.files.items():
            try:
                on_disk = (paths.dir / name).read_bytes()
            except OSError:
                return f"{name} is missing from {paths.dir}"
            if on_disk != content:
                return f"{name} was changed on disk"
        return None

    def stop_all(self) -> int:
        """Stop every HAProxy lbaas started (operators, test teardown).

        Their configurations stay; their sockets, pid files and running records go, as with
        any stop (a stale socket in the run directory would look like a live LB).
        """
        masters = discovery.find_running(self.layout)
        # All soft-stop at once, then each is waited for: one after the other, 1,000 idle LBs took
        # a minute (each master needs a few tens of ms to exit after SIGUSR1).
        discovery.soft_stop([m.pid for m in masters])
        for master in masters:
            discovery.terminate(master.pid, master.worker_pids)
            discovery.reap(master.pid)
            if master.lb_id:
                self._process(self.paths(master.lb_id)).stop()  # nothing left to signal: cleans up
        return len(masters)


#: ``show stat``'s type filter: 1 frontends, 2 backends, 4 servers.
_FRONTENDS_AND_SERVERS = 1 | 4


#: The ``Pid:`` line of ``show info`` (the worker's pid: a new one means counters restarted).
_PID = re.compile(r"^Pid:[ \t]*(\S*)", re.MULTILINE)


def _counters(c: stats.Counters, generation: str) -> Counters:
    return Counters(
        active_connections=c.active_connections,
        bytes_in=c.bytes_in,
        bytes_out=c.bytes_out,
        request_errors=c.request_errors,
        total_connections=c.total_connections,
        generation=generation,
    )
