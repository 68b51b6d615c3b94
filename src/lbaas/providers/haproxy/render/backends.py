"""One ``backend`` per enabled pool (named by its id): balancing, persistence, checks, servers.

A pool is rendered once even when several listeners reach it (its own listener's default,
other listeners' REDIRECT_TO_POOL): everything listener-specific (client timeout, X-Forwarded
headers, allowed CIDRs) lives in the frontends, and the backend's mode follows the pool's
protocol alone: HTTP → ``http``; HTTPS, TCP, PROXY, PROXYV2 → ``tcp``. A TCP frontend may
use an HTTP backend (HAProxy upgrades the stream); an HTTP frontend never gets a TCP one.
"""

from __future__ import annotations

from lbaas.domain.enums import (
    HealthMonitorType,
    LbAlgorithm,
    ListenerProtocol,
    PoolProtocol,
    SessionPersistenceType,
)
from lbaas.domain.model import HealthMonitor, LoadBalancerSnapshot, Member, Pool
from lbaas.domain.validation import parse_expected_codes
from lbaas.errors import ValidationFailed
from lbaas.providers.haproxy.render.bundle import Env
from lbaas.providers.haproxy.render.escape import RenderError, fetch, logformat_literal, word
from lbaas.providers.haproxy.render.files import Files
from lbaas.providers.haproxy.render.frontends import host_port
from lbaas.providers.haproxy.render.globaldefs import DEFAULT_TIMEOUT_CONNECT_MS, DEFAULT_TIMEOUT_SERVER_MS

_PP, _HM, _SP = PoolProtocol, HealthMonitorType, SessionPersistenceType
BACKEND_MODE = {_PP.HTTP: "http", _PP.HTTPS: "tcp", _PP.TCP: "tcp", _PP.PROXY: "tcp", _PP.PROXYV2: "tcp"}
BALANCE = {
    LbAlgorithm.ROUND_ROBIN: ["balance roundrobin"],
    LbAlgorithm.LEAST_CONNECTIONS: ["balance leastconn"],
    # consistent hashing keeps `add server` and `set weight` usable on the runtime API
    LbAlgorithm.SOURCE_IP: ["balance source", "hash-type consistent"],
}
MAX_TIMER_MS = 2_147_483_647  # HAProxy refuses larger timers ("timer overflow")
STICK_TABLE_SIZE = "10k"
DEFAULT_COOKIE_NAME = "SRV"
CHECKABLE = frozenset({_HM.HTTP, _HM.HTTPS, _HM.TCP, _HM.TLS_HELLO, _HM.PING})


def backend_mode(pool: Pool) -> str:
    mode = BACKEND_MODE.get(pool.protocol)
    if mode is None:
        raise RenderError(f"pool {pool.id}: {pool.protocol} pools are not served by HAProxy")
    return mode


def timer_ms(value: int) -> int:
    """A timer in ms, clamped to HAProxy's maximum (2^31 - 1 ms, about 24.8 days)."""
    return max(0, min(int(value), MAX_TIMER_MS))


def monitor(pool: Pool) -> HealthMonitor | None:
    """The pool's health monitor if it runs (admin_state_up); K8S / UDP-CONNECT are refused."""
    hm = pool.healthmonitor
    if hm is None or not hm.admin_state_up:
        return None
    if hm.type not in CHECKABLE:
        raise RenderError(f"pool {pool.id}: HAProxy cannot run a {hm.type} health monitor")
    return hm


def backend_section(
    snapshot: LoadBalancerSnapshot, pool: Pool, files: Files, env: Env, *, logging: bool = False
) -> list[str]:
    """``logging``: the ``defaults`` section logs to the global loggers already (the LB's flow
    log is on); otherwise the backend asks for them itself when health messages are sent."""
    mode = backend_mode(pool)
    listener = snapshot.listener(pool.listener_id)
    hm = monitor(pool)
    lines = [
        f"backend {pool.id}",
        f"    description {word(pool.name, 'pool name')}",
        f"    mode {mode}",
        *(f"    {line}" for line in BALANCE[pool.lb_algorithm]),
        "    option allbackups",
    ]
    if env.events_socket:
        # every change of a check's result, not only UP/DOWN, reaches lbaas at once (events.py)
        lines += ([] if logging else ["    log global"]) + ["    option log-health-checks"]
    lines += [
        f"    timeout connect {_member_timeout(pool, 'connect', listener)}",
        f"    timeout server {_member_timeout(pool, 'data', listener)}",
    ]
    cookie = False
    if pool.session_persistence is not None:
        persistence, cookie = _persistence(pool, mode)
        lines += persistence
    if hm is not None:
        lines += _check_lines(pool, hm, files, env)
    tls = _tls_options(pool, files, listener_protocol=None if listener is None else listener.protocol)
    for member in pool.members:
        lines.append(_server_line(member, hm, cookie=cookie, tls=tls, proxy=pool.protocol))
    return lines


def _member_timeout(pool: Pool, kind: str, listener: object) -> int:
    """The pool's value wins; the listener's (deprecated there) is the fallback; then the default.

    Gcore moves ``timeout_member_connect`` / ``timeout_member_data`` from listener to pool
    (API.md §5.2, §6.2), so a pool-level value is the more specific and newer one.
    """
    name = f"timeout_member_{kind}"
    for source in (pool, listener):
        value = getattr(source, name, None) if source is not None else None
        if value is not None:
            return timer_ms(value)
    return DEFAULT_TIMEOUT_CONNECT_MS if kind == "connect" else DEFAULT_TIMEOUT_SERVER_MS


def _persistence(pool: Pool, mode: str) -> tuple[list[str], bool]:
    """Session persistence lines, and whether servers carry a cookie.

    Cookie persistence needs HTTP; on a ``tcp`` backend (an HTTPS/TCP/PROXY pool, which
    the API accepts as Gcore does) it falls back to source-IP stickiness instead of a
    cookie HAProxy would ignore (or, for APP_COOKIE, refuse).
    """
    sp = pool.session_persistence
    assert sp is not None
    if sp.type is _SP.HTTP_COOKIE and mode == "http":
        name = word(sp.cookie_name or DEFAULT_COOKIE_NAME, "cookie_name")
        return [f"    cookie {name} insert indirect nocache"], True
    if sp.type is _SP.APP_COOKIE and mode == "http":
        if not sp.cookie_name:
            raise RenderError(f"pool {pool.id}: APP_COOKIE persistence needs a cookie_name")
        return [
            f"    stick-table type string len 64 size {STICK_TABLE_SIZE}",
            f"    stick store-response {fetch('res.cook', sp.cookie_name, 'cookie_name')}",
            f"    stick match {fetch('req.cook', sp.cookie_name, 'cookie_name')}",
        ], False
    return [f"    stick-table type ipv6 size {STICK_TABLE_SIZE}", "    stick on src"], False


def _expected_codes(hm: HealthMonitor) -> str:
    try:
        ranges = parse_expected_codes(hm.expected_codes or "200")
    except ValidationFailed:
        raise RenderError(f"health monitor {hm.id}: bad expected_codes {hm.expected_codes!r}") from None
    return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)


def _check_lines(pool: Pool, hm: HealthMonitor, files: Files, env: Env) -> list[str]:
    lines = [f"    timeout check {timer_ms(hm.timeout * 1000)}"] if hm.timeout > 0 else []
    if hm.type in (_HM.HTTP, _HM.HTTPS):
        send = [
            f"meth {word(str(hm.http_method or 'GET'), 'http_method')}",
            f"uri {word(hm.url_path or '/', 'url_path')}",
            f"ver HTTP/{hm.http_version or '1.0'}",
        ]
        if hm.domain_name:
            send.append(f"hdr Host {word(logformat_literal(hm.domain_name, 'domain_name'))}")
        lines += [
            "    option httpchk",
            f"    http-check send {' '.join(send)}",
            f"    http-check expect status {_expected_codes(hm)}",
        ]
    elif hm.type is _HM.PING:
        script = files.ping_script(pool.id, env.ping_path, hm.timeout)
        lines += ["    option external-check", f"    external-check command {script}"]
    return lines


def _tls_options(pool: Pool, files: Files, listener_protocol: ListenerProtocol | None) -> str:
    """Server TLS for an HTTPS pool, unless its listener passes the client's TLS through.

    Behind an HTTPS (pass-through) listener the client's TLS stream goes to the member
    unchanged; wrapping it in a second TLS layer would break it, so the pool's TLS
    settings are not used there.
    """
    if pool.protocol is not _PP.HTTPS or listener_protocol is ListenerProtocol.HTTPS:
        return ""
    where = f"pool {pool.id}"
    opts = " ssl"
    if pool.ca_secret_id:
        opts += f" verify required ca-file {files.ca(pool.ca_secret_id, f'ca_secret_id of {where}')}"
        if pool.crl_secret_id:
            opts += f" crl-file {files.crl(pool.crl_secret_id, f'crl_secret_id of {where}')}"
    else:
        opts += " verify none"
    if pool.secret_id:
        opts += f" crt {files.crt(pool.secret_id, f'secret_id of {where}')}"
    return opts


def _server_line(
    member: Member, hm: HealthMonitor | None, *, cookie: bool, tls: str, proxy: PoolProtocol
) -> str:
    line = f"    server {member.id} {host_port(member.address, member.protocol_port)} weight {member.weight}"
    if hm is not None:
        line += f" check inter {timer_ms(hm.delay * 1000)} fall {hm.max_retries_down} rise {hm.max_retries}"
        if hm.type in (_HM.HTTPS, _HM.TLS_HELLO):
            line += " check-ssl verify none"
        if member.monitor_address:
            line += f" addr {host_port(member.monitor_address, 0).rsplit(':', 1)[0]}"
        if member.monitor_port:
            line += f" port {member.monitor_port}"
    if member.backup:
        line += " backup"
    if not member.admin_state_up:
        line += " disabled"
    if cookie:
        line += f" cookie {member.id}"
    if proxy is _PP.PROXY:
        line += " send-proxy"
    elif proxy is _PP.PROXYV2:
        line += " send-proxy-v2"
    return line + tls
