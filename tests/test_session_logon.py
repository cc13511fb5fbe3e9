"""Session layer, state-machine level: logon rules and session identification."""

from __future__ import annotations

from fix_gateway.session import Session, SessionConfig, SessionRegistry
from session_store import MemoryStore
from tests.fix_peer import DICTIONARY, OUR_ID, T0, THEIR_ID, SansIOPeer


def test_valid_logon_is_answered_with_logon_echoing_heartbeat() -> None:
    peer = SansIOPeer()
    replies = peer.log_on(heartbeat=17)
    logon = replies[0]
    assert logon.get(108) == b"17"
    assert logon.get(98) == b"0"
    assert logon.get(49) == OUR_ID.encode() and logon.get(56) == THEIR_ID.encode()
    assert logon.get(34) == b"1"
    assert peer.closed is None
    assert peer.store.next_target_seq == 2


def test_first_message_not_logon_disconnects_without_answer() -> None:
    peer = SansIOPeer()
    assert peer.send("1", (112, "hi")) == []
    assert peer.closed == "first message is not a Logon"
    assert not peer.session.connected


def test_unknown_comp_ids_get_logout_with_text_and_disconnect() -> None:
    peer = SansIOPeer()
    replies = peer.feed(peer.logon(30, sender="STRANGER"))
    assert [m.msg_type for m in replies] == [b"5"]
    assert b"Unknown session" in (replies[0].get(58) or b"")
    assert replies[0].get(56) == b"STRANGER"
    assert peer.closed


def test_wrong_begin_string_on_logon_gets_logout_and_disconnect() -> None:
    peer = SansIOPeer()
    replies = peer.feed(peer.logon(30, begin_string=b"FIX.4.2"))
    assert [m.msg_type for m in replies] == [b"5"]
    assert peer.closed


def test_heartbeat_outside_bounds_is_refused() -> None:
    peer = SansIOPeer(heartbeat_min=5, heartbeat_max=60)
    replies = peer.feed(peer.logon(1))
    assert [m.msg_type for m in replies] == [b"5"]
    assert b"HeartBtInt" in (replies[0].get(58) or b"")
    assert peer.closed


def test_wrong_password_is_refused() -> None:
    peer = SansIOPeer(username="alice", password="secret")
    replies = peer.feed(peer.logon(30, (553, "alice"), (554, "wrong")))
    assert [m.msg_type for m in replies] == [b"5"]
    assert peer.closed
    good = SansIOPeer(username="alice", password="secret")
    good.feed(good.logon(30, (553, "alice"), (554, "secret")))
    assert good.closed is None


def test_duplicate_logon_is_refused_without_disturbing_live_session() -> None:
    first = SansIOPeer()
    first.log_on()
    second = SansIOPeer(session=first.session, registry=first.registry)
    replies = second.feed(second.logon(30))
    assert replies == []
    assert second.closed == "session already logged on"
    # The live connection still works and its sequence numbers were not touched.
    assert first.session.connected
    answer = first.send("1", (112, "still-there"))
    assert [m.msg_type for m in answer] == [b"0"]
    assert answer[0].get(112) == b"still-there"
    assert answer[0].get(34) == b"2"


def test_reset_seq_num_flag_resets_both_sides_to_one() -> None:
    peer = SansIOPeer()
    peer.log_on()
    peer.send("0")
    peer.disconnect()
    assert peer.store.next_sender_seq == 2 and peer.store.next_target_seq == 3
    again = SansIOPeer(session=peer.session, registry=peer.registry)
    replies = again.feed(again.logon(30, (141, "Y")))
    assert replies[0].get(141) == b"Y"
    assert replies[0].get(34) == b"1"
    assert peer.store.next_target_seq == 2 and peer.store.next_sender_seq == 2


def test_reset_on_logon_setting_resets_without_flag() -> None:
    peer = SansIOPeer(reset_on_logon=True)
    peer.log_on()
    peer.send("0")
    peer.disconnect()
    again = SansIOPeer(session=peer.session, registry=peer.registry)
    replies = again.feed(again.logon(30))
    assert replies[0].get(34) == b"1"
    assert peer.closed is None


def test_logon_seq_too_high_is_accepted_then_resend_requested() -> None:
    peer = SansIOPeer()
    replies = peer.feed(peer.logon(30, seq=5))
    assert [m.msg_type for m in replies] == [b"A", b"2"]
    assert replies[1].get(7) == b"1" and replies[1].get(16) == b"0"
    assert peer.closed is None


def test_logon_seq_too_low_gets_logout_and_disconnect() -> None:
    peer = SansIOPeer()
    peer.log_on()
    peer.send("0")
    peer.send("0")
    peer.disconnect()
    again = SansIOPeer(session=peer.session, registry=peer.registry)
    replies = again.feed(again.logon(30, seq=2))
    assert [m.msg_type for m in replies] == [b"5"]
    assert replies[0].get(58) == b"MsgSeqNum too low, expecting 4 but received 2"
    assert again.closed


def test_logon_reply_reverses_routing_fields() -> None:
    peer = SansIOPeer()
    replies = peer.feed(peer.logon(30, header=[(115, "BROKER"), (116, "DESK"), (128, "VENUE")]))
    logon = replies[0]
    assert logon.get(128) == b"BROKER"
    assert logon.get(129) == b"DESK"
    assert logon.get(115) == b"VENUE"
    assert 116 not in logon


def test_logon_timeout_closes_silent_connection() -> None:
    peer = SansIOPeer()
    peer.advance(4.0)
    assert peer.closed is None
    peer.advance(1.5)
    assert peer.closed == "no Logon received"


def test_two_sessions_are_found_by_comp_ids() -> None:
    sessions = [
        Session(SessionConfig(OUR_ID, name), MemoryStore(), DICTIONARY, on_event=lambda *a: None)
        for name in ("A1", "B2")
    ]
    registry = SessionRegistry(sessions)
    peer = SansIOPeer(session=sessions[1], registry=registry, now=T0)
    peer.sender = "B2"
    peer.log_on()
    assert sessions[1].connected and not sessions[0].connected
