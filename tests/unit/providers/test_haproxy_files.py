"""Paths and bundle installs (with a stand-in for ``haproxy -c``), limits arithmetic."""

from __future__ import annotations

import json
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbaas.config import Settings
from lbaas.providers.haproxy import files, limits
from lbaas.providers.haproxy.errors import ConfigInvalid, UnsupportedHaproxy
from lbaas.providers.haproxy.paths import SOCKET_PATH_MAX, Layout, LbPaths, default_run_dir

LB = "0b4c6a52-6d1e-4a8e-9a36-0d6ad8f3c2a1"

# Stands in for haproxy -c: refuses a configuration containing BAD, like HAProxy words it.
FAKE_HAPROXY = """#!/bin/sh
cfg="$3"
if grep -q BAD "$cfg"; then
  echo "[NOTICE]   (1) : haproxy version is 2.6.12" >&2
  echo "[ALERT]    (1) : config : parsing [$cfg:1] : unknown keyword 'BAD'." >&2
  exit 1
fi
echo "Configuration file is valid"
"""


@pytest.fixture
def root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="lbt-", dir="/tmp") as tmp:
        yield Path(tmp)


@pytest.fixture
def lb(root: Path) -> LbPaths:
    return Layout(root / "data" / "haproxy", root / "run").lb(LB)


@pytest.fixture
def fake_haproxy(root: Path) -> str:
    path = root / "fake-haproxy"
    path.write_text(FAKE_HAPROXY)
    path.chmod(0o755)
    return str(path)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_layout_paths(lb: LbPaths, root: Path) -> None:
    assert lb.config == root / "data" / "haproxy" / LB / "haproxy.cfg"
    assert lb.stats_socket == root / "run" / f"{LB}.sock"
    assert lb.master_socket == root / "run" / f"{LB}.master.sock"
    assert lb.state_file.name == "server-state"


def test_socket_paths_longer_than_haproxy_accepts_are_refused(root: Path) -> None:
    deep = root / ("d" * (SOCKET_PATH_MAX - len(str(root))))
    with pytest.raises(ValueError, match="LBAAS_RUN_DIR"):
        Layout(root / "data", deep)
    # a run directory a UUID fits in, but not the longest id lbaas accepts (64 characters)
    run = root / ("r" * (40 - len(str(root)) - 1))
    layout = Layout(root / "data", run)
    layout.lb(LB)
    with pytest.raises(ValueError, match="exceeds"):
        layout.lb("x" * 64)


@pytest.mark.parametrize("bad", ["", "..", "../x", "a/b", ".hidden", "a b", "x" * 65])
def test_lb_ids_that_cannot_be_file_names_are_refused(root: Path, bad: str) -> None:
    with pytest.raises(ValueError):
        Layout(root / "data", root / "run").lb(bad)


def test_layout_from_settings(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    monkeypatch.setenv("LBAAS_DATA_DIR", str(root / "data"))
    monkeypatch.setenv("LBAAS_RUN_DIR", str(root / "r"))
    layout = Layout.from_settings(Settings.from_env())
    assert layout.data_dir == root / "data" / "haproxy" and layout.run_dir == root / "r"
    monkeypatch.delenv("LBAAS_RUN_DIR")
    default = Layout.from_settings(Settings.from_env()).run_dir
    assert default == default_run_dir(root / "data") and len(str(default)) < 30
    # another deployment (another data dir) gets a run directory of its own
    assert (
        default_run_dir(root / "other") != default
        and default_run_dir(root / "other").parent == default.parent
    )


def test_install_writes_private_files_and_records_the_bundle(lb: LbPaths, fake_haproxy: str) -> None:
    done = files.install(
        lb,
        {"haproxy.cfg": b"global\n", "a.crt.pem": b"CERT", "ping.sh": b"#!/bin/sh\n"},
        executables={"ping.sh"},
        haproxy_bin=fake_haproxy,
    )
    assert done.changed and sorted(done.written) == ["a.crt.pem", "haproxy.cfg", "ping.sh"]
    assert _mode(lb.dir) == 0o700 and _mode(lb.run_dir) == 0o700
    assert _mode(lb.config) == 0o600 and _mode(lb.dir / "a.crt.pem") == 0o600
    assert _mode(lb.dir / "ping.sh") == 0o700
    assert lb.state_file.read_bytes() == b"1\n"  # a valid, empty server-state file
    assert files.installed_files(lb) == ["a.crt.pem", "haproxy.cfg", "ping.sh"]
    assert json.loads(lb.manifest_file.read_text())["config_sha256"] == done.config_sha256
    assert not [p for p in lb.dir.iterdir() if p.name.startswith(".")]  # no temporary left
    again = files.install(
        lb,
        {"haproxy.cfg": b"global\n", "a.crt.pem": b"CERT", "ping.sh": b"#!/bin/sh\n"},
        executables={"ping.sh"},
        haproxy_bin="/nonexistent/haproxy",  # not run: nothing changed
    )
    assert not again.changed and again.written == []


def test_install_removes_stale_files_of_the_previous_bundle_only(lb: LbPaths, fake_haproxy: str) -> None:
    files.install(lb, {"haproxy.cfg": b"one\n", "old.pem": b"OLD"}, haproxy_bin=fake_haproxy)
    (lb.dir / "haproxy.log").write_text("kept: not part of any bundle\n")
    done = files.install(lb, {"haproxy.cfg": b"two\n", "new.pem": b"NEW"}, haproxy_bin=fake_haproxy)
    assert done.removed == ["old.pem"]
    assert not (lb.dir / "old.pem").exists() and (lb.dir / "new.pem").read_bytes() == b"NEW"
    assert (lb.dir / "haproxy.log").exists()
    # rollback brings the previous bundle back, exactly
    done.rollback()
    assert lb.config.read_bytes() == b"one\n" and (lb.dir / "old.pem").read_bytes() == b"OLD"
    assert not (lb.dir / "new.pem").exists()
    assert files.installed_files(lb) == ["haproxy.cfg", "old.pem"]


def test_a_refused_config_leaves_everything_as_it_was(lb: LbPaths, fake_haproxy: str) -> None:
    files.install(lb, {"haproxy.cfg": b"good\n", "c.pem": b"C1"}, haproxy_bin=fake_haproxy)
    with pytest.raises(ConfigInvalid) as err:
        files.install(lb, {"haproxy.cfg": b"BAD\n", "c.pem": b"C2", "d.pem": b"D"}, haproxy_bin=fake_haproxy)
    assert "unknown keyword 'BAD'" in str(err.value) and "[ALERT]" not in str(err.value)
    assert err.value.retriable is False and "[ALERT]" in err.value.detail
    assert lb.config.read_bytes() == b"good\n"
    assert (lb.dir / "c.pem").read_bytes() == b"C1" and not (lb.dir / "d.pem").exists()
    assert (lb.dir / "haproxy.cfg.failed").read_bytes() == b"BAD\n"
    assert files.installed_files(lb) == ["c.pem", "haproxy.cfg"]
    # the next good install clears the failed candidate
    files.install(lb, {"haproxy.cfg": b"better\n"}, haproxy_bin=fake_haproxy)
    assert not (lb.dir / "haproxy.cfg.failed").exists()


@pytest.mark.parametrize(
    "bad", ["/etc/passwd", "../x", "a/../b", ".hidden", "haproxy.pid", "server-state", "x.failed", "a//b"]
)
def test_bundle_paths_stay_inside_and_off_reserved_names(lb: LbPaths, bad: str) -> None:
    with pytest.raises(ValueError):
        files.install(lb, {"haproxy.cfg": b"x", bad: b"y"}, check=False)


def test_bundle_needs_a_config(lb: LbPaths) -> None:
    with pytest.raises(ValueError):
        files.install(lb, {"a.pem": b"x"}, check=False)


# limits


def test_parse_version() -> None:
    v = limits.parse_version("HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/\n")
    assert v.tuple == (2, 6, 12) and v.text == "2.6.12-1+deb12u4"
    assert limits.parse_version("HA-Proxy version 1.8.19 2019/02/11").tuple == (1, 8, 19)
    with pytest.raises(UnsupportedHaproxy):
        limits.parse_version("nothing here")


def test_missing_haproxy_is_unsupported() -> None:
    with pytest.raises(UnsupportedHaproxy, match="not found"):
        limits.haproxy_version("/nonexistent/haproxy")


def test_fds_needed_matches_haproxy_show_info() -> None:
    # Maxsock that HAProxy 2.6.12 reported for these shapes (integration tests re-measure it)
    assert limits.fds_needed(1000, nbthread=2, listeners=2, checks=1) == 2041
    assert limits.fds_needed(1000, nbthread=1, listeners=2, checks=0) == 2037
    assert limits.max_maxconn(20_000, nbthread=2, listeners=2, checks=1) == 9979  # HAPROXY_NOTES.md


@settings(max_examples=300, deadline=None)
@given(
    st.integers(200, 2_000_000),
    st.integers(1, 64),
    st.integers(1, 50),
    st.integers(0, 500),
    st.booleans(),
)
def test_max_maxconn_is_the_largest_that_fits(limit, nbthread, listeners, checks, splice) -> None:
    shape = {"nbthread": nbthread, "listeners": listeners, "checks": checks, "splice": splice}
    try:
        best = limits.max_maxconn(limit, **shape)
    except ValueError:
        assert limits.fds_needed(1, **shape) > limit
        return
    assert limits.fds_needed(best, **shape) <= limit < limits.fds_needed(best + 1, **shape)


def test_host_facts() -> None:
    fd = limits.fd_limit()
    assert 0 < fd.soft <= fd.hard
    assert limits.cpu_count() >= 1


def test_remove_all_takes_the_directory_and_sockets(lb: LbPaths) -> None:
    files.install(lb, {"haproxy.cfg": b"x\n"}, check=False)
    lb.stats_socket.write_text("")
    lb.master_socket.write_text("")
    files.remove_all(lb)
    assert not lb.dir.exists() and not lb.stats_socket.exists() and not lb.master_socket.exists()
    assert lb.run_dir.exists()  # shared by every LB
