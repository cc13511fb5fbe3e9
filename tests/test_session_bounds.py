"""Session layer, state-machine level: what one peer may cost the gateway (issue 21),
and HeartBtInt=0."""

from __future__ import annotations

from fix_gateway.session import Session
from tests.fix_peer import SansIOPeer


def types(msgs: list) -> list[bytes]:  # type: ignore[type-arg]
    return [m.msg_type for m in msgs]


def reconnect(session: Session, next_seq: int, now: float) -> SansIOPeer:
    """A new connection for `session`, the client's numbering continued."""
    peer = SansIOPeer(session, now=now)
    peer.next_seq = next_seq
    return peer


def test_heartbtint_zero_means_no_heartbeats_no_testrequests_no_timeout() -> None:
    peer = SansIOPeer(heartbeat_min=0)
    assert peer.log_on(heartbeat=0)[0].get(108) == b"0"
    for _ in range(100):
        assert peer.advance(60.0) == []
    assert peer.closed is None
    assert [m.get(112) for m in peer.send("1", (112, "still-there"))] == [b"still-there"]
