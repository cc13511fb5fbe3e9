"""The store interface the session layer writes through."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Protocol


class FsyncPolicy(StrEnum):
    """When appended bytes are forced to disk.

    - batch: fsync at every flush (one per read batch). Survives power loss;
      costs a disk round trip per batch.
    - interval: fsync at most every `fsync_interval` seconds. A power loss can
      lose that much; a process crash (kill -9) loses nothing, since written
      bytes are already in the OS page cache.
    - none: never fsync; the OS writes back when it likes. Same crash safety
      as `interval` for process death.
    """

    BATCH = "batch"
    INTERVAL = "interval"
    NONE = "none"


class SessionStore(Protocol):
    """Sequence numbers and outbound messages of one FIX session.

    Writes are buffered until `flush()`, which the server calls once per read
    batch before any byte of that batch's output goes on the wire.
    """

    next_sender_seq: int
    next_target_seq: int
    creation_time: float

    def append_outbound(self, seq: int, raw: bytes) -> None: ...

    def append_inbound(self, raw: bytes, now: float) -> None:
        """A received message, kept for replay where the store is set to record them."""
        ...

    def set_next_sender_seq(self, seq: int) -> None: ...

    def set_next_target_seq(self, seq: int) -> None: ...

    def flush(self) -> None: ...

    def get_range(self, begin: int, end: int) -> Iterator[tuple[int, bytes]]:
        """Stored outbound messages with begin <= seq <= end, in order."""
        ...

    def reset(self, now: float) -> None:
        """Both sequence numbers back to 1, stored messages dropped (durably)."""
        ...

    def close(self) -> None: ...
