"""Secrets out of what is written down: Password(554), NewPassword(925), RawData(96).

A received message goes to the inbound store and the message log as
`redacted(msg)`: its own bytes when it holds none of these tags (the common
case costs three lookups and no copy), else a copy with each secret value
replaced by `***`, re-framed so that BodyLength(9), CheckSum(10) and
RawDataLength(95) are right again and every reader sees a valid frame.
`fixgw replay` masks what it reads the same way, so files written before
this existed are shown masked too. Sans-I/O.
"""

from __future__ import annotations

from fix_gateway import tags as t
from fix_gateway.codec import Message, frame, render

RAW_DATA_LENGTH = 95
RAW_DATA = 96
NEW_PASSWORD = 925
SECRET_TAGS = frozenset((t.PASSWORD, NEW_PASSWORD, RAW_DATA))
MASK = b"***"
_FRAMING = (8, 9, 10)  # BeginString, BodyLength, CheckSum: made anew by frame()


def holds_secret(msg: Message) -> bool:
    return t.PASSWORD in msg or NEW_PASSWORD in msg or RAW_DATA in msg


def redacted(msg: Message) -> bytes:
    """`msg.raw`, or a valid frame like it with every secret value masked."""
    if not holds_secret(msg):
        return msg.raw
    raw_data = RAW_DATA in msg
    body: list[tuple[int, bytes]] = []
    for tag, value in zip(msg.tags, msg.values, strict=True):
        if tag in _FRAMING:
            continue
        if tag in SECRET_TAGS:
            value = MASK
        elif tag == RAW_DATA_LENGTH and raw_data:  # the length of the masked value now
            value = b"%d" % len(MASK)
        body.append((tag, value))
    return frame(msg.values[0], render(body))

