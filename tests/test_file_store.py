"""FileStore: durability, recovery and fsync policies, on real files in tmp_path.

Tests named `test_regression_*` pin down defects found and fixed (see each docstring).
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import signal
import struct
import subprocess
import sys
import textwrap
import time
import types
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import session_store.file_store as file_store
from session_store import FileStore, FsyncPolicy, StoreCorrupt

ROOT = Path(__file__).resolve().parent.parent
INDEX_RECORD = 20  # seq, offset, length: <QQI
SLOT = 32


def payload(seq: int) -> bytes:
    """A message whose bytes are a function of its sequence number (variable length)."""
    return b"8=FIX.4.4\x0135=8\x0134=%d\x0158=" % seq + b"%d," % seq * (seq % 13) + b"\x01"


def open_store(path: Path, **kw: object) -> FileStore:
    kw.setdefault("fsync", FsyncPolicy.NONE)
    return FileStore(path, **kw)  # type: ignore[arg-type]


def fill(store: FileStore, seqs: Iterator[int] | range, batch: int = 1) -> None:
    pending = 0
    for seq in seqs:
        store.append_outbound(seq, payload(seq))
        store.set_next_sender_seq(seq + 1)
        pending += 1
        if pending == batch:
            store.flush()
            pending = 0
    store.flush()


def stored(store: FileStore) -> list[tuple[int, bytes]]:
    return list(store.get_range(0, 2**62))


def assert_consistent(path: Path) -> FileStore:
    """Reopen `path`; every stored message intact, seqs 1..n, files trimmed."""
    store = open_store(path)
    msgs = stored(store)
    seqs = [seq for seq, _ in msgs]
    assert seqs == list(range(1, len(seqs) + 1))
    for seq, raw in msgs:
        assert raw == payload(seq), seq
    assert store.message_count == len(msgs)
    assert (path / "messages.idx").stat().st_size == INDEX_RECORD * len(msgs)
    assert (path / "messages.dat").stat().st_size == sum(len(raw) for _, raw in msgs)
    return store


def files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def slots(path: Path) -> list[tuple[int, int, int] | None]:
    """The two seqnum slots, decoded (None when unreadable)."""
    return decode_slots((path / "seqnums").read_bytes())


def decode_slots(data: bytes) -> list[tuple[int, int, int] | None]:
    out: list[tuple[int, int, int] | None] = []
    for i in range(2):
        slot = data[i * SLOT : (i + 1) * SLOT]
        if len(slot) < 28 or zlib.crc32(slot[:24]) != int.from_bytes(slot[24:28], "little"):
            out.append(None)
        else:
            out.append(struct.unpack("<QQQ", slot[:24]))
    return out


# --- basics ----------------------------------------------------------------------------


def test_new_store(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s", now=123.5)
    assert (store.next_sender_seq, store.next_target_seq) == (1, 1)
    assert store.creation_time == 123.5
    assert store.message_count == 0
    assert stored(store) == []
    store.close()
    assert {"messages.dat", "messages.idx", "seqnums", "meta.json"} <= set(
        os.listdir(tmp_path / "s")
    )


def test_seqnums_and_messages_survive_reopen(tmp_path: Path) -> None:
    store = open_store(tmp_path, now=50.0)
    fill(store, range(1, 101), batch=7)
    store.set_next_target_seq(42)
    store.close()
    again = open_store(tmp_path, now=999.0)  # `now` does not override the stored creation time
    assert again.next_sender_seq == 101
    assert again.next_target_seq == 42
    assert again.creation_time == 50.0
    assert stored(again) == [(seq, payload(seq)) for seq in range(1, 101)]
    # Appending after a reopen continues at the right offsets.
    fill(again, range(101, 111))
    again.close()
    assert stored(assert_consistent(tmp_path)) == [(s, payload(s)) for s in range(1, 111)]


def test_close_flushes(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.append_outbound(1, payload(1))
    store.set_next_sender_seq(2)
    store.set_next_target_seq(7)
    store.close()
    again = open_store(tmp_path)
    assert (again.next_sender_seq, again.next_target_seq) == (2, 7)
    assert stored(again) == [(1, payload(1))]


def test_seqnums_without_messages(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    for n in range(2, 12):
        store.set_next_sender_seq(n)
        store.set_next_target_seq(n * 10)
        store.flush()
    store.close()
    again = open_store(tmp_path)
    assert (again.next_sender_seq, again.next_target_seq) == (11, 110)


def test_large_message(tmp_path: Path) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB, every byte value
    store = open_store(tmp_path)
    store.append_outbound(1, big)
    store.append_outbound(2, b"")
    store.append_outbound(3, payload(3))
    store.close()
    assert stored(open_store(tmp_path)) == [(1, big), (2, b""), (3, payload(3))]


# --- get_range -----------------------------------------------------------------------


@pytest.fixture
def ten_to_thirty(tmp_path: Path) -> FileStore:
    """Messages 10..20 and 25..30 (a gap, as after a SequenceReset)."""
    store = open_store(tmp_path)
    for seq in [*range(10, 21), *range(25, 31)]:
        store.append_outbound(seq, payload(seq))
    store.flush()
    return store


@pytest.mark.parametrize(
    ("begin", "end", "expected"),
    [
        (10, 30, [*range(10, 21), *range(25, 31)]),
        (12, 14, [12, 13, 14]),
        (15, 15, [15]),
        (1, 11, [10, 11]),  # begin before the first stored
        (1, 9, []),  # entirely before
        (29, 100, [29, 30]),  # end after the last stored
        (31, 100, []),  # entirely after
        (0, 2**62, [*range(10, 21), *range(25, 31)]),
        (18, 27, [18, 19, 20, 25, 26, 27]),  # across the gap
        (21, 24, []),  # inside the gap
        (22, 25, [25]),
        (14, 13, []),  # begin > end
    ],
)
def test_get_range_is_exact(
    ten_to_thirty: FileStore, begin: int, end: int, expected: list[int]
) -> None:
    assert list(ten_to_thirty.get_range(begin, end)) == [(s, payload(s)) for s in expected]


def test_get_range_sees_unflushed_messages(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    fill(store, range(1, 4))
    store.append_outbound(4, payload(4))
    assert [seq for seq, _ in store.get_range(3, 4)] == [3, 4]


def test_get_range_writes_nothing_and_survives_flushes_while_suspended(tmp_path: Path) -> None:
    """Reading a range must not flush the batch in progress (the engine journal is
    written first), and a range served in chunks across flushes yields each
    message once."""
    store = open_store(tmp_path)
    fill(store, range(1, 4))
    store.append_outbound(4, payload(4))
    store.append_outbound(5, payload(5))
    size = (tmp_path / "messages.dat").stat().st_size
    walk = store.get_range(2, 6)
    assert next(walk) == (2, payload(2))
    assert (tmp_path / "messages.dat").stat().st_size == size  # nothing written by it
    store.flush()  # 4 and 5 reach the files while the walk is suspended
    store.append_outbound(6, payload(6))
    assert [seq for seq, _ in walk] == [3, 4, 5, 6]


def test_get_range_seeks_through_the_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(tmp_path)
    fill(store, range(1, 5001), batch=500)
    reads = ReadCounter(monkeypatch)
    assert [seq for seq, _ in store.get_range(4000, 4002)] == [4000, 4001, 4002]
    # A binary search plus the range itself: a few dozen small reads, not 5,000.
    assert reads.calls < 40
    assert reads.total_bytes < 2000


# --- reset ---------------------------------------------------------------------------------


def test_reset(tmp_path: Path) -> None:
    store = open_store(tmp_path, now=10.0)
    fill(store, range(1, 51))
    store.set_next_target_seq(77)
    store.flush()
    store.append_outbound(51, payload(51))  # pending, dropped by the reset
    store.reset(now=2000.0)
    assert (store.next_sender_seq, store.next_target_seq) == (1, 1)
    assert store.creation_time == 2000.0
    assert store.message_count == 0
    assert stored(store) == []
    assert (tmp_path / "messages.dat").stat().st_size == 0
    assert (tmp_path / "messages.idx").stat().st_size == 0
    # Durable without a flush: a second store sees the reset state.
    other = open_store(tmp_path)
    assert (other.next_sender_seq, other.next_target_seq, other.creation_time) == (1, 1, 2000.0)
    assert stored(other) == []
    other.close()
    fill(store, range(1, 4))
    store.close()
    again = assert_consistent(tmp_path)
    assert again.creation_time == 2000.0
    assert [seq for seq, _ in stored(again)] == [1, 2, 3]
    assert again.next_sender_seq == 4


# --- flush is the commit point -------------------------------------------------------------


def test_nothing_reaches_the_files_before_flush(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    fill(store, range(1, 6))
    store.set_next_target_seq(9)
    store.flush()
    before = files(tmp_path)
    store.append_outbound(6, payload(6))
    store.append_outbound(7, payload(7))
    store.set_next_sender_seq(8)
    store.set_next_target_seq(12)
    assert store.message_count == 7
    assert files(tmp_path) == before
    other = open_store(tmp_path)
    assert (other.next_sender_seq, other.next_target_seq) == (6, 9)
    assert [seq for seq, _ in stored(other)] == [1, 2, 3, 4, 5]
    other.close()
    store.flush()
    assert files(tmp_path) != before
    other = open_store(tmp_path)
    assert (other.next_sender_seq, other.next_target_seq) == (8, 12)
    assert [seq for seq, _ in stored(other)] == [1, 2, 3, 4, 5, 6, 7]
    other.close()


def test_flush_with_nothing_pending_writes_nothing(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    fill(store, range(1, 3))
    before = files(tmp_path)
    store.flush()
    store.flush()
    assert files(tmp_path) == before


def test_flush_is_one_write_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(tmp_path)
    writes: list[int] = []
    real_write, real_pwrite = os.write, os.pwrite

    def write(fd: int, data: bytes) -> int:
        writes.append(fd)
        return real_write(fd, data)

    def pwrite(fd: int, data: bytes, offset: int) -> int:
        writes.append(fd)
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "pwrite", pwrite)
    for seq in range(1, 101):
        store.append_outbound(seq, payload(seq))
        store.set_next_sender_seq(seq + 1)
    assert writes == []
    store.flush()
    assert sorted(writes) == sorted([store._dat, store._idx, store._seq])


# --- recovery --------------------------------------------------------------------------------


def _store_with(path: Path, n: int) -> None:
    store = open_store(path)
    fill(store, range(1, n + 1), batch=3)
    store.close()


def test_recovery_trims_a_torn_index_record(tmp_path: Path) -> None:
    _store_with(tmp_path, 10)
    idx = tmp_path / "messages.idx"
    os.truncate(idx, INDEX_RECORD * 9 + 11)  # record 10 half written
    store = assert_consistent(tmp_path)
    assert [seq for seq, _ in stored(store)] == list(range(1, 10))
    # Message 10's bytes had no index record: gone too.
    assert (tmp_path / "messages.dat").stat().st_size == sum(len(payload(s)) for s in range(1, 10))
    # The seqnum slot said 11; recovery never goes below it.
    assert store.next_sender_seq == 11
    fill(store, range(10, 13))
    store.close()
    assert [seq for seq, _ in stored(assert_consistent(tmp_path))] == list(range(1, 13))


def test_recovery_drops_message_bytes_without_index_record(tmp_path: Path) -> None:
    _store_with(tmp_path, 5)
    with open(tmp_path / "messages.dat", "ab") as f:
        f.write(payload(6) + b"half of 7")
    store = assert_consistent(tmp_path)
    assert [seq for seq, _ in stored(store)] == [1, 2, 3, 4, 5]
    assert store.next_sender_seq == 6
    fill(store, range(6, 9))
    store.close()
    assert stored(assert_consistent(tmp_path)) == [(s, payload(s)) for s in range(1, 9)]


@pytest.mark.parametrize("missing", [1, 7, "all of the last two"])
def test_recovery_drops_index_records_past_the_end_of_messages(
    tmp_path: Path, missing: int | str
) -> None:
    _store_with(tmp_path, 8)
    dat = tmp_path / "messages.dat"
    size = dat.stat().st_size
    cut = len(payload(8)) + len(payload(7)) if missing == "all of the last two" else missing
    assert isinstance(cut, int)
    os.truncate(dat, size - cut)
    store = assert_consistent(tmp_path)
    kept = 6 if missing == "all of the last two" else 7
    assert [seq for seq, _ in stored(store)] == list(range(1, kept + 1))
    fill(store, range(kept + 1, 11))
    store.close()
    assert [seq for seq, _ in stored(assert_consistent(tmp_path))] == list(range(1, 11))


def test_recovery_of_every_torn_state_of_a_flush(tmp_path: Path) -> None:
    """A crash can stop a flush after any prefix of its writes (messages.dat,
    then messages.idx, then the seqnum slot); each such state recovers to a
    consistent store holding a prefix of the messages."""
    base = tmp_path / "base"
    store = open_store(base)
    fill(store, range(1, 4))
    store.close()
    before = files(base)
    store = open_store(base)
    fill(store, range(4, 7), batch=10)  # one flush with 3 messages
    store.close()
    after = files(base)
    grown = after["messages.dat"][len(before["messages.dat"]) :]
    new_idx = after["messages.idx"][len(before["messages.idx"]) :]
    old_dat, old_idx, old_seq = before["messages.dat"], before["messages.idx"], before["seqnums"]
    states: list[tuple[bytes, bytes, bytes]] = []
    for d in range(len(grown) + 1):
        states.append((old_dat + grown[:d], old_idx, old_seq))
    for i in range(len(new_idx) + 1):
        states.append((after["messages.dat"], old_idx + new_idx[:i], old_seq))
    # The slot being replaced holds a prefix of its new bytes over the old ones.
    new_slots = decode_slots(after["seqnums"])
    counters = [s[0] if s is not None else -1 for s in new_slots]
    which = counters.index(max(counters))
    newer = after["seqnums"].ljust(2 * SLOT, b"\0")
    for k in range(SLOT + 1):
        torn = bytearray(old_seq.ljust(2 * SLOT, b"\0"))
        torn[which * SLOT : which * SLOT + k] = newer[which * SLOT : which * SLOT + k]
        states.append((after["messages.dat"], after["messages.idx"], bytes(torn)))
    for n, (dat, idx, seqnums) in enumerate(states):
        path = tmp_path / f"state{n}"
        path.mkdir()
        (path / "messages.dat").write_bytes(dat)
        (path / "messages.idx").write_bytes(idx)
        (path / "seqnums").write_bytes(seqnums)
        (path / "meta.json").write_bytes(after["meta.json"])
        store = assert_consistent(path)
        count = store.message_count
        assert count >= 3, n
        assert store.next_sender_seq == count + 1, n
        if idx == after["messages.idx"]:
            assert count == 6, n
        store.close()


# --- the seqnum slots ----------------------------------------------------------------------


def _two_slots(path: Path) -> None:
    store = open_store(path)
    store.set_next_sender_seq(5)
    store.set_next_target_seq(50)
    store.flush()
    store.set_next_sender_seq(6)
    store.set_next_target_seq(60)
    store.flush()
    store.close()


def _newest(path: Path) -> int:
    decoded = slots(path)
    assert all(s is not None for s in decoded)
    return max(range(2), key=lambda i: decoded[i][0])  # type: ignore[index]


@pytest.mark.parametrize("damage", ["flip a byte", "zero the crc", "torn (file cut)"])
def test_corrupt_newest_slot_falls_back_to_the_other(tmp_path: Path, damage: str) -> None:
    _two_slots(tmp_path)
    newest = _newest(tmp_path)
    path = tmp_path / "seqnums"
    data = bytearray(path.read_bytes())
    if damage == "flip a byte":
        data[newest * SLOT + 9] ^= 0x40
    elif damage == "zero the crc":
        data[newest * SLOT + 24 : newest * SLOT + 28] = b"\0\0\0\0"
    elif newest == 1:
        data = data[: SLOT + 13]
    else:  # the newest is slot 0: tear it by zeroing its tail
        data[10:SLOT] = bytes(SLOT - 10)
    path.write_bytes(bytes(data))
    store = open_store(tmp_path)
    assert (store.next_sender_seq, store.next_target_seq) == (5, 50)
    # The next write goes to the damaged slot, the good one is kept.
    store.set_next_target_seq(61)
    store.flush()
    store.close()
    assert all(s is not None for s in slots(tmp_path))
    again = open_store(tmp_path)
    assert (again.next_sender_seq, again.next_target_seq) == (5, 61)


def test_corrupt_older_slot_is_ignored(tmp_path: Path) -> None:
    _two_slots(tmp_path)
    older = 1 - _newest(tmp_path)
    path = tmp_path / "seqnums"
    data = bytearray(path.read_bytes())
    data[older * SLOT + 3] ^= 0xFF
    path.write_bytes(bytes(data))
    store = open_store(tmp_path)
    assert (store.next_sender_seq, store.next_target_seq) == (6, 60)


def test_both_slots_corrupt_raise(tmp_path: Path) -> None:
    _two_slots(tmp_path)
    path = tmp_path / "seqnums"
    data = bytearray(path.read_bytes())
    data[5] ^= 1
    data[SLOT + 5] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorrupt):
        open_store(tmp_path)


def test_only_slot_corrupt_raises(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.set_next_target_seq(3)
    store.flush()
    store.close()
    path = tmp_path / "seqnums"
    data = bytearray(path.read_bytes())
    data[-10] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorrupt):
        open_store(tmp_path)


def test_empty_or_zeroed_seqnums_file_means_a_fresh_session(tmp_path: Path) -> None:
    _two_slots(tmp_path)
    (tmp_path / "seqnums").write_bytes(bytes(2 * SLOT))
    store = open_store(tmp_path)
    assert (store.next_sender_seq, store.next_target_seq) == (1, 1)


# --- a big store opens without reading its messages -------------------------------------


class ReadCounter:
    """Counts os.read/os.pread calls and bytes, by file descriptor."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.total_bytes = 0
        self.by_fd: dict[int, int] = {}
        real_read, real_pread = os.read, os.pread

        def read(fd: int, n: int) -> bytes:
            return self._count(fd, real_read(fd, n))

        def pread(fd: int, n: int, offset: int) -> bytes:
            return self._count(fd, real_pread(fd, n, offset))

        monkeypatch.setattr(os, "read", read)
        monkeypatch.setattr(os, "pread", pread)

    def _count(self, fd: int, data: bytes) -> bytes:
        self.calls += 1
        self.total_bytes += len(data)
        self.by_fd[fd] = self.by_fd.get(fd, 0) + len(data)
        return data


def test_200k_messages_reopen_without_reading_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path)
    short = b"8=FIX.4.4\x0134=%d\x01"
    for base in range(1, 200_001, 500):
        for seq in range(base, base + 500):
            store.append_outbound(seq, short % seq)
        store.flush()
    store.set_next_sender_seq(200_001)
    store.close()
    assert (tmp_path / "messages.dat").stat().st_size > 3_000_000

    reads = ReadCounter(monkeypatch)
    again = open_store(tmp_path)
    assert reads.by_fd.get(again._dat, 0) == 0  # not one byte of messages.dat
    assert reads.total_bytes < 1024  # the seqnum slots and a last index record
    assert again.message_count == 200_000
    assert again.next_sender_seq == 200_001

    got = list(again.get_range(150_000, 150_010))
    assert got == [(seq, short % seq) for seq in range(150_000, 150_011)]
    assert reads.by_fd[again._dat] == sum(len(short % s) for s in range(150_000, 150_011))
    assert reads.total_bytes < 4096


# --- kill -9 at a random moment ----------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import os, random, sys
    from session_store import FileStore, FsyncPolicy

    def payload(seq):
        return b"8=FIX.4.4\\x0135=8\\x0134=%d\\x0158=" % seq + b"%d," % seq * (seq % 13) + b"\\x01"

    path, policy, progress = sys.argv[1], sys.argv[2], sys.argv[3]
    store = FileStore(path, fsync=FsyncPolicy(policy))
    fd = os.open(progress, os.O_WRONLY | os.O_CREAT, 0o644)
    seq = store.next_sender_seq
    rng = random.Random(seq)
    first = True
    while True:
        for _ in range(rng.randint(1, 6)):
            store.append_outbound(seq, payload(seq))
            seq += 1
        store.set_next_sender_seq(seq)
        store.set_next_target_seq(seq * 2)
        store.flush()
        os.pwrite(fd, b"%020d" % (seq - 1), 0)  # last seq known flushed
        if first:
            sys.stdout.write("ready\\n")
            sys.stdout.flush()
            first = False
    """
)


@pytest.mark.process
@pytest.mark.parametrize("policy", [FsyncPolicy.NONE, FsyncPolicy.BATCH])
def test_kill_9_at_a_random_moment(tmp_path: Path, policy: FsyncPolicy) -> None:
    store_dir = tmp_path / "store"
    progress = tmp_path / "progress"
    rng = random.Random()
    seed = rng.randrange(2**32)
    rng.seed(seed)
    last = 0
    for round_ in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(store_dir), policy.value, str(progress)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == b"ready\n"
            time.sleep(rng.uniform(0, 0.03))  # a random point in the loop
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        acknowledged = int(progress.read_bytes() or b"0")
        store = assert_consistent(store_dir)
        msgs = stored(store)
        top = msgs[-1][0] if msgs else 0
        where = f"seed={seed} round={round_}"
        # Everything flushed before the kill survived (a process crash loses
        # nothing already written); nothing older was lost.
        assert top >= acknowledged >= last, where
        assert store.next_sender_seq == top + 1, where
        assert store.next_target_seq in (2 * (top + 1), 2 * acknowledged + 2), where
        last = top
        store.close()


# --- fsync policies ------------------------------------------------------------------------


class FsyncCounter:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.fds: list[int] = []
        monkeypatch.setattr(os, "fsync", self.fds.append)

    @property
    def calls(self) -> int:
        return len(self.fds)


class FakeClock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1000.0
        fake_time = types.SimpleNamespace(monotonic=lambda: self.now, time=lambda: 5.0)
        monkeypatch.setattr(file_store, "time", fake_time)


def _one_batch(store: FileStore, seq: int) -> None:
    store.append_outbound(seq, payload(seq))
    store.set_next_sender_seq(seq + 1)
    store.flush()


def test_fsync_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileStore(tmp_path, fsync=FsyncPolicy.BATCH)
    fsync = FsyncCounter(monkeypatch)
    _one_batch(store, 1)
    assert sorted(fsync.fds) == sorted([store._dat, store._idx, store._seq])
    _one_batch(store, 2)
    assert fsync.calls == 6
    store.flush()  # nothing pending: no fsync
    assert fsync.calls == 6
    store.set_next_target_seq(5)
    store.flush()  # a seqnum change alone is also forced to disk
    assert fsync.calls == 9
    store.reset(now=1.0)
    assert fsync.calls == 13  # three files, and the new meta.json before its rename
    store.close()
    assert stored(open_store(tmp_path)) == []


def test_fsync_interval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(monkeypatch)
    store = FileStore(tmp_path, fsync=FsyncPolicy.INTERVAL, fsync_interval=0.05)
    fsync = FsyncCounter(monkeypatch)
    _one_batch(store, 1)
    assert fsync.calls == 3  # the first flush syncs
    for seq in range(2, 12):
        clock.now += 0.004
        _one_batch(store, seq)
    assert fsync.calls == 3  # 40 ms later: not yet
    clock.now += 0.011
    _one_batch(store, 12)
    assert fsync.calls == 6  # 51 ms after the last sync
    clock.now += 0.01
    _one_batch(store, 13)
    assert fsync.calls == 6
    store.sync()  # explicit sync (shutdown) always forces
    assert fsync.calls >= 9
    store.close()
    assert [seq for seq, _ in stored(open_store(tmp_path))] == list(range(1, 14))


def test_fsync_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeClock(monkeypatch)
    store = FileStore(tmp_path, fsync=FsyncPolicy.NONE)
    fsync = FsyncCounter(monkeypatch)
    for seq in range(1, 50):
        _one_batch(store, seq)
    store.reset(now=2.0)
    _one_batch(store, 1)
    assert fsync.calls == 1  # only meta.json, replaced on reset, is always synced
    store.sync()
    assert fsync.calls == 4
    store.close()
    assert [seq for seq, _ in stored(open_store(tmp_path))] == [1]


def test_fsync_policy_from_string(tmp_path: Path) -> None:
    store = FileStore(tmp_path, fsync="interval", fsync_interval=1.0)  # type: ignore[arg-type]
    assert store.fsync_policy is FsyncPolicy.INTERVAL
    store.close()
    with pytest.raises(ValueError):
        FileStore(tmp_path, fsync="sometimes")  # type: ignore[arg-type]


# --- failed writes ------------------------------------------------------------------------


def _fail_after(monkeypatch: pytest.MonkeyPatch, good_bytes: int) -> Callable[[], None]:
    """os.write writes `good_bytes` of its first call, then fails with ENOSPC."""
    real_write = os.write
    state = {"calls": 0}

    def write(fd: int, data: bytes) -> int:
        state["calls"] += 1
        if state["calls"] == 1 and good_bytes:
            return real_write(fd, bytes(data)[:good_bytes])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", write)
    return lambda: monkeypatch.setattr(os, "write", real_write)


def test_regression_flush_retried_after_a_failed_write_corrupts_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression (was: file_store.py, flush): when a write fails part way (ENOSPC, EIO)
    the bytes already appended stay in messages.dat but `_dat_size` and the
    pending lists are not updated. The next flush appends the batch again
    (O_APPEND, after the partial bytes) with index offsets computed from the
    old `_dat_size`: messages 4 and 5 below read back as other bytes, during
    the session and after a reopen. Fix: on a failed flush, truncate the
    files back to their committed sizes (os.ftruncate to _dat_size and
    _count * 20) before re-raising, or mark the store failed so that every
    later call raises."""
    store = open_store(tmp_path)
    fill(store, range(1, 4))
    store.append_outbound(4, payload(4))
    store.append_outbound(5, payload(5))
    restore = _fail_after(monkeypatch, good_bytes=7)
    with pytest.raises(OSError):
        store.flush()
    restore()
    # The disk has room again. Refusing is acceptable; storing wrong bytes is not.
    with contextlib.suppress(OSError):
        store.flush()
    msgs = stored(store)
    assert all(raw == payload(seq) for seq, raw in msgs), msgs[3:]
    store.close()
    assert_consistent(tmp_path)


def test_interval_policy_with_a_background_syncer_never_fsyncs_on_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from session_store import BackgroundSyncer

    callers: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(
        os, "fsync", lambda fd: (callers.append(threading.current_thread().name), real_fsync(fd))
    )
    syncer = BackgroundSyncer(interval=3600)
    store = FileStore(tmp_path, fsync=FsyncPolicy.INTERVAL, syncer=syncer)
    callers.clear()  # creating the store synced its new meta.json
    fill(store, range(1, 20))
    assert callers == []  # flushes only marked the files dirty
    syncer.sync_now()
    assert len(callers) == 3 and set(callers) == {threading.current_thread().name}
    syncer.stop()
    store.close()
    assert [seq for seq, _ in stored(open_store(tmp_path))] == list(range(1, 20))
