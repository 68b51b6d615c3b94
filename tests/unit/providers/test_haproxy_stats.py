"""``show stat`` parsing (on output captured from HAProxy 2.6.12), raw health, counters."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbaas.providers.haproxy import stats

CSV = (Path(__file__).parent / "data" / "show_stat_2.6.12.csv").read_text()


def test_parse_real_output_into_frontends_backends_servers() -> None:
    poll = stats.parse_show_stat(CSV)
    assert set(poll.frontends) == {"fe"}
    assert set(poll.backends) == {"be"}
    assert set(poll.servers) == {
        ("be", n) for n in ("up", "refused", "maint", "drain", "nocheck", "notfound")
    }
    fe = poll.frontends["fe"]
    assert (fe.kind, fe.status, fe.stot, fe.bin, fe.bout, fe.ereq) == ("frontend", "OPEN", 2, 170, 1729, 0)
    assert fe.hrsp["2xx"] == 1 and fe.hrsp["4xx"] == 1
    refused = poll.servers[("be", "refused")]
    assert refused.status == "DOWN" and refused.check_status == "L4CON"
    assert refused.last_chk == "Connection refused" and refused.check_desc == "Layer4 connection problem"
    assert refused.check_code is None and refused.check_duration == 0
    up = poll.servers[("be", "up")]
    # "* L7OK": a check was running when the stats were taken
    assert up.check_status == "L7OK" and up.check_running is True
    assert up.weight == 1 and up.stot == 1 and up.lastchg == 2
    assert poll.servers[("be", "nocheck")].status == "no check"
    assert poll.servers[("be", "nocheck")].check_status is None
    assert poll.backends["be"].raw["algo"] == "roundrobin"


def test_parse_refuses_text_without_header() -> None:
    with pytest.raises(ValueError):
        stats.parse_show_stat("fe,FRONTEND,,\n")


def test_a_quoted_field_with_commas_keeps_its_columns() -> None:
    """HAProxy quotes a field holding a comma or a quote (a check's text): the fields after it
    stay in their columns."""
    lines = CSV.splitlines()
    header = lines[0][2:].rstrip(",").split(",")
    server = next(ln for ln in lines[1:] if ln.startswith("be,refused,"))
    values = server.split(",")
    values[header.index("last_chk")] = '"refused, then ""reset"""'
    poll = stats.parse_show_stat("\n".join([lines[0], ",".join(values)]) + "\n")
    row = poll.servers[("be", "refused")]
    assert row.last_chk == 'refused, then "reset"'
    assert row.check_desc == "Layer4 connection problem" and row.status == "DOWN"
    assert row.raw["check_desc"] == "Layer4 connection problem"


@pytest.mark.parametrize(
    ("status", "health"),
    [
        ("UP", "UP"),
        ("UP 1/3", "UP"),
        ("UP 2/3", "UP"),
        ("DOWN", "DOWN"),
        ("DOWN 1/2", "DOWN"),
        ("DOWN (agent)", "DOWN"),
        ("NOLB", "DRAIN"),
        ("NOLB 1/3", "DRAIN"),
        ("DRAIN", "DRAIN"),
        ("DRAIN 1/3", "DRAIN"),
        ("DRAIN (agent)", "DRAIN"),
        ("MAINT", "MAINT"),
        ("MAINT (via be/s)", "MAINT"),
        ("MAINT (resolution)", "MAINT"),
        ("no check", "NO_CHECK"),
        ("", "DOWN"),
        ("SOMETHING NEW", "DOWN"),
    ],
)
def test_raw_health(status: str, health: str) -> None:
    assert stats.raw_health(status) == health


def test_member_health_explains() -> None:
    health = stats.member_health(stats.parse_show_stat(CSV))
    assert {k[1]: v.health for k, v in health.items()} == {
        "up": "UP",
        "refused": "DOWN",
        "maint": "MAINT",
        "drain": "DRAIN",
        "nocheck": "NO_CHECK",
        "notfound": "UP",
    }
    refused = health[("be", "refused")]
    assert refused.as_dict() == {
        "health": "DOWN",
        "status": "DOWN",
        "check_status": "L4CON",
        "check_code": None,
        "check_text": "Connection refused",
        "check_duration_ms": 0,
        "since_change_s": 2,
    }
    # without a last_chk text, the description stands in
    assert health[("be", "up")].check_text == "Layer7 check passed"


def test_lb_counters_sum_the_chosen_frontends() -> None:
    poll = stats.parse_show_stat(CSV)
    total, per = stats.lb_counters(poll)
    assert total == stats.Counters(
        active_connections=0, bytes_in=170, bytes_out=1729, request_errors=0, total_connections=2
    )
    assert per == {"fe": total}
    empty, none = stats.lb_counters(poll, frontends=["other"])
    assert empty == stats.Counters() and none == {}
    assert set(total.monotonic()) == set(stats.MONOTONIC)


def test_accumulator_adds_the_previous_worker_on_a_new_pid_or_a_counter_going_back() -> None:
    acc = stats.CounterAccumulator()
    assert acc.observe(10, {"lb": {"bytes_in": 100}})["lb"] == {"bytes_in": 100}
    assert acc.observe(10, {"lb": {"bytes_in": 150}})["lb"] == {"bytes_in": 150}
    # reload: new worker pid, counters start again
    assert acc.observe(11, {"lb": {"bytes_in": 170}})["lb"] == {"bytes_in": 320}
    # restart without knowing the pid: the counter went backwards
    assert acc.observe(None, {"lb": {"bytes_in": 5}})["lb"] == {"bytes_in": 325}
    # persisted and restored
    restored = stats.CounterAccumulator(acc.state())
    assert restored.observe(11, {"lb": {"bytes_in": 6}})["lb"] == {"bytes_in": 326}
    # a key that disappears keeps its total
    assert restored.observe(12, {"l2": {"bytes_in": 1}}) == {"lb": {"bytes_in": 326}, "l2": {"bytes_in": 1}}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 3), st.lists(st.integers(0, 50), min_size=1, max_size=8)),
        min_size=1,
        max_size=6,
    )
)
def test_accumulator_totals_never_decrease_and_count_everything(workers) -> None:
    """Workers in turn, each with growing counters: totals grow and end at the sum of all workers'
    last values when each worker is seen with a fresh pid."""
    acc = stats.CounterAccumulator()
    previous = 0
    expected = 0
    for index, (_, increments) in enumerate(workers):
        value = 0
        for inc in increments:
            value += inc
            total = acc.observe(1000 + index, {"lb": {"stot": value}})["lb"]["stot"]
            assert total >= previous
            previous = total
        expected += value
    assert previous == expected


def test_health_event_names_its_lb() -> None:
    from lbaas.providers.haproxy.events import lb_of

    msg = (
        b"<141>1 2026-11-30T12:21:55.455825+00:00 - 02d9e43a-4273-413f-8629-4313bb9d7c7a 26578 - - "
        b"Server 5ab6/482c is UP. 1 active and 0 backup servers online.\n"
    )
    assert lb_of(msg) == "02d9e43a-4273-413f-8629-4313bb9d7c7a"
    assert lb_of(b"<141>1 2026-11-30T12:21:55Z - - 26578 - - no tag") is None
    assert lb_of(b"Server be/a is DOWN") is None
    assert lb_of(b"<141> old format") is None
    assert lb_of(b"") is None
