"""A SessionStore kept in memory: for tests and throw-away sessions."""

from __future__ import annotations

import bisect
from collections.abc import Iterator


class MemoryStore:
    def __init__(self, now: float = 0.0) -> None:
        self.next_sender_seq = 1
        self.next_target_seq = 1
        self.creation_time = now
        self._seqs: list[int] = []
        self._raws: list[bytes] = []
        self.inbound: list[tuple[float, bytes]] = []
        self.flushes = 0

    def append_outbound(self, seq: int, raw: bytes) -> None:
        self._seqs.append(seq)
        self._raws.append(raw)

    def append_inbound(self, raw: bytes, now: float) -> None:
        self.inbound.append((now, raw))

    def set_next_sender_seq(self, seq: int) -> None:
        self.next_sender_seq = seq

    def set_next_target_seq(self, seq: int) -> None:
        self.next_target_seq = seq

    def flush(self) -> None:
        self.flushes += 1

    def get_range(self, begin: int, end: int) -> Iterator[tuple[int, bytes]]:
        i = bisect.bisect_left(self._seqs, begin)
        while i < len(self._seqs) and self._seqs[i] <= end:
            yield self._seqs[i], self._raws[i]
            i += 1

    def reset(self, now: float) -> None:
        self.__init__(now)  # type: ignore[misc]

    def close(self) -> None:
        pass
