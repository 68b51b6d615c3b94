"""Access-log streams on disk: routing, private files, retention, reading back (no HAProxy)."""

from __future__ import annotations

import datetime as dt
import json
import stat
import threading
from pathlib import Path

import pytest

from lbaas.accesslogs.store import (
    _HEAD,
    DEFAULT_RETENTION_DAYS,
    INDEX_FILE,
    LogStore,
    Route,
    group_lines,
    line_fields,
    parse_since,
    route_of,
    utc_day,
)
from lbaas.providers.haproxy.render.logformat import HTTP_FORMAT, TCP_FORMAT

LB_A = "0b7c6a4e-1f0e-4c55-9d7e-8a1b2c3d4e5f"
LB_B = "7d0e2a1c-3b4f-4a5e-8c6d-9e0f1a2b3c4d"
DAY = dt.date(2026, 11, 30)


def ts_of(day: dt.date, seconds: float = 3600.0) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() + seconds


def line(lb_id: str, ts: float, status: int = 200) -> bytes:
    return (
        f'{{"time":"x","ts":{ts:.3f},"lb":"{lb_id}","listener":"l","client_ip":"127.0.0.1",'
        f'"client_port":1,"pool":"p","member":"m","bytes_in":1,"bytes_out":2,"t_queue":0,'
        f'"t_connect":0,"status":{status},"t_response":1,"t_total":1,"termination":"----"}}'
    ).encode()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("fmt", [HTTP_FORMAT, TCP_FORMAT])
def test_line_fields_reads_what_the_renderer_emits(fmt: str) -> None:
    # The renderer's log-format with HAProxy's substitutions made: the receiver's parser
    # and the renderer must agree on the field names and forms.
    text = fmt.format(lb=LB_A)
    for var, value in {
        "%tr": "30/Nov/2026:10:00:00.123",
        "%tsc": "----",
        "%Ts": "1796032800",
        "%ms": "123",
        "%ci": "127.0.0.1",
        "%cp": "40000",
        "%ST": "200",
        "%Tr": "1",
        "%Ta": "2",
        "%Tt": "2",
        "%Tw": "0",
        "%Tc": "0",
        "%ts": "--",
        "%f": "listener-id",
        "%b": "pool-id",
        "%s": "member-id",
        "%U": "10",
        "%B": "20",
        "%t": "30/Nov/2026:10:00:00.123",
    }.items():
        text = text.replace(var, value)
    raw = text.encode()
    assert json.loads(raw)["lb"] == LB_A
    assert line_fields(raw) == (LB_A, 1796032800.123)
    assert _HEAD.match(raw)  # the receiver's fast path fits the rendered order
    assert group_lines([raw]) == ({(LB_A, utc_day(1796032800.123)): [raw]}, 0)


@pytest.mark.parametrize(
    "raw",
    [
        b"Proxy 7d0e2a1c started.",
        b"Server pool/member is DOWN, reason: Layer4 connection problem",
        b'{"ts":1.5}',
        b'{"lb":"x"}',
        b"",
    ],
)
def test_line_fields_refuses_what_is_not_a_flow_log_line(raw: bytes) -> None:
    assert line_fields(raw) is None


def test_group_lines_by_lb_and_utc_day_fast_and_general_paths_agree() -> None:
    late, early = ts_of(DAY, 86399.9), ts_of(DAY, 86400.0)  # either side of midnight UTC
    rendered = line(LB_A, late)  # the renderer's head: "time", "ts", "lb" first
    reordered = b'{"lb":"%s","ts":%.3f,"x":1}' % (LB_B.encode(), early)  # other order: general path
    batch = [rendered, b"  " + line(LB_A, early) + b"\r", reordered, b"Proxy p started.", b"", rendered]
    groups, foreign = group_lines(batch)
    assert foreign == 2
    assert groups == {
        (LB_A, DAY): [rendered, rendered],
        (LB_A, DAY + dt.timedelta(days=1)): [line(LB_A, early)],
        (LB_B, DAY + dt.timedelta(days=1)): [reordered],
    }


def test_route_of_reads_the_stored_logging_object() -> None:
    assert route_of(3, None) is None
    assert route_of(3, {"enabled": False, "topic_name": "t"}) is None
    assert route_of(3, {"enabled": True}) == Route(3, None, DEFAULT_RETENTION_DAYS)
    assert route_of(3, {"enabled": True, "retention_policy": {"period": None}}).retention_days == 7
    assert route_of(3, {"enabled": True, "topic_name": "a.b", "retention_policy": {"period": 45}}) == Route(
        3, "a.b", 45
    )


def test_streams_are_per_project_topic_or_per_lb_and_never_meet() -> None:
    assert Route(3, "web.access").stream(LB_A) == "3/topic/web.access"
    assert Route(3, None).stream(LB_A) == f"3/lb/{LB_A}"
    # A topic named like an LB id is still a topic: the two kinds live in separate trees.
    assert Route(3, LB_B).stream(LB_A) == f"3/topic/{LB_B}"
    for bad in ("..", "a/b", ".hidden", "x" * 300):
        with pytest.raises(ValueError):
            Route(3, bad).stream(LB_A)


def test_append_makes_private_dirs_and_files_and_an_index(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs")
    route = Route(3, "web", 30)
    store.append("3/topic/web", LB_A, route, DAY, line(LB_A, ts_of(DAY)) + b"\n")
    store.append("3/topic/web", LB_B, Route(3, "web", 2), DAY, line(LB_B, ts_of(DAY, 7200)) + b"\n")
    stream = tmp_path / "logs" / "3" / "topic" / "web"
    for d in (tmp_path / "logs", tmp_path / "logs" / "3", stream.parent, stream):
        assert mode(d) == 0o700, d
    day_file = stream / "2026-11-30.jsonl"
    assert mode(day_file) == 0o600 and mode(stream / INDEX_FILE) == 0o600
    assert day_file.read_bytes().count(b"\n") == 2
    index = json.loads((stream / INDEX_FILE).read_text())
    assert index == {
        "project_id": 3,
        "topic": "web",
        "load_balancers": {LB_A: {"retention_days": 30}, LB_B: {"retention_days": 2}},
    }
    # The index survives a new store (a restart) and is only extended.
    LogStore(tmp_path / "logs").append("3/topic/web", LB_A, Route(3, "web", 5), DAY, line(LB_A, 1.0) + b"\n")
    index = json.loads((stream / INDEX_FILE).read_text())
    assert index["load_balancers"] == {LB_A: {"retention_days": 5}, LB_B: {"retention_days": 2}}


def _day_file(root: Path, stream: str, day: dt.date, *lines: bytes) -> Path:
    path = root / stream / f"{day.isoformat()}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(x + b"\n" for x in lines))
    return path


def test_prune_keeps_each_stream_for_its_longest_retention(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    store = LogStore(root)
    today = dt.date(2026, 11, 30)
    # Topic stream: LB_A keeps 3 days, LB_B 10: the stream keeps 10.
    store.append("1/topic/web", LB_A, Route(1, "web", 3), today, line(LB_A, ts_of(today)) + b"\n")
    store.append("1/topic/web", LB_B, Route(1, "web", 10), today, line(LB_B, ts_of(today)) + b"\n")
    # A per-LB stream of an LB that is gone: only its index says 2 days.
    store.append(f"1/lb/{LB_A}", LB_A, Route(1, None, 2), today, line(LB_A, ts_of(today)) + b"\n")
    old = {n: today - dt.timedelta(days=n) for n in (1, 2, 3, 9, 10, 11, 400)}
    web = {n: _day_file(root, "1/topic/web", d, line(LB_A, ts_of(d))) for n, d in old.items()}
    own = {n: _day_file(root, f"1/lb/{LB_A}", d, line(LB_A, ts_of(d))) for n, d in old.items()}
    # A stream dir whose index was lost: the default retention.
    orphan = {n: _day_file(root, f"2/lb/{LB_B}", d, line(LB_B, ts_of(d))) for n, d in old.items()}

    removed = set(store.prune(today))

    assert {p for n, p in web.items() if n > 10} <= removed
    assert all(p.exists() for n, p in web.items() if n <= 10)
    assert {p for n, p in own.items() if n > 2} <= removed
    assert all(p.exists() for n, p in own.items() if n <= 2)
    assert all(p.exists() == (n <= DEFAULT_RETENTION_DAYS) for n, p in orphan.items())
    assert (root / "1/topic/web/2026-11-30.jsonl").exists()


def test_prune_removes_a_stream_with_nothing_left_and_lbaas_logs_forgets_it(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    store = LogStore(root)
    then = dt.date(2026, 1, 1)
    store.append(f"4/lb/{LB_A}", LB_A, Route(4, None, 1), then, line(LB_A, ts_of(then)) + b"\n")
    assert store.streams_of(LB_A) and list(store.read(LB_A))
    store.prune(then + dt.timedelta(days=1))
    assert store.streams_of(LB_A)  # day 1 kept while it is within its 1 day
    store.prune(then + dt.timedelta(days=2))
    assert store.streams_of(LB_A) == [] and list(store.read(LB_A)) == []
    assert not (root / "4").exists()
    # Writing again after the prune recreates the stream and its index.
    store.append(f"4/lb/{LB_A}", LB_A, Route(4, None, 1), then, line(LB_A, ts_of(then)) + b"\n")
    assert (root / f"4/lb/{LB_A}" / INDEX_FILE).exists()


def test_read_merges_the_lbs_streams_day_by_day_in_ts_order_with_since(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    store = LogStore(root)
    d1, d2 = DAY, DAY + dt.timedelta(days=1)
    # LB_A wrote to its own stream, then to a topic shared with LB_B.
    store.append(f"1/lb/{LB_A}", LB_A, Route(1, None), d1, line(LB_A, ts_of(d1, 50)) + b"\n")
    store.append(
        "1/topic/t",
        LB_A,
        Route(1, "t"),
        d1,
        line(LB_A, ts_of(d1, 100)) + b"\n" + line(LB_A, ts_of(d1, 10)) + b"\n",
    )
    store.append("1/topic/t", LB_B, Route(1, "t"), d1, line(LB_B, ts_of(d1, 60)) + b"\n")
    store.append("1/topic/t", LB_A, Route(1, "t"), d2, line(LB_A, ts_of(d2, 5)) + b"\n")
    got = [line_fields(x.rstrip(b"\n")) for x in store.read(LB_A)]
    assert got == [(LB_A, ts_of(d1, 10)), (LB_A, ts_of(d1, 50)), (LB_A, ts_of(d1, 100)), (LB_A, ts_of(d2, 5))]
    assert [line_fields(x.rstrip())[1] for x in store.read(LB_A, since=ts_of(d1, 60))] == [
        ts_of(d1, 100),
        ts_of(d2, 5),
    ]
    assert [line_fields(x.rstrip())[0] for x in store.read(LB_B)] == [LB_B]
    assert list(store.read("no-such-lb")) == []


def test_follow_prints_what_is_kept_then_new_lines_and_a_new_stream(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs")
    store.append(f"1/lb/{LB_A}", LB_A, Route(1, None), DAY, line(LB_A, ts_of(DAY, 1)) + b"\n")
    stop = threading.Event()
    batches: list[list[bytes]] = []

    def run() -> None:
        for batch in store.follow(LB_A, stop=stop.is_set, interval=0.02):
            batches.append(batch)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        _wait(lambda: len(batches) == 1)
        store.append(f"1/lb/{LB_A}", LB_A, Route(1, None), DAY, line(LB_A, ts_of(DAY, 2)) + b"\n")
        _wait(lambda: len(batches) == 2)
        # Half a line is not printed until it is whole.
        path = tmp_path / "logs" / f"1/lb/{LB_A}" / "2026-11-30.jsonl"
        whole = line(LB_A, ts_of(DAY, 3)) + b"\n"
        with open(path, "ab") as fh:
            fh.write(whole[:20])
        store.append("1/topic/new", LB_A, Route(1, "new"), DAY, line(LB_A, ts_of(DAY, 4)) + b"\n")
        _wait(lambda: len(batches) == 3)
        with open(path, "ab") as fh:
            fh.write(whole[20:])
        _wait(lambda: len(batches) == 4)
    finally:
        stop.set()
        thread.join(5)
    seen = [line_fields(x.rstrip(b"\n"))[1] for b in batches for x in b]
    assert seen == [ts_of(DAY, n) for n in (1, 2, 4, 3)]


def _wait(predicate, timeout: float = 5.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_parse_since() -> None:
    now = 1_800_000_000.0
    assert parse_since("10m", now) == now - 600
    assert parse_since("1h30m", now) == now - 5400
    assert parse_since("2d", now) == now - 2 * 86400
    assert parse_since("2026-11-30T10:00", now) == dt.datetime(2026, 11, 30, 10, tzinfo=dt.UTC).timestamp()
    assert parse_since("2026-11-30", now) == dt.datetime(2026, 11, 30, tzinfo=dt.UTC).timestamp()
    assert (
        parse_since("2026-11-30T10:00:00Z", now) == dt.datetime(2026, 11, 30, 10, tzinfo=dt.UTC).timestamp()
    )
    assert (
        parse_since("2026-11-30T12:00+02:00", now) == dt.datetime(2026, 11, 30, 10, tzinfo=dt.UTC).timestamp()
    )
    for bad in ("yesterday", "10", "-5m", "10 minutes", ""):
        with pytest.raises(ValueError, match="give a duration"):
            parse_since(bad, now)


def test_utc_day() -> None:
    assert utc_day(ts_of(DAY, 0)) == DAY
    assert utc_day(ts_of(DAY, 86399.999)) == DAY
    assert utc_day(ts_of(DAY, 86400)) == DAY + dt.timedelta(days=1)
