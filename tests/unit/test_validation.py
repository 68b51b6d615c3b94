"""One test group per rule of ``lbaas.domain.validation``: valid and invalid cases."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbaas.domain import validation as v
from lbaas.domain.enums import (
    HealthMonitorType,
    L7Action,
    L7CompareType,
    L7RuleType,
    ListenerProtocol,
    PoolProtocol,
)
from lbaas.errors import ValidationFailed

FAST = settings(max_examples=60, deadline=None)


def invalid(fn: Callable[..., Any], *args: Any, field: str, **kwargs: Any) -> ValidationFailed:
    """Call ``fn``, expect a 400 ValidationFailed that names ``field``."""
    with pytest.raises(ValidationFailed) as info:
        fn(*args, **kwargs)
    exc = info.value
    assert exc.status_code == 400
    assert exc.exception_class == "ValidationError"
    assert field in exc.invalid_fields, exc.invalid_fields
    assert all(exc.invalid_fields[field]), "every field carries a message"
    return exc


# --- 1. listener -> pool protocols ----------------------------------------------------------


@pytest.mark.parametrize(
    ("listener", "pool"),
    [
        ("HTTP", "HTTP"),
        ("HTTPS", "HTTPS"),
        ("HTTPS", "TCP"),
        ("TCP", "TCP"),
        ("TCP", "HTTP"),
        ("TCP", "HTTPS"),
        ("TCP", "PROXY"),
        ("TCP", "PROXYV2"),
        ("TERMINATED_HTTPS", "HTTP"),
        ("UDP", "UDP"),
    ],
)
def test_listener_pool_protocol_allowed(listener: str, pool: str) -> None:
    v.check_listener_pool_protocol(listener, pool)


@pytest.mark.parametrize(
    ("listener", "pool"),
    [
        # Gcore: PROXY/PROXYV2 only behind TCP (Octavia would allow these).
        ("HTTP", "PROXY"),
        ("HTTP", "PROXYV2"),
        ("HTTPS", "PROXY"),
        ("TERMINATED_HTTPS", "PROXYV2"),
        # Octavia's map where Gcore is silent.
        ("HTTP", "TCP"),
        ("HTTP", "HTTPS"),
        ("HTTP", "UDP"),
        ("HTTPS", "HTTP"),
        ("TERMINATED_HTTPS", "HTTPS"),
        ("TERMINATED_HTTPS", "TCP"),
        ("TCP", "UDP"),
        ("UDP", "TCP"),
        ("PROMETHEUS", "HTTP"),
        ("PROMETHEUS", "TCP"),
    ],
)
def test_listener_pool_protocol_refused(listener: str, pool: str) -> None:
    invalid(v.check_listener_pool_protocol, listener, pool, field="protocol")


def test_listener_pool_protocol_custom_field_and_unknown_value() -> None:
    invalid(v.check_listener_pool_protocol, "UDP", "HTTP", "default_pool_id", field="default_pool_id")
    invalid(v.check_listener_pool_protocol, "TCP", "SCTP", field="protocol")
    invalid(v.check_listener_pool_protocol, "SCTP", "TCP", field="listener_protocol")


def test_listener_pool_table_covers_every_listener_protocol() -> None:
    assert set(v.LISTENER_POOL_PROTOCOLS) == set(ListenerProtocol)
    proxies = {PoolProtocol.PROXY, PoolProtocol.PROXYV2}
    assert [lp for lp, pools in v.LISTENER_POOL_PROTOCOLS.items() if pools & proxies] == [
        ListenerProtocol.TCP
    ]
    assert v.LISTENER_POOL_PROTOCOLS[ListenerProtocol.PROMETHEUS] == frozenset()


# --- 2. listener port uniqueness ------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "port", "existing"),
    [
        ("TCP", 80, []),
        ("UDP", 80, [("TCP", 80)]),
        ("TCP", 80, [("UDP", 80)]),
        ("HTTP", 8080, [("HTTP", 80), ("UDP", 8080)]),
        ("PROMETHEUS", 9100, [("TERMINATED_HTTPS", 443)]),
    ],
)
def test_listener_port_free(protocol: str, port: int, existing: list[tuple[str, int]]) -> None:
    v.check_listener_port_unique(protocol, port, existing)


@pytest.mark.parametrize(
    ("protocol", "port", "existing"),
    [
        ("HTTP", 80, [("TCP", 80)]),
        ("TCP", 80, [("HTTP", 80)]),
        ("HTTPS", 443, [("TERMINATED_HTTPS", 443)]),
        ("PROMETHEUS", 9100, [("TCP", 9100)]),
        ("UDP", 53, [("TCP", 53), ("UDP", 53)]),
    ],
)
def test_listener_port_taken(protocol: str, port: int, existing: list[tuple[str, int]]) -> None:
    invalid(v.check_listener_port_unique, protocol, port, existing, field="protocol_port")


# --- 3. listener protocol-dependent fields --------------------------------------------------

SECRET = "f2e734d0-fa2b-42c2-ad33-4c6db5101e00"
USER = {"username": "admin", "encrypted_password": "$5$x$y"}


@pytest.mark.parametrize(
    ("protocol", "kwargs"),
    [
        ("HTTP", {"insert_x_forwarded": True, "user_list": [USER]}),
        ("TERMINATED_HTTPS", {"insert_x_forwarded": True, "secret_id": SECRET}),
        ("TERMINATED_HTTPS", {"secret_id": "", "sni_secret_id": [SECRET]}),
        ("TERMINATED_HTTPS", {"secret_id": SECRET, "sni_secret_id": [SECRET], "user_list": [USER]}),
        ("PROMETHEUS", {"secret_id": SECRET, "user_list": [USER]}),
        ("PROMETHEUS", {}),
        ("TCP", {"insert_x_forwarded": False, "secret_id": "", "sni_secret_id": [], "user_list": []}),
        ("UDP", {"allowed_cidrs": ["10.0.0.0/8", "192.0.2.1"], "vip_family": "ipv4"}),
        ("TCP", {"allowed_cidrs": ["2001:db8::/32"], "vip_family": "ipv6"}),
        ("TCP", {"allowed_cidrs": ["10.0.0.0/8", "fe00::/7"], "vip_family": "dual"}),
        ("TCP", {"allowed_cidrs": ["10.0.0.0/8", "fe00::/7"], "vip_family": None}),
        ("HTTP", {"user_list": [USER, {**USER, "username": "other"}]}),
    ],
)
def test_listener_fields_valid(protocol: str, kwargs: dict[str, Any]) -> None:
    v.check_listener_fields(protocol, **kwargs)


@pytest.mark.parametrize(
    ("protocol", "kwargs", "field"),
    [
        ("TCP", {"insert_x_forwarded": True}, "insert_x_forwarded"),
        ("HTTPS", {"insert_x_forwarded": True}, "insert_x_forwarded"),
        ("PROMETHEUS", {"insert_x_forwarded": True}, "insert_x_forwarded"),
        ("HTTP", {"secret_id": SECRET}, "secret_id"),
        ("HTTPS", {"sni_secret_id": [SECRET]}, "sni_secret_id"),
        ("TERMINATED_HTTPS", {}, "secret_id"),
        ("TERMINATED_HTTPS", {"secret_id": "", "sni_secret_id": []}, "secret_id"),
        ("TCP", {"user_list": [USER]}, "user_list"),
        ("HTTPS", {"user_list": [USER]}, "user_list"),
        ("HTTP", {"user_list": [USER, USER]}, "user_list.1.username"),
        ("TCP", {"allowed_cidrs": ["10.0.0.1/8"]}, "allowed_cidrs.0"),
        ("TCP", {"allowed_cidrs": ["10.0.0.0/8", "2001:db8::1/32"]}, "allowed_cidrs.1"),
        ("TCP", {"allowed_cidrs": ["not-a-cidr"]}, "allowed_cidrs.0"),
        ("TCP", {"allowed_cidrs": ["10.0.0.0/33"]}, "allowed_cidrs.0"),
        ("TCP", {"allowed_cidrs": ["fe00::/7"], "vip_family": "ipv4"}, "allowed_cidrs.0"),
        ("TCP", {"allowed_cidrs": ["10.0.0.0/8", "10.0.0.0/8 "], "vip_family": "ipv4"}, "allowed_cidrs.1"),
        ("UDP", {"allowed_cidrs": ["10.0.0.0/8"], "vip_family": "ipv6"}, "allowed_cidrs.0"),
    ],
)
def test_listener_fields_invalid(protocol: str, kwargs: dict[str, Any], field: str) -> None:
    invalid(v.check_listener_fields, protocol, field=field, **kwargs)


def test_listener_fields_reports_every_bad_field_at_once() -> None:
    exc = invalid(
        v.check_listener_fields,
        "TCP",
        field="insert_x_forwarded",
        insert_x_forwarded=True,
        secret_id=SECRET,
        allowed_cidrs=["10.0.0.0/8", "10.1.1.1/16", "::/0"],
        vip_family="ipv4",
    )
    assert set(exc.invalid_fields) == {
        "insert_x_forwarded",
        "secret_id",
        "allowed_cidrs.1",
        "allowed_cidrs.2",
    }
    assert "10.1.0.0/16" in exc.invalid_fields["allowed_cidrs.1"][0]


def test_check_allowed_cidr_single() -> None:
    v.check_allowed_cidr("0.0.0.0/0", "dual")
    invalid(v.check_allowed_cidr, "192.168.1.5/24", "ipv4", field="allowed_cidrs")
    invalid(v.check_allowed_cidr, "::/0", "ipv4", "allowed_cidrs.3", field="allowed_cidrs.3")
    invalid(v.check_allowed_cidr, "10.0.0.0/8", "ipv5", field="vip_ip_family")


# --- 4. connection limit --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"), [(-1, 100_000), (0, 0), (1, 1), (50_000, 50_000), (10**6, 10**6)]
)
def test_connection_limit_normalized(given: int, stored: int) -> None:
    assert v.normalize_connection_limit(given) == stored


@pytest.mark.parametrize("given", [-2, -100, 1_000_001])
def test_connection_limit_out_of_range(given: int) -> None:
    invalid(v.normalize_connection_limit, given, field="connection_limit")


# --- 5. health monitors ---------------------------------------------------------------------


def hm(**kwargs: Any) -> dict[str, Any]:
    return {"type": "HTTP", "delay": 10, "timeout": 5, "max_retries": 3, **kwargs}


@pytest.mark.parametrize(
    ("body", "pool"),
    [
        (hm(), "HTTP"),
        (hm(url_path="/healthz", expected_codes="200,202,300-302", http_method="HEAD"), "HTTP"),
        (hm(type="HTTPS", domain_name="example.com", http_version="1.1", url_path="/"), "HTTPS"),
        (hm(type="TCP", url_path=None, expected_codes=None), "TCP"),
        (hm(type="PING"), "PROXY"),
        (hm(type="TLS-HELLO"), "HTTPS"),
        (hm(type="K8S"), "TCP"),
        (hm(type="UDP-CONNECT"), "UDP"),
        (hm(type="TCP"), "UDP"),
        (hm(type="HTTP", http_method="GET"), "UDP"),
        (hm(http_method="POST"), "UDP"),  # Octavia accepts it; its LVS checker sends GET
        (hm(type="PING", delay=10, max_retries=5, timeout=5), "TCP"),  # Gcore's tcp-80.tf
        (hm(delay=1, timeout=0), "TCP"),
    ],
)
def test_health_monitor_valid(body: dict[str, Any], pool: str) -> None:
    v.check_health_monitor(body, pool_protocol=pool)


@pytest.mark.parametrize(
    ("body", "pool", "field"),
    [
        (hm(timeout=10), "HTTP", "timeout"),
        (hm(timeout=11), "HTTP", "timeout"),
        (hm(type="TCP", url_path="/"), "TCP", "url_path"),
        (hm(type="PING", expected_codes="200"), "TCP", "expected_codes"),
        (hm(type="TLS-HELLO", http_method="GET"), "HTTPS", "http_method"),
        (hm(type="K8S", http_version="1.1"), "TCP", "http_version"),
        (hm(type="UDP-CONNECT", domain_name="example.com"), "UDP", "domain_name"),
        (hm(expected_codes="abc"), "HTTP", "expected_codes"),
        (hm(expected_codes="99"), "HTTP", "expected_codes"),
        (hm(expected_codes="600"), "HTTP", "expected_codes"),
        (hm(expected_codes="204-200"), "HTTP", "expected_codes"),
        (hm(expected_codes="200,"), "HTTP", "expected_codes"),
        (hm(expected_codes=""), "HTTP", "expected_codes"),
        (hm(url_path="healthz"), "HTTP", "url_path"),
        (hm(url_path="//x"), "HTTP", "url_path"),
        (hm(url_path="/a//b"), "HTTP", "url_path"),
        (hm(url_path="/a?b=1"), "HTTP", "url_path"),
        (hm(url_path="/a#f"), "HTTP", "url_path"),
        (hm(url_path="/a%20b"), "HTTP", "url_path"),
        (hm(url_path="/a b"), "HTTP", "url_path"),
        (hm(url_path='/a"b'), "HTTP", "url_path"),
        (hm(type="UDP-CONNECT"), "TCP", "type"),
        (hm(type="UDP-CONNECT"), "HTTP", "type"),
        (hm(type="PING"), "UDP", "type"),
        (hm(type="TLS-HELLO"), "UDP", "type"),
        (hm(type="HTTPS"), "UDP", "type"),
        (hm(type="K8S"), "UDP", "type"),
        ({"delay": 10, "timeout": 5}, "TCP", "type"),
    ],
)
def test_health_monitor_invalid(body: dict[str, Any], pool: str, field: str) -> None:
    invalid(v.check_health_monitor, body, pool_protocol=pool, field=field)


def test_health_monitor_type_is_immutable() -> None:
    # Update bodies carry no type: the stored one applies.
    v.check_health_monitor({"delay": 5, "timeout": 4}, pool_protocol="TCP", existing_type="TCP", partial=True)
    v.check_health_monitor(
        {"type": "TLS-HELLO", "delay": 5, "timeout": 4}, pool_protocol="TCP", existing_type="TLS-HELLO"
    )
    invalid(
        v.check_health_monitor,
        {"type": "HTTP", "delay": 5, "timeout": 4},
        pool_protocol="HTTP",
        existing_type="TCP",
        partial=True,
        field="type",
    )
    invalid(
        v.check_health_monitor,
        {"type": "PING", "delay": 5, "timeout": 1},
        pool_protocol="TCP",
        existing_type="TCP",
        field="type",
    )
    # Without partial, a body without type is a create body and needs one.
    invalid(
        v.check_health_monitor,
        {"delay": 5, "timeout": 4},
        pool_protocol="TCP",
        existing_type="TCP",
        field="type",
    )
    invalid(
        v.check_health_monitor, {"delay": 5, "timeout": 4}, pool_protocol="TCP", partial=True, field="type"
    )


def test_health_monitor_partial_uses_existing_type_for_field_rules() -> None:
    v.check_health_monitor(
        {"url_path": "/ok", "delay": 5, "timeout": 1},
        pool_protocol="HTTP",
        existing_type="HTTP",
        partial=True,
    )
    invalid(
        v.check_health_monitor,
        {"url_path": "/ok", "delay": 5, "timeout": 1},
        pool_protocol="TCP",
        existing_type="TCP",
        partial=True,
        field="url_path",
    )
    invalid(
        v.check_health_monitor,
        {"delay": 5, "timeout": 5},
        pool_protocol="TCP",
        existing_type="PING",
        partial=True,
        field="timeout",
    )


@pytest.mark.parametrize(
    ("codes", "ranges"),
    [
        ("200", [(200, 200)]),
        ("200,202,401", [(200, 200), (202, 202), (401, 401)]),
        ("200-204", [(200, 204)]),
        (
            "200,202,300-302,401,403,404,500-504",
            [(200, 200), (202, 202), (300, 302), (401, 401), (403, 403), (404, 404), (500, 504)],
        ),
        (" 200 , 301 ", [(200, 200), (301, 301)]),
        ("100-599", [(100, 599)]),
    ],
)
def test_parse_expected_codes(codes: str, ranges: list[tuple[int, int]]) -> None:
    assert v.parse_expected_codes(codes) == ranges


@FAST
@given(st.lists(st.tuples(st.integers(100, 599), st.integers(0, 50)), min_size=1, max_size=6))
def test_parse_expected_codes_round_trips(items: list[tuple[int, int]]) -> None:
    ranges = [(low, min(low + span, 599)) for low, span in items]
    text = ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)
    assert v.parse_expected_codes(text) == ranges


@pytest.mark.parametrize("hm_type", ["HTTP", "HTTPS"])
def test_hm_defaults_http(hm_type: str) -> None:
    assert v.hm_defaults(hm_type) == {
        "http_method": "GET",
        "url_path": "/",
        "expected_codes": "200",
        "http_version": "1.0",
        "domain_name": None,
        "max_retries_down": 3,
        "admin_state_up": True,
    }


@pytest.mark.parametrize("hm_type", ["K8S", "PING", "TCP", "TLS-HELLO", "UDP-CONNECT"])
def test_hm_defaults_non_http(hm_type: str) -> None:
    defaults = v.hm_defaults(hm_type)
    assert all(defaults[f] is None for f in v.HTTP_MONITOR_FIELDS)
    assert defaults["max_retries_down"] == 3
    # The defaults of any type pass that type's own checks.
    v.check_health_monitor(
        {**hm(type=hm_type), **defaults}, pool_protocol="UDP" if hm_type == "UDP-CONNECT" else "TCP"
    )


def test_hm_defaults_unknown_type() -> None:
    invalid(v.hm_defaults, "SCTP", field="type")


def test_monitor_table_covers_every_pool_protocol() -> None:
    assert set(v.MONITOR_TYPES_BY_POOL_PROTOCOL) == set(PoolProtocol)
    users = [
        p for p, types in v.MONITOR_TYPES_BY_POOL_PROTOCOL.items() if HealthMonitorType.UDP_CONNECT in types
    ]
    assert users == [PoolProtocol.UDP]


# --- 6. members -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "family"),
    [
        ("192.168.40.33", "ipv4"),
        ("127.0.0.1", "ipv4"),
        ("2001:db8::1", "ipv6"),
        ("::1", "ipv6"),
        ("10.0.0.1", "dual"),
        ("2001:db8::1", "dual"),
        ("10.0.0.1", None),
    ],
)
def test_member_address_valid(address: str, family: str | None) -> None:
    assert v.check_member_address(address, family) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    ("address", "family"),
    [
        ("2001:db8::1", "ipv4"),
        ("10.0.0.1", "ipv6"),
        ("0.0.0.0", "ipv4"),
        ("::", "ipv6"),
        ("224.0.0.1", "ipv4"),
        ("ff02::1", "dual"),
        ("255.255.255.255", "ipv4"),
        ("10.0.0.1/32", "ipv4"),
        ("example.com", "ipv4"),
    ],
)
def test_member_address_invalid(address: str, family: str) -> None:
    invalid(v.check_member_address, address, family, field="address")
    invalid(v.check_member_address, address, family, "members.2.address", field="members.2.address")


@pytest.mark.parametrize(
    ("pool", "family", "bound"),
    [("UDP", "ipv4", "ipv4"), ("TCP", "ipv4", None), ("HTTP", "ipv4", None), ("PROXY", "dual", None)],
)
def test_member_family_binds_only_udp_pools(pool: str, family: str, bound: str | None) -> None:
    # Octavia's amphora driver refuses mixed families only for UDP/SCTP (LVS) pools.
    assert v.member_vip_family(pool, family) == bound
    if bound is None:
        v.check_member_address("2001:db8::1", v.member_vip_family(pool, family))
    else:
        invalid(v.check_member_address, "2001:db8::1", v.member_vip_family(pool, family), field="address")


def test_member_monitor() -> None:
    v.check_member_monitor(None, None)
    v.check_member_monitor("10.0.0.9", 8080, vip_family="ipv4")
    v.check_member_monitor(None, 1)
    invalid(v.check_member_monitor, "::", None, field="monitor_address")
    invalid(v.check_member_monitor, "2001:db8::1", None, vip_family="ipv4", field="monitor_address")
    invalid(v.check_member_monitor, "not-ip", 80, field="monitor_address")
    invalid(v.check_member_monitor, None, 0, field="monitor_port")
    invalid(v.check_member_monitor, "10.0.0.9", 65536, field="monitor_port")


@pytest.mark.parametrize("weight", [1, 2, 128, 256])
def test_member_weight_valid(weight: int) -> None:
    v.check_member_weight(weight)


@pytest.mark.parametrize("weight", [0, -1, 257])
def test_member_weight_invalid(weight: int) -> None:
    invalid(v.check_member_weight, weight, field="weight")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("2001:DB8:0:0::1", 80), ("2001:db8::1", 80)),
        (("2001:0db8::0001", "80"), ("2001:db8::1", 80)),
        (("10.0.0.1", 80), ("10.0.0.1", 80)),
    ],
)
def test_member_key_normalizes(a: tuple[str, Any], b: tuple[str, int]) -> None:
    assert v.member_key(*a) == v.member_key(*b) == (b[0], b[1])


def test_member_key_invalid_address() -> None:
    invalid(v.member_key, "10.0.0.256", 80, field="address")


@FAST
@given(st.ip_addresses(), st.integers(1, 65535))
def test_member_key_is_canonical(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> None:
    key = v.member_key(ip.exploded.upper(), port)
    assert key == (ip.compressed, port)
    assert v.member_key(*key) == key


def test_member_unique() -> None:
    v.check_member_unique([])
    v.check_member_unique(
        [
            {"address": "10.0.0.1", "protocol_port": 80},
            {"address": "10.0.0.1", "protocol_port": 81},
            {"address": "10.0.0.2", "protocol_port": 80},
        ]
    )
    members = [
        {"address": "2001:db8::1", "protocol_port": 80},
        {"address": "10.0.0.1", "protocol_port": 80},
        {"address": "2001:DB8::0:1", "protocol_port": 80},
    ]
    exc = invalid(v.check_member_unique, members, field="members.2.address")
    assert "members.0" in exc.invalid_fields["members.2.address"][0]
    # A PUT body is a bare array: no prefix.
    invalid(v.check_member_unique, members, prefix="", field="2.address")
    invalid(v.check_member_unique, [{"address": "x", "protocol_port": 1}], field="members.0.address")


# --- 7. session persistence -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("sp", "pool"),
    [
        (None, "TCP"),
        ({"type": "SOURCE_IP"}, "TCP"),
        ({"type": "SOURCE_IP"}, "HTTPS"),
        (
            {"type": "SOURCE_IP", "persistence_timeout": 360, "persistence_granularity": "255.255.255.0"},
            "UDP",
        ),
        ({"type": "SOURCE_IP", "persistence_granularity": "255.255.255.255"}, "UDP"),
        ({"type": "HTTP_COOKIE"}, "HTTP"),
        ({"type": "HTTP_COOKIE", "cookie_name": "SRV"}, "HTTP"),
        ({"type": "APP_COOKIE", "cookie_name": "JSESSIONID"}, "HTTP"),
        # Gcore's Terraform example tcp-80.tf: APP_COOKIE on a TCP pool.
        ({"type": "APP_COOKIE", "cookie_name": "test_new_cookie"}, "TCP"),
        ({"type": "HTTP_COOKIE"}, "HTTPS"),
        ({"type": "HTTP_COOKIE"}, "TCP"),
        ({"type": "APP_COOKIE", "cookie_name": "a.b-c_d"}, "PROXY"),
        ({"type": "APP_COOKIE", "cookie_name": "sid"}, "PROXYV2"),
        ({"type": "SOURCE_IP", "persistence_timeout": 0}, "UDP"),
    ],
)
def test_session_persistence_valid(sp: dict[str, Any] | None, pool: str) -> None:
    v.check_session_persistence(sp, pool_protocol=pool)


@pytest.mark.parametrize(
    ("sp", "pool", "field"),
    [
        ({"type": "APP_COOKIE"}, "HTTP", "session_persistence.cookie_name"),
        ({"type": "APP_COOKIE", "cookie_name": ""}, "HTTP", "session_persistence.cookie_name"),
        ({"type": "SOURCE_IP", "cookie_name": "x"}, "TCP", "session_persistence.cookie_name"),
        ({"type": "HTTP_COOKIE"}, "UDP", "session_persistence.type"),
        ({"type": "APP_COOKIE", "cookie_name": "sid"}, "UDP", "session_persistence.type"),
        ({"type": "APP_COOKIE", "cookie_name": "my cookie"}, "HTTP", "session_persistence.cookie_name"),
        ({"type": "HTTP_COOKIE", "cookie_name": "a;b"}, "TCP", "session_persistence.cookie_name"),
        ({"type": "SOURCE_IP", "persistence_timeout": 60}, "TCP", "session_persistence.persistence_timeout"),
        (
            {"type": "SOURCE_IP", "persistence_granularity": "255.0.0.0"},
            "HTTP",
            "session_persistence.persistence_granularity",
        ),
        (
            {"type": "HTTP_COOKIE", "persistence_timeout": 60},
            "HTTP",
            "session_persistence.persistence_timeout",
        ),
        ({"type": "SOURCE_IP", "persistence_timeout": -1}, "UDP", "session_persistence.persistence_timeout"),
        (
            {"type": "SOURCE_IP", "persistence_granularity": "255.0.255.0"},
            "UDP",
            "session_persistence.persistence_granularity",
        ),
        (
            {"type": "SOURCE_IP", "persistence_granularity": "0.0.0.255"},
            "UDP",
            "session_persistence.persistence_granularity",
        ),
        (
            {"type": "SOURCE_IP", "persistence_granularity": "24"},
            "UDP",
            "session_persistence.persistence_granularity",
        ),
        ({"type": "STICKY"}, "HTTP", "session_persistence.type"),
    ],
)
def test_session_persistence_invalid(sp: dict[str, Any], pool: str, field: str) -> None:
    invalid(v.check_session_persistence, sp, pool_protocol=pool, field=field)


# --- 8. L7 policies and rules ---------------------------------------------------------------

POOL_ID = "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    ("action", "kwargs"),
    [
        ("REJECT", {}),
        ("REDIRECT_TO_URL", {"redirect_url": "https://www.example.com"}),
        ("REDIRECT_TO_URL", {"redirect_url": "http://example.com:8080/a?b=c#d", "redirect_http_code": 301}),
        ("REDIRECT_PREFIX", {"redirect_prefix": "https://example.com/api", "redirect_http_code": 308}),
        ("REDIRECT_TO_POOL", {"redirect_pool_id": POOL_ID}),
        ("REDIRECT_TO_POOL", {"redirect_pool_id": POOL_ID, "redirect_pool_protocol": "HTTP"}),
        # Gcore's own example prefix (CreateL7PolicyRedirectPrefixSerializer).
        ("REDIRECT_PREFIX", {"redirect_prefix": "/api/v1/policies"}),
        # Fields of other actions are ignored (Gcore's per-action schemas; Octavia clears them).
        ("REJECT", {"redirect_url": "https://example.com", "redirect_http_code": 302}),
        (
            "REDIRECT_TO_POOL",
            {"redirect_pool_id": POOL_ID, "redirect_prefix": "/x", "redirect_http_code": 301},
        ),
        ("REDIRECT_TO_URL", {"redirect_url": "https://x.io", "redirect_pool_id": POOL_ID}),
    ],
)
@pytest.mark.parametrize("listener", ["HTTP", "TERMINATED_HTTPS"])
def test_l7_policy_valid(action: str, kwargs: dict[str, Any], listener: str) -> None:
    v.check_l7_policy(action, listener_protocol=listener, **kwargs)


@pytest.mark.parametrize(
    ("action", "kwargs", "field"),
    [
        ("REJECT", {"listener_protocol": "TCP"}, "listener_id"),
        ("REJECT", {"listener_protocol": "HTTPS"}, "listener_id"),
        ("REJECT", {"listener_protocol": "UDP"}, "listener_id"),
        ("REJECT", {"listener_protocol": "PROMETHEUS"}, "listener_id"),
        ("REDIRECT_TO_URL", {}, "redirect_url"),
        ("REDIRECT_TO_URL", {"redirect_url": ""}, "redirect_url"),
        ("REDIRECT_TO_URL", {"redirect_url": "/relative"}, "redirect_url"),
        ("REDIRECT_TO_URL", {"redirect_url": "ftp://example.com"}, "redirect_url"),
        ("REDIRECT_TO_URL", {"redirect_url": "https://"}, "redirect_url"),
        ("REDIRECT_TO_URL", {"redirect_url": "https://exa mple.com"}, "redirect_url"),
        ("REDIRECT_TO_URL", {"redirect_url": 'https://example.com/"'}, "redirect_url"),
        ("REDIRECT_TO_URL", {"redirect_url": "https://example.com/\n"}, "redirect_url"),
        ("REDIRECT_TO_URL", {"redirect_url": "https://example.com:99999/"}, "redirect_url"),
        ("REDIRECT_PREFIX", {}, "redirect_prefix"),
        ("REDIRECT_PREFIX", {"redirect_prefix": "api/v1"}, "redirect_prefix"),
        ("REDIRECT_PREFIX", {"redirect_prefix": "//evil.example/x"}, "redirect_prefix"),
        ("REDIRECT_PREFIX", {"redirect_prefix": "/a b"}, "redirect_prefix"),
        ("REDIRECT_PREFIX", {"redirect_prefix": '/a"b'}, "redirect_prefix"),
        ("REDIRECT_PREFIX", {"redirect_prefix": "/a\nb"}, "redirect_prefix"),
        ("REDIRECT_TO_POOL", {}, "redirect_pool_id"),
        (
            "REDIRECT_TO_URL",
            {"redirect_url": "https://x.io", "redirect_http_code": 304},
            "redirect_http_code",
        ),
        (
            "REDIRECT_TO_POOL",
            {"redirect_pool_id": POOL_ID, "redirect_pool_protocol": "TCP"},
            "redirect_pool_id",
        ),
        (
            "REDIRECT_TO_POOL",
            {"redirect_pool_id": POOL_ID, "redirect_pool_protocol": "PROXY"},
            "redirect_pool_id",
        ),
        ("FORWARD", {}, "action"),
    ],
)
def test_l7_policy_invalid(action: str, kwargs: dict[str, Any], field: str) -> None:
    invalid(v.check_l7_policy, action, field=field, **{"listener_protocol": "HTTP", **kwargs})


@pytest.mark.parametrize(
    ("action", "code"),
    [("REDIRECT_TO_URL", 302), ("REDIRECT_PREFIX", 302), ("REDIRECT_TO_POOL", None), ("REJECT", None)],
)
def test_default_redirect_code(action: str, code: int | None) -> None:
    assert v.default_redirect_code(action) == code
    if code is not None:
        assert code in v.REDIRECT_HTTP_CODES


def test_every_l7_action_is_covered() -> None:
    assert {a for a in L7Action if v.default_redirect_code(a) is None} == {
        L7Action.REJECT,
        L7Action.REDIRECT_TO_POOL,
    }


@pytest.mark.parametrize(
    ("rule_type", "compare", "key", "value"),
    [
        ("PATH", "STARTS_WITH", None, "/images"),
        ("PATH", "REGEX", None, r"^/api/v[0-9]+/.*\.json$"),
        ("HOST_NAME", "EQUAL_TO", "", "www.example.com"),
        ("HOST_NAME", "ENDS_WITH", None, ".example.com"),
        ("HEADER", "CONTAINS", "X-Forwarded-For", "10.0."),
        ("HEADER", "EQUAL_TO", "User-Agent", "curl/8.0 (x86_64)"),
        ("COOKIE", "EQUAL_TO", "session_id", "abc"),
        ("COOKIE", "REGEX", "sid", "^[a-f0-9]{32}$"),
        ("FILE_TYPE", "EQUAL_TO", None, "jpg"),
        ("FILE_TYPE", "REGEX", None, "^(jpg|png)$"),
        ("SSL_CONN_HAS_CERT", "EQUAL_TO", None, "True"),
        ("SSL_CONN_HAS_CERT", "EQUAL_TO", None, "true"),
        ("SSL_VERIFY_RESULT", "EQUAL_TO", None, "0"),
        ("SSL_VERIFY_RESULT", "EQUAL_TO", None, "20"),
        ("SSL_DN_FIELD", "EQUAL_TO", "CN", "client.example.com"),
        ("SSL_DN_FIELD", "REGEX", "OU", "^ops-.*$"),
        # A key on PATH, HOST_NAME or FILE_TYPE is kept and ignored (Octavia); Gcore's own rule
        # example sends one with a PATH rule.
        ("PATH", "REGEX", "the name of the cookie or header to evaluate.", "/images*"),
        ("HOST_NAME", "EQUAL_TO", "k", "a.io"),
        ("FILE_TYPE", "EQUAL_TO", "k", "png"),
    ],
)
@pytest.mark.parametrize("invert", [False, True])
def test_l7_rule_valid(rule_type: str, compare: str, key: str | None, value: str, invert: bool) -> None:
    v.check_l7_rule(rule_type, compare, key, value, invert)


@pytest.mark.parametrize(
    ("rule_type", "compare", "key", "value", "field"),
    [
        ("HEADER", "EQUAL_TO", None, "x", "key"),
        ("HEADER", "EQUAL_TO", "", "x", "key"),
        ("HEADER", "EQUAL_TO", "Bad Header", "x", "key"),
        ("HEADER", "EQUAL_TO", "X-A:", "x", "key"),
        ("COOKIE", "EQUAL_TO", None, "x", "key"),
        ("COOKIE", "EQUAL_TO", "a=b", "x", "key"),
        ("SSL_DN_FIELD", "EQUAL_TO", None, "x", "key"),
        ("SSL_DN_FIELD", "EQUAL_TO", "1CN", "x", "key"),
        ("SSL_CONN_HAS_CERT", "EQUAL_TO", "k", "True", "key"),
        ("SSL_VERIFY_RESULT", "EQUAL_TO", "k", "0", "key"),
        ("FILE_TYPE", "STARTS_WITH", None, "jp", "compare_type"),
        ("FILE_TYPE", "CONTAINS", None, "jp", "compare_type"),
        ("SSL_CONN_HAS_CERT", "REGEX", None, "True", "compare_type"),
        ("SSL_VERIFY_RESULT", "CONTAINS", None, "0", "compare_type"),
        ("SSL_CONN_HAS_CERT", "EQUAL_TO", None, "yes", "value"),
        ("SSL_CONN_HAS_CERT", "EQUAL_TO", None, "False", "value"),
        ("SSL_VERIFY_RESULT", "EQUAL_TO", None, "-1", "value"),
        ("SSL_VERIFY_RESULT", "EQUAL_TO", None, "ok", "value"),
        ("SSL_VERIFY_RESULT", "EQUAL_TO", None, "\u00b2", "value"),
        ("PATH", "REGEX", None, "([a-z]", "value"),
        ("PATH", "REGEX", None, "*.jpg", "value"),
        ("HEADER", "REGEX", "X-A", "a{2,1}", "value"),
        # Python's re accepts these; PCRE2 (HAProxy's engine) refuses them.
        ("PATH", "REGEX", None, r"^/\u0061$", "value"),
        ("PATH", "REGEX", None, r"(?<=a+)b", "value"),
        ("PATH", "EQUAL_TO", None, "", "value"),
        ("PATH", "EQUAL_TO", None, '/a"b', "value"),
        ("PATH", "EQUAL_TO", None, "/a\nb", "value"),
        ("PATH", "EQUAL_TO", None, "/a\rb", "value"),
        ("HOST_NAME", "EQUAL_TO", None, "a\tb", "value"),
        ("HOST_NAME", "EQUAL_TO", None, " example.com", "value"),
        ("HEADER", "EQUAL_TO", "X-A", "value ", "value"),
        ("HEADER", "EQUAL_TO", "X-A", "nul\x00", "value"),
        ("URI", "EQUAL_TO", None, "x", "type"),
        ("PATH", "LIKE", None, "x", "compare_type"),
    ],
)
def test_l7_rule_invalid(rule_type: str, compare: str, key: str | None, value: str, field: str) -> None:
    invalid(v.check_l7_rule, rule_type, compare, key, value, field=field)


def test_l7_rule_reports_key_and_value_together() -> None:
    exc = invalid(v.check_l7_rule, "SSL_VERIFY_RESULT", "CONTAINS", "k", 'a"', field="compare_type")
    assert set(exc.invalid_fields) == {"compare_type", "key", "value"}


def test_l7_tables_cover_every_enum_value() -> None:
    assert set(v.L7_COMPARE_TYPES) == set(L7RuleType)
    assert all(v.L7_COMPARE_TYPES[t] == set(L7CompareType) for t in ("PATH", "HOST_NAME", "HEADER", "COOKIE"))


# --- 9. L7 policy position ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "position", "placed"),
    [(0, None, 1), (3, None, 4), (0, 1, 1), (0, 5, 1), (3, 1, 1), (3, 2, 2), (3, 4, 4), (3, 99, 4)],
)
def test_insert_position(count: int, position: int | None, placed: int) -> None:
    assert v.insert_position(count, position) == placed


@pytest.mark.parametrize("position", [0, -1])
def test_insert_position_invalid(position: int) -> None:
    invalid(v.insert_position, 3, position, field="position")


@FAST
@given(st.integers(0, 1000), st.none() | st.integers(1, 2000))
def test_insert_position_always_in_range(count: int, position: int | None) -> None:
    placed = v.insert_position(count, position)
    assert 1 <= placed <= count + 1
    assert placed == (count + 1 if position is None else min(position, count + 1))


# --- 10. string tags ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tags", [None, [], ["test_tag"], ["a", "b", "x" * 255], ["with space", "ünïcode"], [""]]
)
def test_string_tags_valid(tags: list[str] | None) -> None:
    v.check_string_tags(tags)


@pytest.mark.parametrize(
    ("tags", "field"),
    [
        (["ok", "x" * 256], "tags.1"),
        (["a", "b", "a"], "tags.2"),
        (["a", 1], "tags.1"),
        (["a", None], "tags.1"),
    ],
)
def test_string_tags_invalid(tags: list[Any], field: str) -> None:
    invalid(v.check_string_tags, tags, field=field)


def test_string_tags_custom_field() -> None:
    invalid(v.check_string_tags, ["a", "a"], "rules.0.tags", field="rules.0.tags.1")


# --- module contract ------------------------------------------------------------------------


def test_module_is_pure() -> None:
    """stdlib + lbaas.errors + lbaas.domain.enums (+ the stdlib-only PCRE2 binding) only."""
    import ast
    import sys
    from pathlib import Path

    tree = ast.parse(Path(v.__file__).read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        if not (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lbaas"))
        else node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    local = {m for m in imported if m and m.startswith("lbaas")}
    assert local == {"lbaas.errors", "lbaas.domain.enums", "lbaas.domain.pcre2"}
    assert all(m in sys.stdlib_module_names or m == "__future__" for m in imported - local)
