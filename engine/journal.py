"""The engine's command journal: every command, in order, before anything announces it.

Append-only file of records `length (u32) | crc32 (u32) | payload`, the
payload a marshal'd tuple (type code, fields...). Commands are buffered by
`append()` and written by `flush()` with one write per batch (group commit);
fsync follows the store's policy. Replaying the journal into a fresh engine
rebuilds books, order ids and execution ids exactly, because the engine is
deterministic and every command carries its own time.

After the session stores of a batch are flushed the gateway appends a commit
mark (`mark_committed()`): commands after the last mark belong to a batch
whose ExecutionReports may not all have reached the session stores, which
recovery checks (see `OrderEntry.recover` in fix_gateway.application.order_entry).
"""

from __future__ import annotations

import marshal
import os
import struct
import time
import zlib
from collections.abc import Iterable, Iterator
from enum import IntEnum
from pathlib import Path
from typing import Any, NamedTuple

from engine.types import (
    AdvanceTime,
    CancelOrder,
    Command,
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
from session_store.background_sync import BackgroundSyncer
from session_store.base import FsyncPolicy
from session_store.files import fsync_dir

_HEADER = struct.Struct("<II")
_COMMIT = 0  # type code of a commit mark
_TYPES: tuple[type[Command], ...] = (
    NewOrder, CancelOrder, ReplaceOrder, OrderStatusRequest, MassCancel, RejectOrder, AdvanceTime,
)  # fmt: skip
_CODE = {cls: code for code, cls in enumerate(_TYPES, start=1)}
_ENUM_TYPES: dict[str, type[IntEnum]] = {
    "side": Side, "ord_type": OrdType, "tif": TimeInForce, "scope": MassCancelScope,
}  # fmt: skip
# Per command type: (field index, enum class) of the fields marshal cannot hold as enums.
_ENUMS: dict[type, tuple[tuple[int, type[IntEnum]], ...]] = {
    cls: tuple((i, _ENUM_TYPES[name]) for i, name in enumerate(cls._fields) if name in _ENUM_TYPES)
    for cls in _TYPES
}


class JournalCorrupt(Exception):
    """A record in the middle of the journal is unreadable (not a torn tail)."""


def encode_command(command: Command) -> bytes:
    values: list[Any] = [_CODE[type(command)], *command]
    for index, _ in _ENUMS[type(command)]:
        values[index + 1] = int(values[index + 1])
    payload = marshal.dumps(tuple(values))
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _records(data: bytes, path: Path) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """(end offset, decoded values) of each whole record; stops at a torn tail."""
    pos = 0
    size = len(data)
    while pos + _HEADER.size <= size:
        length, crc = _HEADER.unpack_from(data, pos)
        end = pos + _HEADER.size + length
        if end > size:
            return  # torn tail
        payload = data[pos + _HEADER.size : end]
        if zlib.crc32(payload) != crc:
            if end < size:
                raise JournalCorrupt(f"{path}: bad record at offset {pos}")
            return
        yield end, marshal.loads(payload)
        pos = end


def decode_command(values: tuple[Any, ...]) -> Command:
    cls: type[Command] = _TYPES[values[0] - 1]
    fields = list(values[1:])
    for index, enum in _ENUMS[cls]:
        fields[index] = enum(fields[index])
    return cls(*fields)


class Entry(NamedTuple):
    """A replayed command, and whether its batch was committed."""

    command: Command
    committed: bool


def _entries(records: Iterable[tuple[int, tuple[Any, ...]]]) -> Iterator[Entry]:
    """Commands in order, each marked committed when a commit mark follows it."""
    commands: list[Command] = []
    for _, values in records:
        if values[0] == _COMMIT:
            yield from (Entry(c, True) for c in commands)
            commands.clear()
        else:
            commands.append(decode_command(values))
    yield from (Entry(c, False) for c in commands)


def read_entries(path: Path) -> Iterator[Entry]:
    """Every command of a journal file, reading only (an archived journal)."""
    return _entries(_records(path.read_bytes(), path))


def file_holds_orders(path: Path) -> bool:
    """Whether the journal file holds any order command (the clock's ticks aside);
    reads without changing the file, and stops at the first one."""
    return _file_holds(path, (_COMMIT, _CODE[AdvanceTime]))


def file_holds_commands(path: Path) -> bool:
    """Whether the journal file holds any command at all, the clock's ticks included."""
    return _file_holds(path, (_COMMIT,))


def _file_holds(path: Path, ignored: tuple[int, ...]) -> bool:
    return any(values[0] not in ignored for _, values in _records(path.read_bytes(), path))


class CommandJournal:
    def __init__(
        self, path: str | Path, fsync: FsyncPolicy = FsyncPolicy.BATCH,
        fsync_interval: float = 0.05, syncer: BackgroundSyncer | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync_policy = FsyncPolicy(fsync)
        self.fsync_interval = fsync_interval
        self._syncer = syncer if self.fsync_policy is FsyncPolicy.INTERVAL else None
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self._pending: list[bytes] = []
        self._last_fsync = float("-inf")
        self._size = os.fstat(self._fd).st_size  # bytes known good
        self.records = 0
        self._unmarked = False  # commands journaled since the last commit mark

    def replay(self) -> Iterator[Entry]:
        """Every journaled command in order; a torn tail (from a crash) is cut off."""
        data = self.path.read_bytes()
        good = 0

        def counted() -> Iterator[tuple[int, tuple[Any, ...]]]:
            nonlocal good
            for end, values in _records(data, self.path):
                self.records += 1
                good = end
                yield end, values

        for entry in _entries(counted()):
            self._unmarked = not entry.committed
            yield entry
        if good < len(data):
            os.ftruncate(self._fd, good)
        self._size = good

    def holds_commands(self) -> bool:
        """Whether anything was journaled since this file began (or is pending)."""
        return self._size > 0 or bool(self._pending)

    def append(self, command: Command) -> None:
        self._pending.append(encode_command(command))
        self._unmarked = True

    def mark_committed(self) -> None:
        """Everything journaled so far has had its reports stored (a mark is
        written only if a command came since the last one)."""
        if not self._unmarked:
            return
        self._unmarked = False
        payload = marshal.dumps((_COMMIT,))
        self._pending.append(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def flush(self) -> None:
        """One write for the batch, then fsync per policy."""
        if not self._pending:
            return
        data = b"".join(self._pending)
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            os.ftruncate(self._fd, self._size)  # no half batch left behind
            raise
        self._size += len(data)
        self.records += len(self._pending)
        self._pending.clear()
        if self.fsync_policy is FsyncPolicy.NONE:
            return
        if self._syncer is not None:
            self._syncer.mark(self._fd)
            return
        now = time.monotonic()
        due = now - self._last_fsync >= self.fsync_interval
        if self.fsync_policy is FsyncPolicy.INTERVAL and not due:
            return
        os.fsync(self._fd)
        self._last_fsync = now

    def rotate(self, archive: Path) -> None:
        """Move everything journaled so far to `archive` (a new file) and go on in an
        empty journal. Call it at a committed point: every command in the journal
        has its reports stored, so the archive ends with a commit mark."""
        if archive.exists():
            raise FileExistsError(f"{archive}: an archived journal is never replaced")
        self.mark_committed()
        self.flush()
        os.fsync(self._fd)
        if self._syncer is not None:
            self._syncer.forget(self._fd)
        archive.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.path, archive)
        os.close(self._fd)
        fsync_dir(archive.parent)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        fsync_dir(self.path.parent)
        self._size = 0
        self._unmarked = False

    def close(self) -> None:
        try:
            self.flush()
            if self._syncer is not None:
                self._syncer.forget(self._fd)
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
