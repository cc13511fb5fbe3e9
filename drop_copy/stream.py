"""The drop-copy stream: every ExecutionReport the venue sends, sequence-numbered.

One durable log feeds every drop-copy consumer (FIX drop-copy sessions, the
MQTT feed, `fixgw dropcopy replay`). Entry N is the Nth ExecutionReport
exactly as it was framed for its order-entry session. The writer is a
`FileStore` (same files, same group commit and crash trimming as a session
store); `StreamReader`, a `StoreReader`, reads those files on its own file
descriptors, so a publisher thread or another process can follow the stream
without touching the writer.
"""

from __future__ import annotations

from pathlib import Path

from session_store import BackgroundSyncer, FileStore, FsyncPolicy
from session_store.files import StoreReader


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

    def close(self) -> None:
        self.store.close()


class StreamReader(StoreReader):
    """The stream's committed entries, read beside the writer: entry N is the
    Nth index record, as the stream numbers from 1 without gaps."""

    def head(self) -> int:
        """The last committed sequence number (0 when empty)."""
        return self.last_seq()

    def read(self, begin: int, limit: int = 1000) -> list[tuple[int, bytes]]:
        """Up to `limit` entries from sequence number `begin` on."""
        return super().read(max(begin, 1) - 1, limit)

    def __enter__(self) -> StreamReader:
        return self
