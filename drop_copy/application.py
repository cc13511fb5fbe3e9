"""What a drop-copy session does with application messages: nothing enters orders."""

from __future__ import annotations

from fix_gateway import tags as t
from fix_gateway.codec import Message
from fix_gateway.session.session import Session


class DropCopyApplication:
    """Every application message on a drop-copy session is refused with
    BusinessMessageReject 380=6 (not authorized): such a session only listens."""

    def on_message(self, session: Session, msg: Message, now: float) -> None:
        session.business_reject(
            msg, t.BRR_NOT_AUTHORIZED,
            "Drop-copy session: application messages are not accepted", now,
        )
