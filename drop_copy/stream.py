"""The drop-copy stream: every ExecutionReport the venue sends, sequence-numbered.

One durable log feeds every drop-copy consumer (FIX drop-copy sessions, the
MQTT feed, `fixgw dropcopy replay`). Entry N is the Nth ExecutionReport
exactly as it was framed for its order-entry session. The writer is a
`FileStore` (same files, same group commit and crash trimming as a session
store); `StreamReader` reads those files on its own file descriptors, so a
publisher thread or another process can follow the stream without touching
the writer.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

from session_store import BackgroundSyncer, FileStore, FsyncPolicy

_INDEX = struct.Struct("<QQI")  # seq, offset, length: FileStore's index record


def stream_directory(data_dir: Path) -> Path:
    return data_dir / "dropcopy" / "stream"


class DropCopyStream:
    """The writer: `append` on the hot path, `flush` in the gateway's commit."""

    def __init__(
        self,
        directory: Path,
        fsync: FsyncPolicy = FsyncPolicy.INTERVAL,
        fsync_interval: float = 0.05,
        syncer: BackgroundSyncer | None = None,
    ) -> None:
        self.store = FileStore(directory, fsync=fsync, fsync_interval=fsync_interval,
                               syncer=syncer)
        self.head = self.store.next_sender_seq - 1  # last appended sequence number
        self.committed = self.head  # last flushed: what consumers may see

    def append(self, raw: bytes) -> int:
        self.head += 1
        self.store.append_outbound(self.head, raw)
        return self.head

    @property
    def pending(self) -> bool:
        return self.head != self.committed

    def flush(self) -> None:
        # The head needs no seqnums slot: opening the store finds it in the index.
        self.store.flush()
        self.committed = self.head

    def get_range(self, begin: int, end: int) -> Iterator[tuple[int, bytes]]:
        """Committed entries with begin <= seq <= end, in order."""
        return self.store.get_range(begin, min(end, self.committed))

    def close(self) -> None:
        self.store.close()


class StreamReader:
    """Reads committed entries of a stream directory, independently of the writer.

    The writer appends message bytes before their index record, so every whole
    index record points at bytes already in the file.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._idx = os.open(directory / "messages.idx", os.O_RDONLY)
        self._dat = os.open(directory / "messages.dat", os.O_RDONLY)

    def head(self) -> int:
        """The last committed sequence number (0 when empty)."""
        count = os.fstat(self._idx).st_size // _INDEX.size
        if not count:
            return 0
        return _INDEX.unpack(os.pread(self._idx, _INDEX.size, (count - 1) * _INDEX.size))[0]

    def read(self, begin: int, limit: int = 1000) -> list[tuple[int, bytes]]:
        """Up to `limit` entries from sequence number `begin` on.

        Entry N sits at index record N-1: the stream numbers from 1 without gaps.
        """
        begin = max(begin, 1)
        count = os.fstat(self._idx).st_size // _INDEX.size
        last = min(count, begin - 1 + limit)
        if last < begin:
            return []
        records = os.pread(self._idx, (last - begin + 1) * _INDEX.size, (begin - 1) * _INDEX.size)
        # Whole records only (the writer may have cut its files back meanwhile).
        whole = len(records) - len(records) % _INDEX.size
        entries = [_INDEX.unpack_from(records, i) for i in range(0, whole, _INDEX.size)]
        if not entries:
            return []
        start = entries[0][1]
        end = entries[-1][1] + entries[-1][2]
        data = os.pread(self._dat, end - start, start)
        return [(seq, data[off - start : off - start + length]) for seq, off, length in entries
                if off + length - start <= len(data)]

    def close(self) -> None:
        os.close(self._idx)
        os.close(self._dat)

    def __enter__(self) -> StreamReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
