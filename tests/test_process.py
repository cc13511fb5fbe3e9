"""The gateway as a real subprocess: start-up errors, SIGTERM, kill -9 and recovery."""

from __future__ import annotations

import asyncio
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.journal import CommandJournal
from engine.types import NewOrder, OrdType, Side, TimeInForce
from fix_gateway.utc_time import format_timestamp
from session_store import FsyncPolicy
from tests.fix_peer import TcpPeer
from tests.gateway_process import REPO, GatewayProcess, write_config


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "gw.toml", tmp_path / "data")


@pytest.fixture
def gateway(config: Path) -> Iterator[GatewayProcess]:
    gw = GatewayProcess(config)
    yield gw
    if gw.proc.poll() is None:
        gw.proc.kill()
        gw.proc.wait()


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fix_gateway.cli", *args], cwd=REPO, capture_output=True,
        text=True, timeout=30, env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("MaxLatency = -5", "sessions.0.MaxLatency"),
        ("HeartBtIntt = 30", "sessions.0.HeartBtIntt"),
        ("ResetOnLogon = \"maybe\"", "sessions.0.ResetOnLogon"),
        # An SOH in a value that goes on the wire would break every message's framing.
        ('[[sessions]]\nSenderCompID = "FIXGW"\nTargetCompID = "A\\u0001B"',
         "sessions.1.TargetCompID"),
        ('[[instruments]]\nsymbol = "X\\u0001Y"', "instruments.0.symbol"),
        ('[[instruments]]\nsymbol = "\u65e5\u672c"', "instruments.0.symbol"),
    ],
)
def test_invalid_config_exits_2_naming_the_key(tmp_path: Path, extra: str, key: str) -> None:
    cfg = write_config(tmp_path / "bad.toml", tmp_path / "data", extra)
    result = run_cli("serve", "--config", str(cfg))
    assert result.returncode == 2
    assert key in result.stderr


def test_invalid_environment_override_exits_2_naming_the_key(config: Path) -> None:
    result = run_cli("serve", "--config", str(config), env={"FIXGW_LISTEN__PORT": "not-a-port"})
    assert result.returncode == 2
    assert "listen.port" in result.stderr


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = run_cli("serve", "--config", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "not found" in result.stderr


def test_port_in_use_names_the_listen_setting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = write_config(tmp_path / "gw.toml", tmp_path / "data")
        cfg.write_text(cfg.read_text().replace("port = 0", f"port = {port}"))
        result = run_cli("serve", "--config", str(cfg))
    assert result.returncode == 1
    assert f"listen.host/listen.port = 127.0.0.1:{port}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["0", "-5", "x"])
def test_drop_copy_replay_refuses_a_sequence_number_below_1(config: Path, value: str) -> None:
    result = run_cli("dropcopy", "replay", "--config", str(config), f"--from={value}")
    assert result.returncode == 2
    assert "expected a sequence number from 1 up" in result.stderr, result.stderr


def test_a_small_soft_open_file_limit_is_raised_at_start(tmp_path: Path) -> None:
    """40 sessions keep more files open than a soft limit of 64 allows; the gateway
    takes the hard limit, as servers do, and starts."""
    sessions = "".join(f'[[sessions]]\nSenderCompID = "FIXGW"\nTargetCompID = "C{i}"\n'
                       for i in range(40))
    cfg = write_config(tmp_path / "gw.toml", tmp_path / "data", sessions)

    def small_soft_limit() -> None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))

    gw = GatewayProcess(cfg, preexec_fn=small_soft_limit)
    assert gw.stop() == 0, gw.stderr_text()


def test_a_journal_damaged_in_the_middle_is_a_clear_start_error(tmp_path: Path) -> None:
    """Not a traceback: which file, where, and what to do; `fixgw surveil` says the same."""
    data = tmp_path / "data"
    journal = CommandJournal(data / "engine" / "journal.dat", fsync=FsyncPolicy.NONE)
    for i in range(3):
        journal.append(NewOrder(10**18 + i, "FIXGW-CLIENT1", "", f"O{i}", "ACME", Side.BUY,
                                OrdType.LIMIT, 10, 100, None, TimeInForce.DAY))
    journal.flush()
    journal.close()
    damaged = bytearray(journal.path.read_bytes())
    damaged[12] ^= 0xFF  # inside the first record
    journal.path.write_bytes(bytes(damaged))
    cfg = write_config(tmp_path / "gw.toml", data, '\n[[instruments]]\nsymbol = "ACME"\n')
    cfg.write_text(cfg.read_text().replace('application = "reject"', 'application = "orders"'))
    for command in (["serve"], ["surveil"]):
        result = run_cli(*command, "--config", str(cfg))
        assert result.returncode == 1, result.stderr
        assert "journal.dat: bad record at offset" in result.stderr, result.stderr
        assert "damaged before its end" in result.stderr and "Traceback" not in result.stderr
    assert journal.path.read_bytes() == bytes(damaged)  # left as it is


def test_toml_syntax_error_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "broken.toml"
    cfg.write_text("[listen\nport = 1")
    result = run_cli("serve", "--config", str(cfg))
    assert result.returncode == 2


def test_example_configs_are_valid() -> None:
    for name in ("gateway.toml", "acceptance.toml"):
        result = run_cli("check-config", "--config", str(REPO / "examples" / name))
        assert result.returncode == 0, result.stderr


def test_sigterm_logs_sessions_out_and_exits_zero(gateway: GatewayProcess) -> None:
    async def scenario() -> None:
        peer = await TcpPeer.connect(gateway.port)
        await peer.write(peer.logon(30, now=time.time()))
        assert (await peer.receive()).msg_type == b"A"
        gateway.proc.send_signal(signal.SIGTERM)
        logout = await peer.expect("5")
        assert b"shutting down" in (logout.get(58) or b"")
        await peer.send("5")

    asyncio.run(scenario())
    assert gateway.proc.wait(10) == 0


def test_a_log_reader_that_stops_reading_does_not_stop_trading(
    gateway: GatewayProcess,
) -> None:
    """The gateway's stderr is a pipe nobody reads (64 KiB, a few hundred log lines):
    every BusinessMessageReject below logs a line, yet all 12,000 orders are answered;
    what could not be logged meanwhile is counted once the reader is back."""
    orders = 12_000

    async def flood() -> None:
        peer = await TcpPeer.connect(gateway.port)
        await peer.write(peer.logon(30, now=time.time()))
        assert (await peer.receive()).msg_type == b"A"
        for start in range(0, orders, 500):
            now = time.time()
            await peer.write(b"".join(
                peer.build("D", (11, f"L{i}"), (54, 1), (60, format_timestamp(now)), (40, 1),
                           now=now)
                for i in range(start, start + 500)))
            for i in range(start, start + 500):
                assert (await peer.expect("j")).get(379) == f"L{i}".encode()
        await peer.close()

    asyncio.run(flood())
    assert gateway.proc.stderr is not None
    logged: list[str] = []
    reader = threading.Thread(target=lambda: logged.append(gateway.proc.stderr.read()))
    reader.start()  # the reader is back: the queued records and the count follow
    assert gateway.stop() == 0
    reader.join(15)
    assert re.search(r"event=log_records_dropped count=[1-9]", logged[0]), logged[0][-2000:]
    assert "event=stopped" in logged[0]


def test_kill_9_then_restart_continues_seqnums_and_serves_resend(config: Path) -> None:
    """Acknowledged state survives kill -9: seqnums continue and resends come from disk."""
    first = GatewayProcess(config)

    async def before_crash() -> int:
        peer = await TcpPeer.connect(first.port)
        await peer.write(peer.logon(30, now=time.time()))
        assert (await peer.receive()).msg_type == b"A"
        for i in range(20):
            await peer.send("D", (11, f"K{i}"), (54, 1), (60, format_timestamp(time.time())),
                            (40, 1))
            assert (await peer.expect("j")).get(379) == f"K{i}".encode()
        # Fire more without waiting, then crash in the middle of them.
        for i in range(20, 40):
            await peer.send("D", (11, f"K{i}"), (54, 1), (60, format_timestamp(time.time())),
                            (40, 1))
        await asyncio.sleep(0.01)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
        acked = 0
        try:
            while True:
                msg = await peer.receive(timeout=2)
                if msg.msg_type == b"j":
                    acked = int(msg.get(34) or 0)
        except (EOFError, ConnectionResetError, TimeoutError):
            pass
        return acked

    last_acked = asyncio.run(before_crash())
    second = GatewayProcess(config)
    try:
        async def after_restart() -> None:
            peer = await TcpPeer.connect(second.port)
            peer.next_seq = 100  # beyond anything sent: the gateway must ask for the gap
            await peer.write(peer.logon(30, now=time.time()))
            logon = await peer.receive()
            assert logon.msg_type == b"A"
            # Everything the client saw acknowledged is still in the store.
            assert int(logon.get(34) or 0) > max(last_acked, 21)
            resend_request = await peer.expect("2")
            expected_in = int(resend_request.get(7) or 0)
            assert expected_in >= 22  # logon + 20 acknowledged orders were persisted
            await peer.send("2", (7, 2), (16, 21))
            resent = [await peer.receive() for _ in range(20)]
            assert [m.get(379) for m in resent] == [f"K{i}".encode() for i in range(20)]
            assert all(m.get(43) == b"Y" for m in resent)

        asyncio.run(after_restart())
    finally:
        assert second.stop() == 0


def test_unwritable_data_directory_is_a_clear_start_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    cfg = write_config(tmp_path / "gw.toml", blocker / "data")
    result = run_cli("serve", "--config", str(cfg))
    assert result.returncode == 1
    assert "cannot start" in result.stderr and "Traceback" not in result.stderr


def test_corrupt_store_is_a_clear_start_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    session_dir = data / "sessions" / "FIXGW-CLIENT1"
    session_dir.mkdir(parents=True)
    (session_dir / "seqnums").write_bytes(b"\xff" * 64)
    cfg = write_config(tmp_path / "gw.toml", data)
    result = run_cli("serve", "--config", str(cfg))
    assert result.returncode == 1
    assert "seqnums" in result.stderr and "Traceback" not in result.stderr
