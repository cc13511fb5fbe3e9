"""The engine's history on disk: the live journal, archived journals, the latest snapshot.

    <engine dir>/journal.dat                     commands since the last snapshot
    <engine dir>/archive/journal-000001.dat ...  earlier journals, oldest first, never rewritten
    <engine dir>/snapshot.dat                    the engine's state after archive N

Recovery starts from the snapshot, when there is one, and replays only what
came after it: the archives numbered above N (there is one when a crash came
between the two steps below), then the live journal. Without a snapshot it
replays every archive and the journal: the whole history, as before snapshots.

Taking a snapshot, at a committed point (every journaled command has its
reports stored):

1. the live journal gets its commit mark and is renamed to the next archive;
   a new, empty journal takes its place;
2. the engine's state is written to `snapshot.tmp`, fsynced and renamed over
   `snapshot.dat`.

A crash at any moment leaves either the old snapshot plus one more archive to
replay, or the new snapshot: the same state either way. The archives stay:
they are the venue's complete command history (`fixgw surveil` reads them)
and what an operator restores from if a snapshot is ever lost.
"""

from __future__ import annotations

import marshal
import os
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.journal import (
    CommandJournal,
    Entry,
    file_holds_commands,
    file_holds_orders,
    read_entries,
)
from session_store.files import fsync_dir, write_all

JOURNAL_NAME = "journal.dat"
SNAPSHOT_NAME = "snapshot.dat"
ARCHIVE_DIR = "archive"
_ARCHIVE = re.compile(r"journal-(\d{6,})\.dat")
_MAGIC = b"FIXGW-SNAPSHOT\n"
_HEADER = struct.Struct("<QQI")  # archives covered, payload length, crc32


class SnapshotCorrupt(Exception):
    """The snapshot file cannot be read (it was written atomically: never by a crash)."""


class EngineHistory:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.journal_path = directory / JOURNAL_NAME
        self.snapshot_path = directory / SNAPSHOT_NAME
        self.archive_dir = directory / ARCHIVE_DIR

    def archives(self) -> list[tuple[int, Path]]:
        """(number, path) of every archived journal, oldest first."""
        if not self.archive_dir.is_dir():
            return []
        found = [(int(m.group(1)), path) for path in self.archive_dir.iterdir()
                 if (m := _ARCHIVE.fullmatch(path.name))]
        return sorted(found)

    def paths(self) -> list[Path]:
        """The whole command history, oldest first: archives, then the live journal."""
        live = [self.journal_path] if self.journal_path.exists() else []
        return [path for _, path in self.archives()] + live

    # --- snapshots -------------------------------------------------------------------

    def load_snapshot(self) -> tuple[int, dict[str, Any]] | None:
        """(archives it covers, engine state) of the latest snapshot, or None."""
        try:
            data = self.snapshot_path.read_bytes()
        except FileNotFoundError:
            return None
        covered, length, crc = self._header(data)
        start = len(_MAGIC) + _HEADER.size
        payload = data[start:start + length]
        if len(payload) != length or zlib.crc32(payload) != crc:
            raise SnapshotCorrupt(f"{self.snapshot_path}: damaged (length or checksum)")
        try:
            state = marshal.loads(payload)
        except (EOFError, ValueError, TypeError) as exc:
            raise SnapshotCorrupt(f"{self.snapshot_path}: unreadable ({exc})") from exc
        return covered, state

    def _covered(self) -> int:
        """How many archives the current snapshot covers, from its header (0: none)."""
        try:
            with open(self.snapshot_path, "rb") as f:
                head = f.read(len(_MAGIC) + _HEADER.size)
        except FileNotFoundError:
            return 0
        return self._header(head)[0]

    def _header(self, data: bytes) -> tuple[int, int, int]:
        """(archives covered, payload length, crc32) from the start of a snapshot file."""
        if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + _HEADER.size:
            raise SnapshotCorrupt(f"{self.snapshot_path}: not a fixgw engine snapshot")
        covered, length, crc = _HEADER.unpack_from(data, len(_MAGIC))
        return covered, length, crc

    def entries_after(self, covered: int, journal: CommandJournal) -> Iterator[Entry]:
        """What a snapshot covering archives 1..`covered` has not seen: the later
        archives, then the live journal (whose torn tail, if any, is cut off)."""
        for number, path in self.archives():
            if number > covered:
                yield from read_entries(path)
        yield from journal.replay()

    def archive(self, journal: CommandJournal) -> int:
        """Step 1: the live journal becomes the next archive; returns its number."""
        # Above the snapshot's number too: archives an operator moved away must not
        # make a new archive look covered by the old snapshot.
        archives = self.archives()
        number = max(archives[-1][0] if archives else 0, self._covered()) + 1
        journal.rotate(self.archive_dir / f"journal-{number:06d}.dat")
        return number

    def save_snapshot(self, covered: int, state: dict[str, Any]) -> None:
        """Step 2: `state`, the engine after archives 1..`covered`, replaces the
        snapshot atomically."""
        # Version 2 keeps no table of shared references: here a third faster to
        # write and twice as fast to read as the default, for a file 30% larger.
        payload = marshal.dumps(state, 2)
        tmp = self.snapshot_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, _MAGIC + _HEADER.pack(covered, len(payload), zlib.crc32(payload)))
            write_all(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.snapshot_path)
        fsync_dir(self.directory)

    def prune(self, covered: int, keep: int) -> list[int]:
        """Delete the archives a snapshot covering 1..`covered` has made unnecessary for
        recovery, all but the newest `keep` of them; returns the numbers deleted.
        Call it only once that snapshot is saved."""
        doomed = [(n, path) for n, path in self.archives() if n <= covered - keep]
        for _, path in doomed:
            path.unlink()
        if doomed:
            fsync_dir(self.archive_dir)
        return [n for n, _ in doomed]

    def replay_holds_orders(self, covered: int) -> bool:
        """Whether what a start replays after a snapshot covering 1..`covered` (0: none)
        holds any order, so that the settings it was made under matter to the replay."""
        return any(file_holds_orders(path) for path in self._replayed(covered))

    def replay_holds_commands(self, covered: int) -> bool:
        """Whether a start after a snapshot covering 1..`covered` replays anything,
        the clock's ticks included (a tick may expire orders the snapshot keeps)."""
        return any(file_holds_commands(path) for path in self._replayed(covered))

    def _replayed(self, covered: int) -> list[Path]:
        later = [path for number, path in self.archives() if number > covered]
        return later + ([self.journal_path] if self.journal_path.exists() else [])
