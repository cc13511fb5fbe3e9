"""Session layer, state-machine level: MsgSeqNum rules, gap fill, PossDup, resend."""

from __future__ import annotations

from fix_gateway.utc_time import format_timestamp
from tests.fix_peer import T0, SansIOPeer


def logged_on(**config: object) -> SansIOPeer:
    peer = SansIOPeer(**config)
    peer.log_on()
    return peer


def types(msgs: list) -> list[bytes]:  # type: ignore[type-arg]
    return [m.msg_type for m in msgs]


def test_in_sequence_messages_advance_expected_seqnum() -> None:
    peer = logged_on()
    for _ in range(3):
        assert peer.send("0") == []
    assert peer.store.next_target_seq == 5


def test_seqnum_too_high_requests_resend_and_queues_until_gap_filled() -> None:
    peer = logged_on()
    replies = peer.send("1", (112, "LATER"), seq=5)
    assert types(replies) == [b"2"]
    assert replies[0].get(7) == b"2" and replies[0].get(16) == b"0"
    # A second too-high message does not ask again.
    assert peer.send("1", (112, "LATER2"), seq=6) == []
    # The gap 2..4 arrives; then the queued TestRequests are answered, in order.
    peer.send("0", seq=2)
    peer.send("0", seq=3)
    replies = peer.send("0", seq=4)
    assert [m.get(112) for m in replies] == [b"LATER", b"LATER2"]
    assert peer.store.next_target_seq == 7


def test_gap_fill_releases_queued_messages() -> None:
    peer = logged_on()
    peer.send("1", (112, "Q"), seq=10)
    replies = peer.send("4", (36, 10), (123, "Y"), seq=2)
    assert [m.get(112) for m in replies] == [b"Q"]
    assert peer.store.next_target_seq == 11


def test_seqnum_too_low_without_possdup_logs_out_and_disconnects() -> None:
    peer = logged_on()
    peer.send("0")
    peer.send("0")
    replies = peer.send("0", seq=2)
    assert types(replies) == [b"5"]
    assert replies[0].get(58) == b"MsgSeqNum too low, expecting 4 but received 2"
    assert peer.closed


def test_possdup_for_processed_seqnum_is_ignored() -> None:
    peer = logged_on()
    peer.send("0")
    replies = peer.send("1", (112, "X"), seq=2, header=[(43, "Y"), (122, format_timestamp(T0))])
    assert replies == []
    assert peer.closed is None
    assert peer.store.next_target_seq == 3


def test_possdup_without_orig_sending_time_is_rejected_373_1() -> None:
    peer = logged_on()
    replies = peer.send("1", (112, "X"), header=[(43, "Y")])
    assert types(replies) == [b"3"]
    reject = replies[0]
    assert (reject.get(373), reject.get(371), reject.get(45)) == (b"1", b"122", b"2")
    assert peer.closed is None


def test_orig_sending_time_after_sending_time_rejects_373_10_then_logout() -> None:
    peer = logged_on()
    later = format_timestamp(T0 + 10)
    replies = peer.send("1", (112, "X"), header=[(43, "Y"), (122, later)])
    assert types(replies) == [b"3", b"5"]
    assert replies[0].get(373) == b"10"
    # We wait for the peer's Logout, then close without answering it.
    assert peer.closed is None
    assert peer.send("5") == []
    assert peer.closed == "Logout confirmed"


def test_sequence_reset_reset_mode_ignores_its_own_seqnum() -> None:
    peer = logged_on()
    assert peer.send("4", (36, 25), seq=0) == []
    assert peer.store.next_target_seq == 25


def test_sequence_reset_new_seqno_lower_is_rejected_373_5() -> None:
    peer = logged_on()
    peer.send("0")
    replies = peer.send("4", (36, 1), seq=0)
    assert types(replies) == [b"3"]
    assert replies[0].get(373) == b"5"
    assert 371 not in replies[0]
    assert peer.store.next_target_seq == 3


def test_gap_fill_too_low_with_possdup_is_ignored_and_too_high_is_queued() -> None:
    peer = logged_on()
    peer.send("0")
    assert peer.send("4", (36, 9), (123, "Y"), seq=2,
                     header=[(43, "Y"), (122, format_timestamp(T0))]) == []
    assert peer.store.next_target_seq == 3
    replies = peer.send("4", (36, 20), (123, "Y"), seq=8)
    assert types(replies) == [b"2"]
    assert peer.store.next_target_seq == 3


def test_resend_request_resends_application_messages_and_gap_fills_admin() -> None:
    peer = logged_on()
    peer.send("D", (11, "A1"), (54, 1), (60, format_timestamp(T0)), (40, 1))  # BMR 34=2
    peer.send("1", (112, "P"))  # Heartbeat 34=3
    peer.send("D", (11, "A2"), (54, 1), (60, format_timestamp(T0)), (40, 1))  # BMR 34=4
    replies = peer.send("2", (7, 1), (16, 0))
    assert types(replies) == [b"4", b"j", b"4", b"j"]
    first_gap, bmr1, second_gap, bmr2 = replies
    assert (first_gap.get(34), first_gap.get(36), first_gap.get(123)) == (b"1", b"2", b"Y")
    assert first_gap.get(43) == b"Y"
    assert (second_gap.get(34), second_gap.get(36)) == (b"3", b"4")
    for resent, seq in ((bmr1, b"2"), (bmr2, b"4")):
        assert resent.get(34) == seq
        assert resent.get(43) == b"Y"
        assert resent.get(122) is not None
    # Resends use no new sequence numbers.
    assert peer.store.next_sender_seq == 5


def test_resend_request_with_end_before_begin_is_rejected() -> None:
    peer = logged_on()
    replies = peer.send("2", (7, 5), (16, 3))
    assert types(replies) == [b"3"]
    assert replies[0].get(373) == b"5"


def test_resend_request_beyond_last_sent_is_rejected() -> None:
    peer = logged_on()
    replies = peer.send("2", (7, 50), (16, 0))
    assert types(replies) == [b"3"]
    assert b"beyond" in (replies[0].get(58) or b"")


def test_too_high_resend_request_is_served_once_and_not_replayed() -> None:
    peer = logged_on()
    peer.send("D", (11, "A1"), (54, 1), (60, format_timestamp(T0)), (40, 1))  # BMR 34=2
    assert types(peer.send("0", seq=5)) == [b"2"]
    replies = peer.send("2", (7, 2), (16, 2), seq=6)
    assert types(replies) == [b"j"]
    replies = peer.send("0", seq=3) + peer.send("0", seq=4)
    assert replies == []  # the queued ResendRequest is not served a second time
    assert peer.store.next_target_seq == 7


def test_possresend_of_seen_clordid_is_not_acted_on_twice() -> None:
    peer = logged_on()
    order = [(11, "ORD1"), (54, 1), (60, format_timestamp(T0)), (40, 1)]
    assert types(peer.send("D", *order)) == [b"j"]
    assert peer.send("D", *order, header=[(97, "Y")]) == []
    assert types(peer.send("D", (11, "ORD2"), *order[1:], header=[(97, "Y")])) == [b"j"]
    assert peer.store.next_target_seq == 5


def test_logout_from_peer_is_answered_and_closes() -> None:
    peer = logged_on()
    replies = peer.send("5")
    assert types(replies) == [b"5"]
    assert 58 not in replies[0]
    assert peer.closed == "Logout requested by peer"


def test_logout_out_of_sequence_is_still_answered() -> None:
    peer = logged_on()
    replies = peer.send("5", seq=9)
    assert types(replies) == [b"5"]
    assert peer.closed


def test_our_logout_waits_for_answer_then_times_out() -> None:
    peer = logged_on(logout_timeout=2.0)
    peer.session.logout("bye", peer.now)
    assert types(peer.replies()) == [b"5"]
    peer.advance(1.0)
    assert peer.closed is None
    peer.advance(1.5)
    assert peer.closed == "Timed out waiting for Logout"


def test_reset_on_logout_resets_store() -> None:
    peer = logged_on(reset_on_logout=True)
    peer.send("0")
    peer.send("5")
    assert peer.store.next_sender_seq == 1 and peer.store.next_target_seq == 1


def test_reset_on_disconnect_resets_store() -> None:
    peer = logged_on(reset_on_disconnect=True)
    peer.send("0")
    peer.disconnect()
    assert peer.store.next_sender_seq == 1 and peer.store.next_target_seq == 1


def test_mid_session_logon_with_reset_flag_restarts_sequence_numbers() -> None:
    peer = logged_on()
    for _ in range(5):
        peer.send("0")
    replies = peer.feed(peer.logon(30, (141, "Y"), seq=1, now=peer.now))
    assert types(replies) == [b"A"]
    assert (replies[0].get(34), replies[0].get(141)) == (b"1", b"Y")
    assert peer.store.next_target_seq == 2
