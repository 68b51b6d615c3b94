"""The access-log receiver on a real UNIX datagram socket and a real (migrated) database.

HAProxy's ring forwarder is replaced by a plain UNIX stream client here (newline-terminated
lines, as ``format raw`` forwards them); tests/dataplane/test_logging.py runs the real thing.
Routing decisions are read from the database at write time.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lbaas.accesslogs import receiver as receiver_mod
from lbaas.accesslogs.receiver import AccessLogReceiver
from lbaas.accesslogs.store import LogStore, line_fields
from lbaas.db import migrate, tables
from lbaas.db.engine import Database

LB = tables.load_balancers
A = "0b7c6a4e-1f0e-4c55-9d7e-8a1b2c3d4e5f"
B = "7d0e2a1c-3b4f-4a5e-8c6d-9e0f1a2b3c4d"


def line(lb_id: str, ts: float | None = None, n: int = 0) -> bytes:
    ts = time.time() if ts is None else ts
    return f'{{"time":"x","ts":{ts:.3f},"lb":"{lb_id}","n":{n},"status":200}}'.encode()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'rx.db'}")
    migrate.upgrade(database)
    try:
        yield database
    finally:
        database.dispose()


def add_lb(db: Database, lb_id: str, logging: dict[str, Any] | None, project_id: int = 1) -> None:
    with db.write() as conn:
        conn.execute(
            LB.insert().values(
                id=lb_id,
                project_id=project_id,
                region_id=1,
                name="lb",
                vip_address=f"127.9.{int(lb_id[:2], 16)}.{int(lb_id[2:4], 16)}",
                vip_port_id=lb_id,
                vip_ip_family="ipv4",
                preferred_connectivity="L2",
                admin_state_up=True,
                logging=logging,
                logging_enabled=bool(logging and logging.get("enabled")),
                provisioning_status="ACTIVE",
                operating_status="ONLINE",
                created_at=dt.datetime(2026, 1, 1),
            )
        )


def set_logging(db: Database, lb_id: str, logging: dict[str, Any] | None) -> None:
    with db.write() as conn:
        conn.execute(
            LB.update()
            .where(LB.c.id == lb_id)
            .values(logging=logging, logging_enabled=bool(logging and logging.get("enabled")))
        )


@pytest.fixture
def run_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="lrx", dir="/tmp"))  # short: a socket path
    try:
        yield d
    finally:
        import shutil

        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def rx(db: Database, run_dir: Path, tmp_path: Path) -> Iterator[AccessLogReceiver]:
    receiver = AccessLogReceiver(db, run_dir / "logs.sock", LogStore(tmp_path / "logs"), flush_seconds=3600)
    assert receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


def send(path: Path, *lines: bytes) -> None:
    """One connection, as one HAProxy worker's ring forwarder: the lines, each with a newline."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(path))
        s.sendall(b"".join(x + b"\n" for x in lines))


def received(rx: AccessLogReceiver, n: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while rx.stats["received"] < n:
        assert time.monotonic() < deadline, f"received {rx.stats['received']} of {n}"
        time.sleep(0.01)


def lines_of(rx: AccessLogReceiver, lb_id: str) -> list[int]:
    import json

    return [json.loads(x)["n"] for x in rx.store.read(lb_id)]


def test_socket_is_private_and_lines_land_in_their_streams(
    rx: AccessLogReceiver, db: Database, tmp_path: Path
) -> None:
    assert stat.S_IMODE(os.stat(rx.socket_path).st_mode) == 0o600
    assert stat.S_ISSOCK(os.stat(rx.socket_path).st_mode)
    add_lb(db, A, {"enabled": True, "topic_name": "web", "retention_policy": {"period": 3}}, project_id=5)
    add_lb(db, B, {"enabled": True, "topic_name": None}, project_id=5)
    send(rx.socket_path, line(A, n=1), line(B, n=2), line(A, n=3), b"Proxy x started.", b"")
    received(rx, 5)
    assert rx.flush() == 3
    assert rx.stats["not_access_log"] == 2
    assert lines_of(rx, A) == [1, 3] and lines_of(rx, B) == [2]
    root = tmp_path / "logs"
    streams = sorted(p.relative_to(root).parts[:3] for p in root.glob("*/*/*/*.jsonl"))
    assert streams == [("5", "lb", B), ("5", "topic", "web")]
    for p in root.rglob("*"):
        assert stat.S_IMODE(p.stat().st_mode) == (0o700 if p.is_dir() else 0o600), p


def test_logging_off_or_unknown_lb_drops_lines_that_arrived_before_the_write(
    rx: AccessLogReceiver, db: Database
) -> None:
    add_lb(db, A, {"enabled": True})
    send(rx.socket_path, line(A, n=1))
    received(rx, 1)
    assert rx.flush() == 1
    # Lines that reached the socket, then the PATCH turning logging off commits, then the write:
    # the settings are read at write time, so none of them lands.
    send(rx.socket_path, line(A, n=2), line(A, n=3))
    received(rx, 3)
    set_logging(db, A, {"enabled": False, "topic_name": "x"})
    assert rx.flush() == 0 and rx.stats["logging_off"] == 2
    set_logging(db, A, None)
    send(rx.socket_path, line(A, n=4), line("no-such-lb", n=5))
    received(rx, 5)
    assert rx.flush() == 0 and rx.stats["logging_off"] == 4
    set_logging(db, A, {"enabled": True, "topic_name": "later"})
    send(rx.socket_path, line(A, n=6))
    received(rx, 6)
    assert rx.flush() == 1
    assert lines_of(rx, A) == [1, 6]  # its own stream, then the topic: both read back


def test_a_deleted_lbs_last_lines_still_land_for_a_grace(
    rx: AccessLogReceiver, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_lb(db, A, {"enabled": True})
    send(rx.socket_path, line(A, n=1))
    received(rx, 1)
    rx.flush()
    with db.write() as conn:
        conn.execute(LB.delete().where(LB.c.id == A))
    send(rx.socket_path, line(A, n=2))
    received(rx, 2)
    assert rx.flush() == 1
    monkeypatch.setattr(receiver_mod, "GONE_GRACE_SECONDS", 0.0)
    time.sleep(0.01)
    send(rx.socket_path, line(A, n=3), line(A, n=4))
    received(rx, 4)
    assert rx.flush() == 0  # past the grace: forgotten
    assert lines_of(rx, A) == [1, 2]


def test_the_write_thread_flushes_within_a_second(db: Database, run_dir: Path, tmp_path: Path) -> None:
    add_lb(db, A, {"enabled": True})
    rx = AccessLogReceiver(db, run_dir / "logs.sock", LogStore(tmp_path / "logs"))
    assert rx.start()
    try:
        began = time.monotonic()
        send(rx.socket_path, line(A, n=1))
        while not list(rx.store.read(A)):
            assert time.monotonic() - began < 3, "not written"
            time.sleep(0.02)
        assert time.monotonic() - began < 1.5  # FLUSH_SECONDS is 0.5; slack for a busy host
    finally:
        rx.stop()
    assert not rx.socket_path.exists()


def test_stop_writes_what_arrived(db: Database, run_dir: Path, tmp_path: Path) -> None:
    add_lb(db, A, {"enabled": True})
    rx = AccessLogReceiver(db, run_dir / "logs.sock", LogStore(tmp_path / "logs"), flush_seconds=3600)
    assert rx.start()
    send(rx.socket_path, *(line(A, n=i) for i in range(50)))
    received(rx, 50)
    rx.stop()
    assert lines_of(rx, A) == list(range(50))


def test_a_stale_socket_is_replaced_a_live_one_is_left_alone(
    db: Database, run_dir: Path, tmp_path: Path
) -> None:
    path = run_dir / "logs.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody receives: a crashed process's socket
    first = AccessLogReceiver(db, path, LogStore(tmp_path / "logs"))
    assert first.start()
    try:
        second = AccessLogReceiver(db, path, LogStore(tmp_path / "logs"))
        assert not second.start() and not second.running  # another live process receives
        second.stop()
        assert path.exists()  # and its stop leaves the first one's socket
        send(path, line(A))
        received(first, 1)
    finally:
        first.stop()


def test_a_socket_dir_of_another_user_is_refused(db: Database, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to make a directory owned by another user")
    d = Path(tempfile.mkdtemp(prefix="lrx", dir="/tmp"))
    try:
        os.chown(d, 65534, 65534)
        rx = AccessLogReceiver(db, d / "logs.sock", LogStore(tmp_path / "logs"))
        assert not rx.start()
    finally:
        os.chown(d, 0, 0)
        import shutil

        shutil.rmtree(d, ignore_errors=True)


def test_overflow_is_counted_not_kept(db: Database, run_dir: Path, tmp_path: Path) -> None:
    add_lb(db, A, {"enabled": True})
    rx = AccessLogReceiver(
        db, run_dir / "logs.sock", LogStore(tmp_path / "logs"), flush_seconds=3600, max_buffered=5
    )
    assert rx.start()
    try:
        for i in range(8):
            send(rx.socket_path, line(A, n=i))
        deadline = time.monotonic() + 5
        while rx.stats["received"] + rx.stats["overflow"] < 8:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert rx.stats["received"] == 5 and rx.stats["overflow"] == 3
        assert rx.flush() == 5
    finally:
        rx.stop()
    assert [line_fields(x.rstrip())[0] for x in rx.store.read(A)] == [A] * 5


def test_lines_split_across_writes_are_joined_a_cut_last_line_is_dropped(
    rx: AccessLogReceiver, db: Database
) -> None:
    add_lb(db, A, {"enabled": True})
    one, two, three = line(A, n=1), line(A, n=2), line(A, n=3)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(rx.socket_path))
        s.sendall(one[:10])
        time.sleep(0.05)
        s.sendall(one[10:] + b"\n" + two[:7])
        time.sleep(0.05)
        s.sendall(two[7:] + b"\n" + three[:20])  # the connection closes mid-line
        received(rx, 2)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:  # another worker, at once
        s.connect(str(rx.socket_path))
        s.sendall(line(A, n=4) + b"\n")
        received(rx, 3)
    assert rx.flush() == 3
    assert lines_of(rx, A) == [1, 2, 4]
    assert rx.stats["connections"] == 2
