"""The ``global`` and ``defaults`` sections, and the process-wide numbers they carry."""

from __future__ import annotations

from lbaas.domain.flavors import DEFAULT_FLAVOR, FLAVORS
from lbaas.domain.model import LoadBalancerSnapshot
from lbaas.providers.haproxy.render.bundle import SERVER_STATE_FILE, SOCKET_PATH_MAX, Env
from lbaas.providers.haproxy.render.escape import RenderError, path

# Descriptors HAProxy 2.6 needs besides 2 per connection (src/haproxy.c compute_ideal_maxsock
# and the "maxsock++" of each socket eater): 10 reserved, the stats socket (1 + its 10
# connections), the master-worker socketpair and master CLI, log sockets; plus a margin.
FD_RESERVE = 64
DEFAULT_TIMEOUT_CLIENT_MS = 50_000
DEFAULT_TIMEOUT_CONNECT_MS = 5_000
DEFAULT_TIMEOUT_SERVER_MS = 50_000
TIMEOUT_HTTP_REQUEST = "10s"
#: The flow log goes through a ring buffer of the worker to lbaas's receiver (``Env.log_socket``,
#: a UNIX stream socket): the ring absorbs bursts and the receiver's restarts (the lines wait in
#: it, up to its size, and are forwarded once the receiver is back), where a datagram socket
#: (at most ``net.unix.max_dgram_qlen``, 10, queued) lost a line in ten at 5,000 requests/s
#: (bench/bench_access_logs.py). Only LBs with logging on have one.
LOG_RING = "lbaas-flowlog"
LOG_RING_BYTES = 1 << 20  # about 2,500 lines
LOG_LINE_MAX = 8192
#: Health messages (:mod:`lbaas.providers.haproxy.events`): at most this long, notice and above.
EVENTS_LINE_MAX = 1024
EVENTS_MAX_LEVEL = "notice"


def nbthread(snapshot: LoadBalancerSnapshot, env: Env) -> int:
    """Worker threads: the flavor's vCPUs, at most the host's cores.

    The default flavor (``flavor`` null) is :data:`lbaas.domain.flavors.DEFAULT_FLAVOR`,
    lb1-1-2: one thread. Measured on 2 vCPUs, one thread is also the faster choice when the
    load generator or other LBs share the cores (HAPROXY_NOTES.md).
    """
    vcpus = snapshot.flavor.vcpus if snapshot.flavor else FLAVORS[DEFAULT_FLAVOR][0]
    return max(1, min(vcpus, env.host_cpus))


#: Servers are budgeted descriptors in blocks of this size (see :func:`max_connections`).
SERVER_BLOCK = 256


def max_connections(env: Env, threads: int, bind_sockets: int, servers: int) -> int:
    """The global ``maxconn`` the descriptor limit allows.

    HAProxy 2.6 needs ``maxsock = 2 * maxconn + 3 * nbthread + sockets`` descriptors
    (one listening socket per bind, one per server with checks, the CLI and log sockets)
    and refuses to *start*, after ``haproxy -c`` passed, when ``maxsock`` exceeds the limit.
    So: ``maxconn = (fd_limit - FD_RESERVE - 3 * threads - bind_sockets - servers) // 2``;
    with 20,000 descriptors, 2 threads and a handful of binds and servers, about 9,960.

    ``servers`` is counted in blocks of :data:`SERVER_BLOCK`, so that adding or removing a
    member leaves ``maxconn`` (and the rest of the configuration but the ``server`` line)
    unchanged: member changes then go through the runtime API without a reload.
    """
    servers = -(-max(servers, 1) // SERVER_BLOCK) * SERVER_BLOCK
    overhead = FD_RESERVE + 3 * threads + bind_sockets + servers
    maxconn = (env.fd_limit - overhead) // 2
    if maxconn < 1:
        raise RenderError(f"a file-descriptor limit of {env.fd_limit} leaves no room for connections")
    return maxconn


def _unix_socket(value: str, what: str) -> str:
    """A UNIX socket path for the configuration: a safe path word, within HAProxy's length limit."""
    sock = path(value, what)
    if len(sock) > SOCKET_PATH_MAX:
        raise RenderError(f"{what} {sock!r} exceeds HAProxy's {SOCKET_PATH_MAX} characters")
    return sock


def socket_path(snapshot: LoadBalancerSnapshot, env: Env) -> str:
    return _unix_socket(f"{env.run_dir.rstrip('/')}/{snapshot.id}.sock", "stats socket path")


def global_section(
    snapshot: LoadBalancerSnapshot, env: Env, *, maxconn: int, threads: int, logging: bool, ping: bool
) -> list[str]:
    lines = [
        "global",
        f"    maxconn {maxconn}",
        f"    nbthread {threads}",
        f"    hard-stop-after {int(env.hard_stop_after_s)}s",
        "    noreuseport",
        # expose-fd listeners: a failover's fresh master takes the listening sockets over (-x)
        f"    stats socket {socket_path(snapshot, env)} mode 600 level admin expose-fd listeners",
        f"    server-state-file {path(env.lb_dir.rstrip('/') + '/' + SERVER_STATE_FILE)}",
    ]
    if logging and env.log_socket:
        lines.append(f"    log ring@{LOG_RING} len {LOG_LINE_MAX} format raw local0 info")
    lines += events_lines(snapshot, env)
    if ping:
        lines += ["    external-check", "    insecure-fork-wanted"]
    return lines


def events_lines(snapshot: LoadBalancerSnapshot, env: Env) -> list[str]:
    """The health messages' logger (``global``): notice and above (never a flow-log line, which
    is info) to lbaas's events socket, RFC 5424 with the LB's id as the app name."""
    if not env.events_socket:
        return []
    sock = _unix_socket(env.events_socket, "events socket path")
    return [
        f"    log {sock} len {EVENTS_LINE_MAX} format rfc5424 local1 {EVENTS_MAX_LEVEL}",
        f"    log-tag {snapshot.id}",
    ]


def defaults_section(logging: bool) -> list[str]:
    return [
        "defaults",
        "    log global" if logging else "    no log",
        "    retries 3",
        "    option redispatch",
        "    load-server-state-from-file global",
        f"    timeout connect {DEFAULT_TIMEOUT_CONNECT_MS}",
        f"    timeout client {DEFAULT_TIMEOUT_CLIENT_MS}",
        f"    timeout server {DEFAULT_TIMEOUT_SERVER_MS}",
        f"    timeout http-request {TIMEOUT_HTTP_REQUEST}",
    ]


def ring_section(env: Env) -> list[str]:
    """The flow log's ring buffer and its forwarding to the receiver (``format raw``: one
    line per message, newline-terminated, on a UNIX stream connection HAProxy keeps open and
    re-opens when it drops)."""
    sock = _unix_socket(env.log_socket or "", "log socket path")
    return [
        f"ring {LOG_RING}",
        '    description "lbaas access logs"',
        "    format raw",
        f"    maxlen {LOG_LINE_MAX}",
        f"    size {LOG_RING_BYTES}",
        "    timeout connect 1s",
        "    timeout server 30s",
        f"    server receiver unix@{sock}",
    ]
