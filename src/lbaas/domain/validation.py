"""Cross-field and semantic rules of the API, each held once.

Pydantic checks single fields (types, enums, ranges, patterns). This module checks what
depends on several fields or on other objects: listener/pool protocols, ports per load
balancer, certificates, CIDRs against the VIP family, health monitors, members, session
persistence and L7 policies and rules. Functions take plain values and dicts, do no I/O,
and raise ``ValidationFailed`` (400 ``ValidationError``) whose ``invalid_fields`` name the
offending field, e.g. ``allowed_cidrs.0``. Most return None; a few return a normalized value.

Sources in order: Gcore's documented behaviour (spec/API.md, Gcore docs), then Octavia's
(which Gcore wraps). Where both are silent the choice is marked ``Decision:``.
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

# Octavia's VALID_LISTENER_POOL_PROTOCOL_MAP, minus what Gcore forbids. Octavia also allows
# PROXY/PROXYV2 pools behind HTTP, HTTPS and TERMINATED_HTTPS listeners; Gcore documents
# "PROXY and PROXY V2 require the listener to use the TCP protocol", and Gcore wins.
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

# The transport each listener protocol binds; two listeners of one LB may not share one.
LISTENER_L4_PROTOCOL: Mapping[ListenerProtocol, str] = MappingProxyType(
    {p: "UDP" if p is _LP.UDP else "TCP" for p in ListenerProtocol}
)
X_FORWARDED_PROTOCOLS = frozenset({_LP.HTTP, _LP.TERMINATED_HTTPS})
TLS_LISTENER_PROTOCOLS = frozenset({_LP.TERMINATED_HTTPS, _LP.PROMETHEUS})
# Decision: PROMETHEUS too; Gcore's monitoring guide offers Basic Auth users on it.
USER_LIST_PROTOCOLS = frozenset({_LP.HTTP, _LP.TERMINATED_HTTPS, _LP.PROMETHEUS})
VIP_FAMILY_VERSIONS: Mapping[IpFamily, frozenset[int]] = MappingProxyType(
    {IpFamily.IPV4: frozenset({4}), IpFamily.IPV6: frozenset({6}), IpFamily.DUAL: frozenset({4, 6})}
)
DEFAULT_CONNECTION_LIMIT = 100_000
MAX_CONNECTION_LIMIT = 1_000_000

# --- Health monitors ----------------------------------------------------------------------

HTTP_MONITOR_TYPES = frozenset({_HM.HTTP, _HM.HTTPS})
HTTP_MONITOR_FIELDS = ("domain_name", "expected_codes", "http_method", "http_version", "url_path")
# UDP pools run on keepalived (LVS): Octavia accepts UDP-CONNECT, TCP and HTTP there, and
# UDP-CONNECT nowhere else.
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
# Gcore documents mixed lists ("200,202,300-302,401"), wider than Octavia's single range.
_CODE_ITEM_RE = re.compile(r"^(\d{3})(?:-(\d{3}))?$")
_URL_PATH_RE = re.compile(r"^/([^/?#%][^?#%]*)?$")

# --- Members and session persistence ------------------------------------------------------

MIN_WEIGHT, MAX_WEIGHT = 1, 256
# Decision: cookies need an HTTP-mode backend. Only HTTP pools are one: HTTPS pools are TLS
# pass-through and PROXY pools sit behind TCP listeners (both HAProxy mode tcp).
COOKIE_POOL_PROTOCOLS = frozenset({_PP.HTTP})

# --- L7 -----------------------------------------------------------------------------------

L7_LISTENER_PROTOCOLS = frozenset({_LP.HTTP, _LP.TERMINATED_HTTPS})
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
L7_COMPARE_TYPES: Mapping[L7RuleType, frozenset[L7CompareType]] = MappingProxyType(
    {
        **{t: _ALL_COMPARE for t in L7RuleType},
        L7RuleType.FILE_TYPE: frozenset({L7CompareType.EQUAL_TO, L7CompareType.REGEX}),
        L7RuleType.SSL_CONN_HAS_CERT: frozenset({L7CompareType.EQUAL_TO}),
        L7RuleType.SSL_VERIFY_RESULT: frozenset({L7CompareType.EQUAL_TO}),
    }
)
L7_KEYED_RULE_TYPES = frozenset({L7RuleType.COOKIE, L7RuleType.HEADER, L7RuleType.SSL_DN_FIELD})
_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 token: header/cookie names
_DN_FIELD_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")  # Octavia DISTINGUISHED_NAME_FIELD_REGEX
# Values end up in one HAProxy config line, quoted by the renderer: no control characters
# (tab, CR, LF included) and no double quote; leading/trailing spaces are refused separately.
_UNSAFE_VALUE_RE = re.compile(r'[\x00-\x1f\x7f"]')
_UNSAFE_URL_RE = re.compile(r'[\x00-\x20\x7f"]')
MAX_TAG_LEN = 255


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
    if proto is _LP.TERMINATED_HTTPS and not secret_id and not sni_secret_id:
        _add(errors, "secret_id", "A TERMINATED_HTTPS listener needs a secret_id or an sni_secret_id")
    if user_list and proto not in USER_LIST_PROTOCOLS:
        _add(errors, "user_list", f"Only for HTTP, TERMINATED_HTTPS and PROMETHEUS listeners, not {proto}")
    seen: set[str] = set()
    for i, user in enumerate(user_list or ()):
        name = user.get("username")
        if name is not None and name in seen:
            _add(errors, f"user_list.{i}.username", f"Duplicate username {name!r}")
        seen.add(name)
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
            # Decision (Octavia's behaviour): host bits set is an error, not silently masked.
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
    if _UNSAFE_URL_RE.search(path):  # Decision: the path goes into an `option httpchk` line
        return "Must not contain whitespace, control characters or quotes"
    return None


def _hm_type(hm: Mapping[str, Any], existing_type: str | None, partial: bool) -> HealthMonitorType:
    new = hm.get("type")
    if new is None:
        if not partial or existing_type is None:
            raise ValidationFailed.field("type", "Field required")
        return _as(_HM, existing_type, "type")
    hm_type = _as(_HM, new, "type")
    if existing_type is not None and hm_type != existing_type:
        raise ValidationFailed.field("type", f"The type of a health monitor is immutable ({existing_type})")
    return hm_type


def _http_monitor_problems(hm: Mapping[str, Any], pool: PoolProtocol, errors: dict[str, list[str]]) -> None:
    if hm.get("expected_codes") is not None:
        try:
            parse_expected_codes(hm["expected_codes"])
        except ValidationFailed as exc:
            errors.update(exc.invalid_fields)
    if hm.get("url_path") is not None:
        _add(errors, "url_path", _url_path_problem(hm["url_path"]))
    if pool is _PP.UDP and hm.get("http_method") not in (None, "GET"):
        # keepalived's HTTP_GET checker, which serves UDP pools, only sends GET.
        _add(errors, "http_method", "Monitors of UDP pools only send GET")


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
    if delay is not None and timeout is not None and timeout >= delay:
        _add(errors, "timeout", f"Must be less than delay ({timeout} >= {delay})")
    if hm_type not in HTTP_MONITOR_TYPES:
        for name in HTTP_MONITOR_FIELDS:
            if hm.get(name) is not None:
                _add(errors, name, f"Only for HTTP and HTTPS monitors, not {hm_type}")
    else:
        _http_monitor_problems(hm, pool, errors)
    _raise_if(errors)


# --- 6. Members ---------------------------------------------------------------------------


def _parse_ip(address: object, field: str) -> IpAddress:
    try:
        return ipaddress.ip_address(address)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValidationFailed.field(field, f"{address!r} is not an IP address") from None


def check_member_address(address: str, vip_family: str | None, field: str = "address") -> IpAddress:
    """Check a backend address: unicast, and of a family the VIP serves; return it parsed."""
    ip = _parse_ip(address, field)
    # Loopback stays allowed: the local data plane runs its backends on 127.0.0.0/8.
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
    """Gcore's weight is 1..256; 0 (allowed by Octavia) is not."""
    if not MIN_WEIGHT <= weight <= MAX_WEIGHT:
        raise ValidationFailed.field(field, f"Must be between {MIN_WEIGHT} and {MAX_WEIGHT}, got {weight}")


def member_key(address: str, port: int, field: str = "address") -> tuple[str, int]:
    """The identity of a member within a pool, with the address in canonical form."""
    return _parse_ip(address, field).compressed, int(port)


def check_member_unique(members: Iterable[Mapping[str, Any]], *, prefix: str = "members") -> None:
    """Reject two members of one pool with the same (address, protocol_port)."""
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
    # Decision: Gcore says "subnet mask"; keepalived takes a dotted IPv4 netmask.
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
        if cookie is not None:
            _add(errors, "session_persistence.cookie_name", "Not used by SOURCE_IP persistence")
    else:
        if pool not in COOKIE_POOL_PROTOCOLS:
            _add(errors, "session_persistence.type", f"{sp_type} needs an HTTP pool, not {pool}")
        if sp_type is SessionPersistenceType.APP_COOKIE and not cookie:
            _add(errors, "session_persistence.cookie_name", "Required for APP_COOKIE persistence")
    udp_source_ip = pool is _PP.UDP and sp_type is SessionPersistenceType.SOURCE_IP
    for name in ("persistence_timeout", "persistence_granularity"):
        if sp.get(name) is not None and not udp_source_ip:
            _add(errors, f"session_persistence.{name}", "Only for SOURCE_IP persistence on UDP pools")
    timeout, mask = sp.get("persistence_timeout"), sp.get("persistence_granularity")
    if udp_source_ip and timeout is not None and timeout < 1:
        _add(errors, "session_persistence.persistence_timeout", "Must be a positive number of seconds")
    if udp_source_ip and mask is not None:
        _add(errors, "session_persistence.persistence_granularity", _granularity_problem(mask))
    _raise_if(errors)


# --- 8-10. L7 policies and rules ----------------------------------------------------------


def _http_url_problem(url: object) -> str | None:
    # Octavia's rule, for REDIRECT_PREFIX too: Gcore's example prefix "/api/v1/policies" is refused.
    if not isinstance(url, str) or _UNSAFE_URL_RE.search(url):
        return "Must be a URL without whitespace, control characters or quotes"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError:
        return f"{url!r} is not a valid URL"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "Must be an absolute http:// or https:// URL"
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
    """Check an L7 policy's action-specific fields and the listener it sits on."""
    act = _as(L7Action, action, "action")
    listener = _as(ListenerProtocol, listener_protocol, "listener_id")
    errors: dict[str, list[str]] = {}
    if listener not in L7_LISTENER_PROTOCOLS:
        _add(errors, "listener_id", f"L7 policies need an HTTP or TERMINATED_HTTPS listener, not {listener}")
    # Decision: a redirect field of another action is refused, not silently dropped.
    own = _REDIRECT_FIELD.get(act)
    given = (("redirect_url", redirect_url), ("redirect_prefix", redirect_prefix))
    for name, value in (*given, ("redirect_pool_id", redirect_pool_id)):
        if name != own:
            _add(errors, name, f"Not used by the {act} action" if value is not None else None)
        elif not value:
            _add(errors, name, f"Required for the {act} action")
        elif name != "redirect_pool_id":
            _add(errors, name, _http_url_problem(value))
    if redirect_http_code is not None:
        if default_redirect_code(act) is None:
            _add(errors, "redirect_http_code", "Only for REDIRECT_TO_URL and REDIRECT_PREFIX")
        elif redirect_http_code not in REDIRECT_HTTP_CODES:
            _add(errors, "redirect_http_code", f"Must be one of {sorted(REDIRECT_HTTP_CODES)}")
    _raise_if(errors)
    if act is L7Action.REDIRECT_TO_POOL and redirect_pool_protocol is not None:
        check_listener_pool_protocol(listener_protocol, redirect_pool_protocol, field="redirect_pool_id")


def _l7_key_problem(rule_type: L7RuleType, key: str | None) -> str | None:
    if rule_type not in L7_KEYED_RULE_TYPES:
        return f"Not used by {rule_type} rules" if key else None
    if not key:
        return f"Required for {rule_type} rules"
    pattern = _DN_FIELD_RE if rule_type is L7RuleType.SSL_DN_FIELD else _TOKEN_RE
    return None if pattern.match(key) else f"{key!r} is not a valid {rule_type} name"


def _l7_value_problem(rule_type: L7RuleType, compare: L7CompareType, value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return "Field required"
    if _UNSAFE_VALUE_RE.search(value) or value != value.strip(" "):
        return "No control characters, double quotes, or leading or trailing spaces"
    if rule_type is L7RuleType.SSL_CONN_HAS_CERT and value.lower() != "true":
        return "SSL_CONN_HAS_CERT rules only take the value 'True'"
    if rule_type is L7RuleType.SSL_VERIFY_RESULT and not re.fullmatch(r"[0-9]+", value):
        return "SSL_VERIFY_RESULT rules take a verify result code, an integer >= 0"
    if compare is L7CompareType.REGEX:
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
    if position < 1:
        raise ValidationFailed.field(field, f"Must be 1 or more, got {position}")
    return min(position, existing_count + 1)


def check_string_tags(tags: Iterable[str] | None, field: str = "tags") -> None:
    """L7 policy/rule tags: distinct strings of 1..255 characters."""
    errors: dict[str, list[str]] = {}
    seen: set[str] = set()
    for i, tag in enumerate(tags or ()):
        if not isinstance(tag, str) or not 1 <= len(tag) <= MAX_TAG_LEN:
            _add(errors, f"{field}.{i}", f"A tag is a string of 1 to {MAX_TAG_LEN} characters")
        elif tag in seen:
            _add(errors, f"{field}.{i}", f"Duplicate tag {tag!r}")
        else:
            seen.add(tag)
    _raise_if(errors)
