"""Serving a peer's ResendRequest from the store.

Application messages go out again as they were, with PossDupFlag=Y,
OrigSendingTime set to their first SendingTime and a fresh SendingTime.
Session-level messages (and seqnums the store does not hold) are never
resent: each run of them becomes one SequenceReset-GapFill.
"""

from __future__ import annotations

from collections.abc import Iterator

from fix_gateway import tags as t
from fix_gateway.codec import Message, encode, parse_fields
from session_store import SessionStore


def resend_stream(
    store: SessionStore,
    begin: int,
    end: int,
    timestamp: bytes,
    header: list[tuple[int, bytes]],
    begin_string: bytes,
) -> Iterator[bytes]:
    """Messages answering ResendRequest(begin, end); `end` already clamped.

    `header` holds the session's 49/56 for the gap fills it has to build.
    """
    gap_from: int | None = None
    expected = begin
    for seq, raw in store.get_range(begin, end):
        if seq > expected and gap_from is None:
            gap_from = expected  # seqnums the store does not hold
        parsed = parse_fields(raw)
        if parsed is None:  # cannot happen for bytes we framed ourselves; never resend them
            gap_from = seq if gap_from is None else gap_from
            expected = seq + 1
            continue
        msg = Message(parsed[0], parsed[1], raw)
        if msg.msg_type in t.SESSION_MSG_TYPES:
            if gap_from is None:
                gap_from = seq
        else:
            if gap_from is not None:
                yield gap_fill(gap_from, seq, timestamp, header, begin_string)
                gap_from = None
            yield possdup_copy(msg, timestamp, begin_string)
        expected = seq + 1
    if gap_from is None and expected <= end:
        gap_from = expected
    if gap_from is not None:
        yield gap_fill(gap_from, end + 1, timestamp, header, begin_string)


def gap_fill(
    seq: int, new_seq: int, timestamp: bytes, header: list[tuple[int, bytes]],
    begin_string: bytes,
) -> bytes:
    return encode(
        [
            (t.MSG_TYPE, t.SEQUENCE_RESET),
            *header,
            (t.MSG_SEQ_NUM, seq),
            (t.POSS_DUP_FLAG, b"Y"),
            (t.SENDING_TIME, timestamp),
            (t.ORIG_SENDING_TIME, timestamp),
            (t.NEW_SEQ_NO, new_seq),
            (t.GAP_FILL_FLAG, b"Y"),
        ],
        begin_string,
    )


def possdup_copy(msg: Message, timestamp: bytes, begin_string: bytes) -> bytes:
    """`msg` again with PossDupFlag=Y, OrigSendingTime and a new SendingTime."""
    fields: list[tuple[int, bytes]] = []
    orig = msg.get(t.SENDING_TIME, timestamp) or timestamp
    for tag, value in msg.fields:
        if tag in (t.POSS_DUP_FLAG, t.ORIG_SENDING_TIME):
            continue
        if tag == t.SENDING_TIME:
            value = timestamp
        fields.append((tag, value))
    fields.append((t.POSS_DUP_FLAG, b"Y"))
    fields.append((t.ORIG_SENDING_TIME, orig))
    return encode(fields, begin_string)
