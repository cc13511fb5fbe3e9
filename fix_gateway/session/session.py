"""The FIX 4.4 session layer, acceptor side, as a sans-I/O state machine.

A `Session` lives as long as its configured identity, across connections.
The connection shell hands it parsed messages and clock ticks; it answers by
appending encoded bytes to `outbox` (already added to the store, to be
flushed before they are written) and by setting `close_reason` when the
connection must end. It never touches a socket or reads a clock.

States: DISCONNECTED -> (Logon accepted) -> LOGGED_ON -> (we send Logout)
LOGOUT_SENT -> DISCONNECTED. One handler per inbound MsgType; `_verify` holds
the checks every message passes (SendingTime, CompIDs, MsgSeqNum, PossDup).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from enum import Enum
from typing import Protocol

from fix_gateway import dictionary as dd
from fix_gateway import tags as t
from fix_gateway.codec import (
    MAX_INT_DIGITS,
    FieldValue,
    Message,
    frame,
    parse_int,
    parse_uint,
    render,
)
from fix_gateway.dictionary import Dictionary, Problem
from fix_gateway.redaction import redacted
from fix_gateway.session.config import SessionConfig
from fix_gateway.session.counters import OTHER_MSG_TYPE, SessionCounters, bump, reason_kind
from fix_gateway.session.resend import resend_stream
from fix_gateway.session.throttle import BRR_THROTTLE_LIMIT_EXCEEDED, Throttle
from fix_gateway.utc_time import format_timestamp, parse_timestamp
from session_store import SessionStore

log = logging.getLogger("fixgw.session")

# Routing fields a reply swaps: OnBehalfOf* <-> DeliverTo*.
_REVERSE_ROUTE = (
    (t.ON_BEHALF_OF_COMP_ID, t.DELIVER_TO_COMP_ID),
    (t.ON_BEHALF_OF_SUB_ID, t.DELIVER_TO_SUB_ID),
    (t.ON_BEHALF_OF_LOCATION_ID, t.DELIVER_TO_LOCATION_ID),
    (t.DELIVER_TO_COMP_ID, t.ON_BEHALF_OF_COMP_ID),
    (t.DELIVER_TO_SUB_ID, t.ON_BEHALF_OF_SUB_ID),
    (t.DELIVER_TO_LOCATION_ID, t.ON_BEHALF_OF_LOCATION_ID),
)
_MAX_QUEUED = 10_000  # out-of-order messages held while a gap is filled
# Business ids remembered for PossResend dedup: a resend comes soon after the
# original, so the last 20,000 per session are plenty; kept as 64-bit hashes
# (~100 bytes each with the set and queue slots, ~2 MB per session when full).
_MAX_SEEN_IDS = 20_000
# Highest NewSeqNo accepted (QuickFIX/J's int range); a store keeps seqnums in 64 bits,
# and a peer must not be able to set one it cannot store.
MAX_SEQ_NUM = 2**31 - 1
# A ResendRequest is answered a chunk at a time (this many messages or bytes at
# most), each when the socket has taken the last: a peer recovering a day's
# reports is served at its own pace, and is not mistaken for a slow consumer.
RESEND_CHUNK = 1000
RESEND_CHUNK_BYTES = 256 * 1024
# Longest TestReqID echoed in a Heartbeat; a longer one gets Reject 373=5.
MAX_TEST_REQ_ID = 128


class State(Enum):
    DISCONNECTED = "disconnected"
    LOGGED_ON = "logged_on"
    LOGOUT_SENT = "logout_sent"


class MessageSink(Protocol):
    """Where a session's inbound messages are copied (the per-session message log)."""

    def inbound(self, now: float, raw: bytes) -> None: ...

    def outbound(self, now: float, frames: list[bytes]) -> None: ...


class Application(Protocol):
    """What the session hands valid, in-sequence application messages to."""

    def on_message(self, session: Session, msg: Message, now: float) -> None: ...


class RejectingApplication:
    """Until an application is attached: every message gets BusinessMessageReject."""

    def on_message(self, session: Session, msg: Message, now: float) -> None:
        session.reject_unsupported(msg, now)


EventSink = Callable[[str, "Session", dict[str, object]], None]


def _log_value(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return repr(value) if isinstance(value, str) else str(value)


def _log_event(event: str, session: Session, fields: dict[str, object]) -> None:
    if log.isEnabledFor(logging.INFO):
        detail = " ".join(f"{k}={_log_value(v)}" for k, v in fields.items())
        log.info("event=%s session=%s %s", event, session.config.name, detail)


class Session:
    def __init__(
        self,
        config: SessionConfig,
        store: SessionStore,
        dictionary: Dictionary,
        application: Application | None = None,
        on_event: EventSink = _log_event,
    ) -> None:
        self.config = config
        self.store = store
        self.dictionary = dictionary
        self.application: Application = application or RejectingApplication()
        self.on_event = on_event
        self.counters = SessionCounters()
        self.message_log: MessageSink | None = None  # set by the gateway when logging messages
        self.state = State.DISCONNECTED
        self.outbox: list[bytes] = []
        self.close_reason: str | None = None
        self.heartbeat_interval = 30
        self.last_sent = 0.0
        self.last_received = 0.0
        self.logout_sent_at = 0.0
        self._test_request_id: bytes | None = None
        self._resend_until: int | None = None  # a ResendRequest of ours is open up to this seq
        # A ResendRequest of theirs being answered: what is left of it, and the new
        # messages (seq, raw) that wait for it to finish, so they go out in seq order.
        self._resend: Iterator[bytes] | None = None
        self._resend_range = (0, 0)  # (BeginSeqNo, last seqnum) of the resend in progress
        self._held: list[tuple[int, bytes]] = []
        self._queue: dict[int, Message] = {}
        self._queued_bytes = 0  # of the messages in _queue, bounded by max_queued_bytes
        self._seen_ids: set[int] = set()  # hash((MsgType, ClOrdID)) of recent messages
        self._seen_order: deque[int] = deque()  # oldest first, for eviction
        self._explain_refusal = True
        self.throttle = Throttle.for_config(config)  # None: not throttled
        self._begin = config.begin_string.encode()
        self._ids = [(t.SENDER_COMP_ID, config.sender_comp_id.encode()),
                     (t.TARGET_COMP_ID, config.target_comp_id.encode())]
        self._sender_field = render(self._ids[:1])
        self._target_field = render(self._ids[1:])
        self._their_id = config.target_comp_id.encode()
        self._our_id = config.sender_comp_id.encode()
        self._handlers: dict[bytes, Callable[[Message, int, float], None]] = {
            t.HEARTBEAT: self._on_heartbeat,
            t.TEST_REQUEST: self._on_test_request,
            t.RESEND_REQUEST: self._on_resend_request,
            t.REJECT: self._on_reject,
            t.SEQUENCE_RESET: self._on_sequence_reset,
            t.LOGOUT: self._on_logout,
            t.LOGON: self._on_logon_while_logged_on,
        }

    # --- lifecycle ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.state is not State.DISCONNECTED

    def take_output(self) -> list[bytes]:
        out, self.outbox = self.outbox, []
        return out

    @property
    def resending(self) -> bool:
        """A ResendRequest is still being answered (see `continue_resend`)."""
        return self._resend is not None

    def continue_resend(self, now: float, limit: int = RESEND_CHUNK,
                        max_bytes: int = RESEND_CHUNK_BYTES) -> bool:
        """Queue the next chunk of the resend in progress (`limit` messages or about
        `max_bytes`); when it is done, the messages held meanwhile follow. Returns
        whether more remains."""
        stream = self._resend
        if stream is None:
            return False
        chunk: list[bytes] = []
        size = 0
        more = False
        for raw in stream:
            chunk.append(raw)
            size += len(raw)
            if len(chunk) >= limit or size >= max_bytes:
                more = True
                break
        self.outbox.extend(chunk)
        if chunk:
            self._count_resent(chunk)
        self.last_sent = now
        if not more:
            self._drop_resend()
        return more

    def _drop_resend(self) -> None:
        """End the resend in progress; the held messages go out now."""
        self._resend = None
        if self._held:
            self.outbox.extend(raw for _, raw in self._held)
            self._held = []

    def _reset_store(self, now: float) -> None:
        self._resend = None  # it reads the files the reset empties
        self._held = []  # numbered in the history the reset ends
        self.store.reset(now)

    def logon(self, msg: Message, now: float, explain_refusal: bool = True) -> None:
        """A new connection's first message, already matched to this session.

        A refused Logon closes the connection; with `explain_refusal` a Logout
        with a Text saying why goes first, otherwise nothing is sent (as
        QuickFIX does, and as the FIX acceptance scripts expect).
        """
        self.close_reason = None
        # A new connection starts with the Logon reply; what is owed is stored and
        # goes out by resend, PossDup, when the peer asks.
        self.outbox = []
        self.state = State.LOGGED_ON  # provisional: refusals below move it on
        raw = redacted(msg)  # what is written down: no password
        self._count_inbound(msg, raw, now)
        self.last_received = now
        self._explain_refusal = explain_refusal
        self._seen_ids.clear()
        self._seen_order.clear()
        cfg = self.config
        if msg.values[0] != self._begin:
            self._refuse(msg, "Incorrect BeginString", now)
            return
        problem = self.dictionary.validate(msg, cfg.validation)
        seq = _seqnum(msg)
        if problem is not None or seq is None:
            text = f"Invalid Logon: {problem.text} ({problem.tag})" if problem else \
                "Invalid Logon: MsgSeqNum(34) missing"
            self._refuse(msg, text, now)
            return
        if cfg.check_latency and not self._good_time(msg.get(t.SENDING_TIME), now):
            self._refuse(msg, "SendingTime accuracy problem", now)
            return
        heartbeat = parse_int(msg.get(t.HEART_BT_INT)) or 0
        if heartbeat < 0:  # QuickFIX/J's answer, not a range the settings could widen
            self._refuse(msg, "HeartBtInt must not be negative", now)
            return
        if not cfg.heartbeat_min <= heartbeat <= cfg.heartbeat_max:
            self._refuse(msg, f"HeartBtInt {heartbeat} outside {cfg.heartbeat_min}.."
                              f"{cfg.heartbeat_max}", now)
            return
        if msg.get(t.ENCRYPT_METHOD) != b"0":
            self._refuse(msg, "Unsupported EncryptMethod", now)
            return
        reset_requested = msg.get(t.RESET_SEQ_NUM_FLAG) == b"Y"
        if reset_requested or cfg.reset_on_logon:
            self._reset_store(now)
            self.on_event("reset", self, {"requested": reset_requested})
        self.store.append_inbound(raw, now)  # after a reset, which starts a new history
        expected = self.store.next_target_seq
        if seq < expected and not reset_requested:
            text = f"MsgSeqNum too low, expecting {expected} but received {seq}"
            self.on_event("logon_refused", self, {"text": text})
            bump(self.counters.logon_refusals, reason_kind(text))
            self.send(t.LOGOUT, [(t.TEXT, text)], now, reply_to=msg)
            self._close(text)
            return
        self.heartbeat_interval = heartbeat
        self._test_request_id = None
        self._answer_logon(msg, heartbeat, reset_requested, now)
        self.counters.logons += 1
        self.on_event("logon", self, {"seq": seq, "heartbeat": heartbeat})
        if seq > expected:
            self._target_too_high(msg, seq, now)
        else:
            self._advance(seq)
            self._drain_queue(now)

    def disconnected(self, now: float, reason: str) -> None:
        """The connection is gone (closed by either side)."""
        if self.state is State.DISCONNECTED:
            return
        self.state = State.DISCONNECTED
        self._clear_queue()
        self._resend_until = None
        self._resend = None  # the peer asks again when it is back
        self._held = []  # stored: resent on request
        self.outbox = []  # made after the cut (stored too): not for the next connection
        self._test_request_id = None
        bump(self.counters.disconnects, reason_kind(reason))
        self.on_event("disconnect", self, {"reason": reason})
        if self.config.reset_on_disconnect:
            self._reset_store(now)

    def _answer_logon(self, msg: Message, heartbeat: int, reset: bool, now: float) -> None:
        reply: list[tuple[int, FieldValue]] = [(t.ENCRYPT_METHOD, b"0"),
                                                (t.HEART_BT_INT, heartbeat)]
        if reset:
            reply.append((t.RESET_SEQ_NUM_FLAG, b"Y"))
        self.send(t.LOGON, reply, now, reply_to=msg)

    def _refuse(self, msg: Message, text: str, now: float) -> None:
        self.on_event("logon_refused", self, {"text": text})
        bump(self.counters.logon_refusals, reason_kind(text))
        if self._explain_refusal:
            self.send(t.LOGOUT, [(t.TEXT, text)], now, reply_to=msg)
        self._close(text)

    def _close(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason

    # --- inbound -----------------------------------------------------------------

    def receive(self, msg: Message, now: float) -> None:
        """One inbound message on a logged-on connection."""
        if self.state is State.DISCONNECTED or self.close_reason is not None:
            return
        raw = redacted(msg)  # what is written down: no password
        self.store.append_inbound(raw, now)
        self.last_received = now
        self._count_inbound(msg, raw, now)
        self._next(msg, now)
        self._drain_queue(now)

    def _count_inbound(self, msg: Message, raw: bytes, now: float) -> None:
        received = self.counters.received
        msg_type = msg.values[2]  # msg.msg_type, without the property call
        if msg_type not in self.dictionary.known_msg_types:
            msg_type = OTHER_MSG_TYPE
        received[msg_type] = received.get(msg_type, 0) + 1
        if self.message_log is not None:
            self.message_log.inbound(now, raw)

    def _next(self, msg: Message, now: float) -> None:
        msg_type = msg.msg_type
        seq = _seqnum(msg)
        if msg.values[0] != self._begin:
            if seq is not None:
                self._advance(seq)
            self.logout("Incorrect BeginString", now)
            return
        if msg.get(t.MSG_SEQ_NUM) is None:
            # Before validation: without a MsgSeqNum the sequence cannot be trusted past
            # this message, so a Reject (which would need a RefSeqNum) is no answer.
            self.logout(_NO_SEQ_NUM, now, close=True)
            return
        problem = self.dictionary.validate(msg, self.config.validation)
        if problem is not None:
            # Dictionary problems come before the session checks (an empty
            # TargetCompID is "tag without value", not a CompID problem).
            self._reject(msg, seq or 0, problem, now)
            if seq is not None and msg_type not in (t.SEQUENCE_RESET, t.LOGON):
                self._advance(seq)
            return
        if seq is None:  # cannot happen after validation: 34 is a required SEQNUM
            self.logout("MsgSeqNum(34) missing or invalid", now, close=True)
            return
        handler = self._handlers.get(msg_type, self._on_application)
        handler(msg, seq, now)

    def _verify(
        self, msg: Message, seq: int, now: float, check_high: bool = True, check_low: bool = True
    ) -> bool:
        """The checks every inbound message passes; False means: do not act on it."""
        sending_time, sender, target, poss_dup = msg.get_many(_VERIFIED_TAGS)
        if self.config.check_latency and not self._good_time(sending_time, now):
            self._reject(msg, seq, _SENDING_TIME_PROBLEM, now)
            self._advance(seq)
            self.logout("", now, reason="SendingTime accuracy problem")
            return False
        if self.config.check_comp_id and (sender != self._their_id or target != self._our_id):
            self._reject(msg, seq, Problem(dd.COMPID_PROBLEM, None, "CompID problem"), now)
            self._advance(seq)
            self.logout("", now, reason="CompID problem")
            return False
        expected = self.store.next_target_seq
        if check_high and seq > expected:
            self._target_too_high(msg, seq, now)
            return False
        if poss_dup == b"Y" and msg.msg_type != t.SEQUENCE_RESET:
            orig = msg.get(t.ORIG_SENDING_TIME)
            if orig is None:
                self._reject(msg, seq, Problem(dd.REQUIRED_TAG_MISSING, t.ORIG_SENDING_TIME,
                                               "Required tag missing"), now)
                self._advance(seq)
                return False
            orig_time = parse_timestamp(orig)
            sent = parse_timestamp(sending_time or b"")
            if orig_time is not None and sent is not None and orig_time > sent:
                self._reject(msg, seq, _SENDING_TIME_PROBLEM, now)
                self._advance(seq)
                self.logout("", now, reason="OrigSendingTime later than SendingTime")
                return False
        if check_low and seq < expected:
            if poss_dup == b"Y":
                return False  # a duplicate of something processed: ignore
            text = f"MsgSeqNum too low, expecting {expected} but received {seq}"
            self.logout(text, now, close=True)
            return False
        if (check_high or check_low) and self._resend_until is not None \
                and seq >= self._resend_until:
            self.on_event("resend_complete", self, {"until": self._resend_until})
            self._resend_until = None
        self._test_request_id = None
        return True

    def _good_time(self, sending_time: bytes | None, now: float) -> bool:
        sent = parse_timestamp(sending_time or b"")
        return sent is not None and abs(now - sent) <= self.config.max_latency

    def _advance(self, seq: int) -> None:
        """Count an inbound message as processed if it was the expected one."""
        if seq == self.store.next_target_seq:
            self.store.set_next_target_seq(seq + 1)

    def _target_too_high(self, msg: Message, seq: int, now: float) -> None:
        limit = self.config.max_queued_bytes
        if len(self._queue) >= _MAX_QUEUED or self._queued_bytes + len(msg.raw) > limit:
            # Stored inbound already; the peer sends it again when it logs on and is
            # asked for the gap, so nothing is lost but this connection.
            self.logout("Too many messages queued while waiting for a gap fill (more than"
                        f" {limit} bytes); log on again and resend", now, close=True)
            return
        self._unqueue(seq)  # the same seqnum again replaces the one held
        self._queue[seq] = msg
        self._queued_bytes += len(msg.raw)
        if self._resend_until is not None and seq >= self.store.next_target_seq:
            return  # already asked; what we asked for will fill this too
        expected = self.store.next_target_seq
        self._resend_until = seq
        self.send(t.RESEND_REQUEST, [(t.BEGIN_SEQ_NO, expected), (t.END_SEQ_NO, 0)], now)
        self.on_event("resend_requested", self, {"begin": expected, "received": seq})

    def _drain_queue(self, now: float) -> None:
        queue = self._queue
        while queue and self.close_reason is None and self.state is not State.DISCONNECTED:
            expected = self.store.next_target_seq
            for stale in [s for s in queue if s < expected]:
                self._unqueue(stale)
            msg = self._unqueue(expected)
            if msg is None:
                return
            if msg.msg_type in (t.LOGON, t.RESEND_REQUEST):
                self._advance(expected)  # acted on when it arrived
            else:
                self._next(msg, now)

    def _unqueue(self, seq: int) -> Message | None:
        msg = self._queue.pop(seq, None)
        if msg is not None:
            self._queued_bytes -= len(msg.raw)
        return msg

    def _clear_queue(self) -> None:
        self._queue.clear()
        self._queued_bytes = 0

    # --- handlers, one per session MsgType ------------------------------------------

    def _admitted(self, msg: Message, seq: int, now: float) -> bool:
        """A session message counts against the throttle as an application message
        does; over it, what asks for an answer gets Reject 373=99 instead."""
        throttle = self.throttle
        if throttle is None or throttle.admit(now):
            return True
        refusal = throttle.refuse(now)
        if refusal.log_out:
            self.logout(refusal.text, now, close=True)
        elif msg.msg_type in _ANSWERED_WHEN_THROTTLED:
            self._reject(msg, seq, Problem(_OTHER, None, refusal.text), now)
        return False

    def _on_heartbeat(self, msg: Message, seq: int, now: float) -> None:
        if self._verify(msg, seq, now):
            self._advance(seq)
            self._admitted(msg, seq, now)  # nothing to act on, but it counts

    def _on_test_request(self, msg: Message, seq: int, now: float) -> None:
        if not self._verify(msg, seq, now):
            return
        self._advance(seq)
        if not self._admitted(msg, seq, now):
            return
        test_req_id = msg.get(t.TEST_REQ_ID) or b""
        if len(test_req_id) > MAX_TEST_REQ_ID:
            # Echoed, it would be stored and logged twice more: what one peer may make
            # the gateway write stays bounded.
            self._reject(msg, seq, _LONG_TEST_REQ_ID, now)
            return
        self.send(t.HEARTBEAT, [(t.TEST_REQ_ID, test_req_id)], now, reply_to=msg)

    def _on_reject(self, msg: Message, seq: int, now: float) -> None:
        if self._verify(msg, seq, now):
            self._advance(seq)
            if self._admitted(msg, seq, now):
                self.on_event("reject_received", self, {"ref_seq": msg.get(t.REF_SEQ_NUM),
                                                        "text": msg.get(t.TEXT)})

    def _on_logon_while_logged_on(self, msg: Message, seq: int, now: float) -> None:
        """A Logon on a live session: a sequence reset if 141=Y, else a protocol error."""
        if msg.get(t.RESET_SEQ_NUM_FLAG) == b"Y" and self.state is State.LOGGED_ON:
            self._reset_store(now)
            self.on_event("reset", self, {"requested": True, "in_session": True})
            self._clear_queue()
            self._resend_until = None
            self._answer_logon(msg, self.heartbeat_interval, True, now)
            self._advance(seq)
            return
        if self._verify(msg, seq, now):
            self._advance(seq)
            self.logout("Logon received while already logged on", now, close=True)

    def _on_logout(self, msg: Message, seq: int, now: float) -> None:
        if not self._verify(msg, seq, now, check_high=False, check_low=False):
            return
        self._advance(seq)
        if self.state is State.LOGOUT_SENT:
            bump(self.counters.logouts, "gateway")
            self.on_event("logout", self, {"initiated_by": "us"})
            self._close("Logout confirmed")
        else:
            bump(self.counters.logouts, "peer")
            self.on_event("logout", self, {"initiated_by": "peer"})
            self._drop_resend()
            self.send(t.LOGOUT, [], now, reply_to=msg)
            self._close("Logout requested by peer")
        if self.config.reset_on_logout:
            self._reset_store(now)

    def _on_resend_request(self, msg: Message, seq: int, now: float) -> None:
        if not self._verify(msg, seq, now, check_high=False, check_low=False):
            return
        begin = parse_uint(msg.get(t.BEGIN_SEQ_NO)) or 0
        end = parse_uint(msg.get(t.END_SEQ_NO)) or 0
        last_sent = self.store.next_sender_seq - 1
        if not self._admitted(msg, seq, now):
            pass  # answered (Reject 373=99) or logged out; its seqnum still counts below
        elif begin < 1 or (end and end < begin):
            self._reject(msg, seq, Problem(dd.VALUE_OUT_OF_RANGE, t.END_SEQ_NO,
                                           "Value is incorrect (out of range) for this tag"), now)
        elif begin > last_sent:
            self._reject(msg, seq, Problem(
                dd.VALUE_OUT_OF_RANGE, t.BEGIN_SEQ_NO,
                f"BeginSeqNo {begin} is beyond the last MsgSeqNum sent ({last_sent})"), now)
        else:
            end = last_sent if end == 0 or end > last_sent else end
            self.on_event("resend_served", self, {"begin": begin, "end": end})
            self.counters.resend_requests_served += 1
            in_progress = self._resend is not None
            if in_progress and (begin, end) == self._resend_range:
                # The same range again (a client repeating itself, or a flood split
                # over several reads): the resend in progress answers it, instead of
                # starting over and sending its first chunks a third time.
                self.on_event("resend_merged", self, {"begin": begin, "end": end})
                self._advance_or_queue(msg, seq, now)
                return
            if in_progress:
                # A new request replaces the one in progress; the held messages it
                # covers go out as its PossDup copies, not a second time.
                self._held = [(s, raw) for s, raw in self._held if s > end]
            self._resend = resend_stream(self.store, begin, end, format_timestamp(now),
                                         self._ids, self._begin)
            self._resend_range = (begin, end)
            if not in_progress:
                # The first chunk now; the rest (and all of a replacing request) one
                # chunk per shell turn: a flood of requests costs one resend, not one
                # chunk each.
                self.continue_resend(now)
        self._advance_or_queue(msg, seq, now)

    def _advance_or_queue(self, msg: Message, seq: int, now: float) -> None:
        """A ResendRequest is acted on even when its seqnum is ahead: count it, or
        queue it behind the gap it shows (see `_drain_queue`)."""
        if seq > self.store.next_target_seq:
            self._target_too_high(msg, seq, now)
        else:
            self._advance(seq)

    def _count_resent(self, stream: list[bytes]) -> None:
        counters = self.counters
        counters.resend_chunks_sent += 1
        resent = counters.resent
        for raw in stream:
            start = raw.index(b"\x0135=") + 4
            msg_type = raw[start:raw.index(b"\x01", start)]
            resent[msg_type] = resent.get(msg_type, 0) + 1

    def _on_sequence_reset(self, msg: Message, seq: int, now: float) -> None:
        gap_fill = msg.get(t.GAP_FILL_FLAG) == b"Y"
        if not self._verify(msg, seq, now, check_high=gap_fill, check_low=gap_fill):
            return
        new_seq = parse_uint(msg.get(t.NEW_SEQ_NO)) or 0
        expected = self.store.next_target_seq
        if new_seq > MAX_SEQ_NUM:
            self._reject(msg, seq, Problem(dd.VALUE_OUT_OF_RANGE, t.NEW_SEQ_NO,
                                           "Value is incorrect (out of range) for this tag"), now)
            return
        if new_seq > expected:
            self.on_event("sequence_reset", self, {"gap_fill": gap_fill, "from": expected,
                                                   "to": new_seq})
            self.store.set_next_target_seq(new_seq)
        elif new_seq < expected:
            self.on_event("sequence_reset_lower", self, {"expected": expected, "new": new_seq})
            self._reject(msg, seq, Problem(dd.VALUE_OUT_OF_RANGE, None,
                                           "Value is incorrect (out of range) for this tag"), now)

    def _on_application(self, msg: Message, seq: int, now: float) -> None:
        if not self._verify(msg, seq, now):
            return
        self._advance(seq)
        if self.state is not State.LOGGED_ON:
            return  # after our Logout, only session traffic is acted on
        throttle = self.throttle
        if throttle is not None and not throttle.admit(now):
            refusal = throttle.refuse(now)
            if refusal.log_out:
                self.logout(refusal.text, now, close=True)
            else:
                self.business_reject(msg, BRR_THROTTLE_LIMIT_EXCEEDED, refusal.text, now)
            return
        mdef = self.dictionary.messages.get(msg.msg_type)
        if mdef is None:
            self.reject_unsupported(msg, now)
            return
        poss_resend, cl_ord_id = msg.get_many(_BUSINESS_TAGS)
        if cl_ord_id is not None:
            # A PossResend whose business identity we have seen is not acted on twice.
            key = hash((msg.msg_type, cl_ord_id))
            if key in self._seen_ids:
                if poss_resend == b"Y":
                    self.on_event("possresend_ignored", self, {"seq": seq})
                    return
            else:
                self._seen_ids.add(key)
                self._seen_order.append(key)
                if len(self._seen_order) > _MAX_SEEN_IDS:
                    self._seen_ids.discard(self._seen_order.popleft())
        self.application.on_message(self, msg, now)

    # --- timers --------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Heartbeats, TestRequests and timeouts; called a few times a second."""
        if self.state is State.DISCONNECTED or self.close_reason is not None:
            return
        if self.state is State.LOGOUT_SENT:
            if now - self.logout_sent_at >= self.config.logout_timeout:
                self._close("Timed out waiting for Logout")
            return
        interval = self.heartbeat_interval
        if interval == 0:  # HeartBtInt=0: the peer asked for no heartbeats and no timeout
            return
        silence = now - self.last_received
        limit = interval * self.config.test_request_factor
        if self._test_request_id is not None and silence >= 2 * limit:
            self.on_event("test_request_timeout", self, {"silence": round(silence, 3)})
            self._close("TestRequest not answered")
            return
        if self._test_request_id is None:
            if silence >= limit:
                self._test_request_id = b"TEST"
                self.send(t.TEST_REQUEST, [(t.TEST_REQ_ID, self._test_request_id)], now)
            elif now - self.last_sent >= interval:
                self.send(t.HEARTBEAT, [], now)

    # --- outbound ------------------------------------------------------------------

    def send(
        self,
        msg_type: bytes,
        body: Sequence[tuple[int, FieldValue]],
        now: float,
        reply_to: Message | None = None,
        header: Iterable[tuple[int, FieldValue]] = (),
    ) -> bytes:
        """Encode, store (buffered) and queue one message; returns it, framed.

        `header` adds header fields beyond 34/49/52/56 (e.g. PossResend 97);
        replies reverse the peer's routing fields.
        """
        extra = b""
        if reply_to is not None or header:
            fields = list(header)
            if reply_to is not None:
                fields += _reverse_route(reply_to)
            extra = render(sorted(fields, key=lambda f: f[0]))
        return self.send_rendered(msg_type, render(body), now, extra)

    def send_rendered(
        self, msg_type: bytes, body: bytes, now: float, extra: bytes = b""
    ) -> bytes:
        """Send an already rendered body (the order hot path's templates); returns
        the framed message (drop copy keeps it as sent).

        While no connection is up the message is only stored: the peer gets
        it by ResendRequest when it logs on again and sees the gap.
        """
        seq = self.store.next_sender_seq
        # Header in ascending tag order after 35: 34, 49, 52, 56, then extras.
        raw = frame(
            self._begin,
            b"35=%b\x0134=%d\x01%b52=%b\x01%b%b%b" % (
                msg_type, seq, self._sender_field, format_timestamp(now), self._target_field,
                extra, body,
            ),
        )
        self.store.append_outbound(seq, raw)
        self.store.set_next_sender_seq(seq + 1)
        if self.state is not State.DISCONNECTED:
            if self._resend is None:
                self.outbox.append(raw)
            else:  # after the resend in progress, to keep the wire in seq order
                self._held.append((seq, raw))
            self.last_sent = now
            sent = self.counters.sent
            sent[msg_type] = sent.get(msg_type, 0) + 1
        return raw

    def logout(self, text: str, now: float, close: bool = False, reason: str = "") -> None:
        """Send Logout (Text only if `text`); wait for the answer, or close at once.

        `reason` is for the log when the Logout itself carries no Text.
        """
        reason = reason or text
        if self.state is State.LOGOUT_SENT:
            if close:
                self._close(reason)
            return
        self._drop_resend()  # the Logout goes now, not after the rest of a resend
        self.send(t.LOGOUT, [(t.TEXT, text)] if text else [], now)
        self.state = State.LOGOUT_SENT
        self.logout_sent_at = now
        self.on_event("logout_sent", self, {"reason": reason})
        if close:
            self._close(reason)

    def _reject(self, msg: Message, seq: int, problem: Problem, now: float) -> None:
        body: list[tuple[int, FieldValue]] = [(t.REF_SEQ_NUM, seq), (t.TEXT, problem.text)]
        if problem.tag is not None:
            body.append((t.REF_TAG_ID, problem.tag))
        body += [(t.REF_MSG_TYPE, msg.msg_type), (t.SESSION_REJECT_REASON, problem.reason)]
        self.send(t.REJECT, body, now, reply_to=msg)
        rejects = self.counters.session_rejects
        rejects[problem.reason] = rejects.get(problem.reason, 0) + 1
        self.on_event("reject", self, {"ref_seq": seq, "reason": problem.reason,
                                       "tag": problem.tag, "text": problem.text})

    def reject_unsupported(self, msg: Message, now: float) -> None:
        """BusinessMessageReject 380=3 for a valid MsgType nothing here handles."""
        self.business_reject(msg, t.BRR_UNSUPPORTED_MSG_TYPE, "Unsupported Message Type", now)

    def business_reject(self, msg: Message, reason: int, text: str, now: float) -> None:
        # Body in ascending tag order: 45, 58, 372, 379, 380.
        body: list[tuple[int, FieldValue]] = [
            (t.REF_SEQ_NUM, msg.get(t.MSG_SEQ_NUM) or b"0"),
            (t.TEXT, text),
            (t.REF_MSG_TYPE, msg.msg_type),
        ]
        ref_id = msg.get(_REQUEST_ID_TAGS.get(msg.msg_type, t.CL_ORD_ID))
        if ref_id:
            body.append((t.BUSINESS_REJECT_REF_ID, ref_id))
        body.append((t.BUSINESS_REJECT_REASON, reason))
        self.send(t.BUSINESS_MESSAGE_REJECT, body, now, reply_to=msg)
        rejects = self.counters.business_rejects
        rejects[reason] = rejects.get(reason, 0) + 1
        self.on_event("business_reject", self, {"ref_seq": msg.get(t.MSG_SEQ_NUM),
                                                "reason": reason})


def _seqnum(msg: Message) -> int | None:
    text = msg.get(t.MSG_SEQ_NUM)
    if text is not None and len(text) <= MAX_INT_DIGITS and text.isdigit():
        return int(text)  # the common case, without a call: this runs per message
    return parse_uint(text)


def _reverse_route(msg: Message) -> list[tuple[int, bytes]]:
    """The reply's routing fields: non-empty OnBehalfOf* <-> DeliverTo*."""
    out: list[tuple[int, bytes]] = []
    for in_tag, out_tag in _REVERSE_ROUTE:
        value = msg.get(in_tag)
        if value:
            out.append((out_tag, value))
    return out


_BUSINESS_TAGS = (t.POSS_RESEND, t.CL_ORD_ID)
_NO_SEQ_NUM = "Received message without MsgSeqNum(34)"
_OTHER = 99  # SessionRejectReason(373) Other: the throttle's answer to a session message
_ANSWERED_WHEN_THROTTLED = (t.TEST_REQUEST, t.RESEND_REQUEST)
_LONG_TEST_REQ_ID = Problem(dd.VALUE_OUT_OF_RANGE, t.TEST_REQ_ID,
                            f"TestReqID longer than {MAX_TEST_REQ_ID} bytes")
# BusinessRejectRefID(379): the request's own ID field; ClOrdID for the rest.
_REQUEST_ID_TAGS: dict[bytes, int] = {
    b"e": 324,  # SecurityStatusRequest: SecurityStatusReqID
    b"V": 262,  # MarketDataRequest: MDReqID
    b"R": 131,  # QuoteRequest: QuoteReqID
    b"S": 117,  # Quote: QuoteID
    b"Z": 117,  # QuoteCancel: QuoteID
    b"a": 649,  # QuoteStatusRequest: QuoteStatusReqID
    b"c": 320,  # SecurityDefinitionRequest: SecurityReqID
    b"v": 320,  # SecurityTypeRequest: SecurityReqID
    b"x": 320,  # SecurityListRequest: SecurityReqID
    b"z": 320,  # DerivativeSecurityListRequest: SecurityReqID
    b"g": 335,  # TradingSessionStatusRequest: TradSesReqID
    b"AD": 568,  # TradeCaptureReportRequest: TradeRequestID
    b"AE": 571,  # TradeCaptureReport: TradeReportID
    b"AF": 584,  # OrderMassStatusRequest: MassStatusReqID
    b"AN": 710,  # RequestForPositions: PosReqID
    b"AL": 710,  # PositionMaintenanceRequest: PosReqID
    b"BB": 909,  # CollateralInquiry: CollInquiryID
    b"BE": 923,  # UserRequest: UserRequestID
}
_VERIFIED_TAGS = (t.SENDING_TIME, t.SENDER_COMP_ID, t.TARGET_COMP_ID, t.POSS_DUP_FLAG)
_SENDING_TIME_PROBLEM = Problem(dd.SENDING_TIME_ACCURACY, None, "SendingTime accuracy problem")
