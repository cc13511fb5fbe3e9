"""Session layer, state-machine level: session Rejects (373), business rejects,
CompID and SendingTime checks, garbled input, heartbeats and TestRequests."""

from __future__ import annotations

import pytest

from fix_gateway.codec import encode, frame, render
from fix_gateway.utc_time import format_timestamp
from tests.fix_peer import T0, SansIOPeer

NOW = format_timestamp(T0)
ORDER = [(11, "ID"), (21, "1"), (38, "100"), (40, "1"), (54, "1"), (55, "INTC"), (60, NOW)]


def logged_on(**config: object) -> SansIOPeer:
    peer = SansIOPeer(**config)
    peer.log_on()
    return peer


def only_reject(replies: list) -> dict[int, bytes | None]:  # type: ignore[type-arg]
    assert [m.msg_type for m in replies] == [b"3"], replies
    r = replies[0]
    return {tag: r.get(tag) for tag in (45, 58, 371, 372, 373)}


@pytest.mark.parametrize(
    ("msg_type", "body", "reason", "ref_tag", "text"),
    [
        ("0", [(999, "HI")], b"0", b"999", b"Invalid tag number"),
        ("0", [(5000, "HI")], b"0", b"5000", b"Invalid tag number"),
        ("0", [(55, "MSFT")], b"2", b"55", b"Tag not defined for this message type"),
        ("D", [(t, v) for t, v in ORDER if t != 11], b"1", b"11", b"Required tag missing"),
        ("D", [(21, "4") if t == 21 else (t, v) for t, v in ORDER], b"5", b"21",
         b"Value is incorrect (out of range) for this tag"),
        ("D", [(38, "+200.00") if t == 38 else (t, v) for t, v in ORDER], b"6", b"38",
         b"Incorrect data format for value"),
        ("D", [*ORDER[:4], (40, "2"), *ORDER[4:]], b"13", b"40", b"Tag appears more than once"),
        ("D", [*ORDER, (386, 3), (336, "PRE-OPEN"), (336, "AFTER-HOURS")], b"16", b"386",
         b"Incorrect NumInGroup count for repeating group"),
        ("D", [*ORDER, (126, "20040415")], b"6", b"126", b"Incorrect data format for value"),
    ],
)
def test_invalid_message_gets_session_reject(
    msg_type: str, body: list[tuple[int, str]], reason: bytes, ref_tag: bytes, text: bytes
) -> None:
    peer = logged_on()
    reject = only_reject(peer.send(msg_type, *body))
    assert reject == {45: b"2", 58: text, 371: ref_tag, 372: msg_type.encode(), 373: reason}
    assert peer.store.next_target_seq == 3  # a rejected message still uses its seqnum
    assert peer.closed is None


def test_tag_zero_and_negative_tag_are_invalid_tag_numbers() -> None:
    peer = logged_on()
    for tag in (b"0", b"-1"):
        raw = peer.build("0").replace(b"\x0110=", b"\x01" + tag + b"=HI\x0110=")
        # Re-frame so BodyLength and CheckSum are right for the edited body.
        fields = raw.split(b"\x01")[2:-2]
        msg = encode([(int(f.split(b"=")[0]), f.split(b"=", 1)[1]) for f in fields])
        reject = only_reject(peer.feed(msg))
        assert (reject[371], reject[373]) == (tag, b"0")


def test_empty_value_is_rejected_373_4_before_compid_check() -> None:
    peer = logged_on()
    reject = only_reject(peer.send("0", target=""))
    assert (reject[371], reject[373]) == (b"56", b"4")
    assert peer.closed is None


def test_header_field_after_body_field_is_373_14() -> None:
    peer = logged_on()
    # encode() would put the header first; build the disorder by hand instead.
    body = b"35=D\x01" + render(ORDER) + b"34=2\x0149=CLIENT1\x0152=" + NOW + b"\x0156=FIXGW\x01"
    raw = frame(b"FIX.4.4", body)
    reject = only_reject(peer.feed(raw))
    assert (reject[371], reject[373]) == (b"34", b"14")


def test_invalid_msg_type_is_373_11_without_ref_tag() -> None:
    peer = logged_on()
    reject = only_reject(peer.send("*"))
    assert (reject[371], reject[372], reject[373]) == (None, b"*", b"11")


def test_valid_but_unsupported_msg_type_gets_business_reject_380_3() -> None:
    peer = logged_on()
    replies = peer.send("8", (37, "id"), (17, "id"), (150, "0"), (39, "0"), (55, "X"), (54, "1"),
                        (151, "100"), (14, "0"), (6, "0.0"))
    assert [m.msg_type for m in replies] == [b"j"]
    assert (replies[0].get(380), replies[0].get(372), replies[0].get(45)) == (b"3", b"8", b"2")
    # A message type the venue's dictionary does not define at all (Quote).
    replies = peer.send("S", (117, "Q1"), (55, "X"))
    assert [m.msg_type for m in replies] == [b"j"]
    assert replies[0].get(380) == b"3"


def test_compid_mismatch_rejects_373_9_then_logout() -> None:
    peer = logged_on()
    replies = peer.send("D", *ORDER, sender="WT")
    assert [m.msg_type for m in replies] == [b"3", b"5"]
    assert (replies[0].get(373), replies[0].get(371)) == (b"9", None)
    assert replies[0].get(56) == b"CLIENT1"  # answered to the session, not to "WT"
    assert peer.send("5") == []
    assert peer.closed


@pytest.mark.parametrize("offset", [-121, 121])
def test_sending_time_outside_window_rejects_373_10_then_logout(offset: int) -> None:
    peer = logged_on()
    replies = peer.send("0", sending_time=format_timestamp(T0 + offset))
    assert [m.msg_type for m in replies] == [b"3", b"5"]
    assert replies[0].get(373) == b"10"


def test_sending_time_check_can_be_turned_off() -> None:
    peer = logged_on(check_latency=False)
    assert peer.send("0", sending_time=format_timestamp(T0 - 3600)) == []


def test_wrong_begin_string_in_session_logs_out_and_uses_seqnum() -> None:
    peer = logged_on()
    replies = peer.send("1", (112, "id"), begin_string=b"FIX.4.1")
    assert [m.msg_type for m in replies] == [b"5"]
    assert replies[0].get(58) == b"Incorrect BeginString"
    assert peer.store.next_target_seq == 3
    peer.advance(2.5)
    assert peer.closed == "Timed out waiting for Logout"


def _good_heartbeat() -> bytes:
    return encode([(35, "0"), (34, 2), (49, "CLIENT1"), (52, NOW), (56, "FIXGW")])


@pytest.mark.parametrize(
    "garbled",
    [
        _good_heartbeat()[:-4] + b"999\x01",  # wrong CheckSum
        _good_heartbeat().replace(b"\x019=5", b"\x019=4", 1),  # BodyLength too short
        frame(b"FIX.4.4", b"34=2\x0135=0\x0149=CLIENT1\x0152=" + NOW + b"\x0156=FIXGW\x01"),
        _good_heartbeat().replace(b"\x0134=2", b"\x0134x=2"),  # a tag that is not a number
    ],
    ids=["checksum", "body-length", "msgtype-not-third", "non-numeric-tag"],
)
def test_garbled_message_is_dropped_counted_and_does_not_use_seqnum(garbled: bytes) -> None:
    peer = logged_on()
    assert peer.feed(garbled) == []
    assert peer.conn.garbled == 1
    assert peer.store.next_target_seq == 2
    assert peer.closed is None
    assert [m.msg_type for m in peer.send("1", (112, "OK"))] == [b"0"]


def test_heartbeat_after_interval_of_our_silence() -> None:
    peer = logged_on()
    assert peer.advance(29.0) == []
    replies = peer.advance(1.0)
    assert [m.msg_type for m in replies] == [b"0"]


def test_test_request_after_their_silence_then_disconnect_if_unanswered() -> None:
    peer = SansIOPeer()
    peer.log_on(heartbeat=10)
    assert [m.msg_type for m in peer.advance(10.0)] == [b"0"]  # our heartbeat
    replies = peer.advance(2.0)  # 12 s of their silence = 1.2 x HeartBtInt
    assert [m.msg_type for m in replies] == [b"1"]
    assert replies[0].get(112) == b"TEST"
    # While the TestRequest is outstanding no heartbeat is sent.
    assert peer.advance(10.0) == []
    peer.advance(2.0)  # 24 s of silence
    assert peer.closed == "TestRequest not answered"


def test_answered_test_request_keeps_session_up() -> None:
    peer = SansIOPeer()
    peer.log_on(heartbeat=10)
    peer.advance(10.0)
    assert [m.msg_type for m in peer.advance(2.0)] == [b"1"]
    peer.send("0", (112, "TEST"))
    peer.advance(11.0)
    assert peer.closed is None


def test_test_request_is_answered_with_its_id() -> None:
    peer = logged_on()
    replies = peer.send("1", (112, "PING-42"))
    assert [m.msg_type for m in replies] == [b"0"]
    assert replies[0].get(112) == b"PING-42"


@pytest.mark.parametrize(
    ("inbound", "outbound"),
    [
        ([(115, "JCD")], {128: b"JCD"}),
        ([(128, "JCD")], {115: b"JCD"}),
        ([(115, "JCD"), (116, "CS"), (144, "CHI")], {128: b"JCD", 129: b"CS", 145: b"CHI"}),
        ([(128, "JCD"), (129, "CS"), (145, "CHI")], {115: b"JCD", 116: b"CS", 144: b"CHI"}),
    ],
)
def test_reject_reverses_routing_fields(
    inbound: list[tuple[int, str]], outbound: dict[int, bytes]
) -> None:
    peer = logged_on()
    bad = [(40, "w") if t == 40 else (t, v) for t, v in ORDER]
    replies = peer.send("D", *bad, header=inbound)
    reject = replies[0]
    assert reject.get(373) == b"5"
    for tag in (115, 116, 144, 128, 129, 145):
        assert reject.get(tag) == outbound.get(tag)
    # Header in ascending tag order after 8, 9, 35.
    header_tags = [t for t in reject.tags[3:] if t in (34, 49, 52, 56, *outbound)]
    assert header_tags == sorted(header_tags)
