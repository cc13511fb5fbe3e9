"""What the append-only store files share: the index record, whole writes, and a
read-only reader that works beside a live writer.

A store directory holds `messages.dat` (messages, appended raw) and
`messages.idx` (one `INDEX` record per message: seq, offset, length). The
writer appends message bytes before their index record, so every whole index
record a reader sees points at bytes already in the file.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

INDEX = struct.Struct("<QQI")  # seq, offset, length


def write_all(fd: int, data: bytes) -> None:
    """os.write until all of `data` is written (a write may be short)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StoreReader:
    """Reads a store directory's messages on its own file descriptors, read-only
    (another thread or process may be appending: a torn tail is left out, never
    trimmed)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._idx = os.open(directory / "messages.idx", os.O_RDONLY)
        try:
            self._dat = os.open(directory / "messages.dat", os.O_RDONLY)
        except OSError:
            os.close(self._idx)
            raise

    def count(self) -> int:
        """Whole index records now in the file."""
        return os.fstat(self._idx).st_size // INDEX.size

    def last_seq(self) -> int:
        """The sequence number of the last whole record (0 when empty)."""
        count = self.count()
        if not count:
            return 0
        return int(INDEX.unpack(os.pread(self._idx, INDEX.size, (count - 1) * INDEX.size))[0])

    def read(self, first: int, limit: int) -> list[tuple[int, bytes]]:
        """(seq, raw) of up to `limit` messages from index position `first` (0-based)."""
        last = min(self.count(), first + limit)
        if last <= first:
            return []
        records = os.pread(self._idx, (last - first) * INDEX.size, first * INDEX.size)
        whole = len(records) - len(records) % INDEX.size
        entries = [INDEX.unpack_from(records, i) for i in range(0, whole, INDEX.size)]
        if not entries:
            return []
        start = entries[0][1]
        data = os.pread(self._dat, entries[-1][1] + entries[-1][2] - start, start)
        return [(seq, data[off - start : off - start + length]) for seq, off, length in entries
                if off + length - start <= len(data)]

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        """Every whole message, in order."""
        position = 0
        while batch := self.read(position, 10_000):
            yield from batch
            position += len(batch)

    def close(self) -> None:
        os.close(self._idx)
        os.close(self._dat)

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
