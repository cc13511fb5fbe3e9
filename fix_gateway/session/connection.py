"""One TCP connection before and after it is bound to a session (sans-I/O).

The first message decides: not a Logon -> close without a word; a Logon for
CompIDs the venue does not know -> Logout with Text, close; a Logon for a
session that already has a live connection -> close the newcomer and leave
the live one alone; otherwise the session takes over. Whether a session is
live is checked last, after the lockout, the allow-list and the credentials,
so a peer that cannot log on gets the same refusal either way.

Before a session sees a Logon the connection checks who asks: an address
locked out of that session after failed Logons (see logon_failures.py), or
not on the session's AllowedAddresses, is refused; a session with
credentials waits for `credentials_checked` (the shell runs the deliberately
slow password hash off the event loop, see `pending_logon`). These refusals
never touch the session: no sequence number is used and nothing is stored.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import NamedTuple

from fix_gateway import auth
from fix_gateway import tags as t
from fix_gateway.codec import Decoder, Garbled, Message, frame, render
from fix_gateway.session.counters import ConnectionCounters, bump, reason_kind
from fix_gateway.session.logon_failures import LogonFailures
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

    def __iter__(self) -> Iterator[Session]:
        return iter(self._by_key.values())


class PendingLogon(NamedTuple):
    """A Logon waiting for its credentials to be checked."""

    session: Session
    logon: Message

    def verify(self) -> bool:
        """The slow part (scrypt); safe to run on a worker thread."""
        return auth.credentials_ok(self.session.config, self.logon.get(t.USERNAME),
                                   self.logon.get(t.PASSWORD))


_MAX_HELD = 1000  # messages that may follow a Logon while its credentials are checked


class Connection:
    def __init__(
        self, registry: SessionRegistry, now: float, max_message_size: int = 65536,
        peer: str = "", explain_refused_logon: bool = True,
        counters: ConnectionCounters | None = None,
        failures: LogonFailures | None = None, host: str | None = None,
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
        self.failures = failures
        self.host = host if host is not None else peer.rsplit(":", 1)[0]
        self.pending_logon: PendingLogon | None = None
        self._held: list[Message | Garbled] = []  # arrived while pending_logon
        self._backlog: list[Message | Garbled] = []  # decoded, past data_received's limit
        self._oversized = False  # the decoder met a message too large: close after the rest

    def data_received(self, data: bytes, now: float, limit: int = 0) -> None:
        """Act on what `data` completes: at most `limit` messages (0: all); the rest
        wait, in order, for `continue_backlog` (so one peer's flood cannot hold the
        others for long; the shell reads nothing more from it meanwhile)."""
        items, oversized = self.decoder.feed(data)
        if oversized is not None:
            self._oversized = True
        if self._backlog or (limit and len(items) > limit):
            self._backlog += items
            self.continue_backlog(now, limit)
            return
        self._process(items, now)
        self._check_oversized()

    @property
    def backlogged(self) -> bool:
        return bool(self._backlog) and self.close_reason is None

    def continue_backlog(self, now: float, limit: int = 0) -> None:
        items = self._backlog
        if limit and len(items) > limit:
            items, self._backlog = items[:limit], items[limit:]
        else:
            self._backlog = []
        self._process(items, now)
        self._check_oversized()

    def _check_oversized(self) -> None:
        if self._oversized and not self._backlog and self.close_reason is None:
            self.close_reason = f"message larger than {self.decoder.max_message_size} bytes"

    def _process(self, items: list[Message | Garbled], now: float) -> None:
        for item in items:
            if self.close_reason is not None:
                break
            if self.pending_logon is not None:  # keep order: act on these after the Logon
                if len(self._held) >= _MAX_HELD:
                    self.close_reason = "too many messages before the Logon was answered"
                    break
                self._held.append(item)
                continue
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

    def tick(self, now: float, logon_timeout: float) -> None:
        if self.session is None:
            # The logon timeout runs on while credentials are being checked.
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
        self.pending_logon = None  # a check still running must not bind a dead connection
        if self.session is not None:
            self.session.disconnected(now, reason)
        else:
            bump(self.counters.refused, reason_kind(reason))

    def _first_message(self, msg: Message, now: float) -> None:
        if msg.msg_type != t.LOGON:
            self.close_reason = "first message is not a Logon"
            return
        sender, target = msg.get(t.SENDER_COMP_ID), msg.get(t.TARGET_COMP_ID)
        session = self.registry.find(sender, target)  # a dict lookup: cheap before a lockout
        name = session.config.name if session is not None else ""
        locked = self.failures.locked_for(self.host, name, now) if self.failures else 0.0
        if locked:
            self._refuse(msg, f"Too many failed logons from this address; retry in"
                              f" {math.ceil(locked)} s", now, "locked_out", name or "-",
                         count=False)
            return
        if session is None:
            text = "Unknown session: SenderCompID/TargetCompID not configured"
            log.warning("event=logon_refused peer=%s sender=%r target=%r reason=%r", self.peer,
                        sender, target, text)
            self._refuse(msg, text, now, "", "", log_it=False)
            return
        cfg = session.config
        if not auth.address_allowed(cfg.allowed_addresses, self.host):
            self._refuse(msg, "Logon not permitted from this address", now,
                         "address_not_allowed", cfg.name, target=session)
            return
        if auth.needs_credentials(cfg):  # whether it is live is told only to who proves it
            self.pending_logon = PendingLogon(session, msg)
            return
        self._bind_unless_live(session, msg, now)

    def credentials_checked(self, ok: bool, now: float) -> None:
        """The answer to `pending_logon.verify()`: bind or refuse, then go on."""
        pending, self.pending_logon = self.pending_logon, None
        if pending is None or self.close_reason is not None:
            return
        session, msg = pending
        if not ok:
            self._refuse(msg, "Invalid username or password", now, "bad_credentials",
                         session.config.name, target=session)
        else:
            if self.failures is not None:
                self.failures.succeeded(self.host, session.config.name)
            self._bind_unless_live(session, msg, now)
        held, self._held = self._held, []
        self._process(held, now)

    def _refuse(self, msg: Message, text: str, now: float, reason: str, session: str,
                log_it: bool = True, count: bool = True, target: Session | None = None) -> None:
        """Refuse a Logon without involving a session (no seqnum used, nothing stored);
        `target`, the session it asked for, only counts the refusal."""
        if target is not None:
            bump(target.counters.logon_refusals, reason_kind(text))
        if log_it:
            log.warning("event=logon_refused reason=%s peer=%s session=%s username=%r",
                        reason, self.peer, session, (msg.get(t.USERNAME) or b"").decode("latin-1"))
        if count and self.failures is not None:
            lockout = self.failures.failed(self.host, session, now)
            if lockout:
                log.warning("event=logon_lockout peer=%s session=%s seconds=%g", self.peer,
                            session or "-", lockout)
        if self.explain_refused_logon:
            self._outbox.append(_stateless_logout(msg, text, now))
        self.close_reason = text

    def _bind_unless_live(self, session: Session, msg: Message, now: float) -> None:
        """Bind, unless another connection holds the session: then close the newcomer
        without a word and leave the live one alone."""
        if session.connected:
            self.close_reason = "session already logged on"
            log.warning("event=duplicate_logon session=%s peer=%s", session.config.name,
                        self.peer)
            return
        self._bind(session, msg, now)

    def _bind(self, session: Session, msg: Message, now: float) -> None:
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
