"""Per-session message throttle: at most N messages per S seconds.

A sliding window of the times of the last N admitted messages: a message is
admitted when fewer than N were admitted in the last S seconds. Per message
that is one comparison and one deque append. Application messages and the
session messages a peer could flood (Heartbeat, TestRequest, ResendRequest,
Reject) share the window; SequenceReset, Logout and Logon never reach it (they
keep the session's numbering and its end in order).

Over the limit, `ThrottleAction` decides: `reject` answers an application
message with BusinessMessageReject 380=8 (throttle limit exceeded), a TestRequest
or ResendRequest with Reject 373=99, and does not act on it; `logout` ends the
session at once. With `ThrottleLogoutMultiple` m > 0 a
rejecting session is logged out too when, within one interval, it sends m
times the limit (gross abuse). The throttle only decides (`Refusal`); the
session answers, so this module knows nothing of the session.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from fix_gateway.session.config import SessionConfig

BRR_THROTTLE_LIMIT_EXCEEDED = 8  # BusinessRejectReason(380), listed in specs/FIX44.xml


class Refusal(NamedTuple):
    """A message over the limit: the Text to answer with, and whether the session
    ends (ThrottleAction=logout, or gross abuse) instead of the message being rejected."""

    text: str
    log_out: bool


class Throttle:
    __slots__ = ("_abuse_text", "_admitted", "_excess", "_text", "interval", "limit",
                 "logout_on_excess", "rejected")

    def __init__(self, limit: int, interval: float, action: str = "reject",
                 logout_multiple: float = 0.0) -> None:
        self.limit = limit
        self.interval = interval
        self.logout_on_excess = action == "logout"
        self.rejected = 0  # messages refused since start, for metrics
        self._admitted: deque[float] = deque(maxlen=limit)
        # Rejects allowed within one interval before gross abuse ends the session.
        self._excess: deque[float] | None = None
        self._text = f"throttle exceeded: max {limit} messages per {interval:g} s"
        self._abuse_text = self._text
        if logout_multiple > 0:
            self._excess = deque(maxlen=max(1, round((logout_multiple - 1) * limit)))
            self._abuse_text += (f"; logged out for sending {logout_multiple:g} times the"
                                 " limit")

    @classmethod
    def for_config(cls, config: SessionConfig) -> Throttle | None:
        if config.throttle_messages <= 0:
            return None
        return cls(config.throttle_messages, config.throttle_interval, config.throttle_action,
                   config.throttle_logout_multiple)

    def admit(self, now: float) -> bool:
        """Whether one more message may pass at `now`; counts it if so."""
        admitted = self._admitted
        if len(admitted) < self.limit or now - admitted[0] >= self.interval:
            admitted.append(now)  # the deque's maxlen drops the oldest
            return True
        return False

    def refuse(self, now: float) -> Refusal:
        """Count one message over the limit and say how it is answered."""
        self.rejected += 1
        if self.logout_on_excess:
            return Refusal(self._text, True)
        excess = self._excess
        if excess is not None:
            excess.append(now)
            if len(excess) == excess.maxlen and now - excess[0] < self.interval:
                return Refusal(self._abuse_text, True)
        return Refusal(self._text, False)
