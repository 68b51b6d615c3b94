"""Cross-field and semantic rules of the API, each held once.

Pydantic checks single fields (types, enums, ranges, patterns). This module checks what
depends on several fields or on other objects: listener/pool protocols, ports per load
balancer, certificates, CIDRs against the VIP family, health monitors, members, session
persistence and L7 policies and rules. Functions take plain values and dicts, do no I/O,
and raise ``ValidationFailed`` (400 ``ValidationError``) whose ``invalid_fields`` name the
offending field, e.g. ``allowed_cidrs.0``. Most return None; a few return a normalized value.

Every refusal names its source beside it. In order: Gcore (its OpenAPI spec, quoted in
/work/shared/spec/API.md, and its docs in G-Core/product-documentation), then OpenStack Octavia,
which Gcore wraps (``octavia/api/v2/controllers/*``, ``octavia/common/validate.py``,
``octavia/common/constants.py``). A rule stricter than both is kept only to keep a user string
from breaking the HAProxy configuration line it is rendered into (marked ``Data plane:``) or
where a client could not tell the difference (marked ``Decision:``); anything a real client
workflow (Terraform's create/destroy order, the SDK, Gcore's published examples) would hit
is not refused.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from lbaas.domain.enums import (
    HealthMonitorType,
    IpFamily,
    L7Action,
    L7CompareType,
    L7RuleType,
    ListenerProtocol,
    PoolProtocol,
    SessionPersistenceType,
)
from lbaas.domain.pcre2 import check_regex
from lbaas.errors import ValidationFailed

_E = TypeVar("_E", bound=StrEnum)
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_LP, _PP, _HM = ListenerProtocol, PoolProtocol, HealthMonitorType

# --- Listeners and pools ------------------------------------------------------------------

# Octavia's VALID_LISTENER_POOL_PROTOCOL_MAP (octavia/common/constants.py), minus what Gcore
# forbids. Octavia also allows PROXY/PROXYV2 pools behind HTTP, HTTPS and TERMINATED_HTTPS
# listeners; Gcore's guide (cloud/networking/create-and-configure-a-load-balancer.mdx) says
# "PROXY and PROXY V2 require the listener to use the TCP protocol", and Gcore wins. A
# PROMETHEUS listener takes no pool (Octavia: ListenerNoChildren). Gcore's Terraform examples
# (TCP+TCP, TCP+PROXY) and SDK example (HTTP+HTTP) all fit.
LISTENER_POOL_PROTOCOLS: Mapping[ListenerProtocol, frozenset[PoolProtocol]] = MappingProxyType(
    {
        _LP.HTTP: frozenset({_PP.HTTP}),
        _LP.HTTPS: frozenset({_PP.HTTPS, _PP.TCP}),
        _LP.TCP: frozenset({_PP.TCP, _PP.HTTP, _PP.HTTPS, _PP.PROXY, _PP.PROXYV2}),
        _LP.TERMINATED_HTTPS: frozenset({_PP.HTTP}),
        _LP.UDP: frozenset({_PP.UDP}),
        _LP.PROMETHEUS: frozenset(),  # serves the metrics itself, takes no pool
    }
)

# The transport each listener protocol binds; two listeners of one LB may not share one port
# on it: Gcore documents that TCP 80 and UDP 80 coexist but HTTP 80 and TCP 80 do not
# (spec/API.md §5.2); Octavia raises DuplicateListenerEntry the same way.
LISTENER_L4_PROTOCOL: Mapping[ListenerProtocol, str] = MappingProxyType(
    {p: "UDP" if p is _LP.UDP else "TCP" for p in ListenerProtocol}
)
# Gcore: insert_x_forwarded is "HTTP / TERMINATED_HTTPS only"; Octavia refuses insert_headers
# on other listeners (listener.py, LISTENER_PROTOCOLS_SUPPORTING_HEADER_INSERTION).
X_FORWARDED_PROTOCOLS = frozenset({_LP.HTTP, _LP.TERMINATED_HTTPS})
# Gcore: secret_id / sni_secret_id are for TERMINATED_HTTPS and PROMETHEUS ("Multiple TLS
# certificates are configurable for Terminated HTTPS and Prometheus"); Octavia refuses
# certificate references on listeners that cannot offload TLS.
TLS_LISTENER_PROTOCOLS = frozenset({_LP.TERMINATED_HTTPS, _LP.PROMETHEUS})
# Gcore: "HTTP and Terminated HTTPS protocols allow additional settings — headers and
# authentication"; its Terraform example prometheus-9101.tf puts a user_list on PROMETHEUS.
USER_LIST_PROTOCOLS = frozenset({_LP.HTTP, _LP.TERMINATED_HTTPS, _LP.PROMETHEUS})
VIP_FAMILY_VERSIONS: Mapping[IpFamily, frozenset[int]] = MappingProxyType(
    {IpFamily.IPV4: frozenset({4}), IpFamily.IPV6: frozenset({6}), IpFamily.DUAL: frozenset({4, 6})}
)
# Gcore: connection_limit is -1..1000000, "-1 is translated to the default value 100000".
DEFAULT_CONNECTION_LIMIT = 100_000
MAX_CONNECTION_LIMIT = 1_000_000

# --- Health monitors ----------------------------------------------------------------------

HTTP_MONITOR_TYPES = frozenset({_HM.HTTP, _HM.HTTPS})
# Gcore's monitor schema, on each of these: "Can only be used together with HTTP or HTTPS
# health monitor type" (Octavia refuses http_method, url_path, expected_codes likewise).
HTTP_MONITOR_FIELDS = ("domain_name", "expected_codes", "http_method", "http_version", "url_path")
# Octavia (health_monitor.py): a UDP pool takes UDP-CONNECT, TCP and HTTP monitors
# (_validate_healthmonitor_request_for_udp_sctp), and UDP-CONNECT is "only supported for
# pools of type UDP/SCTP".
MONITOR_TYPES_BY_POOL_PROTOCOL: Mapping[PoolProtocol, frozenset[HealthMonitorType]] = MappingProxyType(
    {
        p: frozenset({_HM.UDP_CONNECT, _HM.TCP, _HM.HTTP})
        if p is _PP.UDP
        else frozenset(HealthMonitorType) - {_HM.UDP_CONNECT}
        for p in PoolProtocol
    }
)
HM_HTTP_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {"http_method": "GET", "url_path": "/", "expected_codes": "200", "http_version": "1.0"}
)
HM_DEFAULT_MAX_RETRIES_DOWN = 3
# Gcore documents mixed lists ("200,202,300-302,401,403,404,500-504"), wider than Octavia's
# single range; anything else is not a status-code list.
_CODE_ITEM_RE = re.compile(r"^(\d{3})(?:-(\d{3}))?$")
_URL_PATH_RE = re.compile(r"^/([^/?#%][^?#%]*)?$")  # Gcore's url_path pattern, verbatim

# --- Members and session persistence ------------------------------------------------------

# Gcore: "Valid values are 0 < weight <= 256, defaults to 1".
MIN_WEIGHT, MAX_WEIGHT = 1, 256
# Octavia (pool.py, _validate_pool_request_for_udp_sctp): cookie persistence is refused on
# UDP/SCTP pools only. Gcore ties no persistence type to a pool protocol, and its Terraform
# example tcp-80.tf puts APP_COOKIE on a TCP pool: accepted (what HAProxy does with a cookie
# in mode tcp is the data plane's business).
NO_COOKIE_POOL_PROTOCOLS = frozenset({_PP.UDP})
# Octavia's amphora driver refuses mixing address families of VIP and members only for the
# LVS (UDP/SCTP) protocols; HAProxy pools may reach IPv6 members from an IPv4 VIP.
FAMILY_BOUND_POOL_PROTOCOLS = frozenset({_PP.UDP})

# --- L7 -----------------------------------------------------------------------------------

# Octavia's amphora driver: VALID_L7POLICY_LISTENER_PROTOCOLS = [HTTP, TERMINATED_HTTPS]
# ("%s protocol listeners do not support L7 policies").
L7_LISTENER_PROTOCOLS = frozenset({_LP.HTTP, _LP.TERMINATED_HTTPS})
# Gcore: "Valid options are 301, 302, 303, 307, or 308. Default is 302" (Octavia the same).
REDIRECT_HTTP_CODES = frozenset({301, 302, 303, 307, 308})
DEFAULT_REDIRECT_HTTP_CODE = 302
_REDIRECT_FIELD = MappingProxyType(
    {
        L7Action.REDIRECT_TO_URL: "redirect_url",
        L7Action.REDIRECT_PREFIX: "redirect_prefix",
        L7Action.REDIRECT_TO_POOL: "redirect_pool_id",
    }
)
_ALL_COMPARE = frozenset(L7CompareType)
# Octavia's validate.l7rule_data / validate_l7rule_ssl_types: FILE_TYPE compares EQUAL_TO or
# REGEX, the two SSL flag types only EQUAL_TO.
L7_COMPARE_TYPES: Mapping[L7RuleType, frozenset[L7CompareType]] = MappingProxyType(
    {
        **{t: _ALL_COMPARE for t in L7RuleType},
        L7RuleType.FILE_TYPE: frozenset({L7CompareType.EQUAL_TO, L7CompareType.REGEX}),
        L7RuleType.SSL_CONN_HAS_CERT: frozenset({L7CompareType.EQUAL_TO}),
        L7RuleType.SSL_VERIFY_RESULT: frozenset({L7CompareType.EQUAL_TO}),
    }
)
# Gcore: key is "Required for COOKIE and HEADER type only"; Octavia also needs one for
# SSL_DN_FIELD (validate_l7rule_ssl_types).
L7_KEYED_RULE_TYPES = frozenset({L7RuleType.COOKIE, L7RuleType.HEADER, L7RuleType.SSL_DN_FIELD})
# Octavia refuses a key on these ("does not use the 'key' field"); on PATH, HOST_NAME and
# FILE_TYPE it keeps and ignores one, and so does lbaas (Gcore's own rule example sends one).
L7_KEYLESS_RULE_TYPES = frozenset({L7RuleType.SSL_CONN_HAS_CERT, L7RuleType.SSL_VERIFY_RESULT})
# RFC 9110 token, as Octavia's HTTP_HEADER_NAME_REGEX: header and cookie names (rule keys and
# session persistence cookie_name). Data plane: a space would split the HAProxy config word.
_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_DN_FIELD_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")  # Octavia DISTINGUISHED_NAME_FIELD_REGEX
# Data plane: values end up in one HAProxy config line, quoted by the renderer, so no control
# characters (tab, CR, LF included) and no double quote, which would end the line or the quoted
# argument early and let a user write configuration; leading/trailing spaces are refused
# separately. URLs additionally may not contain a space (Octavia's INVALID_URL_CHARS too).
_UNSAFE_VALUE_RE = re.compile(r'[\x00-\x1f\x7f"]')
_UNSAFE_URL_RE = re.compile(r'[\x00-\x20\x7f"]')
MAX_TAG_LEN = 255  # Octavia: tags are StringType(max_length=255)


def _as(enum: type[_E], value: object, field: str) -> _E:
    """Coerce a wire value to ``enum`` or fail on ``field``."""
    try:
        return enum(value)
    except ValueError:
        raise ValidationFailed.field(field, f"Unknown value {value!r}") from None


def _raise_if(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationFailed(fields=errors)


def _add(errors: dict[str, list[str]], field: str, message: str | None) -> None:
    if message:
        errors.setdefault(field, []).append(message)


def _path(*parts: object) -> str:
    return ".".join(str(p) for p in parts if p != "")


# --- 1-4. Listeners -----------------------------------------------------------------------


def check_listener_pool_protocol(listener_protocol: str, pool_protocol: str, field: str = "protocol") -> None:
    """Reject a pool protocol that a listener of ``listener_protocol`` cannot carry."""
    listener = _as(ListenerProtocol, listener_protocol, "listener_protocol")
    pool = _as(PoolProtocol, pool_protocol, field)
    allowed = LISTENER_POOL_PROTOCOLS[listener]
    if pool in allowed:
        return
    if not allowed:
        raise ValidationFailed.field(field, f"A {listener} listener takes no pool")
    names = ", ".join(sorted(allowed))
    raise ValidationFailed.field(
        field, f"Pool protocol {pool} is not allowed behind a {listener} listener (allowed: {names})"
    )


def check_listener_port_unique(
    protocol: str, port: int, existing: Iterable[tuple[str, int]], field: str = "protocol_port"
) -> None:
    """Reject a port whose L4 protocol is already bound by another listener of the LB."""
    l4 = LISTENER_L4_PROTOCOL[_as(ListenerProtocol, protocol, "protocol")]
    for other_protocol, other_port in existing:
        if other_port == port and LISTENER_L4_PROTOCOL[_as(ListenerProtocol, other_protocol, field)] == l4:
            raise ValidationFailed.field(
                field,
                f"{l4} port {port} is already used by a {other_protocol} listener of this LB",
            )


def check_listener_fields(
    protocol: str,
    *,
    insert_x_forwarded: bool | None = None,
    secret_id: str | None = None,
    sni_secret_id: list[str] | None = None,
    user_list: list[Mapping[str, Any]] | None = None,
    allowed_cidrs: list[str] | None = None,
    vip_family: str | None = None,
) -> None:
    """Check the protocol-dependent listener fields (pass merged values on update)."""
    proto = _as(ListenerProtocol, protocol, "protocol")
    errors: dict[str, list[str]] = {}
    if insert_x_forwarded and proto not in X_FORWARDED_PROTOCOLS:
        _add(errors, "insert_x_forwarded", f"Only for HTTP and TERMINATED_HTTPS listeners, not {proto}")
    for name, value in (("secret_id", secret_id), ("sni_secret_id", sni_secret_id)):
        if value and proto not in TLS_LISTENER_PROTOCOLS:
            _add(errors, name, f"Only for TERMINATED_HTTPS and PROMETHEUS listeners, not {proto}")
    # Gcore: "Each Terminated HTTPS listener requires a default TLS certificate"; Octavia accepts
    # SNI certificates instead ("An SNI or default certificate container reference must be
    # provided"), and Gcore's secret_id "" means "SNI certificates only".
    if proto is _LP.TERMINATED_HTTPS and not secret_id and not sni_secret_id:
        _add(errors, "secret_id", "A TERMINATED_HTTPS listener needs a secret_id or an sni_secret_id")
    if user_list and proto not in USER_LIST_PROTOCOLS:
        _add(errors, "user_list", f"Only for HTTP, TERMINATED_HTTPS and PROMETHEUS listeners, not {proto}")
    # Data plane: HAProxy keeps the first of two same-named users of a userlist and ignores the
    # second with a warning, so the second password would silently never work.
    seen: set[str] = set()
    for i, user in enumerate(user_list or ()):
        name = user.get("username")
        if name is not None and name in seen:
            _add(errors, f"user_list.{i}.username", f"Duplicate username {name!r}")
        seen.add(name)
    # Gcore: "The IP version of Allowed CIDRs must match the IP version of the Load Balancer's
    # Virtual IPs ... the API will return a validation error" (Octavia: the same check).
    for i, cidr in enumerate(allowed_cidrs or ()):
        _add(errors, f"allowed_cidrs.{i}", _cidr_problem(cidr, vip_family))
    _raise_if(errors)


def _family_problem(version: int, vip_family: str | None, what: str) -> str | None:
    if vip_family is None:
        return None
    family = _as(IpFamily, vip_family, "vip_ip_family")
    if version in VIP_FAMILY_VERSIONS[family]:
        return None
    return f"IPv{version} {what} does not match the load balancer's {family} VIP"


def _cidr_problem(cidr: object, vip_family: str | None) -> str | None:
    """Why ``cidr`` is not a usable allowed CIDR, or None."""
    try:
        net = ipaddress.ip_network(cidr)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        try:
            # Gcore: allowed_cidrs items have format "ipvanynetwork", Pydantic's IPvAnyNetwork,
            # which refuses host bits (Octavia would mask them; Gcore answers first).
            masked = ipaddress.ip_network(cidr, strict=False)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return f"{cidr!r} is not an IP network"
        return f"{cidr!r} has host bits set; did you mean {masked}?"
    return _family_problem(net.version, vip_family, "CIDR")


def check_allowed_cidr(cidr: str, vip_family: str | None, field: str = "allowed_cidrs") -> None:
    """One allowed CIDR: a network without host bits, of a family the VIP serves."""
    problem = _cidr_problem(cidr, vip_family)
    if problem:
        raise ValidationFailed.field(field, problem)


def normalize_connection_limit(value: int, field: str = "connection_limit") -> int:
    """Check -1..1000000 and store -1 as the default 100000."""
    if not -1 <= value <= MAX_CONNECTION_LIMIT:
        raise ValidationFailed.field(field, f"Must be between -1 and {MAX_CONNECTION_LIMIT}, got {value}")
    return DEFAULT_CONNECTION_LIMIT if value == -1 else value


# --- 5. Health monitors -------------------------------------------------------------------


def parse_expected_codes(codes: str, field: str = "expected_codes") -> list[tuple[int, int]]:
    """Parse ``200``, ``200,202`` or ``200-204`` (mixed lists too) into inclusive ranges."""
    ranges: list[tuple[int, int]] = []
    for item in str(codes).split(","):
        m = _CODE_ITEM_RE.match(item.strip())
        low, high = (int(m[1]), int(m[2] or m[1])) if m else (0, 0)
        if not m or not 100 <= low <= high <= 599:
            raise ValidationFailed.field(
                field, f"{codes!r}: use HTTP codes 100-599 as '200', '200,202' or '200-204'"
            )
        ranges.append((low, high))
    return ranges


def hm_defaults(hm_type: str) -> dict[str, Any]:
    """The values a health monitor of ``hm_type`` gets for fields the client left null."""
    http = _as(HealthMonitorType, hm_type, "type") in HTTP_MONITOR_TYPES
    defaults: dict[str, Any] = {f: HM_HTTP_DEFAULTS.get(f) if http else None for f in HTTP_MONITOR_FIELDS}
    return {**defaults, "max_retries_down": HM_DEFAULT_MAX_RETRIES_DOWN, "admin_state_up": True}


def _url_path_problem(path: object) -> str | None:
    if not isinstance(path, str) or not _URL_PATH_RE.match(path) or "//" in path:
        return "Must start with '/' and hold plain path segments: no '?', '#', '%' or '//'"
    if _UNSAFE_URL_RE.search(path):  # Data plane: the path goes into an `option httpchk` line
        return "Must not contain whitespace, control characters or quotes"
    return None


def _hm_type(hm: Mapping[str, Any], existing_type: str | None, partial: bool) -> HealthMonitorType:
    new = hm.get("type")
    if new is None:
        if not partial or existing_type is None:
            raise ValidationFailed.field("type", "Field required")
        return _as(_HM, existing_type, "type")
    hm_type = _as(_HM, new, "type")
    # Gcore: "Once health monitor is created, cannot be changed."
    if existing_type is not None and hm_type != existing_type:
        raise ValidationFailed.field("type", f"The type of a health monitor is immutable ({existing_type})")
    return hm_type


def _http_monitor_problems(hm: Mapping[str, Any], errors: dict[str, list[str]]) -> None:
    if hm.get("expected_codes") is not None:
        try:
            parse_expected_codes(hm["expected_codes"])
        except ValidationFailed as exc:
            errors.update(exc.invalid_fields)
    if hm.get("url_path") is not None:
        _add(errors, "url_path", _url_path_problem(hm["url_path"]))
    # No rule on http_method for UDP pools: Octavia accepts any method there and its LVS
    # checker simply sends GET (octavia/common/jinja/lvs/jinja_cfg.py).


def check_health_monitor(
    hm: Mapping[str, Any], *, pool_protocol: str, existing_type: str | None = None, partial: bool = False
) -> None:
    """Check a monitor body against itself, its pool and (on update) the stored type.

    ``partial``: ``hm`` is an update (merged over the stored monitor by the caller, so that
    delay/timeout are the effective ones); it may omit ``type``, taken from ``existing_type``.
    Otherwise ``type`` is required. A ``type`` differing from ``existing_type`` is refused.
    """
    hm_type = _hm_type(hm, existing_type, partial)
    pool = _as(PoolProtocol, pool_protocol, "pool_protocol")
    errors: dict[str, list[str]] = {}
    if hm_type not in MONITOR_TYPES_BY_POOL_PROTOCOL[pool]:
        allowed = ", ".join(sorted(MONITOR_TYPES_BY_POOL_PROTOCOL[pool]))
        _add(errors, "type", f"A {hm_type} monitor cannot check a {pool} pool (allowed: {allowed})")
    delay, timeout = hm.get("delay"), hm.get("timeout")
    # Gcore: timeout is "The maximum time to connect. Must be less than the delay value".
    if delay is not None and timeout is not None and timeout >= delay:
        _add(errors, "timeout", f"Must be less than delay ({timeout} >= {delay})")
    if hm_type not in HTTP_MONITOR_TYPES:
        for name in HTTP_MONITOR_FIELDS:
            if hm.get(name) is not None:
                _add(errors, name, f"Only for HTTP and HTTPS monitors, not {hm_type}")
    else:
        _http_monitor_problems(hm, errors)
    _raise_if(errors)


# --- 6. Members ---------------------------------------------------------------------------


def _parse_ip(address: object, field: str) -> IpAddress:
    try:
        return ipaddress.ip_address(address)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValidationFailed.field(field, f"{address!r} is not an IP address") from None


def member_vip_family(pool_protocol: str, vip_family: str | None) -> str | None:
    """The VIP family a member of a ``pool_protocol`` pool must match, or None for any family.

    Only UDP pools are bound to the VIP's family (see FAMILY_BOUND_POOL_PROTOCOLS).
    """
    pool = _as(PoolProtocol, pool_protocol, "protocol")
    return vip_family if pool in FAMILY_BOUND_POOL_PROTOCOLS else None


def check_member_address(address: str, vip_family: str | None, field: str = "address") -> IpAddress:
    """Check a backend address: unicast, and of ``vip_family`` if given; return it parsed.

    Pass ``vip_family`` through ``member_vip_family`` (None: any family).
    """
    ip = _parse_ip(address, field)
    # Loopback stays allowed: the local data plane runs its backends on 127.0.0.0/8.
    # Data plane: 0.0.0.0 (or ::) in a HAProxy server line means "the client's own destination
    # address" (transparent proxying), and nothing can connect to a multicast or broadcast
    # address; Gcore's member address is "ipvanyaddress", a unicast host in every example.
    if ip.is_unspecified or ip.is_multicast or ip == ipaddress.IPv4Address("255.255.255.255"):
        raise ValidationFailed.field(field, f"{address} is not a unicast address")
    if problem := _family_problem(ip.version, vip_family, "address"):
        raise ValidationFailed.field(field, problem)
    return ip


def check_member_monitor(
    monitor_address: str | None, monitor_port: int | None, *, vip_family: str | None = None
) -> None:
    """The alternate health-check target obeys the member address and port rules."""
    if monitor_address is not None:
        check_member_address(monitor_address, vip_family, field="monitor_address")
    if monitor_port is not None and not 1 <= monitor_port <= 65535:
        raise ValidationFailed.field("monitor_port", f"Must be between 1 and 65535, got {monitor_port}")


def check_member_weight(weight: int, field: str = "weight") -> None:
    """Gcore's weight is 1..256 ("0 < weight <= 256"); 0 (allowed by Octavia) is not."""
    if not MIN_WEIGHT <= weight <= MAX_WEIGHT:
        raise ValidationFailed.field(field, f"Must be between {MIN_WEIGHT} and {MAX_WEIGHT}, got {weight}")


def member_key(address: str, port: int, field: str = "address") -> tuple[str, int]:
    """The identity of a member within a pool, with the address in canonical form."""
    return _parse_ip(address, field).compressed, int(port)


def check_member_unique(members: Iterable[Mapping[str, Any]], *, prefix: str = "members") -> None:
    """Reject two members of one pool with the same (address, protocol_port).

    Octavia: DuplicateMemberEntry; Gcore's PUT and PATCH match members by that pair.
    """
    errors: dict[str, list[str]] = {}
    first: dict[tuple[str, int], int] = {}
    for i, member in enumerate(members):
        key = member_key(member["address"], member["protocol_port"], _path(prefix, i, "address"))
        if key in first:
            message = f"Duplicate of {_path(prefix, first[key])}: same address and protocol_port"
            _add(errors, _path(prefix, i, "address"), message)
        first.setdefault(key, i)
    _raise_if(errors)


# --- 7. Session persistence ---------------------------------------------------------------


def _granularity_problem(mask: object) -> str | None:
    # Gcore: persistence_granularity is a "Subnet mask if source_ip is used. For UDP ports
    # only"; Octavia/keepalived take it as a dotted netmask (the LVS "persistence_granularity").
    text = str(mask)
    try:
        if ipaddress.IPv4Network(f"0.0.0.0/{text}").netmask == ipaddress.IPv4Address(text):
            return None
    except ValueError:
        pass
    return f"{mask!r} is not an IPv4 netmask such as 255.255.255.0"


def check_session_persistence(sp: Mapping[str, Any] | None, *, pool_protocol: str) -> None:
    """Check a session_persistence object against its own type and the pool protocol."""
    if sp is None:
        return
    sp_type = _as(SessionPersistenceType, sp.get("type"), "session_persistence.type")
    pool = _as(PoolProtocol, pool_protocol, "protocol")
    errors: dict[str, list[str]] = {}
    cookie = sp.get("cookie_name")
    if sp_type is SessionPersistenceType.SOURCE_IP:
        # Octavia (validate.check_session_persistence): cookie_name only with a cookie type.
        if cookie is not None:
            _add(errors, "session_persistence.cookie_name", "Not used by SOURCE_IP persistence")
    else:
        if pool in NO_COOKIE_POOL_PROTOCOLS:
            _add(errors, "session_persistence.type", f"{sp_type} is not supported on {pool} pools")
        # Gcore: cookie_name "Should be set if app cookie ... is used"; Octavia requires it.
        if sp_type is SessionPersistenceType.APP_COOKIE and not cookie:
            _add(errors, "session_persistence.cookie_name", "Required for APP_COOKIE persistence")
        # Octavia refuses whitespace and separators in a cookie name (SessionPersistencePOST's
        # pattern, check_session_persistence); data plane: it is one word of a HAProxy line.
        if cookie and not _TOKEN_RE.match(cookie):
            _add(errors, "session_persistence.cookie_name", f"{cookie!r} is not a valid cookie name")
    # Gcore: persistence_timeout and persistence_granularity are "For UDP ports only", with
    # "source_ip"; Octavia: "persistence_timeout and persistence_granularity is only for UDP
    # and SCTP protocol pools", and on those SOURCE_IP is the only type.
    udp_source_ip = pool is _PP.UDP and sp_type is SessionPersistenceType.SOURCE_IP
    for name in ("persistence_timeout", "persistence_granularity"):
        if sp.get(name) is not None and not udp_source_ip:
            _add(errors, f"session_persistence.{name}", "Only for SOURCE_IP persistence on UDP pools")
    timeout, mask = sp.get("persistence_timeout"), sp.get("persistence_granularity")
    # Decision: a negative number of seconds means nothing (Octavia takes any integer).
    if udp_source_ip and timeout is not None and timeout < 0:
        _add(errors, "session_persistence.persistence_timeout", "Must be 0 or more seconds")
    if udp_source_ip and mask is not None:
        _add(errors, "session_persistence.persistence_granularity", _granularity_problem(mask))
    _raise_if(errors)


# --- 8-10. L7 policies and rules ----------------------------------------------------------


def _redirect_problem(url: object, *, path_ok: bool) -> str | None:
    """Why ``url`` is not a redirect target, or None.

    Octavia (validate.url) wants an absolute http(s) URL for redirect_url and redirect_prefix.
    Gcore's own example redirect_prefix is "/api/v1/policies", so a prefix may also be an
    absolute path (``path_ok``): HAProxy's ``redirect prefix`` takes either.
    """
    if not isinstance(url, str) or _UNSAFE_URL_RE.search(url):
        return "Must be a URL without whitespace, control characters or quotes"
    if path_ok and url.startswith("/") and not url.startswith("//"):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError:
        return f"{url!r} is not a valid URL"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        what = "an absolute http:// or https:// URL" + (" or a path starting with '/'" if path_ok else "")
        return f"Must be {what}"
    return None


def default_redirect_code(action: str) -> int | None:
    """The redirect_http_code an action gets when none is given (302 for redirects)."""
    redirects = (L7Action.REDIRECT_TO_URL, L7Action.REDIRECT_PREFIX)
    return DEFAULT_REDIRECT_HTTP_CODE if _as(L7Action, action, "action") in redirects else None


def check_l7_policy(
    action: str,
    *,
    listener_protocol: str,
    redirect_url: str | None = None,
    redirect_prefix: str | None = None,
    redirect_pool_id: str | None = None,
    redirect_http_code: int | None = None,
    redirect_pool_protocol: str | None = None,
) -> None:
    """Check an L7 policy's action-specific fields and the listener it sits on.

    The redirect fields of other actions (and ``redirect_http_code`` on REJECT and
    REDIRECT_TO_POOL) are not checked: the caller stores them as null. Gcore's per-action
    body schemas do not have them and Octavia's ``sanitize_l7policy_api_args`` clears them.
    """
    act = _as(L7Action, action, "action")
    listener = _as(ListenerProtocol, listener_protocol, "listener_id")
    errors: dict[str, list[str]] = {}
    if listener not in L7_LISTENER_PROTOCOLS:
        _add(errors, "listener_id", f"L7 policies need an HTTP or TERMINATED_HTTPS listener, not {listener}")
    own = _REDIRECT_FIELD.get(act)
    values = {
        "redirect_url": redirect_url,
        "redirect_prefix": redirect_prefix,
        "redirect_pool_id": redirect_pool_id,
    }
    if own is not None:
        value = values[own]
        if not value:  # Gcore's schema for the action requires it (Octavia likewise)
            _add(errors, own, f"Required for the {act} action")
        elif own != "redirect_pool_id":
            _add(errors, own, _redirect_problem(value, path_ok=own == "redirect_prefix"))
    redirect = default_redirect_code(act) is not None
    if redirect and redirect_http_code is not None and redirect_http_code not in REDIRECT_HTTP_CODES:
        _add(errors, "redirect_http_code", f"Must be one of {sorted(REDIRECT_HTTP_CODES)}")
    _raise_if(errors)
    if act is L7Action.REDIRECT_TO_POOL and redirect_pool_protocol is not None:
        check_listener_pool_protocol(listener_protocol, redirect_pool_protocol, field="redirect_pool_id")


def _l7_key_problem(rule_type: L7RuleType, key: str | None) -> str | None:
    if rule_type in L7_KEYLESS_RULE_TYPES:
        return f"Not used by {rule_type} rules" if key else None
    if rule_type not in L7_KEYED_RULE_TYPES:
        return None  # kept and ignored, as Octavia does
    if not key:
        return f"Required for {rule_type} rules"
    pattern = _DN_FIELD_RE if rule_type is L7RuleType.SSL_DN_FIELD else _TOKEN_RE
    return None if pattern.match(key) else f"{key!r} is not a valid {rule_type} name"


def _l7_value_problem(rule_type: L7RuleType, compare: L7CompareType, value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return "Field required"
    # Data plane (see _UNSAFE_VALUE_RE). Octavia refuses any unquoted whitespace in HOST_NAME,
    # PATH, HEADER and COOKIE values (header_value_string, cookie_value_string); lbaas quotes
    # values, so only spaces at the ends, which a quoted HAProxy argument would not show, go.
    if _UNSAFE_VALUE_RE.search(value) or value != value.strip(" "):
        return "No control characters, double quotes, or leading or trailing spaces"
    # Octavia validate_l7rule_ssl_types: "True" only; a verify result code >= 0.
    if rule_type is L7RuleType.SSL_CONN_HAS_CERT and value.lower() != "true":
        return "SSL_CONN_HAS_CERT rules only take the value 'True'"
    if rule_type is L7RuleType.SSL_VERIFY_RESULT and not re.fullmatch(r"[0-9]+", value):
        return "SSL_VERIFY_RESULT rules take a verify result code, an integer >= 0"
    if compare is L7CompareType.REGEX:  # Octavia validate.regex, here with HAProxy's engine
        # HAProxy's own engine (PCRE2), not Python's re: see lbaas.domain.pcre2.
        problem = check_regex(value, caseless=rule_type is L7RuleType.HOST_NAME)
        if problem:
            return f"Invalid regular expression: {problem}"
    return None


def check_l7_rule(
    rule_type: str, compare_type: str, key: str | None, value: str, invert: bool = False
) -> None:
    """Check that an L7 rule's key, compare type and value fit its type.

    ``invert`` is accepted for symmetry with the API; no rule depends on it. Regular
    expressions are checked with PCRE2, the library HAProxy compiles them with.
    """
    typ = _as(L7RuleType, rule_type, "type")
    compare = _as(L7CompareType, compare_type, "compare_type")
    errors: dict[str, list[str]] = {}
    if compare not in L7_COMPARE_TYPES[typ]:
        allowed = ", ".join(sorted(L7_COMPARE_TYPES[typ]))
        _add(errors, "compare_type", f"{typ} rules only support {allowed}")
    _add(errors, "key", _l7_key_problem(typ, key))
    _add(errors, "value", _l7_value_problem(typ, compare, value))
    _raise_if(errors)


def insert_position(existing_count: int, position: int | None, field: str = "position") -> int:
    """Where a policy lands on its listener: 1-based, clamped to append at count+1.

    To move an existing policy, pass the count of the *other* policies of the listener.
    """
    if position is None:
        return existing_count + 1
    if position < 1:  # Octavia: MIN_POLICY_POSITION = 1
        raise ValidationFailed.field(field, f"Must be 1 or more, got {position}")
    return min(position, existing_count + 1)


def check_string_tags(tags: Iterable[str] | None, field: str = "tags") -> None:
    """L7 policy/rule tags: distinct strings of at most 255 characters.

    Octavia: tags are ``StringType(max_length=255)`` and stored with (resource, tag) as the
    primary key of its tags table, so a repeated tag is an error there too.
    """
    errors: dict[str, list[str]] = {}
    seen: set[str] = set()
    for i, tag in enumerate(tags or ()):
        if not isinstance(tag, str) or len(tag) > MAX_TAG_LEN:
            _add(errors, f"{field}.{i}", f"A tag is a string of at most {MAX_TAG_LEN} characters")
        elif tag in seen:
            _add(errors, f"{field}.{i}", f"Duplicate tag {tag!r}")
        else:
            seen.add(tag)
    _raise_if(errors)
