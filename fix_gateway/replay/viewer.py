"""A stored session's messages, filtered and decoded like a FIX log viewer.

Text: one block per message, a heading (direction, MsgSeqNum, time, message
name) and one line per field with the tag's name and, for enumerated fields,
the value's meaning (`54 Side = 1 (BUY)`). JSON lines: one object per
message with the fields keyed by name, the meanings, and the exact raw frame.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from fix_gateway import tags as t
from fix_gateway.codec import Message
from fix_gateway.dictionary import Dictionary
from fix_gateway.replay.store_reader import StoredMessage
from fix_gateway.utc_time import format_timestamp, parse_timestamp

ORIG_CL_ORD_ID = 41


class FilterError(ValueError):
    """A filter value that cannot be understood (the message says which)."""


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """What `fixgw replay show` keeps; None means no limit."""

    from_seq: int | None = None  # MsgSeqNum (34) bounds, inclusive
    to_seq: int | None = None
    since: float | None = None  # SendingTime (52) bounds, inclusive, epoch seconds
    until: float | None = None
    msg_types: frozenset[bytes] | None = None
    cl_ord_id: bytes | None = None  # matched against ClOrdID (11) and OrigClOrdID (41)
    direction: str | None = None  # "IN" or "OUT"

    def keeps(self, m: StoredMessage) -> bool:
        msg = m.msg
        if self.direction is not None and m.direction != self.direction:
            return False
        if self.msg_types is not None and msg.msg_type not in self.msg_types:
            return False
        if self.from_seq is not None or self.to_seq is not None:
            seq = m.seq
            if (self.from_seq is not None and seq < self.from_seq) or \
                    (self.to_seq is not None and seq > self.to_seq):
                return False
        if self.since is not None or self.until is not None:
            sent = m.sending_time
            if sent is None or (self.since is not None and sent < self.since) or \
                    (self.until is not None and sent > self.until):
                return False
        return self.cl_ord_id is None or self.cl_ord_id in (
            msg.get(t.CL_ORD_ID), msg.get(ORIG_CL_ORD_ID))

    def apply(self, messages: Iterable[StoredMessage]) -> Iterator[StoredMessage]:
        return (m for m in messages if self.keeps(m))


def parse_time(text: str) -> float:
    """A FIX UTCTimestamp (20240501-12:00:00[.123]) or ISO 8601 (2024-05-01T12:00:00Z)."""
    fix = parse_timestamp(text.encode())
    if fix is not None:
        return fix
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(f"not a time: {text!r} (use 20240501-12:00:00 or"
                          " 2024-05-01T12:00:00)") from None
    if when.tzinfo is None:  # FIX times are UTC; so are ours
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def parse_msg_types(items: Iterable[str], dictionary: Dictionary) -> frozenset[bytes]:
    """MsgTypes given as codes (D, 8) or names (NewOrderSingle), comma-separated or not."""
    by_name = {m.name.lower(): code for code, m in dictionary.messages.items()}
    out: set[bytes] = set()
    for item in items:
        for word in filter(None, (w.strip() for w in item.split(","))):
            code = word.encode()
            if code in dictionary.messages:
                out.add(code)
            elif word.lower() in by_name:
                out.add(by_name[word.lower()])
            else:
                raise FilterError(f"unknown MsgType {word!r} (a code such as D or a name"
                                  " such as NewOrderSingle)")
    return frozenset(out)


class Viewer:
    def __init__(self, dictionary: Dictionary) -> None:
        self.d = dictionary

    def message_name(self, msg: Message) -> str:
        mdef = self.d.messages.get(msg.msg_type)
        return mdef.name if mdef is not None else f"MsgType {msg.msg_type.decode('latin-1')}"

    def meaning(self, tag: int, value: bytes) -> str | None:
        if tag == t.MSG_TYPE:
            mdef = self.d.messages.get(value)
            return mdef.name if mdef is not None else None
        return self.d.enum_name(tag, value)

    def text(self, m: StoredMessage) -> str:
        msg = m.msg
        when = m.time
        shown = format_timestamp(when).decode() if when is not None else "-"
        lines = [f"{m.direction:<3} seq={m.seq}  {shown}  {self.message_name(msg)}"]
        width = max((len(self.d.tag_name(tag)) for tag in msg.tags), default=0)
        for tag, value in msg.fields:
            text = value.decode("latin-1")
            meaning = self.meaning(tag, value)
            suffix = f" ({meaning})" if meaning else ""
            lines.append(f"  {tag:>5} {self.d.tag_name(tag):<{width}} = {text}{suffix}")
        return "\n".join(lines)

    def json_object(self, m: StoredMessage) -> dict[str, object]:
        msg = m.msg
        fields: dict[str, str | list[str]] = {}
        meanings: dict[str, str] = {}
        for tag, value in msg.fields:
            name = self.d.tag_name(tag)
            text = value.decode("latin-1")
            prev = fields.get(name)
            if prev is None:
                fields[name] = text
            else:  # a repeated tag (repeating groups): all its values, in order
                fields[name] = [*prev, text] if isinstance(prev, list) else [prev, text]
            meaning = self.meaning(tag, value)
            if meaning and name not in meanings:
                meanings[name] = meaning
        obj: dict[str, object] = {
            "direction": m.direction,
            "seq": m.seq,
            "msg_type": msg.msg_type.decode("latin-1"),
            "msg_name": self.message_name(msg),
        }
        if m.received is not None:
            obj["received"] = format_timestamp(m.received).decode()
        obj.update(fields=fields, meanings=meanings, raw=msg.raw.decode("latin-1"))
        return obj

    def json_line(self, m: StoredMessage) -> str:
        return json.dumps(self.json_object(m))
