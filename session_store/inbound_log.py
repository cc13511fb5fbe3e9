"""The messages a session received, kept for `fixgw replay` (not needed for resends).

Two append-only files in the session's store directory:

- `inbound.dat`  every inbound message, raw, in arrival order.
- `inbound.idx`  28-byte records (receive time, next outbound MsgSeqNum at
  receipt, offset, length). The outbound MsgSeqNum places each inbound
  message exactly among the outbound ones: it arrived after outbound
  `next_out - 1` was sent and before `next_out`.

The owning FileStore writes both in its group commit (one write per file per
flush) and cuts them back with its own files if a write fails. Recovery on
open trims what a crash left half-written, as for `messages.dat`/`.idx`.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from session_store.files import write_all

INBOUND_DAT = "inbound.dat"
INBOUND_IDX = "inbound.idx"
RECORD = struct.Struct("<dQQI")  # receive time, next outbound seq, offset, length


class InboundRecord(NamedTuple):
    received: float  # seconds since the epoch, the gateway's clock
    next_out_seq: int  # the outbound MsgSeqNum the session would send next
    raw: bytes


class InboundLog:
    """Buffered appends, written and cut back by the owning FileStore."""

    def __init__(self, directory: Path) -> None:
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND
        self.dat = os.open(directory / INBOUND_DAT, flags, 0o644)
        self.idx = os.open(directory / INBOUND_IDX, flags, 0o644)
        self._pending_dat: list[bytes] = []
        self._pending_idx: list[bytes] = []
        self._pending_bytes = 0
        self._dat_size, self._count = _recover(self.dat, self.idx)

    @property
    def pending(self) -> bool:
        return bool(self._pending_dat)

    @property
    def count(self) -> int:
        return self._count + len(self._pending_idx)

    def append(self, raw: bytes, now: float, next_out_seq: int) -> None:
        self._pending_idx.append(
            RECORD.pack(now, next_out_seq, self._dat_size + self._pending_bytes, len(raw))
        )
        self._pending_dat.append(raw)
        self._pending_bytes += len(raw)

    def write(self) -> None:
        """Write what is pending (kept pending until `committed()`)."""
        write_all(self.dat, b"".join(self._pending_dat))
        write_all(self.idx, b"".join(self._pending_idx))

    def committed(self) -> None:
        self._dat_size += self._pending_bytes
        self._count += len(self._pending_idx)
        self.discard_pending()

    def discard_pending(self) -> None:
        self._pending_dat.clear()
        self._pending_idx.clear()
        self._pending_bytes = 0

    def truncate_to_committed(self) -> None:
        with contextlib.suppress(OSError):
            os.ftruncate(self.dat, self._dat_size)
            os.ftruncate(self.idx, self._count * RECORD.size)

    def reset(self) -> None:
        self.discard_pending()
        os.ftruncate(self.idx, 0)
        os.ftruncate(self.dat, 0)
        self._dat_size = 0
        self._count = 0

    def close(self) -> None:
        os.close(self.dat)
        os.close(self.idx)


def _recover(dat: int, idx: int) -> tuple[int, int]:
    """Trim a torn tail; returns (message bytes, record count) that are whole."""
    dat_size = os.fstat(dat).st_size
    idx_size = os.fstat(idx).st_size
    count = idx_size // RECORD.size
    end = 0
    while count:
        _, _, offset, length = RECORD.unpack(os.pread(idx, RECORD.size, (count - 1) * RECORD.size))
        if offset + length <= dat_size:
            end = offset + length
            break
        count -= 1  # its message bytes never made it to disk
    if count * RECORD.size != idx_size:
        os.ftruncate(idx, count * RECORD.size)
    if dat_size > end:  # message bytes without a record
        os.ftruncate(dat, end)
        dat_size = end
    return dat_size, count


def read_inbound(directory: Path) -> Iterator[InboundRecord]:
    """The whole records of a session directory, read-only (a live gateway may be writing)."""
    try:
        index = (directory / INBOUND_IDX).read_bytes()
        data = (directory / INBOUND_DAT).read_bytes()
    except FileNotFoundError:
        return
    for i in range(len(index) // RECORD.size):
        received, next_out, offset, length = RECORD.unpack_from(index, i * RECORD.size)
        if offset + length > len(data):
            return  # a torn tail: the rest was never acknowledged
        yield InboundRecord(received, next_out, data[offset : offset + length])
