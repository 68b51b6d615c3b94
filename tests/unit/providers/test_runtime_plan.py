"""Which changes go through HAProxy's runtime API instead of a reload (a pure decision)."""

from __future__ import annotations

from lbaas.providers.haproxy.provider import runtime_plan, server_lines
from lbaas.providers.haproxy.render import CONFIG_FILE, Bundle

HEAD = "global\n    maxconn 100\n\nbackend p1\n    mode http\n    balance roundrobin\n"


def bundle(*servers: str, head: str = HEAD, extra: dict[str, bytes] | None = None) -> Bundle:
    text = head + "".join(f"    server {s}\n" for s in servers)
    return Bundle({CONFIG_FILE: text.encode(), **(extra or {})})


A = "m1 127.0.0.1:8001 weight 1 check inter 2000 fall 1 rise 1"
B = "m2 127.0.0.1:8002 weight 1 check inter 2000 fall 1 rise 1"


def test_server_lines_are_split_from_the_rest() -> None:
    servers, rest = server_lines(bundle(A, B).config)
    assert set(servers) == {("p1", "m1"), ("p1", "m2")}
    assert servers[("p1", "m1")].port == 8001 and servers[("p1", "m1")].weight == 1
    assert "server" not in rest


def test_member_add_remove_weight_and_state_are_runtime_steps() -> None:
    old = bundle(A, B)
    plan = runtime_plan(old, bundle(A.replace("weight 1", "weight 3"), B + " disabled"))
    assert [(s.op, s.server.name) for s in plan] == [("weight", "m1"), ("state", "m2")]
    plan = runtime_plan(old, bundle(A, "m3 127.0.0.1:8003 weight 1 check inter 2000 fall 1 rise 1"))
    assert sorted((s.op, s.server.name) for s in plan) == [("add", "m3"), ("delete", "m2")]
    assert runtime_plan(old, old) == []


def test_what_runtime_cannot_do_reloads() -> None:
    old = bundle(A, B)
    assert runtime_plan(old, bundle(A, B, head=HEAD.replace("roundrobin", "leastconn"))) is None
    assert runtime_plan(old, bundle(A, B.replace("8002", "8009"))) is None  # address change
    assert runtime_plan(old, bundle(A, B, "m3 127.0.0.1:8003 weight 1 cookie m3")) is None
    assert (
        runtime_plan(old, bundle(A, B, "m4 127.0.0.1:8004 weight 1 ssl verify required ca-file /x")) is None
    )
    assert runtime_plan(old, bundle(A, B, extra={"certs/a.pem": b"x"})) is None
