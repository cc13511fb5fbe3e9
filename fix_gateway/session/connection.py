"""One TCP connection before and after it is bound to a session (sans-I/O).

The first message decides: not a Logon -> close without a word; a Logon for
CompIDs the venue does not know -> Logout with Text, close; a Logon for a
session that already has a live connection -> close the newcomer and leave
the live one alone; otherwise the session takes over.
"""

from __future__ import annotations

import logging

from fix_gateway import tags as t
from fix_gateway.codec import Decoder, Garbled, Message, frame, render
from fix_gateway.session.counters import ConnectionCounters, bump, reason_kind
from fix_gateway.session.session import Session
from fix_gateway.utc_time import format_timestamp

log = logging.getLogger("fixgw.connection")


class SessionRegistry:
    """The sessions the venue accepts, found by the CompIDs of a Logon."""

    def __init__(self, sessions: list[Session]) -> None:
        self._by_key = {s.config.key: s for s in sessions}

    def find(self, sender: bytes | None, target: bytes | None) -> Session | None:
        if sender is None or target is None:
            return None
        return self._by_key.get((sender.decode("latin-1"), target.decode("latin-1")))

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_key.values())


class Connection:
    def __init__(
        self, registry: SessionRegistry, now: float, max_message_size: int = 65536,
        peer: str = "", explain_refused_logon: bool = True,
        counters: ConnectionCounters | None = None,
    ) -> None:
        self.registry = registry
        self.decoder = Decoder(max_message_size)
        self.session: Session | None = None
        self.opened_at = now
        self.peer = peer
        self.close_reason: str | None = None
        self.garbled = 0
        self.explain_refused_logon = explain_refused_logon
        self._outbox: list[bytes] = []
        self.counters = counters if counters is not None else ConnectionCounters()
        self.counters.accepted += 1

    def data_received(self, data: bytes, now: float) -> None:
        items, oversized = self.decoder.feed(data)
        for item in items:
            if self.close_reason is not None:
                break
            if isinstance(item, Garbled):
                self.garbled += 1
                bump(self.counters.garbled, self.session.config.name if self.session else "")
                log.warning("event=garbled peer=%s session=%s reason=%r bytes=%d", self.peer,
                            self.session.config.name if self.session else "-", item.reason,
                            len(item.raw))
                if self.session is None:  # cannot even frame a Logon: not worth waiting for
                    self.close_reason = f"garbled data before Logon: {item.reason}"
                continue
            if self.session is None:
                self._first_message(item, now)
            else:
                self.session.receive(item, now)
                if self.session.close_reason is not None:
                    self.close_reason = self.session.close_reason
        if oversized is not None and self.close_reason is None:
            self.close_reason = f"message larger than {self.decoder.max_message_size} bytes"

    def tick(self, now: float, logon_timeout: float) -> None:
        if self.session is None:
            if self.close_reason is None and now - self.opened_at >= logon_timeout:
                self.close_reason = "no Logon received"
            return
        self.session.tick(now)
        if self.session.close_reason is not None and self.close_reason is None:
            self.close_reason = self.session.close_reason

    def take_output(self) -> list[bytes]:
        out = self._outbox
        self._outbox = []
        if self.session is not None and self.session.outbox:
            out += self.session.take_output()
        return out

    def connection_lost(self, now: float, reason: str) -> None:
        if self.session is not None:
            self.session.disconnected(now, reason)
        else:
            bump(self.counters.refused, reason_kind(reason))

    def _first_message(self, msg: Message, now: float) -> None:
        if msg.msg_type != t.LOGON:
            self.close_reason = "first message is not a Logon"
            return
        sender, target = msg.get(t.SENDER_COMP_ID), msg.get(t.TARGET_COMP_ID)
        session = self.registry.find(sender, target)
        if session is None:
            text = "Unknown session: SenderCompID/TargetCompID not configured"
            log.warning("event=logon_refused peer=%s sender=%r target=%r reason=%r", self.peer,
                        sender, target, text)
            if self.explain_refused_logon:
                self._outbox.append(_stateless_logout(msg, text, now))
            self.close_reason = text
            return
        if session.connected:
            self.close_reason = "session already logged on"
            log.warning("event=duplicate_logon session=%s peer=%s", session.config.name,
                        self.peer)
            return
        self.session = session
        session.logon(msg, now, explain_refusal=self.explain_refused_logon)
        if session.close_reason is not None:
            self.close_reason = session.close_reason


def _stateless_logout(logon: Message, text: str, now: float) -> bytes:
    """A Logout for a peer we have no session (and so no sequence numbers) for."""
    body = render([
        (t.MSG_TYPE, t.LOGOUT),
        (t.MSG_SEQ_NUM, b"1"),
        (t.SENDER_COMP_ID, logon.get(t.TARGET_COMP_ID) or b""),
        (t.SENDING_TIME, format_timestamp(now)),
        (t.TARGET_COMP_ID, logon.get(t.SENDER_COMP_ID) or b""),
        (t.TEXT, text),
    ])
    return frame(logon.values[0], body)
