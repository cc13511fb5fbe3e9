"""The engine's command journal on real files: round trip, commit marks, torn tails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.journal import CommandJournal, JournalCorrupt, decode_command, encode_command
from engine.types import (
    AdvanceTime,
    CancelOrder,
    MassCancel,
    MassCancelScope,
    NewOrder,
    OrderStatusRequest,
    OrdType,
    RejectOrder,
    ReplaceOrder,
    Side,
    TimeInForce,
)
from session_store import FsyncPolicy

COMMANDS = [
    NewOrder(1, "S-A", "ACC", "C1", "ACME", Side.BUY, OrdType.LIMIT, 100, 10125, None,
             TimeInForce.DAY),
    NewOrder(2, "S-A", "", "C2", "ACME", Side.SELL, OrdType.STOP_LIMIT, 5, 99, 100,
             TimeInForce.GTD, 10**18, 2, 0),
    CancelOrder(3, "S-A", "C3", "C1", "ACME", Side.BUY),
    ReplaceOrder(4, "S-A", "C4", "C2", "ACME", Side.SELL, 10, None, 101),
    OrderStatusRequest(5, "S-A", "C4", "ACME", Side.SELL),
    MassCancel(6, "S-A", "C5", MassCancelScope.SYMBOL, "ACME"),
    RejectOrder(7, "S-A", "ACC", "C6", "NOPE", Side.BUY, OrdType.MARKET, 1, 1, "Unknown symbol"),
    AdvanceTime(8),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: type(c).__name__)
def test_every_command_type_round_trips_with_enum_types(command: object) -> None:
    import marshal

    record = encode_command(command)  # type: ignore[arg-type]
    decoded = decode_command(marshal.loads(record[8:]))
    assert decoded == command
    assert type(decoded) is type(command)
    for name in ("side", "ord_type", "tif", "scope"):
        if hasattr(command, name):
            assert type(getattr(decoded, name)) is type(getattr(command, name))


def test_replay_returns_commands_with_commit_state(tmp_path: Path) -> None:
    path = tmp_path / "journal.dat"
    journal = CommandJournal(path, fsync=FsyncPolicy.NONE)
    assert list(journal.replay()) == []
    for command in COMMANDS[:3]:
        journal.append(command)
    journal.flush()
    journal.mark_committed()
    for command in COMMANDS[3:]:
        journal.append(command)
    journal.flush()
    journal.close()

    entries = list(CommandJournal(path).replay())
    assert [e.command for e in entries] == COMMANDS
    assert [e.committed for e in entries] == [True] * 3 + [False] * 5


def test_nothing_reaches_the_file_before_flush(tmp_path: Path) -> None:
    path = tmp_path / "journal.dat"
    journal = CommandJournal(path, fsync=FsyncPolicy.NONE)
    journal.append(COMMANDS[0])
    assert path.stat().st_size == 0
    assert journal.pending
    journal.flush()
    assert path.stat().st_size > 0 and not journal.pending


@pytest.mark.parametrize("cut", [1, 5, 9, 20])
def test_torn_tail_is_cut_off_on_replay(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "journal.dat"
    journal = CommandJournal(path, fsync=FsyncPolicy.NONE)
    for command in COMMANDS[:2]:
        journal.append(command)
    journal.flush()
    size = path.stat().st_size
    journal.append(COMMANDS[2])
    journal.flush()
    journal.close()
    with open(path, "r+b") as f:
        f.truncate(size + cut)  # a crash in the middle of the last record

    reopened = CommandJournal(path)
    assert [e.command for e in reopened.replay()] == COMMANDS[:2]
    assert path.stat().st_size == size
    reopened.append(COMMANDS[3])  # appending after the cut gives a clean file
    reopened.flush()
    reopened.close()
    assert [e.command for e in CommandJournal(path).replay()] == [*COMMANDS[:2], COMMANDS[3]]


def test_corrupt_record_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "journal.dat"
    journal = CommandJournal(path, fsync=FsyncPolicy.NONE)
    for command in COMMANDS:
        journal.append(command)
    journal.flush()
    journal.close()
    data = bytearray(path.read_bytes())
    data[12] ^= 0xFF  # inside the first record's payload
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt):
        list(CommandJournal(path).replay())


def test_failed_write_leaves_no_partial_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "journal.dat"
    journal = CommandJournal(path, fsync=FsyncPolicy.NONE)
    journal.append(COMMANDS[0])
    journal.flush()
    good = path.stat().st_size
    real_write = os.write

    def short_then_fail(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data)[:5])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", short_then_fail)
    journal.append(COMMANDS[1])
    with pytest.raises(OSError):
        journal.flush()
    monkeypatch.setattr(os, "write", real_write)
    assert path.stat().st_size == good
    assert [e.command for e in CommandJournal(path).replay()] == COMMANDS[:1]


@pytest.mark.parametrize("policy", list(FsyncPolicy))
def test_fsync_policies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        policy: FsyncPolicy) -> None:
    calls: list[int] = []
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd))
    journal = CommandJournal(tmp_path / "j.dat", fsync=policy, fsync_interval=3600)
    for command in COMMANDS[:3]:
        journal.append(command)
        journal.flush()
    expected = {FsyncPolicy.BATCH: 3, FsyncPolicy.INTERVAL: 1, FsyncPolicy.NONE: 0}[policy]
    assert len(calls) == expected


def test_a_commit_mark_is_written_only_after_new_commands(tmp_path: Path) -> None:
    """An idle venue commits every tick: that must not append marks without end."""
    path = tmp_path / "journal.dat"
    journal = CommandJournal(path, fsync=FsyncPolicy.NONE)
    journal.append(COMMANDS[0])
    for _ in range(5):  # five commit cycles, one command
        journal.mark_committed()
        journal.flush()
    assert journal.records == 2 and not journal.pending
    size = path.stat().st_size
    journal.mark_committed()
    journal.flush()
    assert path.stat().st_size == size
    journal.close()
    # Replaying an uncommitted tail leaves it to be marked once its reports are stored.
    tail = CommandJournal(path, fsync=FsyncPolicy.NONE)
    tail.append(COMMANDS[1])
    tail.flush()
    tail.close()
    again = CommandJournal(path, fsync=FsyncPolicy.NONE)
    assert [e.committed for e in again.replay()] == [True, False]
    again.mark_committed()
    again.flush()
    again.close()
    assert [e.committed for e in CommandJournal(path).replay()] == [True, True]
