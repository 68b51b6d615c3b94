"""Runtime API framing and errors against a fake UNIX socket server; ``show proc`` parsing."""

from __future__ import annotations

import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbaas.providers.haproxy.errors import CommandFailed, HaproxyError, SocketUnavailable
from lbaas.providers.haproxy.runtime import (
    MasterSocket,
    StatsSocket,
    filter_server_state,
    parse_show_proc,
    server_address,
)


class FakeCli:
    """A UNIX socket that records what it receives and answers a canned reply."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reply = b""
        self.received: list[bytes] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                self.received.append(data)
                conn.sendall(self.reply)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def cli() -> Iterator[FakeCli]:
    with tempfile.TemporaryDirectory(prefix="lbt-") as tmp:
        fake = FakeCli(Path(tmp) / "s.sock")
        yield fake
        fake.close()


# Bytes HAProxy 2.6.12 sent for: prompt, set severity-output number, add server, del server,
# set server (unknown), set weight, show servers state, quit. Note "del server" ends without
# the blank line the other replies end with.
REAL = (
    b"\n> \n> [6]: New server registered.\n\n> [6]: Server deleted.\n> [3]: No such server.\n\n> "
    b"\n> 1\n# be_id be_name srv_id srv_name\n3 be 1 s1\n\n> "
)


def test_batch_replies_are_framed_by_the_prompt(cli: FakeCli) -> None:
    cli.reply = REAL
    replies = StatsSocket(cli.path).run(
        "add server be/s2 127.0.0.1:1",
        "del server be/s2",
        "set server be/nope state ready",
        "set server be/s1 weight 3",
        "show servers state",
    )
    assert cli.received == [
        b"prompt\nset severity-output number\nadd server be/s2 127.0.0.1:1\ndel server be/s2\n"
        b"set server be/nope state ready\nset server be/s1 weight 3\nshow servers state\nquit\n"
    ]
    assert [(r.ok, r.severity, r.text) for r in replies] == [
        (True, 6, "New server registered."),
        (True, 6, "Server deleted."),
        (False, 3, "No such server."),
        (True, None, ""),
        (True, None, "1\n# be_id be_name srv_id srv_name\n3 be 1 s1"),
    ]
    with pytest.raises(CommandFailed, match="No such server") as err:
        replies[2].raise_for_error()
    assert err.value.retriable is False


def test_transient_refusals_are_retriable(cli: FakeCli) -> None:
    cli.reply = b"\n> \n> [3]: Server still has connections attached to it, cannot remove it.\n\n> "
    with pytest.raises(CommandFailed) as err:
        StatsSocket(cli.path).execute("del server be/s")
    assert err.value.retriable is True


def test_unknown_command_is_an_error_although_haproxy_says_info(cli: FakeCli) -> None:
    cli.reply = (
        b"\n> \n> Unknown command, but maybe one of the following ones is a better match:\n  help\n\n> "
    )
    assert StatsSocket(cli.path).run("bogus")[0].ok is False


def test_bad_framing_is_a_retriable_error(cli: FakeCli) -> None:
    cli.reply = b"\n> \n> "  # connection cut before the command's reply
    with pytest.raises(HaproxyError) as err:
        StatsSocket(cli.path).run("show info")
    assert err.value.retriable is True


def test_missing_socket_is_retriable(tmp_path: Path) -> None:
    with pytest.raises(SocketUnavailable) as err:
        StatsSocket(tmp_path / "none.sock").run("show info")
    assert err.value.retriable is True
    with pytest.raises(SocketUnavailable):
        MasterSocket(tmp_path / "none.sock").show_proc()


@pytest.mark.parametrize("command", ["show info; shutdown frontend fe", "show info\nquit", " show info", ""])
def test_commands_cannot_smuggle_others(cli: FakeCli, command: str) -> None:
    with pytest.raises(ValueError):
        StatsSocket(cli.path).run(command)
    assert cli.received == []


def test_names_and_options_are_checked(cli: FakeCli) -> None:
    rt = StatsSocket(cli.path)
    with pytest.raises(ValueError):
        rt.set_weight("be", "a b", 1)
    with pytest.raises(ValueError):
        rt.set_weight("be", "a", 257)
    with pytest.raises(ValueError):
        rt.set_state("be", "a", "up")
    with pytest.raises(ValueError):
        rt.add_server("be", "s", "127.0.0.1", 80, ["weight 1; del server be/a"])
    with pytest.raises(ValueError):
        rt.add_server("be", "s", "not-an-ip", 80)
    assert cli.received == []


def test_server_address_formats() -> None:
    assert server_address("127.0.0.1", 80) == "127.0.0.1:80"
    assert server_address("::1", 80) == "[::1]:80"
    with pytest.raises(ValueError):
        server_address("127.0.0.1", 0)


SHOW_PROC = """#<PID>          <type>          <reloads>       <uptime>        <version>
10505           master          3 [failed: 1]   1d02h10m34s     2.6.12-1+deb12u4
# workers
21214           worker          1               0d00h00m24s     2.6.12-1+deb12u4
# old workers
1233            worker          3               0d00h00m43s     2.6.12-1+deb12u4
# programs
1244            foo             0               0d00h00m00s     -
"""


def test_parse_show_proc() -> None:
    info = parse_show_proc(SHOW_PROC)
    assert info.master.pid == 10505 and info.master.reloads == 3 and info.failed_reloads == 1
    assert info.master.uptime_s == ((24 + 2) * 60 + 10) * 60 + 34
    assert info.master.version == "2.6.12-1+deb12u4"
    assert info.worker_pids == (21214,)
    assert [w.pid for w in info.old_workers] == [1233]
    assert info.workers[0].uptime_s == 24


def test_parse_show_proc_without_master_is_an_error() -> None:
    with pytest.raises(HaproxyError):
        parse_show_proc("Unknown command\n")


def test_master_command_to_a_worker(cli: FakeCli) -> None:
    cli.reply = b"Pid: 42\n"
    assert MasterSocket(cli.path).worker_command(42, "show info") == "Pid: 42\n"
    assert cli.received == [b"@!42 show info\n"]


SERVERS_STATE = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_check_status
3 pool-a 1 m-1 127.0.0.1 2 0 1 1 15
3 pool-a 2 m-2 127.0.0.1 0 1 1 1 17
4 pool-b 1 m-1 127.0.0.1 2 1 3 1 15
"""


def test_filter_server_state_keeps_the_health_of_checked_servers_only() -> None:
    kept = filter_server_state(SERVERS_STATE, {("pool-a", "m-1"), ("pool-b", "m-1")})
    assert kept.splitlines() == [
        "1",
        SERVERS_STATE.splitlines()[1],
        "3 pool-a 1 m-1 127.0.0.1 2 0 1 1 15",
        # admin state (MAINT from the runtime API) and weight (3 from the runtime API) cleared:
        # the configuration decides them; the health (op state 2, check status) stays
        "4 pool-b 1 m-1 127.0.0.1 2 0 1 1 15",
    ]
    assert len(filter_server_state(SERVERS_STATE, set()).splitlines()) == 2
