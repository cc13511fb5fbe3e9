"""A SessionStore in append-only files, with group commit.

One directory per session:

- `messages.dat`  every outbound message, appended raw.
- `messages.idx`  20-byte records (seq, offset, length), so a resend seeks
  straight to its range and opening never reads the messages themselves.
- `seqnums`       two 32-byte slots (counter, next sender, next target, crc),
  written alternately: a torn write spoils one slot, never both.
- `meta.json`     the session's creation time, replaced atomically on reset.
- `inbound.dat`/`inbound.idx`  with `record_inbound`: every message received,
  for `fixgw replay` (see inbound_log.py); written in the same flush.

`flush()` writes everything buffered since the last flush with one write per
file, then fsyncs according to the policy. Recovery on open trims whatever a
crash left half-written: an index record without its message bytes, message
bytes without an index record (never acknowledged, since bytes go to the
socket only after flush), a torn seqnum slot.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

from session_store.background_sync import BackgroundSyncer
from session_store.base import FsyncPolicy
from session_store.files import INDEX, StoreReader, write_all
from session_store.inbound_log import InboundLog

_SLOT = struct.Struct("<QQQ")  # counter, next sender, next target
_SLOT_SIZE = 32  # _SLOT + crc32 + padding


class StoreCorrupt(Exception):
    """The store cannot be trusted (both seqnum slots unreadable)."""


class FileStore:
    def __init__(
        self,
        directory: str | Path,
        now: float | None = None,
        fsync: FsyncPolicy = FsyncPolicy.BATCH,
        fsync_interval: float = 0.05,
        syncer: BackgroundSyncer | None = None,
        record_inbound: bool = False,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fsync_policy = FsyncPolicy(fsync)
        self.fsync_interval = fsync_interval
        # With a syncer, the interval policy fsyncs on its thread, off the loop.
        self._syncer = syncer if self.fsync_policy is FsyncPolicy.INTERVAL else None
        self._last_fsync = float("-inf")
        flags = os.O_RDWR | os.O_CREAT
        self._dat = os.open(self.directory / "messages.dat", flags | os.O_APPEND, 0o644)
        self._idx = os.open(self.directory / "messages.idx", flags | os.O_APPEND, 0o644)
        self._seq = os.open(self.directory / "seqnums", flags, 0o644)
        self._pending_dat: list[bytes] = []
        self._pending_idx: list[bytes] = []
        self._pending_seqs: list[int] = []
        self._pending_bytes = 0
        self._state_dirty = False
        self._counter = 0
        self.next_sender_seq = 1
        self.next_target_seq = 1
        self.creation_time = time.time() if now is None else now
        self._recover(now)
        self._inbound = InboundLog(self.directory) if record_inbound else None

    # --- opening -------------------------------------------------------------

    def _recover(self, now: float | None) -> None:
        meta_path = self.directory / "meta.json"
        if meta_path.exists():
            try:
                self.creation_time = float(json.loads(meta_path.read_text())["creation_time"])
            except (ValueError, KeyError, TypeError) as exc:
                raise StoreCorrupt(f"{meta_path}: {exc}") from None
        else:
            self._write_meta()
        self._read_seqnums()
        self._dat_size = os.fstat(self._dat).st_size
        idx_size = os.fstat(self._idx).st_size
        count = idx_size // INDEX.size
        # Drop index records whose message bytes never made it to disk.
        while count:
            seq, offset, length = self._index_record(count - 1)
            if offset + length <= self._dat_size:
                break
            count -= 1
        if count * INDEX.size != idx_size:
            os.ftruncate(self._idx, count * INDEX.size)
        self._count = count
        if count:
            seq, offset, length = self._index_record(count - 1)
            end = offset + length
            self.next_sender_seq = max(self.next_sender_seq, seq + 1)
            self._last_seq = seq
        else:
            end = 0
            self._last_seq = 0
        if self._dat_size > end:  # message bytes without an index record
            os.ftruncate(self._dat, end)
            self._dat_size = end

    def _read_seqnums(self) -> None:
        data = os.pread(self._seq, 2 * _SLOT_SIZE, 0)
        best = decode_seqnums(data)
        if best is None:
            if any(data):
                raise StoreCorrupt(f"{self.directory / 'seqnums'}: no readable slot")
            return
        self._counter, self.next_sender_seq, self.next_target_seq = best

    def _index_record(self, i: int) -> tuple[int, int, int]:
        return INDEX.unpack(os.pread(self._idx, INDEX.size, i * INDEX.size))

    def _write_meta(self) -> None:
        """Replace meta.json atomically: write a temporary file, fsync, rename."""
        tmp = self.directory / "meta.json.tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps({"creation_time": self.creation_time}))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.directory / "meta.json")

    # --- writing -------------------------------------------------------------

    def append_outbound(self, seq: int, raw: bytes) -> None:
        offset = self._dat_size + self._pending_bytes
        self._pending_bytes += len(raw)
        self._pending_dat.append(raw)
        self._pending_idx.append(INDEX.pack(seq, offset, len(raw)))
        self._pending_seqs.append(seq)

    def append_inbound(self, raw: bytes, now: float) -> None:
        """A received message, for replay; kept only with `record_inbound`."""
        if self._inbound is not None:
            self._inbound.append(raw, now, self.next_sender_seq)

    def set_next_sender_seq(self, seq: int) -> None:
        self.next_sender_seq = seq
        self._state_dirty = True

    def set_next_target_seq(self, seq: int) -> None:
        self.next_target_seq = seq
        self._state_dirty = True

    def flush(self) -> None:
        """Group commit: one write per file, then fsync per policy.

        If a write fails (disk full, I/O error) the files are cut back to what
        was committed before and the error is raised; the batch stays pending.
        Nothing of it may be sent: the caller must not speak after a failed flush.
        """
        wrote = False
        inbound = self._inbound
        if inbound is not None and inbound.pending:
            try:
                inbound.write()
            except OSError:
                self._truncate_to_committed()
                raise
            wrote = True
        if self._pending_dat:
            data = b"".join(self._pending_dat)
            try:
                write_all(self._dat, data)
                write_all(self._idx, b"".join(self._pending_idx))
            except OSError:
                self._truncate_to_committed()
                raise
            self._dat_size += len(data)
            self._count += len(self._pending_idx)
            self._last_seq = self._pending_seqs[-1]
            self._pending_dat.clear()
            self._pending_idx.clear()
            self._pending_seqs.clear()
            self._pending_bytes = 0
            wrote = True
        if inbound is not None and inbound.pending:
            inbound.committed()
        if self._state_dirty:
            self._write_seqnums()
            wrote = True
        if wrote:
            self._maybe_fsync()

    def _truncate_to_committed(self) -> None:
        with contextlib.suppress(OSError):
            os.ftruncate(self._dat, self._dat_size)
            os.ftruncate(self._idx, self._count * INDEX.size)
        if self._inbound is not None:
            self._inbound.truncate_to_committed()

    def _write_seqnums(self) -> None:
        self._counter += 1
        body = _SLOT.pack(self._counter, self.next_sender_seq, self.next_target_seq)
        slot = body + zlib.crc32(body).to_bytes(4, "little")
        os.pwrite(self._seq, slot.ljust(_SLOT_SIZE, b"\0"), (self._counter % 2) * _SLOT_SIZE)
        self._state_dirty = False

    def _maybe_fsync(self) -> None:
        if self.fsync_policy is FsyncPolicy.NONE:
            return
        # Only what recovery and resends need; the inbound log (for replay) is
        # synced when the store closes.
        durable = (self._dat, self._idx, self._seq)
        if self._syncer is not None:
            self._syncer.mark(*durable)
            return
        now = time.monotonic()
        due = now - self._last_fsync >= self.fsync_interval
        if self.fsync_policy is FsyncPolicy.INTERVAL and not due:
            return
        for fd in durable:
            os.fsync(fd)
        self._last_fsync = now

    def _fds(self) -> tuple[int, ...]:
        inbound = self._inbound
        if inbound is None:
            return (self._dat, self._idx, self._seq)
        return (self._dat, self._idx, self._seq, inbound.dat, inbound.idx)

    def sync(self) -> None:
        """Force everything written so far to disk (used on shutdown)."""
        self.flush()
        for fd in self._fds():
            os.fsync(fd)

    # --- reading -------------------------------------------------------------

    @property
    def message_count(self) -> int:
        return self._count + len(self._pending_idx)

    def get_range(self, begin: int, end: int) -> Iterator[tuple[int, bytes]]:
        """Stored messages with begin <= seq <= end: the written ones via the index,
        then those of the batch in progress from memory. Nothing is flushed here:
        the engine journal goes to disk before any session store (write ahead).
        Lazy, and correct across flushes while it is suspended (a resend served
        in chunks): the index is re-read as it grows."""
        i = bisect.bisect_left(_IndexView(self), begin)
        while i < self._count:
            seq, offset, length = self._index_record(i)
            if seq > end:
                return
            yield seq, os.pread(self._dat, length, offset)
            i += 1
        # Copies: a flush while this is suspended must not change what it walks.
        for seq, raw in zip(self._pending_seqs[:], self._pending_dat[:], strict=True):
            if seq > end:
                return
            if seq >= begin:
                yield seq, raw

    # --- reset / close ----------------------------------------------------------

    def reset(self, now: float) -> None:
        self._pending_dat.clear()
        self._pending_idx.clear()
        self._pending_seqs.clear()
        self._pending_bytes = 0
        os.ftruncate(self._idx, 0)
        os.ftruncate(self._dat, 0)
        if self._inbound is not None:
            self._inbound.reset()  # the session's history restarts with its seqnums
        self._dat_size = 0
        self._count = 0
        self._last_seq = 0
        self.next_sender_seq = 1
        self.next_target_seq = 1
        self.creation_time = now
        self._write_meta()
        self._write_seqnums()
        self._maybe_fsync()

    def close(self) -> None:
        """Flush, force to disk whatever the fsync policy, and close."""
        try:
            self.sync()
        finally:
            for fd in self._fds():
                if self._syncer is not None:
                    self._syncer.forget(fd)
                os.close(fd)


def decode_seqnums(data: bytes) -> tuple[int, int, int] | None:
    """(counter, next sender, next target) of the newer readable slot, if any."""
    best: tuple[int, int, int] | None = None
    for i in range(2):
        slot = data[i * _SLOT_SIZE : (i + 1) * _SLOT_SIZE]
        if len(slot) < _SLOT.size + 4:
            continue
        body = slot[: _SLOT.size]
        crc = int.from_bytes(slot[_SLOT.size : _SLOT.size + 4], "little")
        if zlib.crc32(body) != crc:
            continue
        values = _SLOT.unpack(body)
        if best is None or values[0] > best[0]:
            best = values
    return best


def read_outbound(directory: Path) -> Iterator[tuple[int, bytes]]:
    """(seq, raw) of a store directory's whole messages, read-only (a live gateway may
    be writing: a torn tail is left out, never trimmed)."""
    try:
        reader = StoreReader(directory)
    except FileNotFoundError:
        return
    with reader:
        yield from reader


class _IndexView:
    """Sequence numbers of the index file as a lazy list, for bisect."""

    def __init__(self, store: FileStore) -> None:
        self._store = store

    def __len__(self) -> int:
        return self._store._count

    def __getitem__(self, i: int) -> int:
        return self._store._index_record(i)[0]
