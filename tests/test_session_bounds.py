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


def test_reports_queued_after_a_cut_are_not_sent_ahead_of_the_next_logon_reply() -> None:
    """A report made between an abort and the close stays stored, is not written on
    the next connection before the Logon reply, and is delivered by resend, PossDup."""
    peer = SansIOPeer()
    peer.log_on()
    session = peer.session
    stale = session.send(b"8", [(58, "made after the cut")], peer.now)  # seq 2, never written
    peer.disconnect()
    again = reconnect(session, peer.next_seq, peer.now + 1)
    replies = again.log_on()
    assert types(replies) == [b"A"] and replies[0].get(34) == b"3"
    resent = again.send("2", (7, 2), (16, 0))
    assert [(m.msg_type, m.get(34), m.get(43), m.get(58)) for m in resent] == [
        (b"8", b"2", b"Y", b"made after the cut"), (b"4", b"3", b"Y", None)]
    assert list(session.store.get_range(2, 2)) == [(2, stale)]


def test_logon_reply_comes_first_even_if_something_was_left_queued() -> None:
    peer = SansIOPeer()
    session = peer.session
    peer.log_on()
    peer.disconnect()
    session.outbox.append(peer.build("0", seq=99))  # a frame a shell failed to take
    replies = reconnect(session, peer.next_seq, peer.now + 1).log_on()
    assert types(replies) == [b"A"]


def test_gap_queue_is_bounded_in_bytes_logout_then_recovery_by_resend_on_reconnect() -> None:
    peer = SansIOPeer(max_queued_bytes=4096)
    peer.log_on()
    assert types(peer.send("0", seq=5)) == [b"2"]  # gap 2..4: asks, queues from here
    peer.next_seq = 6
    filler = "x" * 1000
    replies: list = []  # type: ignore[type-arg]
    for _ in range(4):  # ~1,100 bytes each: the fourth passes 4,096
        assert peer.closed is None
        replies = peer.send("1", (112, filler))
    assert types(replies) == [b"5"]
    assert replies[0].get(58) == b"Too many messages queued while waiting for a gap fill" \
        b" (more than 4096 bytes); log on again and resend"
    assert peer.closed is not None
    peer.disconnect()
    # The client logs on again; the gateway asks for the gap once more.
    again = reconnect(peer.session, peer.next_seq, peer.now + 1)
    replies = again.log_on()
    assert types(replies) == [b"A", b"2"] and replies[1].get(7) == b"2"


def test_gap_queue_under_the_byte_bound_is_released_in_order() -> None:
    peer = SansIOPeer(max_queued_bytes=1024)
    peer.log_on()
    peer.send("1", (112, "Q1" * 50), seq=3)
    peer.send("1", (112, "Q2" * 50), seq=4)
    replies = peer.send("0", seq=2)
    assert [m.get(112)[:2] for m in replies] == [b"Q1", b"Q2"]  # type: ignore[index]
    assert peer.session._queued_bytes == 0


def test_max_queued_bytes_setting_reaches_the_session() -> None:
    from fix_gateway.config import SessionSettings

    default = SessionSettings.model_validate({"SenderCompID": "A", "TargetCompID": "B"})
    assert default.to_config().max_queued_bytes == 8 * 1024 * 1024
    small = SessionSettings.model_validate({"SenderCompID": "A", "TargetCompID": "B",
                                            "MaxQueuedBytes": 65536})
    assert small.to_config().max_queued_bytes == 65536


def stored_reports(peer: SansIOPeer, count: int) -> None:
    """`count` ExecutionReports in the session's store, made while it was offline."""
    for i in range(count):
        peer.session.send(b"8", [(17, f"E{i}"), (58, "r" * 100)], peer.now)


def test_resend_requests_are_counted_once_each_and_chunks_separately() -> None:
    from types import SimpleNamespace

    from fix_gateway.metrics.collector import GatewayCollector
    from tests.fix_peer import DICTIONARY

    peer = SansIOPeer()
    stored_reports(peer, 2500)
    peer.log_on()
    peer.send("2", (7, 1), (16, 0))
    while peer.session.continue_resend(peer.now):
        pass
    counters = peer.session.counters
    assert counters.resend_requests_served == 1
    assert counters.resend_chunks_sent == 3  # 1,000 messages a chunk
    collector = GatewayCollector(SimpleNamespace(sessions=[peer.session],  # type: ignore[arg-type]
                                                 dictionary=DICTIONARY), None)  # type: ignore[arg-type]
    found = {m.name: m.samples[0].value for m in collector._session_families()
             if m.name.startswith("fixgw_resend")}
    assert found == {"fixgw_resend_requests_served": 1, "fixgw_resend_chunks_sent": 3}


def test_a_long_testreqid_is_rejected_373_5_and_not_echoed() -> None:
    peer = SansIOPeer()
    peer.log_on()
    [beat] = peer.send("1", (112, "k" * 128))
    assert (beat.msg_type, beat.get(112)) == (b"0", b"k" * 128)
    [reject] = peer.send("1", (112, "k" * 129))
    assert (reject.msg_type, reject.get(373), reject.get(371), reject.get(45)) == (
        b"3", b"5", b"112", b"3")
    assert reject.get(58) == b"TestReqID longer than 128 bytes"
    assert peer.closed is None and peer.store.next_target_seq == 4


def test_session_messages_count_against_the_throttle() -> None:
    peer = SansIOPeer(throttle_messages=3, throttle_interval=1.0)
    peer.log_on()
    replies = [peer.send("1", (112, f"T{i}")) for i in range(3)]
    assert [types(r) for r in replies] == [[b"0"]] * 3
    # Over the limit: a TestRequest or ResendRequest gets Reject 373=99, a Heartbeat or a
    # Reject nothing (there is nothing to answer); each still uses its MsgSeqNum.
    for msg_type, body in (("1", [(112, "T4")]), ("2", [(7, 1), (16, 0)])):
        [reject] = peer.send(msg_type, *body)  # type: ignore[arg-type]
        assert (reject.msg_type, reject.get(373), reject.get(372)) == (
            b"3", b"99", msg_type.encode())
        assert reject.get(58) == b"throttle exceeded: max 3 messages per 1 s"
    assert peer.send("0") == []
    assert peer.send("3", (45, 2), (373, 99)) == []
    # Application messages share the window.
    [bmr] = peer.send("D", (11, "C1"), (55, "ACME"), (54, "1"), (60, "20270115-10:00:00"),
                      (38, 10), (40, "2"), (44, "10"))
    assert (bmr.msg_type, bmr.get(380)) == (b"j", b"8")
    assert peer.session.throttle is not None and peer.session.throttle.rejected == 5
    assert peer.store.next_target_seq == 10 and peer.closed is None
    peer.now += 1.0  # the window moved on
    assert [m.get(112) for m in peer.send("1", (112, "T5"))] == [b"T5"]


def test_session_messages_past_the_throttle_log_out_with_throttle_action_logout() -> None:
    peer = SansIOPeer(throttle_messages=2, throttle_action="logout")
    peer.log_on()
    peer.send("0")
    peer.send("0")
    [logout] = peer.send("1", (112, "one too many"))
    assert (logout.msg_type, logout.get(58)) == (
        b"5", b"throttle exceeded: max 2 messages per 1 s")
    assert peer.closed is not None
