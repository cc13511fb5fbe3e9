"""Plain counters kept by the session layer, read by the metrics collector.

The sans-I/O cores only bump ints in dicts here (one dict update per
message on the hot path); turning them into Prometheus metric families
happens at scrape time (`fix_gateway.metrics.collector`). Free-text reasons
(close reasons, refusal texts) are folded into a small fixed set of kinds by
`reason_kind` so that label values stay bounded.
"""

from __future__ import annotations

# Prefix of a close / refusal text -> the bounded label value it is counted as.
_REASON_KINDS: tuple[tuple[str, str], ...] = (
    ("Logout confirmed", "logout"),
    ("Logout requested by peer", "logout"),
    ("Timed out waiting for Logout", "logout_timeout"),
    ("TestRequest not answered", "heartbeat_timeout"),
    ("MsgSeqNum too low", "seqnum_too_low"),
    ("MsgSeqNum(34) missing", "protocol_error"),
    ("Received message without MsgSeqNum", "protocol_error"),
    ("Logon received while already logged on", "protocol_error"),
    ("Too many messages queued", "gap_too_large"),
    ("peer not reading", "slow_consumer"),
    ("connection lost", "connection_lost"),
    ("peer closed", "peer_closed"),
    ("message larger than", "oversized_message"),
    ("garbled data before Logon", "garbled_before_logon"),
    ("first message is not a Logon", "not_logon"),
    ("no Logon received", "logon_timeout"),
    ("Unknown session", "unknown_session"),
    ("session already logged on", "duplicate_logon"),
    ("Incorrect BeginString", "bad_begin_string"),
    ("Invalid Logon", "invalid_logon"),
    ("SendingTime accuracy problem", "sending_time"),
    ("HeartBtInt", "bad_heartbeat_interval"),
    ("Unsupported EncryptMethod", "bad_encrypt_method"),
    ("Invalid username or password", "auth_failed"),
    ("Logon not permitted from this address", "address_not_allowed"),
    ("Too many failed logons", "locked_out"),
    ("throttle exceeded", "throttled"),
)


# What a MsgType outside the dictionary is counted as: the client chooses MsgType, so
# counting each one apart would let it grow the counters and the metric labels.
OTHER_MSG_TYPE = b"other"


def reason_kind(text: str) -> str:
    """The bounded kind of a close or refusal text ("other" when not known)."""
    for prefix, kind in _REASON_KINDS:
        if text.startswith(prefix):
            return kind
    return "other"


def bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


class SessionCounters:
    """What one session (across all its connections) received, sent and refused."""

    __slots__ = (
        "business_rejects", "disconnects", "logon_refusals", "logons", "logouts", "received",
        "resend_chunks_sent", "resend_requests_served", "resent", "sent", "session_rejects",
    )  # fmt: skip

    def __init__(self) -> None:
        self.received: dict[bytes, int] = {}  # MsgType (known, or OTHER_MSG_TYPE) -> messages in
        self.sent: dict[bytes, int] = {}  # MsgType -> messages out (first sends)
        self.resent: dict[bytes, int] = {}  # MsgType -> messages out answering ResendRequests
        self.session_rejects: dict[int, int] = {}  # SessionRejectReason (373) -> Rejects sent
        self.business_rejects: dict[int, int] = {}  # BusinessRejectReason (380) -> 35=j sent
        self.resend_requests_served = 0  # ResendRequests answered (not rejected)
        self.resend_chunks_sent = 0  # the parts they were answered in, one per loop turn
        self.logons = 0
        self.logon_refusals: dict[str, int] = {}  # reason kind -> refused Logons
        self.logouts: dict[str, int] = {}  # initiated_by ("peer" / "gateway") -> Logouts
        self.disconnects: dict[str, int] = {}  # reason kind -> connections ended


class ConnectionCounters:
    """Gateway-wide counts for connections, including those never bound to a session."""

    __slots__ = ("accepted", "garbled", "refused")

    def __init__(self) -> None:
        self.accepted = 0
        self.garbled: dict[str, int] = {}  # session name ("" before Logon) -> frames dropped
        self.refused: dict[str, int] = {}  # reason kind -> closed before a session took over
