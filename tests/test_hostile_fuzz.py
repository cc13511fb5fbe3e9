"""Fuzzing the codec and the session state machine (hypothesis, bounded time).

A stateful model plays a hostile FIX peer against the sans-I/O Connection and
Session: logons (with and without reset), messages with good, low and high
MsgSeqNums, gap fills and resets, resend requests with any range, garbage,
truncated frames, wrong checksums, huge BodyLengths, clock jumps, disconnects.
After every step: nothing raised, everything the gateway wrote is well-formed
FIX (BodyLength and CheckSum right), its new messages are numbered 1, 2, 3, ...
without a gap or a repeat (a resend is marked PossDup and never beyond what was
sent), and a valid in-sequence message is answered as the spec says.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from fix_gateway.codec import Decoder, Garbled, Message, checksum, encode
from fix_gateway.session import Connection, Session, SessionConfig, SessionRegistry, State
from fix_gateway.utc_time import format_timestamp
from session_store import FileStore, FsyncPolicy
from tests.fix_peer import DICTIONARY, T0, MessageBuilder, SansIOPeer

MAX_MESSAGE = 4096
FUZZ = settings(max_examples=200, stateful_step_count=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def assert_well_formed(raw: bytes) -> None:
    """BodyLength counts the bytes from after its SOH to the CheckSum field; the
    CheckSum is their byte sum mod 256, three digits."""
    head = re.match(rb"8=FIX\.4\.4\x019=(\d+)\x01", raw)
    assert head is not None, raw
    trailer = head.end() + int(head[1])
    assert raw[trailer : trailer + 3] == b"10=", raw
    assert raw[trailer + 6 :] == b"\x01" and len(raw) == trailer + 7, raw
    assert int(raw[trailer + 3 : trailer + 6]) == checksum(raw[:trailer]), raw
    assert raw[head.end() : head.end() + 3] == b"35=", raw


class HostilePeer(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        config = SessionConfig(sender_comp_id="FIXGW", target_comp_id="CLIENT1",
                               logout_timeout=2.0)
        # A real FileStore: what the session asks it to keep must be storable.
        self.directory = tempfile.mkdtemp(prefix="fixgw-fuzz-")
        store = FileStore(self.directory, T0, fsync=FsyncPolicy.NONE)
        self.session = Session(config, store, DICTIONARY, on_event=lambda *a: None)
        self.registry = SessionRegistry([self.session])
        self.now = T0
        self.peer = MessageBuilder()
        self.conn = Connection(self.registry, self.now, MAX_MESSAGE)
        self.decoder = Decoder(10**7)
        self.last_new_seq = 0  # the last MsgSeqNum the gateway used for a new message
        self.last_target = 1
        self.replies: list[Message] = []

    def teardown(self) -> None:
        self.session.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # --- plumbing ---------------------------------------------------------------

    def feed(self, data: bytes) -> list[Message]:
        self.conn.data_received(data, self.now)
        return self.collect()

    def collect(self) -> list[Message]:
        self.session.store.flush()  # as the server does before writing to the socket
        out: list[Message] = []
        for chunk in self.conn.take_output():
            items, over = self.decoder.feed(chunk)
            assert over is None
            for item in items:
                assert not isinstance(item, Garbled), item
                assert_well_formed(item.raw)
                self.check_numbering(item)
                out.append(item)
        self.replies = out
        return out

    def check_numbering(self, msg: Message) -> None:
        seq = int(msg.get(34) or b"0")
        if msg.get(43) == b"Y":
            assert 1 <= seq <= self.last_new_seq, (seq, self.last_new_seq)
            return
        if msg.msg_type == b"A" and msg.get(141) == b"Y" and seq == 1:
            self.last_new_seq = 1  # both sides reset
            return
        assert seq == self.last_new_seq + 1, (seq, self.last_new_seq, msg)
        self.last_new_seq = seq

    @property
    def steady(self) -> bool:
        """Logged on, nothing queued or awaited, no partial frame buffered: the
        next in-sequence message must be answered exactly."""
        s = self.session
        return (self.conn.session is s and self.conn.close_reason is None
                and s.state is State.LOGGED_ON and not s._queue and s._resend_until is None
                and self.conn.decoder.buffered == 0
                and self.peer.next_seq == s.store.next_target_seq)

    # --- connection lifecycle ----------------------------------------------------------

    @precondition(lambda self: self.conn.close_reason is not None or self.conn.session is None)
    @rule(reset=st.booleans(), seq_shift=st.sampled_from([0, 0, 0, 3, -1]))
    def logon(self, reset: bool, seq_shift: int) -> None:
        if self.conn.close_reason is not None:
            self.reconnect()
        if reset:
            self.peer.next_seq = 1
        seq = max(1, self.peer.next_seq + seq_shift)
        self.peer.next_seq = seq + 1
        extra = [(141, "Y")] if reset else []
        clean = self.conn.decoder.buffered == 0
        replies = self.feed(self.peer.logon(30, *extra, seq=seq, now=self.now))
        if reset and clean:
            assert replies and replies[0].msg_type == b"A", replies

    @rule()
    def reconnect(self) -> None:
        self.conn.connection_lost(self.now, "fuzz disconnect")
        assert not self.session.connected
        self.conn = Connection(self.registry, self.now, MAX_MESSAGE)
        self.decoder = Decoder(10**7)

    @rule(seconds=st.sampled_from([0.5, 5.0, 31.0, 40.0, 200.0]))
    def tick(self, seconds: float) -> None:
        self.now += seconds
        self.conn.tick(self.now, logon_timeout=5.0)
        self.collect()

    # --- well-formed messages --------------------------------------------------------------

    def send(self, msg_type: str, *body: tuple[int, object], shift: int = 0,
             poss_dup: bool = False) -> tuple[int, list[Message]]:
        seq = max(1, self.peer.next_seq + shift)
        self.peer.next_seq = max(self.peer.next_seq, seq + 1)
        header = [(43, "Y"), (122, b"20270115-08:00:00.000")] if poss_dup else []
        data = self.peer.build(msg_type, *body, seq=seq, now=self.now,  # type: ignore[arg-type]
                               header=header)
        return seq, self.feed(data)

    @rule(shift=st.sampled_from([0, 0, 0, 1, 5, -1]), poss_dup=st.booleans())
    def new_order(self, shift: int, poss_dup: bool) -> None:
        steady = self.steady and shift == 0 and not poss_dup
        seq, replies = self.send("D", (11, f"O{self.peer.next_seq}"), (54, 1), (40, 1),
                                 (60, b"20270115-08:00:00.000"), shift=shift, poss_dup=poss_dup)
        if steady:  # the RejectingApplication answers every order: 35=j, or 35=3 if invalid
            assert [(m.msg_type, m.get(45)) for m in replies] in (
                [(b"j", str(seq).encode())], [(b"3", str(seq).encode())]), replies

    @rule(shift=st.sampled_from([0, 0, 2, -1]))
    def test_request(self, shift: int) -> None:
        steady = self.steady and shift == 0
        _, replies = self.send("1", (112, "ping"), shift=shift)
        if steady:
            assert [(m.msg_type, m.get(112)) for m in replies] == [(b"0", b"ping")], replies

    @rule(shift=st.sampled_from([0, 0, 3]))
    def heartbeat(self, shift: int) -> None:
        steady = self.steady and shift == 0
        _, replies = self.send("0", shift=shift)
        if steady:
            assert replies == []

    @rule(begin=st.integers(-2, 60), end=st.integers(-2, 60), shift=st.sampled_from([0, 0, 2]))
    def resend_request(self, begin: int, end: int, shift: int) -> None:
        steady = self.steady and shift == 0
        sent_before = self.last_new_seq
        _, replies = self.send("2", (7, begin), (16, end), shift=shift)
        if not steady:
            return
        if 1 <= begin <= sent_before and (end == 0 or end >= begin):
            # Every seqnum of the range answered once, in order: copies and gap fills.
            last = sent_before if end == 0 or end > sent_before else end
            covered: list[int] = []
            for m in replies:
                seq = int(m.get(34) or b"0")
                stop = int(m.get(36) or b"0") if m.msg_type == b"4" else seq + 1
                covered += range(seq, stop)
            assert covered == list(range(begin, last + 1)), (begin, end, replies)
        else:
            assert [m.msg_type for m in replies] == [b"3"], replies

    @rule(jump=st.integers(-3, 10), gap_fill=st.booleans())
    def sequence_reset(self, jump: int, gap_fill: bool) -> None:
        new_seq = max(0, self.peer.next_seq + jump)
        self.send("4", (36, new_seq), (123, "Y" if gap_fill else "N"), poss_dup=gap_fill)
        if new_seq > self.peer.next_seq:
            self.peer.next_seq = new_seq

    @rule(tag=st.sampled_from([34, 36, 7, 16, 108]),
          value=st.sampled_from([b"abc", b"-1", b"", b"1e3", b"99999999999999999999999"]),
          msg_type=st.sampled_from(["4", "2", "0"]))
    def bad_number(self, tag: int, value: bytes, msg_type: str) -> None:
        """Non-numbers, negatives and numbers beyond any store in number fields."""
        fields = {"4": [(36, 5), (123, "N")], "2": [(7, 1), (16, 0)], "0": []}[msg_type]
        body = [(tag, value) if t == tag else (t, v) for t, v in fields]
        if tag not in dict(fields) and tag != 34:
            body.append((tag, value))
        seq = self.peer.next_seq
        self.peer.next_seq += 1
        header = {34: value} if tag == 34 else {34: seq}
        data = encode([(35, msg_type), (49, "CLIENT1"), (56, "FIXGW"), (34, header[34]),
                       (52, self.peer_time()), *body])
        self.feed(data)

    def peer_time(self) -> bytes:
        return format_timestamp(self.now)

    @rule(text=st.sampled_from(["", "bye"]))
    def logout(self, text: str) -> None:
        self.send("5", *([(58, text)] if text else []))

    @rule(tag=st.sampled_from([0, -1, 5000, 9999, 11, 35]), value=st.binary(max_size=8))
    def odd_field(self, tag: int, value: bytes) -> None:
        value = value.replace(b"\x01", b"x")
        self.send("0", (tag, value))

    # --- broken bytes ------------------------------------------------------------------

    @rule(data=st.binary(max_size=200))
    def garbage(self, data: bytes) -> None:
        self.feed(data)

    @rule(cut=st.integers(1, 60))
    def truncated_frame(self, cut: int) -> None:
        frame = self.peer.build("0", seq=self.peer.next_seq, now=self.now)
        self.feed(frame[: max(1, len(frame) - cut)])

    @rule()
    def wrong_checksum(self) -> None:
        frame = self.peer.build("1", (112, "bad"), seq=self.peer.next_seq, now=self.now)
        bad = frame[:-4] + (b"%03d" % ((int(frame[-4:-1]) + 1) % 256)) + b"\x01"
        steady = self.steady
        garbled = self.conn.garbled
        replies = self.feed(bad)
        if steady:  # dropped and counted, never answered, never a seqnum consumed
            assert replies == [] and self.conn.garbled == garbled + 1
            assert self.conn.close_reason is None

    @rule(length=st.sampled_from([MAX_MESSAGE, 10**6, 999_999_999]))
    def huge_body_length(self, length: int) -> None:
        clean = self.conn.decoder.buffered == 0  # else a partial frame may swallow it
        self.feed(b"8=FIX.4.4\x019=%d\x0135=D\x0134=1\x01" % length)
        if clean:
            assert self.conn.close_reason is not None  # the stream cannot be trusted now

    @rule(size=st.sampled_from([MAX_MESSAGE // 2, MAX_MESSAGE * 2]))
    def endless_bytes_without_soh(self, size: int) -> None:
        self.feed(b"8=FIX.4.4" + b"A" * size)
        assert self.conn.decoder.buffered <= MAX_MESSAGE

    # --- invariants ----------------------------------------------------------------------

    @invariant()
    def bounded_and_monotone(self) -> None:
        store = self.session.store
        assert self.conn.decoder.buffered <= MAX_MESSAGE
        assert store.next_sender_seq == self.last_new_seq + 1 or self.last_new_seq == 0
        assert len(self.session._queue) <= 10_000
        if store.next_target_seq < self.last_target:
            assert store.next_target_seq <= 2  # only a reset (and its Logon) lowers it
        self.last_target = store.next_target_seq


HostilePeer.TestCase.settings = FUZZ
test_session_state_machine_fuzz = pytest.mark.slow(HostilePeer.TestCase)


# --- the codec alone ------------------------------------------------------------------

def _frame(i: int) -> bytes:
    return encode([(35, "D"), (34, i), (49, "C"), (52, "20270115-08:00:00"), (56, "G"),
                   (11, f"order-{i}"), (58, "x" * (i % 300))])


@st.composite
def hostile_stream(draw: st.DrawFn) -> bytes:
    """Valid frames mixed with mutated ones: flipped bytes, cuts, lying BodyLengths."""
    parts: list[bytes] = []
    for i in range(draw(st.integers(1, 12))):
        frame = _frame(i)
        kind = draw(st.sampled_from(["ok", "ok", "flip", "cut", "length", "junk"]))
        if kind == "flip":
            at = draw(st.integers(0, len(frame) - 1))
            frame = frame[:at] + bytes([frame[at] ^ draw(st.integers(1, 255))]) + frame[at + 1:]
        elif kind == "cut":
            frame = frame[: draw(st.integers(0, len(frame) - 1))]
        elif kind == "length":
            frame = re.sub(rb"\x019=\d+", b"\x019=%d" % draw(st.integers(0, 10**9)), frame,
                           count=1)
        elif kind == "junk":
            frame = draw(st.binary(max_size=64)) + frame
        parts.append(frame)
    return b"".join(parts)


@FUZZ
@given(stream=hostile_stream(), cuts=st.lists(st.integers(1, 400), max_size=20))
def test_codec_fuzz_emits_only_well_formed_frames(stream: bytes, cuts: list[int]) -> None:
    decoder = Decoder(2048)
    pos = 0
    chunks = []
    for cut in cuts:
        chunks.append(stream[pos : pos + cut])
        pos += cut
    chunks.append(stream[pos:])
    for chunk in chunks:
        items, over = decoder.feed(chunk)
        for item in items:
            if isinstance(item, Message):
                assert_well_formed(item.raw)
                assert item.msg_type == b"D"
            else:
                assert item.reason
        assert decoder.buffered <= 2048
        if over is not None:
            assert over.size > 2048 and decoder.buffered == 0


# --- regressions found by the fuzzer -----------------------------------------------------

def test_regression_sequence_reset_beyond_any_store_is_rejected(tmp_path: Path) -> None:
    """Found by the state machine: SequenceReset NewSeqNo=10**23 was taken as the next
    expected seqnum, which the FileStore cannot pack: every later flush raised and the
    session was wedged. Now: Reject 373=5 on tag 36, and the session carries on."""
    store = FileStore(tmp_path, T0, fsync=FsyncPolicy.NONE)
    session = Session(SessionConfig("FIXGW", "CLIENT1"), store, DICTIONARY,
                      on_event=lambda *a: None)
    peer = SansIOPeer(session)
    peer.log_on()
    for gap_fill in ("N", "Y"):
        header = [(43, "Y"), (122, format_timestamp(T0))] if gap_fill == "Y" else []
        [reject] = peer.send("4", (36, "99999999999999999999999"), (123, gap_fill),
                             header=header, seq=store.next_target_seq)
        assert (reject.msg_type, reject.get(371), reject.get(373)) == (b"3", b"36", b"5")
        store.flush()
    [heartbeat] = peer.send("1", (112, "alive"), seq=store.next_target_seq)
    assert heartbeat.get(112) == b"alive"
    store.flush()
    store.close()
    assert FileStore(tmp_path, T0).next_sender_seq == session.store.next_sender_seq
