"""The application the standard FIX session-layer acceptance scripts expect.

Those scripts (QuickFIX's test/definitions/server/fix44) drive the session
layer with NewOrderSingle (D) and SecurityDefinition (d) messages and expect
them echoed back: same body, fields in ascending tag order (repeating groups
kept whole), a fresh header, PossResend (97) kept. Any other application
message is unsupported. Selected with `server.application = "echo"`; it is a
conformance fixture, not a trading application.
"""

from __future__ import annotations

from collections.abc import Sequence

from fix_gateway import tags as t
from fix_gateway.codec import HEADER_TAGS, Message
from fix_gateway.dictionary import FieldSet
from fix_gateway.session.session import Session

ECHOED_MSG_TYPES = frozenset((b"D", b"d"))


class EchoApplication:
    def on_message(self, session: Session, msg: Message, now: float) -> None:
        if msg.msg_type not in ECHOED_MSG_TYPES:
            session.reject_unsupported(msg, now)
            return
        mdef = session.dictionary.messages[msg.msg_type]
        header = [(t.POSS_RESEND, b"Y")] if msg.get(t.POSS_RESEND) == b"Y" else []
        session.send(msg.msg_type, sorted_body(msg, mdef.body), now, header=header)


def sorted_body(msg: Message, body: FieldSet) -> list[tuple[int, bytes]]:
    """Body fields in ascending tag order, each repeating group moved as one unit."""
    tags, values = msg.tags, msg.values
    units: list[tuple[int, list[tuple[int, bytes]]]] = []
    i, n = 0, len(tags)
    while i < n:
        tag = tags[i]
        if tag in HEADER_TAGS or tag in (t.CHECKSUM, 89, 93):
            i += 1
            continue
        group = body.groups.get(tag)
        end = _group_end(tags, i, group) if group is not None else i + 1
        units.append((tag, list(zip(tags[i:end], values[i:end], strict=True))))
        i = end
    units.sort(key=lambda unit: unit[0])
    return [field for _, fields in units for field in fields]


def _group_end(tags: Sequence[int], i: int, group: FieldSet) -> int:
    """Index just past the repeating group whose count field is at `i`."""
    i += 1
    n = len(tags)
    while i < n and tags[i] == group.delimiter:
        seen: set[int] = set()
        while i < n and tags[i] in group.members and tags[i] not in seen:
            seen.add(tags[i])
            nested = group.groups.get(tags[i])
            i = _group_end(tags, i, nested) if nested is not None else i + 1
    return i
