"""Reconcile scans /proc once for every LB: a process handed the caller's scan never scans again
until it starts a master of its own (then its own master is not in that scan)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbaas.providers.haproxy import discovery, process
from lbaas.providers.haproxy.paths import Layout


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[Layout]:
    with tempfile.TemporaryDirectory(prefix="ls", dir="/tmp") as run:  # sockets need a short path
        yield Layout(tmp_path / "haproxy", Path(run))


def _no_scan() -> list[discovery.MasterProcess]:
    raise AssertionError("scanned /proc although the caller's scan was given")


def test_a_process_given_a_scan_does_not_scan_again(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = layout.lb("lb-1")
    paths.prepare()
    paths.pid_file.write_text("999999999\n")  # a stale pid file: the case that used to scan
    monkeypatch.setattr(process, "all_masters", _no_scan)
    other = discovery.MasterProcess(
        1, "", layout.lb("lb-2").config, layout.lb("lb-2").master_socket, (), ("haproxy", "-W")
    )
    proc = process.HaproxyProcess(paths, masters=[other])
    assert proc.master_pid() is None
    assert proc.status().running is False


def test_a_process_without_a_scan_scans(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = layout.lb("lb-1")
    paths.prepare()
    calls = []
    monkeypatch.setattr(process, "all_masters", lambda: calls.append(1) or [])
    assert process.HaproxyProcess(paths).master_pid() is None
    assert calls == [1]


def test_one_scan_scans_once_for_the_block_then_again_after(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = layout.lb("lb-1")
    paths.prepare()
    calls = []
    monkeypatch.setattr(process, "all_masters", lambda: calls.append(1) or [])
    proc = process.HaproxyProcess(paths)
    with proc.one_scan():
        assert proc.status().running is False  # a deployment asks...
        assert proc.master_pid() is None  # ...and start asks again
    assert calls == [1]
    assert proc.master_pid() is None  # outside the block: a fresh look
    assert calls == [1, 1]


def test_a_first_deployment_does_not_scan(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = layout.lb("lb-1")
    paths.prepare()
    monkeypatch.setattr(process, "all_masters", _no_scan)
    proc = process.HaproxyProcess(paths)
    with proc.one_scan(none_running=True):
        assert proc.status().running is False
        assert proc.master_pid() is None
