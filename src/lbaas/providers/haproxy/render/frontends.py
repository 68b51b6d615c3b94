"""One ``frontend`` per enabled listener (named by its id), and the ``userlist`` sections.

Protocol → mode: HTTP, TERMINATED_HTTPS, PROMETHEUS → ``http``; TCP, HTTPS (TLS
pass-through) → ``tcp``. Every frontend binds the VIP and each floating IP address of the
LB on the listener's port. TERMINATED_HTTPS (and PROMETHEUS with certificates) binds
with ``ssl crt-list``: the ``secret_id`` certificate first (the default), then the
``sni_secret_id`` ones, which HAProxy picks by the SNI their names match.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from lbaas.domain.enums import ListenerProtocol
from lbaas.domain.model import Listener, LoadBalancerSnapshot, Pool
from lbaas.providers.haproxy.render import l7
from lbaas.providers.haproxy.render.escape import RenderError, word
from lbaas.providers.haproxy.render.files import Files
from lbaas.providers.haproxy.render.globaldefs import DEFAULT_TIMEOUT_CLIENT_MS
from lbaas.providers.haproxy.render.logformat import log_format

_LP = ListenerProtocol
FRONTEND_MODE = {
    _LP.HTTP: "http",
    _LP.TERMINATED_HTTPS: "http",
    _LP.PROMETHEUS: "http",
    _LP.TCP: "tcp",
    _LP.HTTPS: "tcp",
}
AUTH_REALM = "lbaas"


def host_port(address: str, port: int) -> str:
    """``address:port`` as HAProxy reads it (IPv6 in brackets)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise RenderError(f"{address!r} is not an IP address") from None
    return f"[{ip.compressed}]:{port}" if ip.version == 6 else f"{ip.compressed}:{port}"


def frontend_mode(listener: Listener) -> str:
    mode = FRONTEND_MODE.get(listener.protocol)
    if mode is None:
        raise RenderError(f"listener {listener.id}: {listener.protocol} listeners are not served by HAProxy")
    return mode


def userlist_name(listener: Listener) -> str:
    return f"users-{listener.id}"


def userlist_section(listener: Listener) -> list[str]:
    """Basic-auth users; each password is a crypt(3) hash, checked by HAProxy per request."""
    lines = [f"userlist {userlist_name(listener)}"]
    for user in listener.user_list:
        name = word(user.username, "user_list username")
        lines.append(f"    user {name} password {word(user.encrypted_password, 'user_list password')}")
    return lines


def frontend_section(
    snapshot: LoadBalancerSnapshot,
    listener: Listener,
    files: Files,
    *,
    maxconn: int,
    backends: Mapping[str, str],
    logging: bool,
) -> list[str]:
    """The frontend of one enabled listener; ``backends`` maps rendered pool ids to their modes."""
    mode = frontend_mode(listener)
    http = mode == "http"
    default_pool = snapshot.default_pool(listener)
    lines = [
        f"frontend {listener.id}",
        f"    description {word(listener.name, 'listener name')}",
        f"    mode {mode}",
    ]
    bind_options = _tls_bind_options(listener, files)
    for address in (snapshot.vip_address, *snapshot.floating_ip_addresses):
        lines.append(f"    bind {host_port(address, listener.protocol_port)}{bind_options}")
    # connection_limit: -1 is stored as 100000; 0 (or less) leaves the process-wide limit.
    limit = min(listener.connection_limit, maxconn) if listener.connection_limit > 0 else maxconn
    lines += [
        f"    maxconn {limit}",
        f"    timeout client {_client_timeout(listener, default_pool)}",
    ]
    if http:
        lines.append("    option idle-close-on-response")
    if logging:
        lines.append(log_format(snapshot.id, http))
    if listener.allowed_cidrs:
        cidrs = " ".join(_cidr(c) for c in listener.allowed_cidrs)
        lines.append(f"    tcp-request connection reject unless {{ src {cidrs} }}")
    if listener.user_list and http:
        lines.append(
            f"    http-request auth realm {AUTH_REALM} unless {{ http_auth({userlist_name(listener)}) }}"
        )
    if listener.insert_x_forwarded and http:
        proto = "https" if listener.protocol is _LP.TERMINATED_HTTPS else "http"
        lines += [
            "    option forwardfor",
            "    http-request set-header X-Forwarded-Port %[dst_port]",
            f"    http-request set-header X-Forwarded-Proto {proto}",
        ]
    if listener.protocol is _LP.PROMETHEUS:
        lines += [
            "    http-request use-service prometheus-exporter if { path /metrics }",
            "    http-request deny deny_status 404",
        ]
        return lines
    if http:
        lines += l7.policy_lines(snapshot, listener, backends)
    if default_pool is not None and default_pool.id in backends:
        if http and backends[default_pool.id] != "http":
            raise RenderError(
                f"listener {listener.id}: its default pool {default_pool.id} ({default_pool.protocol}) "
                "cannot serve HTTP requests"
            )
        lines.append(f"    default_backend {default_pool.id}")
    return lines


def _client_timeout(listener: Listener, default_pool: Pool | None) -> int:
    """``timeout client``: the listener's; else its default pool's (deprecated there); else 50 s."""
    if listener.timeout_client_data is not None:
        return listener.timeout_client_data
    if default_pool is not None and default_pool.timeout_client_data is not None:
        return default_pool.timeout_client_data
    return DEFAULT_TIMEOUT_CLIENT_MS


def _cidr(value: str) -> str:
    try:
        return ipaddress.ip_network(value, strict=False).compressed
    except ValueError:
        raise RenderError(f"allowed_cidrs: {value!r} is not an IP network") from None


def _tls_bind_options(listener: Listener, files: Files) -> str:
    secret_ids = [s for s in (listener.secret_id, *listener.sni_secret_id) if s]
    secret_ids = list(dict.fromkeys(secret_ids))  # the default may also be listed as SNI
    if listener.protocol is _LP.TERMINATED_HTTPS and not secret_ids:
        raise RenderError(f"listener {listener.id}: TERMINATED_HTTPS needs a certificate")
    if listener.protocol not in (_LP.TERMINATED_HTTPS, _LP.PROMETHEUS) or not secret_ids:
        return ""
    crts = [files.crt(s, f"certificate of listener {listener.id}") for s in secret_ids]
    return f" ssl crt-list {files.crt_list(listener.id, crts)} alpn h2,http/1.1"
