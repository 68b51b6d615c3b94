"""The renderer's small parts and its refusals (no HAProxy needed)."""

from __future__ import annotations

import dataclasses

import pytest
from haproxy_helpers import make_pki
from samples import http_basic, lb, logging_and_ping, members, terminated_https

from lbaas.domain.enums import HealthMonitorType, LbAlgorithm, ListenerProtocol, PoolProtocol
from lbaas.domain.model import Certificate, HealthMonitor, Listener, Pool
from lbaas.providers.haproxy.render import Env, RenderError, render
from lbaas.providers.haproxy.render.backends import timer_ms
from lbaas.providers.haproxy.render.escape import fetch, fetch_arg, logformat_literal, word
from lbaas.providers.haproxy.render.globaldefs import max_connections, nbthread

ENV = Env(run_dir="/run/lbaas", lb_dir="/var/lib/lbaas/lb")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain-1.0", "plain-1.0"),
        ("a b", "'a b'"),
        ("a#b", "'a#b'"),
        ("it's", "'it'\\''s'"),
        ("$HOME", "'$HOME'"),
        ('a"b', "'a\"b'"),
        ("back\\slash", "'back\\slash'"),
        ("", "''"),
    ],
)
def test_word(value: str, expected: str) -> None:
    assert word(value) == expected


def test_fetch_quotes_at_both_levels() -> None:
    assert fetch_arg("a,b)") == "'a,b)'"
    assert fetch("req.fhdr", "X-A") == "req.fhdr(X-A)"
    assert fetch("req.cook", "my session") == "'req.cook('\\''my session'\\'')'"


@pytest.mark.parametrize("value", ["a\nexternal-check command /bin/sh", "a\rb", "nul\0", "tab\t"])
def test_control_characters_never_reach_the_file(value: str) -> None:
    with pytest.raises(RenderError):
        word(value)
    with pytest.raises(RenderError):
        fetch_arg(value)


def test_logformat_literal_doubles_percent() -> None:
    assert logformat_literal("100%") == "100%%"


def test_timers_are_clamped() -> None:
    assert timer_ms(2147483647 * 1000) == 2147483647
    assert timer_ms(5000) == 5000


def test_nbthread_follows_the_flavor_capped_by_the_host() -> None:
    snapshot = http_basic(make_pki())  # lb1-2-4: 2 vCPUs
    assert nbthread(snapshot, dataclasses.replace(ENV, host_cpus=1)) == 1
    assert nbthread(snapshot, dataclasses.replace(ENV, host_cpus=8)) == 2
    assert nbthread(dataclasses.replace(snapshot, flavor=None), dataclasses.replace(ENV, host_cpus=8)) == 1


def test_maxconn_formula() -> None:
    # servers are budgeted in blocks of 256, so that member changes leave maxconn alone
    assert max_connections(Env("/r", "/l", fd_limit=20_000), 2, 4, 10) == (20_000 - 64 - 6 - 4 - 256) // 2
    assert max_connections(Env("/r", "/l", fd_limit=20_000), 2, 4, 11) == max_connections(
        Env("/r", "/l", fd_limit=20_000), 2, 4, 255
    )
    assert max_connections(Env("/r", "/l", fd_limit=20_000), 2, 4, 257) == (20_000 - 64 - 6 - 4 - 512) // 2
    with pytest.raises(RenderError):
        max_connections(Env("/r", "/l", fd_limit=50), 1, 1, 1)


def test_connection_limit_is_capped_by_what_descriptors_allow() -> None:
    config = render(http_basic(make_pki()), ENV).config
    assert "    maxconn 5000\n" in config  # the listener's own, smaller limit
    big = lb(listeners=[Listener(id="li", name="n", protocol=ListenerProtocol.TCP, protocol_port=1)])
    assert "    maxconn 1000000\n" not in render(big, ENV).config


def test_bundle_hash_changes_with_any_file_and_repr_hides_keys() -> None:
    pki = make_pki()
    snapshot = terminated_https(pki)
    bundle = render(snapshot, ENV)
    assert "PRIVATE KEY" not in repr(bundle)
    assert any(
        b"PRIVATE KEY" in content for name, content in bundle.files.items() if name.endswith(".crt.pem")
    )
    other = dataclasses.replace(
        snapshot, certificates={**snapshot.certificates, "sec-sni": Certificate("sec-sni", pki.client_pem)}
    )
    changed = render(other, ENV)
    assert changed.config == bundle.config and changed.config_hash != bundle.config_hash


def _pool(**kw) -> Pool:
    base = {"id": "p", "name": "p", "protocol": PoolProtocol.TCP, "lb_algorithm": LbAlgorithm.ROUND_ROBIN}
    return Pool(**{**base, **kw})


@pytest.mark.parametrize(
    "snapshot",
    [
        lb(listeners=[Listener(id="li", name="u", protocol=ListenerProtocol.UDP, protocol_port=53)]),
        lb(pools=[_pool(protocol=PoolProtocol.UDP)]),
        lb(
            pools=[
                _pool(
                    healthmonitor=HealthMonitor(
                        id="h",
                        type=HealthMonitorType.K8S,
                        delay=1,
                        timeout=0,
                        max_retries=1,
                        max_retries_down=1,
                    )
                )
            ]
        ),
        lb(
            listeners=[
                Listener(
                    id="li",
                    name="t",
                    protocol=ListenerProtocol.TERMINATED_HTTPS,
                    protocol_port=443,
                    secret_id="gone",
                )
            ]
        ),
        lb(pools=[_pool(name="evil\nname")]),
        lb(pools=[_pool(id="bad id")]),
        lb(
            pools=[
                _pool(
                    protocol=PoolProtocol.HTTPS,
                    ca_secret_id="missing",
                    members=members(("m", "127.0.0.1", 1)),
                )
            ]
        ),
    ],
    ids=[
        "udp-listener",
        "udp-pool",
        "k8s-monitor",
        "missing-cert",
        "newline-in-name",
        "bad-id",
        "missing-ca",
    ],
)
def test_refusals_are_clear_errors(snapshot) -> None:
    with pytest.raises(RenderError):
        render(snapshot, ENV)


def test_http_listener_never_gets_a_tcp_backend() -> None:
    snapshot = lb(
        listeners=[
            Listener(id="li", name="h", protocol=ListenerProtocol.HTTP, protocol_port=80, default_pool_id="p")
        ],
        pools=[_pool(listener_id="li")],
    )
    with pytest.raises(RenderError, match="cannot serve HTTP"):
        render(snapshot, ENV)


def test_socket_path_limit() -> None:
    with pytest.raises(RenderError, match="97"):
        render(lb(), Env(run_dir="/" + "r" * 100, lb_dir="/l"))


def test_crl_secret_without_a_crl_is_refused() -> None:
    pki = make_pki()
    snapshot = lb(
        pools=[_pool(protocol=PoolProtocol.HTTPS, ca_secret_id="ca", crl_secret_id="ca")],
        certificates={"ca": Certificate("ca", pki.ca_pem)},
    )
    with pytest.raises(RenderError, match="X509 CRL"):
        render(snapshot, ENV)


def test_health_events_logger_only_with_an_events_socket() -> None:
    """Every LB's health messages (notice and above, never a flow-log line) go to lbaas's events
    socket, tagged with its id; each backend logs its check results (``log global`` only when
    ``defaults`` does not already log to the global loggers)."""
    snapshot = http_basic(make_pki())
    plain = render(snapshot, ENV).config
    assert "events" not in plain and "log-health-checks" not in plain and "log-tag" not in plain
    env = dataclasses.replace(ENV, events_socket="/run/lbaas/events.sock")
    config = render(snapshot, env).config
    assert "    log /run/lbaas/events.sock len 1024 format rfc5424 local1 notice\n" in config
    assert f"    log-tag {snapshot.id}\n" in config
    backends = config.split("\nbackend ")[1:]
    assert backends and all("    log global\n    option log-health-checks\n" in b for b in backends)
    with_flow_log = render(
        logging_and_ping(make_pki()), dataclasses.replace(env, log_socket="/run/lbaas/logs.sock")
    ).config
    assert "    log global\n" in with_flow_log.split("\ndefaults\n")[1].split("\n\n")[0]
    flow_backends = with_flow_log.split("\nbackend ")[1:]
    assert flow_backends and all("    log global\n" not in b for b in flow_backends)
    assert all("    option log-health-checks\n" in b for b in flow_backends)
