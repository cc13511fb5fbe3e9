"""The FIX 4.4 dictionary (specs/FIX44.xml) and validation driven by it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fix_gateway.codec import Decoder, FieldValue, Message, encode
from fix_gateway.dictionary import DEFAULT_DICTIONARY, Dictionary, ValidationPolicy
from tests.property_examples import examples

DICT = Dictionary.load()
STRICT = ValidationPolicy()
TS = b"20270115-08:00:00.000"
HEADER: list[tuple[int, FieldValue]] = [(34, 2), (49, "C"), (52, TS), (56, "V")]


def message(msg_type: str, *body: tuple[int, FieldValue]) -> Message:
    (msg,), _ = Decoder().feed(encode([(35, msg_type), *HEADER, *body]))
    assert isinstance(msg, Message)
    return msg


def problem(msg_type: str, *body: tuple[int, FieldValue],
            policy: ValidationPolicy = STRICT) -> tuple[int, int | None] | None:
    found = DICT.validate(message(msg_type, *body), policy)
    return None if found is None else (found.reason, found.tag)


def test_dictionary_is_quickfix_format_and_complete() -> None:
    root = ET.parse(DEFAULT_DICTIONARY).getroot()
    assert (root.get("type"), root.get("major"), root.get("minor")) == ("FIX", "4", "4")
    assert DICT.begin_string == b"FIX.4.4"
    for msg_type in (b"0", b"1", b"2", b"3", b"4", b"5", b"A", b"j", b"D", b"F", b"G", b"H",
                     b"8", b"9", b"q", b"r"):
        assert msg_type in DICT.messages
    assert DICT.is_admin(b"A") and not DICT.is_admin(b"D")
    # Every MsgType of FIX 4.4 is known, so unsupported is told apart from invalid.
    assert {b"S", b"R", b"V", b"AE"} <= DICT.known_msg_types


@pytest.mark.parametrize(
    ("tag", "value", "ok"),
    [
        (38, "100", True), (38, "100.5", True), (38, ".5", True), (38, "-3", True),
        (38, "1e5", False), (38, "+1", False), (38, "12a", False),  # QTY
        (44, "101.25", True), (44, "1.2.3", False),  # PRICE
        (60, "20270115-08:00:00", True), (60, "20270115-08:00:00.123456", True),
        (60, "20270230-08:00:00", False), (60, "2027-01-15 08:00", False),  # UTCTIMESTAMP
        (54, "1", True), (54, "Z", False),  # CHAR enum
        (18, "1 2", True), (18, "1 #", False),  # MULTIPLEVALUESTRING enum
        (432, "20270115", True), (432, "2027011", False),  # LOCALMKTDATE
    ],
)
def test_field_types_and_enums_on_new_order_single(tag: int, value: str, ok: bool) -> None:
    base = [(11, "X"), (54, "1"), (60, TS), (40, "2")]
    body = [f for f in base if f[0] != tag] + [(tag, value)]
    found = problem("D", *body)
    if ok:
        assert found is None
    else:
        assert found is not None and found[1] == tag and found[0] in (5, 6)


def test_boolean_and_int_types_on_session_messages() -> None:
    assert problem("4", (36, 5), (123, "Y")) is None
    assert problem("4", (36, 5), (123, "X")) == (6, 123)  # BOOLEAN: Y or N
    assert problem("4", (36, "five")) == (6, 36)  # SEQNUM
    assert problem("A", (98, 0), (108, "30s")) == (6, 108)  # INT


def test_required_fields_lowest_missing_tag_first() -> None:
    assert problem("D", (54, "1"), (40, "2")) == (1, 11)
    assert problem("2", (7, 1)) == (1, 16)


def test_repeating_group_members_delimiter_and_count() -> None:
    parties = [(453, 2), (448, "A"), (447, "D"), (452, 1), (448, "B"), (452, 3)]
    order = [(11, "X"), (54, "1"), (60, TS), (40, "2")]
    assert problem("D", *order, *parties) is None
    assert problem("D", *order, (453, 3), *parties[1:]) == (16, 453)
    # An entry must start with the delimiter (448): a member before it is out of order.
    assert problem("D", *order, (453, 1), (447, "D"), (448, "A")) == (15, 447)
    # Zero entries is a valid count.
    assert problem("D", *order, (453, 0)) is None


def test_group_members_out_of_dictionary_order_are_373_15_at_the_first_misplaced_tag() -> None:
    order = [(11, "X"), (54, "1"), (60, TS), (40, "2")]
    # NoPartyIDs is PartyID(448), PartyIDSource(447), PartyRole(452): 452 before 447.
    first = [(448, "A"), (452, 1), (447, "D")]
    found = DICT.validate(message("D", *order, (453, 1), *first), STRICT)
    assert found is not None
    assert (found.reason, found.tag, found.text) == (
        15, 447, "Out of order repeating group members")
    # The second entry is out of order: the first entry's good order does not hide it.
    good = [(448, "A"), (447, "D"), (452, 1)]
    assert problem("D", *order, (453, 2), *good, *first) == (15, 447)
    # A member repeated inside one entry is out of order too, not "appears more than once".
    assert problem("D", *order, (453, 1), *good, (452, 3)) == (15, 452)
    # Found while parsing, so it is reported before a bad value and a missing field.
    assert problem("D", (54, "Z"), (60, TS), (40, "2"), (453, 1), *first) == (15, 447)


def test_group_entry_without_its_delimiter_is_373_15_naming_group_and_delimiter() -> None:
    email = [(164, "T1"), (94, "0"), (147, "Hi")]
    # A NoRelatedSym(146) entry must start with Symbol(55); this one starts with
    # the nested NoSecurityAltID(454) group.
    body = [(146, 1), (454, 1), (455, "X"), (456, "4"), (55, "ACME"), (33, 1), (58, "hi")]
    found = DICT.validate(message("C", *email, *body), STRICT)
    assert found is not None
    assert (found.reason, found.tag) == (15, 454)
    assert found.text == (
        "The group NoRelatedSym (146) must begin with its delimiter field Symbol (55)")
    # Starting with a plain member instead of the delimiter: the same answer for that member.
    assert problem("C", *email, (146, 1), (65, "A"), (55, "ACME"), (33, 1), (58, "hi")) == (
        15, 65)
    # Well-formed, with the nested group inside the entry, it passes.
    good = [(146, 1), (55, "ACME"), (454, 1), (455, "X"), (456, "4"), (33, 1), (58, "hi")]
    assert problem("C", *email, *good) is None


def test_group_member_outside_its_group_is_not_defined_for_message() -> None:
    assert problem("D", (11, "X"), (54, "1"), (60, TS), (40, "2"), (448, "A")) == (2, 448)


def test_user_defined_fields_follow_the_policy() -> None:
    order = [(11, "X"), (54, "1"), (60, TS), (40, "2"), (5001, "custom")]
    assert problem("D", *order) == (0, 5001)
    relaxed = ValidationPolicy(user_defined_fields=False)
    assert problem("D", *order, policy=relaxed) is None


def test_empty_values_follow_the_policy() -> None:
    assert problem("1", (112, "")) == (4, 112)
    assert problem("1", (112, ""), policy=ValidationPolicy(fields_have_values=False)) is None


def test_trailer_fields_must_come_last() -> None:
    raw = encode([(35, "0"), *HEADER])
    raw = raw.replace(b"\x0110=", b"\x0193=2\x0189=ab\x01112=X\x0110=")
    # Re-frame so BodyLength and CheckSum are right.
    fields = [f.split(b"=", 1) for f in raw.split(b"\x01")[2:-2]]
    (msg,), _ = Decoder().feed(encode([(int(t), v) for t, v in fields]))
    assert isinstance(msg, Message)
    found = DICT.validate(msg, STRICT)
    assert found is not None and (found.reason, found.tag) == (14, 112)


def test_unsupported_msg_type_passes_validation_for_business_reject() -> None:
    assert problem("S", (117, "Q")) is None  # Quote: valid MsgType, not in our dictionary
    assert problem("ZZ") == (11, None)


def test_components_are_inlined_and_tag_names_resolve() -> None:
    assert 55 in DICT.messages[b"D"].body.members  # via the Instrument component
    assert DICT.tag_name(55) == "Symbol"
    assert DICT.tag_name(99999) == "99999"


_FIELD_VALUES = {
    11: [b"X", b""], 54: [b"1", b"Z", b""], 60: [TS, b"2027-01-01", b""], 40: [b"2", b"w"],
    38: [b"100", b"+1", b"1.5"], 44: [b"10.25", b"abc"], 55: [b"ACME"], 999: [b"HI"],
    5001: [b"U"], 112: [b"T"], 0: [b"Z"], 21: [b"1", b"4"], 453: [b"0"],
}


@settings(max_examples=examples(300), deadline=None)
@given(
    msg_type=st.sampled_from(["D", "0", "1", "S"]),
    picks=st.lists(st.tuples(st.sampled_from(sorted(_FIELD_VALUES)), st.integers(0, 2)),
                   max_size=8),
    policy=st.builds(ValidationPolicy, st.booleans(), st.booleans(), st.booleans()),
)
def test_planned_validation_agrees_with_full_validation(
    msg_type: str, picks: list[tuple[int, int]], policy: ValidationPolicy
) -> None:
    body = [(tag, _FIELD_VALUES[tag][i % len(_FIELD_VALUES[tag])]) for tag, i in picks]
    fields = [(8, b"FIX.4.4"), (9, b"0"), (35, msg_type.encode()), (34, b"2"), (49, b"C"),
              (52, TS), (56, b"V"), *body, (10, b"000")]
    msg = Message(tuple(tag for tag, _ in fields), [value for _, value in fields])
    for _ in range(2):  # the second call runs from the cached plan
        assert DICT.validate(msg, policy) == DICT._validate_full(msg, policy)
