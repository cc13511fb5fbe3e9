"""What one FIX session is allowed and expected to do (plain values, no I/O)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from fix_gateway.dictionary import ValidationPolicy


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Identity and policies of one acceptor session.

    Names follow QuickFIX's session settings where one exists
    (ResetOnLogon -> reset_on_logon, MaxLatency -> max_latency, ...).
    """

    sender_comp_id: str  # ours
    target_comp_id: str  # theirs
    begin_string: str = "FIX.4.4"
    username: str | None = None
    password: str | None = None
    heartbeat_min: int = 1
    heartbeat_max: int = 300
    reset_on_logon: bool = False
    reset_on_logout: bool = False
    reset_on_disconnect: bool = False
    check_comp_id: bool = True
    check_latency: bool = True
    max_latency: float = 120.0
    validation: ValidationPolicy = field(default_factory=ValidationPolicy)
    logout_timeout: float = 2.0
    # Inbound silence beyond HeartBtInt * this factor triggers a TestRequest;
    # twice that silence without an answer ends the session.
    test_request_factor: float = 1.2
    # Bytes of out-of-sequence messages held while a gap is filled; past it: Logout.
    max_queued_bytes: int = 8 * 1024 * 1024
    # Security (see fix_gateway/auth.py and fix_gateway/session/throttle.py).
    password_hash: str | None = None  # scrypt$n$r$p$salt$hash, checked instead of `password`
    allowed_addresses: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    throttle_messages: int = 0  # application messages per throttle_interval; 0: no throttle
    throttle_interval: float = 1.0
    throttle_action: str = "reject"  # reject | logout
    throttle_logout_multiple: float = 0.0  # log out at this multiple of the limit; 0: never
    max_open_orders: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        """How a Logon finds this session: (their SenderCompID, their TargetCompID)."""
        return (self.target_comp_id, self.sender_comp_id)

    @property
    def name(self) -> str:
        return f"{self.sender_comp_id}-{self.target_comp_id}"
