"""Stored reports against re-driven ones, field by field.

Two reports are the same when their fields are the same, in the same order,
leaving out the fields that legitimately differ between two runs: framing
(8, 9, 10), the session layer's MsgSeqNum (34), PossDupFlag (43) and
OrigSendingTime (122), and the clocks (SendingTime 52, TransactTime 60).
Everything the engine decides (OrderID, ExecID, statuses, quantities, prices,
texts) must match exactly: the engine is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

from fix_gateway import tags as t
from fix_gateway.codec import Message
from fix_gateway.dictionary import Dictionary

# ExecutionReport, OrderCancelReject, BusinessMessageReject, OrderMassCancelReport.
REPORT_TYPES = frozenset((b"8", b"9", b"j", b"r"))
IGNORED_TAGS = frozenset((8, 9, 10, 34, 43, 52, 60, 122))


@dataclass(frozen=True, slots=True)
class Difference:
    """The first place two report streams part (1-based report number)."""

    index: int
    expected: Message | None  # None: an extra report was received
    got: Message | None  # None: a stored report never came
    tag: int | None = None  # None when a whole report is missing or extra
    expected_value: bytes | None = None  # None: the field is absent there
    got_value: bytes | None = None


def compared_fields(msg: Message) -> list[tuple[int, bytes]]:
    return [(tag, value) for tag, value in msg.fields if tag not in IGNORED_TAGS]


def first_difference(expected: list[Message], got: list[Message]) -> Difference | None:
    for i, (want, have) in enumerate(zip(expected, got, strict=False), start=1):
        a, b = compared_fields(want), compared_fields(have)
        if a == b:
            continue
        for (tag_a, value_a), (tag_b, value_b) in zip(a, b, strict=False):
            if (tag_a, value_a) == (tag_b, value_b):
                continue
            if tag_a == tag_b:
                return Difference(i, want, have, tag_a, value_a, value_b)
            if tag_a not in dict(b):  # a field the stored report has and this one lacks
                return Difference(i, want, have, tag_a, value_a, None)
            return Difference(i, want, have, tag_b, dict(a).get(tag_b), value_b)
        longer, missing_in_got = (a, True) if len(a) > len(b) else (b, False)
        tag, value = longer[min(len(a), len(b))]
        if missing_in_got:
            return Difference(i, want, have, tag, value, None)
        return Difference(i, want, have, tag, None, value)
    if len(expected) > len(got):
        return Difference(len(got) + 1, expected[len(got)], None)
    if len(got) > len(expected):
        return Difference(len(expected) + 1, None, got[len(expected)])
    return None


def describe(diff: Difference, dictionary: Dictionary) -> str:
    """One line: where (stored seq, received seq, report kind), which tag, both values."""
    def seq(msg: Message | None) -> str:
        return (msg.get(t.MSG_SEQ_NUM) or b"?").decode("latin-1") if msg else "-"

    def kind(msg: Message) -> str:
        mdef = dictionary.messages.get(msg.msg_type)
        return mdef.name if mdef else msg.msg_type.decode("latin-1")

    def value(tag: int, v: bytes | None) -> str:
        if v is None:
            return "<absent>"
        meaning = dictionary.enum_name(tag, v)
        text = repr(v.decode("latin-1"))
        return f"{text} ({meaning})" if meaning else text

    if diff.got is None:
        assert diff.expected is not None
        return (f"report {diff.index}: stored seq {seq(diff.expected)} ({kind(diff.expected)})"
                " was not received")
    if diff.expected is None:
        return (f"report {diff.index}: received seq {seq(diff.got)} ({kind(diff.got)})"
                " has no stored counterpart")
    assert diff.tag is not None
    return (f"report {diff.index}: stored seq {seq(diff.expected)}, received seq"
            f" {seq(diff.got)} ({kind(diff.expected)}): tag {diff.tag}"
            f" ({dictionary.tag_name(diff.tag)}) expected {value(diff.tag, diff.expected_value)}"
            f" got {value(diff.tag, diff.got_value)}")
