"""Absurd numbers and times: every numeric or time field gets its defined answer.

Python's int() raises past 4,300 digits and datetime has no year 0000; either,
raised inside the read handler, aborted the connection with no FIX answer and a
sequence number consumed. Each entry point seen gets the answer the spec names
(session Reject 373=5/6/10/16, ExecutionReport 150=8 with 103, Logout or close
before Logon), and a property test feeds every numeric and time field of the
dictionary absurd values through a real session with order entry.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.engine import MatchingEngine
from engine.journal import CommandJournal
from engine.types import Instrument
from fix_gateway.application.order_entry import OrderEntry
from fix_gateway.application.prices import MAX_WHOLE_DIGITS, PriceScale, parse_decimal
from fix_gateway.codec import Decoder, FieldValue, Garbled, Message, encode, parse_int, parse_uint
from fix_gateway.config import GatewaySettings
from fix_gateway.server import Gateway
from fix_gateway.session import Session, SessionConfig, State
from fix_gateway.utc_time import format_timestamp, parse_timestamp
from session_store import FsyncPolicy, MemoryStore
from tests.fix_peer import DICTIONARY, OUR_ID, T0, THEIR_ID, SansIOPeer, TcpPeer
from tests.property_examples import examples
from tests.venue import Client, venue_settings

NOW = format_timestamp(T0).decode()
HUGE = "9" * 5000  # past Python's 4,300-digit int() limit
YEAR_0 = "00000101-00:00:00"
INSTRUMENTS = [Instrument("ACME")]
ORDER: list[tuple[int, FieldValue]] = [
    (11, "O1"), (55, "ACME"), (54, "1"), (60, NOW), (38, "10"), (40, "2"), (44, "10"),
]  # fmt: skip


@contextlib.contextmanager
def order_venue() -> Iterator[SansIOPeer]:
    """A sans-I/O connection to a session whose application is order entry."""
    with tempfile.TemporaryDirectory(prefix="fixgw-numbers-") as directory:
        config = SessionConfig(sender_comp_id=OUR_ID, target_comp_id=THEIR_ID)
        session = Session(config, MemoryStore(T0), DICTIONARY, on_event=lambda *a: None)
        journal = CommandJournal(Path(directory) / "journal.dat", fsync=FsyncPolicy.NONE)
        session.application = OrderEntry(MatchingEngine(INSTRUMENTS), journal, INSTRUMENTS,
                                          {config.name: session}.get)
        try:
            yield SansIOPeer(session)
        finally:
            journal.close()


@pytest.fixture
def venue() -> Iterator[SansIOPeer]:
    with order_venue() as peer:
        yield peer


def with_value(fields: list[tuple[int, FieldValue]], tag: int,
               value: FieldValue) -> list[tuple[int, FieldValue]]:
    return [(t, value if t == tag else v) for t, v in fields]


# --- the wire helpers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"0", 0), (b"42", 42), (b"9" * 18, 10**18 - 1), (b"0" * 5000 + b"7", 7),
        (b"0" * 30, 0), (b"1" + b"0" * 18, None), (HUGE.encode(), None), (b"", None),
        (b"+5", None), (b" 5", None), (b"5 ", None), (b"-5", None), (b"1_000", None),
        ("\u0663".encode(), None), (b"\xb2", None), (None, None),
    ],
)  # fmt: skip
def test_parse_uint_takes_ascii_digits_of_at_most_18_significant(
    text: bytes | None, expected: int | None
) -> None:
    assert parse_uint(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [(b"-5", -5), (b"-0", 0), (b"-", None), (b"--5", None), (b"-" + HUGE.encode(), None),
     (b"-" + b"0" * 5000 + b"3", -3), (b"+5", None)],
)
def test_parse_int_takes_a_leading_minus(text: bytes, expected: int | None) -> None:
    assert parse_int(text) == expected


def test_year_0000_is_not_a_timestamp_and_year_9999_is() -> None:
    assert parse_timestamp(YEAR_0.encode()) is None
    assert parse_timestamp(b"00000229-12:00:00.000") is None
    assert parse_timestamp(b"99991231-23:59:59.999") is not None


def test_decimal_saturates_past_its_whole_digits() -> None:
    saturated = 10 ** MAX_WHOLE_DIGITS
    assert parse_decimal(HUGE.encode(), 2) == saturated * 100
    assert parse_decimal(b"-" + HUGE.encode() + b".50", 2) == -saturated * 100
    assert parse_decimal(b"0" * 5000 + b"12.5", 1) == 125
    assert parse_decimal(HUGE.encode() + b".001", 2) is None  # not exact, as before
    # Saturated is out of range whatever the tick: no "not a multiple of 0.03".
    ticks = PriceScale(Decimal("0.03")).to_ticks(HUGE.encode())
    assert ticks is not None and ticks > 10**20


def test_body_length_of_thousands_of_digits_is_garbled_not_raised() -> None:
    items, over = Decoder().feed(b"8=FIX.4.4\x019=" + HUGE.encode() + b"\x01")
    assert over is None
    assert [type(i) for i in items] == [Garbled]
    assert items[0].reason == "BodyLength(9) is not a number"


def test_data_length_of_thousands_of_digits_is_read_as_no_length() -> None:
    raw = encode([(35, "0"), (34, 2), (49, THEIR_ID), (52, NOW), (56, OUR_ID),
                  (95, HUGE), (96, "x")])
    items, _ = Decoder().feed(raw)
    assert isinstance(items[0], Message) and items[0].get(96) == b"x"


# --- each entry point seen, through a session with order entry ------------------------


def only(replies: list[Message], msg_type: bytes) -> Message:
    assert [m.msg_type for m in replies] == [msg_type], replies
    return replies[0]


@pytest.mark.parametrize(
    ("msg_type", "body", "header", "tag", "reason"),
    [
        ("2", [(7, HUGE), (16, 0)], [], 7, b"5"),  # BeginSeqNo
        ("2", [(7, 1), (16, HUGE)], [], 16, b"5"),  # EndSeqNo
        ("4", [(123, "Y"), (36, HUGE)], [], 36, b"5"),  # NewSeqNo
        ("D", [*ORDER, (386, HUGE), (336, "X")], [], 386, b"16"),  # NumInGroup
        ("D", [*ORDER, (354, HUGE), (355, "x")], [], 354, b"5"),  # a length field
        ("D", with_value(ORDER, 60, YEAR_0), [], 60, b"6"),  # TransactTime
        ("D", [*ORDER, (59, "6"), (126, YEAR_0)], [], 126, b"6"),  # ExpireTime
        ("D", [*ORDER, (110, "1" + "0" * 30)], [], None, None),  # decimal: order entry's
        ("0", [], [(43, "Y"), (122, YEAR_0)], 122, b"6"),  # OrigSendingTime
        ("0", [], [(369, HUGE)], 369, b"5"),  # LastMsgSeqNumProcessed
    ],
)  # fmt: skip
def test_absurd_value_gets_session_reject_and_uses_its_seqnum(
    venue: SansIOPeer, msg_type: str, body: list[tuple[int, FieldValue]],
    header: list[tuple[int, FieldValue]], tag: int | None, reason: bytes | None,
) -> None:
    venue.log_on()
    replies = venue.send(msg_type, *body, header=header)
    if reason is None:  # MinQty: a well-formed decimal, out of range
        er = only(replies, b"8")
        assert (er.get(150), er.get(103)) == (b"8", b"13")
    else:
        reject = only(replies, b"3")
        assert (reject.get(371), reject.get(373), reject.get(45)) == (
            str(tag).encode(), reason, b"2")
    # A rejected SequenceReset does not move the seqnum (it is not acted on).
    assert venue.store.next_target_seq == (2 if msg_type == "4" else 3)
    assert venue.closed is None


def test_huge_msg_seq_num_is_rejected_and_the_expected_seqnum_stays(
    venue: SansIOPeer,
) -> None:
    venue.log_on()
    reject = only(venue.send("0", seq=HUGE), b"3")  # type: ignore[arg-type]
    assert (reject.get(371), reject.get(373), reject.get(45)) == (b"34", b"5", b"0")
    assert venue.store.next_target_seq == 2  # which message it was is unknowable
    venue.next_seq = 2
    assert only(venue.send("1", (112, "T")), b"0").get(112) == b"T"


def test_year_0000_sending_time_is_rejected(venue: SansIOPeer) -> None:
    venue.log_on()
    reject = only(venue.send("1", (112, "T"), sending_time=YEAR_0), b"3")
    assert (reject.get(371), reject.get(373)) == (b"52", b"6")
    assert venue.store.next_target_seq == 3


def test_year_9999_sending_time_is_an_accuracy_problem(venue: SansIOPeer) -> None:
    venue.log_on()
    replies = venue.send("1", (112, "T"), sending_time="99991231-23:59:59.999")
    assert [m.msg_type for m in replies] == [b"3", b"5"]
    assert replies[0].get(373) == b"10"


@pytest.mark.parametrize(
    ("tag", "value", "reason", "text"),
    [
        (38, HUGE, b"13", "OrderQty(38) is outside the venue's range"),
        (38, "-" + HUGE, b"13", "OrderQty(38) is outside the venue's range"),
        (44, HUGE, b"99", "Price(44) " + "9" * 40 + "... (5000 characters) is outside"),
        (44, HUGE + ".5", b"99", "Price(44) " + "9" * 40 + "... (5002 characters) is outside"),
    ],
)
def test_huge_order_quantity_or_price_gets_execution_report_rejected(
    venue: SansIOPeer, tag: int, value: str, reason: bytes, text: str
) -> None:
    venue.log_on()
    er = only(venue.send("D", *with_value(ORDER, tag, value)), b"8")
    assert (er.get(150), er.get(39), er.get(103)) == (b"8", b"8", reason)
    assert (er.get(58) or b"").decode().startswith(text), er
    assert venue.store.next_target_seq == 3


def test_huge_replace_quantity_gets_cancel_reject(venue: SansIOPeer) -> None:
    venue.log_on()
    only(venue.send("D", *ORDER), b"8")
    replace = [(41, "O1"), (11, "O2"), (55, "ACME"), (54, "1"), (60, NOW), (38, HUGE),
               (40, "2"), (44, "10")]
    reject = only(venue.send("G", *replace), b"9")
    assert reject.get(58) == b"OrderQty(38) is outside the venue's range (at most " \
                             b"1,000,000,000,000)"


@pytest.mark.parametrize(
    ("value", "problem"),
    [(HUGE, b"Value is incorrect (out of range) for this tag"),
     ("-" + HUGE, b"Value is incorrect (out of range) for this tag"),
     ("0" * 4400 + "30x", b"Incorrect data format for value")],
)
def test_absurd_heart_bt_int_refuses_the_logon_with_logout(value: str, problem: bytes) -> None:
    peer = SansIOPeer()
    logout = only(peer.feed(peer.build("A", (98, 0), (108, value))), b"5")
    assert logout.get(58) == b"Invalid Logon: " + problem + b" (108)"
    assert peer.closed


def test_huge_body_length_before_logon_closes_the_connection() -> None:
    peer = SansIOPeer()
    assert peer.feed(b"8=FIX.4.4\x019=" + HUGE.encode() + b"\x01") == []
    assert peer.closed == "garbled data before Logon: BodyLength(9) is not a number"


def test_huge_body_length_after_logon_is_dropped_and_the_session_goes_on(
    venue: SansIOPeer,
) -> None:
    venue.log_on()
    assert venue.feed(b"8=FIX.4.4\x019=" + HUGE.encode() + b"\x01") == []
    assert venue.closed is None
    assert only(venue.send("1", (112, "T")), b"0").get(112) == b"T"


# --- property: every numeric and time field of the dictionary --------------------------

NUMERIC_TYPES = frozenset((
    "INT", "LENGTH", "SEQNUM", "NUMINGROUP", "TAGNUM", "DAYOFMONTH", "PRICE", "PRICEOFFSET",
    "QTY", "AMT", "FLOAT", "PERCENTAGE", "UTCTIMESTAMP", "UTCTIMEONLY", "UTCDATEONLY",
    "UTCDATE", "LOCALMKTDATE", "MONTHYEAR",
))  # fmt: skip
NUMERIC_TAGS = sorted(tag for tag, f in DICTIONARY.fields.items()
                      if f.type in NUMERIC_TYPES and tag not in (8, 9, 10, 35))
# Messages that are always answered, with the fields that make them valid.
CARRIERS: dict[str, list[tuple[int, FieldValue]]] = {
    "1": [(112, "T1")],
    "2": [(7, 1), (16, 0)],
    "D": ORDER,
    "F": [(41, "O1"), (11, "C1"), (55, "ACME"), (54, "1"), (60, NOW)],
    "G": [(41, "O1"), (11, "R1"), (55, "ACME"), (54, "1"), (60, NOW), (38, "5"), (40, "2"),
          (44, "10")],
    "H": [(11, "O1"), (55, "ACME"), (54, "1")],
    "q": [(11, "M1"), (530, "7"), (60, NOW)],
}
HEADER_TAGS = (34, 52)  # set by the builder: an absurd value replaces the builder's


def _own_numeric_tags(msg_type: str) -> list[int]:
    members = DICTIONARY.messages[msg_type.encode()].body.members
    own = [tag for tag in (*members, *DICTIONARY.header.members) if tag in NUMERIC_TAGS]
    return sorted(set(own))


_DIGITS = st.sampled_from([19, 20, 4300, 4301, 5000, 20000]).map(lambda n: b"9" * n)
_TIMES = st.sampled_from([
    b"00000101-00:00:00", b"00000229-23:59:59.999", b"00000000-00:00:00",
    b"99991231-23:59:59", b"99991231-23:59:60.999999999", b"20270230-00:00:00",
    b"20271301-00:00:00", b"2027-01-15T08:00:00", b"\xef\xbc\x92" * 17, b"0000",
    b"99991231", b"23:59:60", b"24:00:00", b"000000", b"999912", b"0000w5",
])  # fmt: skip
_ODD = st.sampled_from([
    b"", b"-", b"+5", b"+" + b"9" * 5000, b" 5", b"5 ", b"\t5", b"1_000", b"1e5", b"0x10",
    b"NaN", b"inf", b"-0", b".", b"1.", b".5", b"--1", b"\xd9\xa3", b"\xb2", b"1" * 18,
    b"-" + b"9" * 18, b"0" * 5000 + b"1", b"0" * 5000 + b"2", b"-" + b"9" * 5000,
    b"9" * 5000 + b".5", b"0." + b"0" * 5000 + b"1", b"1=2", b"2",
])  # fmt: skip
_TEXT = st.binary(max_size=40).filter(lambda b: b"\x01" not in b)
ABSURD = st.one_of(_DIGITS, _TIMES, _ODD, _TEXT,
                   st.builds(lambda a, b: a + b, _DIGITS, _ODD))


def _place(msg_type: str, tag: int, value: bytes) -> tuple[list[tuple[int, FieldValue]],
                                                           dict[str, object]]:
    """The carrier's body with `value` at `tag`, and the build() keywords."""
    if tag == 34:
        return CARRIERS[msg_type], {"seq": value}
    if tag == 52:
        return CARRIERS[msg_type], {"sending_time": value}
    body = CARRIERS[msg_type]
    if any(t == tag for t, _ in body):
        return with_value(body, tag, value), {}
    if tag in DICTIONARY.header.members:
        return body, {"header": [(tag, value)]}
    return [*body, (tag, value)], {}


def _oracle_seq(value: bytes) -> int | None:
    """What a MsgSeqNum means, written apart from the code under test."""
    if not value.isdigit():
        return None
    significant = value.lstrip(b"0") or b"0"
    return int(significant) if len(significant) <= 18 else None


PROPERTY = settings(max_examples=examples(200), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(data=st.data(), msg_type=st.sampled_from(sorted(CARRIERS)), value=ABSURD)
def test_any_absurd_numeric_or_time_value_is_answered(
    data: st.DataObject, msg_type: str, value: bytes
) -> None:
    tag = data.draw(st.one_of(st.sampled_from(_own_numeric_tags(msg_type)),
                              st.sampled_from(NUMERIC_TAGS)), label="tag")
    with order_venue() as peer:
        peer.log_on()
        body, kw = _place(msg_type, tag, value)
        replies = peer.send(msg_type, *body, **kw)  # no exception escapes
        assert replies, (msg_type, tag, value[:50])
        seq = _oracle_seq(value) if tag == 34 else 2
        assert peer.store.next_target_seq == (3 if seq == 2 else 2), replies
        if peer.closed is None and peer.session.state is State.LOGGED_ON:
            peer.next_seq = peer.store.next_target_seq
            probe = peer.send("1", (112, "PROBE"))
            assert any(m.msg_type == b"0" and m.get(112) == b"PROBE" for m in probe), probe


@PROPERTY
@given(data=st.data(), value=ABSURD)
def test_any_absurd_numeric_or_time_value_in_a_logon_is_answered(
    data: st.DataObject, value: bytes
) -> None:
    tag = data.draw(st.one_of(st.sampled_from(_own_numeric_tags("A")),
                              st.sampled_from(NUMERIC_TAGS)), label="tag")
    peer = SansIOPeer()
    body: list[tuple[int, FieldValue]] = [(98, 0), (108, 30)]
    if tag == 34:
        raw = peer.build("A", *body, seq=value)  # type: ignore[arg-type]
    elif tag == 52:
        raw = peer.build("A", *body, sending_time=value)
    elif tag in (98, 108):
        raw = peer.build("A", *with_value(body, tag, value))
    elif tag in DICTIONARY.header.members:
        raw = peer.build("A", *body, header=[(tag, value)])
    else:
        raw = peer.build("A", *body, (tag, value))
    replies = peer.feed(raw)  # no exception escapes
    assert [m.msg_type for m in replies][:1] in ([b"A"], [b"5"]), (tag, value[:50], replies)
    if replies[0].msg_type == b"5":
        assert peer.closed


# --- a few through a real socket, against a running gateway with order entry -----------


@pytest.fixture
def gateway_settings(tmp_path: Path) -> GatewaySettings:
    return venue_settings(tmp_path, [{"TargetCompID": THEIR_ID}])


TCP_CASES: list[tuple[str, list[tuple[int, FieldValue]], dict[str, object], dict[int, str]]] = [
    ("0", [], {"seq": HUGE}, {35: "3", 371: "34", 373: "5"}),
    ("2", [(7, HUGE), (16, 0)], {}, {35: "3", 371: "7", 373: "5"}),
    ("0", [], {"sending_time": YEAR_0}, {35: "3", 371: "52", 373: "6"}),
    ("D", [*ORDER, (386, HUGE), (336, "X")], {}, {35: "3", 371: "386", 373: "16"}),
    ("D", [*ORDER, (354, HUGE), (355, "x")], {}, {35: "3", 371: "354", 373: "5"}),
    ("D", with_value(ORDER, 38, HUGE), {}, {35: "8", 150: "8", 103: "13"}),
    ("D", with_value(ORDER, 44, HUGE), {}, {35: "8", 150: "8", 103: "99"}),
    ("D", with_value(ORDER, 60, YEAR_0), {}, {35: "3", 371: "60", 373: "6"}),
]


@pytest.mark.socket
async def test_absurd_values_over_tcp_are_answered_and_the_session_lives(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    client = await Client.logged_on(gateway.port, THEIR_ID)
    for msg_type, body, kw, expected in TCP_CASES:
        kw = {"now": time.time(), **kw}
        await client.peer.write(client.peer.build(msg_type, *body, **kw))  # type: ignore[arg-type]
        answer = await client.next()
        assert {tag: answer.get(tag) for tag in expected} == expected, answer
    await client.alive()  # the seqnums of all but the first were used, and it is alive
    await client.close()
    # A Logon whose HeartBtInt no integer holds: Logout, then close.
    newcomer = await TcpPeer.connect(gateway.port, sender=THEIR_ID)
    await newcomer.write(newcomer.build("A", (98, 0), (108, HUGE), now=time.time()))
    assert (await newcomer.expect("5")).get(58) == \
        b"Invalid Logon: Value is incorrect (out of range) for this tag (108)"
    assert await newcomer.closed_by_peer()
    # Framing that cannot be trusted before a Logon: closed without a word.
    garbage = await TcpPeer.connect(gateway.port)
    await garbage.write(b"8=FIX.4.4\x019=" + HUGE.encode() + b"\x01")
    assert await garbage.closed_by_peer()
    assert garbage._pending == []
    # And the venue is still up for the session (numbered afresh: this client forgot).
    client = await Client.logged_on(gateway.port, THEIR_ID, (141, "Y"))
    await client.alive()
    await client.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.records
