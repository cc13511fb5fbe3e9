"""The compiled codec (fix_gateway.codec_c) against its pure-Python reference
(fix_gateway.codec_pure): the same byte streams, chunked the same way, give the
same messages, Garbled reasons and spans, Oversized and buffered counts; the
encoders give the same bytes; the integer readers the same numbers.

Both are imported side by side, whatever FIXGW_PURE says; the module is
skipped only where the extension is not built (tests/test_codec_build.py
says whether that is expected).
"""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fix_gateway import codec_pure as pure
from tests.property_examples import examples

SOH = b"\x01"


compiled = pytest.importorskip(
    "fix_gateway.codec_c",
    reason="the compiled codec is not built (python setup.py build_ext --inplace)",
)


# --- what a decoder says, in comparable form ------------------------------------------


def describe(item: object) -> tuple[Any, ...]:
    if isinstance(item, pure.Garbled):
        return ("garbled", item.reason, item.raw)
    if isinstance(item, pure.Oversized):
        return ("oversized", item.size)
    assert isinstance(item, pure.Message | compiled.Message), item
    return ("message", item.tags, item.values, item.raw)


def decode(decoder_class: type, chunks: list[bytes], max_size: int) -> list[tuple[Any, ...]]:
    """Per chunk: what came out, the overflow and what stays buffered."""
    dec = decoder_class(max_size)
    said = []
    for chunk in chunks:
        items, over = dec.feed(chunk)
        said.append(([describe(i) for i in items], over and describe(over), dec.buffered))
    return said


def assert_same(chunks: list[bytes], max_size: int = 65536) -> None:
    assert decode(compiled.Decoder, chunks, max_size) == decode(pure.Decoder, chunks, max_size)


def split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(set(cuts)), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(points)]


def with_checksum(head: bytes) -> bytes:
    return head + b"10=%03d\x01" % (sum(head) % 256)


# --- streams ----------------------------------------------------------------------------

BEGINS = [b"FIX.4.4", b"FIX.4.2", b"FIXT.1.1", b"FIX.4.4x", b"FIX=4", b"FIX.4.4.0123456789",
          b"FIX.4.4.01234567890", b""]  # fmt: skip
tags = st.one_of(
    st.integers(1, 300),
    st.integers(1, 12000),
    st.sampled_from([0, -1, 93, 89, 95, 96, 212, 213, 354, 355, 10, 8, 9, 35]),
)
field_values = st.one_of(
    st.binary(max_size=12).map(lambda b: b.replace(SOH, b"")),
    st.sampled_from([b"", b"a=b", b"8=FIX.4.4", b"5", b"3", b"0", b"-2", b"x" * 300]),
)
odd_tag_texts = st.sampled_from([b"007", b"-5", b"abc", b"", b"1234567890", b"-", b"4.5", b"+5"])


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """A frame: usually well formed, often with a NewOrderSingle-like body,
    sometimes with data fields, odd tags, many fields, or a lying header."""
    begin = draw(st.sampled_from(BEGINS[:3]) | st.sampled_from(BEGINS))
    msg_type = draw(st.sampled_from([b"D", b"8", b"0", b"AE"]))
    body = [b"35=" + msg_type]
    if draw(st.booleans()):
        body += [b"34=%d" % draw(st.integers(1, 10**6)), b"49=CLIENT1",
                 b"52=20270115-08:00:00.000", b"56=FIXGW", b"11=ORD-1", b"55=AAPL", b"54=1",
                 b"38=100", b"40=2", b"44=101.25"]  # fmt: skip
    for tag, value in draw(st.lists(st.tuples(tags, field_values), max_size=10)):
        body.append(b"%d=%b" % (tag, value))
    if draw(st.integers(0, 9)) == 0:
        body.append(draw(odd_tag_texts) + b"=v")
    if draw(st.integers(0, 9)) == 0:  # a data field and its length, honest or not
        data = draw(st.binary(max_size=8))
        length = draw(st.sampled_from([len(data), len(data) + 1, 0, 99]))
        body += [b"95=%d" % length, b"96=" + data]
    if draw(st.integers(0, 19)) == 0:  # more fields than a Message keeps as offsets
        body += [b"58=%d" % i for i in range(draw(st.integers(40, 60)))]
    text = SOH.join(body) + SOH
    length = draw(st.sampled_from([len(text)] * 6 + [len(text) + 3, max(len(text) - 2, 0), 0,
                                                      999_999_999]))  # fmt: skip
    length_text = draw(st.sampled_from([b"%d" % length] * 8 + [b"x", b"", b"0%d" % length,
                                                               b"1234567890"]))  # fmt: skip
    head = b"8=" + begin + SOH + b"9=" + length_text + SOH + text
    raw = with_checksum(head)
    mangle = draw(st.integers(0, 9))
    if mangle == 0:  # a wrong CheckSum
        raw = head + b"10=%03d\x01" % ((sum(head) + 1) % 256)
    elif mangle == 1:  # a checksum that is not three digits
        raw = head + draw(st.sampled_from([b"10=1\x01", b"10=0001\x01", b"10=a1b\x01"]))
    elif mangle == 2:  # truncated
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif mangle == 3:  # one byte changed
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1 :]
    elif mangle == 4:  # 9 not second, or 35 not third
        raw = with_checksum(draw(st.sampled_from([
            b"8=" + begin + b"\x0135=D\x019=5\x01",
            b"8=" + begin + b"\x019=%d\x0134=1\x0135=D\x01" % (len(text) + 5),
        ])))  # fmt: skip
    return raw


FRAGMENTS = [b"8=FIX.4.4\x01", b"8=FIX", b"9=", b"\x0110=", b"35=D\x01", SOH, b"=", b"1", b"23",
             b"9=12\x01", b"10=000\x01", b"x", b"\x00\xff", b"8=", b"FIX", b"34=1\x01"]  # fmt: skip
noise = st.one_of(
    st.binary(max_size=60), st.lists(st.sampled_from(FRAGMENTS), max_size=20).map(b"".join)
)
max_sizes = st.sampled_from([40, 64, 200, 256, 300, 1000, 65536])


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(frames(), frames(), noise), max_size=6), st.data())
def test_property_streams_decode_the_same(parts: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(parts)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8))
    assert_same(split(stream, cuts), data.draw(max_sizes))


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frames(), min_size=1, max_size=3))
def test_property_streams_decode_the_same_byte_by_byte(parts: list[bytes]) -> None:
    stream = b"".join(parts)
    assert_same([stream[i : i + 1] for i in range(len(stream))])


def nos(seq: int) -> bytes:
    return pure.encode([
        (35, b"D"), (34, seq), (49, b"CLIENT1"), (52, b"20270115-08:00:00.000"),
        (56, b"FIXGW"), (11, b"ORD-%d" % seq), (1, b"ACC-1"), (55, b"AAPL"), (54, 1),
        (38, 100), (40, 2), (44, b"101.25"), (59, 0),
    ])  # fmt: skip


EDGE_STREAMS = [
    nos(1) * 3,
    b"8=FIX=4\x019=5\x0135=0\x01" + b"10=%03d\x01" % (sum(b"8=FIX=4\x019=5\x0135=0\x01") % 256),
    b"8=FIX.4.4\x019=999999999\x0135=D\x01" + nos(2),
    b"8=FIX.4.4\x019=1234567890\x0135=D\x01" + nos(2),
    b"garbage" + nos(1) + b"8=FI",
    b"8=FIX.4.4\x01\x01\x01" + nos(3),
    b"8=FIX.4.4\x019",
    b"8=FIX.4.4\x019=" + b"1" * 20,
    b"8=FIX" + b"x" * 30 + SOH + nos(4),
    nos(5)[:-1] + b"8=FIX" + nos(6),
    with_checksum(b"8=FIX.4.4\x019=14\x0135=0\x0195=2\x0196=\x01=\x01"),
    with_checksum(b"8=FIX.4.4\x019=15\x0135=0\x010007=x\x01"),
    with_checksum(b"8=FIX.4.4\x019=13\x0135=0\x01abc=x\x01"),
    with_checksum(b"8=FIX.4.4\x019=300\x0135=0\x0158=" + b"y" * 291 + SOH),
]


@pytest.mark.parametrize("stream", EDGE_STREAMS)
@pytest.mark.parametrize("max_size", [64, 256, 65536])
def test_edge_streams_decode_the_same_at_every_split(stream: bytes, max_size: int) -> None:
    for cut in range(len(stream) + 1):
        assert_same([stream[:cut], stream[cut:]], max_size)


def test_non_bytes_chunks_decode_as_bytes() -> None:
    chunks = [bytearray(nos(1)), memoryview(nos(2))]
    said = decode(compiled.Decoder, chunks, 65536)  # type: ignore[arg-type]
    assert said == decode(pure.Decoder, [bytes(c) for c in chunks], 65536)


# --- Message ------------------------------------------------------------------------------


def message_views(msg: Any) -> list[object]:
    looked_up = sorted({*msg.tags, 0, 7, 9999, -1})
    return [
        msg.tags, msg.values, msg.raw, msg.msg_type, msg.fields, repr(msg),
        [msg.get(t) for t in looked_up], [msg.get(t, b"?") for t in looked_up],
        msg.get_many(looked_up), [t in msg for t in looked_up],
        [msg.get_all(t) for t in looked_up],
    ]  # fmt: skip


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_property_messages_answer_the_same(raw: bytes) -> None:
    items, _ = pure.Decoder().feed(raw)
    if len(items) != 1 or not isinstance(items[0], pure.Message):
        return
    theirs = items[0]
    (ours,), _ = compiled.Decoder().feed(raw)
    # Each lookup on a fresh message too: the first one decides what a Message keeps.
    for view in range(11):
        (fresh,), _ = compiled.Decoder().feed(raw)
        assert message_views(fresh)[view] == message_views(theirs)[view]
    assert message_views(ours) == message_views(theirs)


def test_message_built_from_fields_behaves_as_the_reference() -> None:
    for cls in (pure.Message, compiled.Message):
        msg = cls([8, 9, 35, 55, 55], [b"FIX.4.4", b"9", b"D", b"A", b"B"], b"raw")
        assert msg.tags == (8, 9, 35, 55, 55) and msg.msg_type == b"D"
        assert msg.get(55) == b"A" and msg.get_all(55) == [b"A", b"B"] and msg.raw == b"raw"
        assert cls((1,), [b"x"]).raw == b""
    ours = compiled.Message((8, 9, 35), [b"a", b"b", b"c"])
    assert message_views(ours) == message_views(pure.Message((8, 9, 35), [b"a", b"b", b"c"]))


def test_a_framed_message_keeps_its_values_through_edits() -> None:
    raw = nos(7)
    (msg,), _ = compiled.Decoder().feed(raw)
    msg.raw = b"masked"  # values stay those of the frame that was parsed
    assert msg.get(11) == b"ORD-7" and msg.raw == b"masked"
    (msg,), _ = compiled.Decoder().feed(raw)
    msg.values[5] = b"changed"  # as the reference: the list is the message's own
    assert msg.get(msg.tags[5]) == b"changed"
    (msg,), _ = compiled.Decoder().feed(raw)
    copy = pickle.loads(pickle.dumps(msg))
    assert (copy.tags, copy.values, copy.raw) == (msg.tags, msg.values, msg.raw)


# --- functions ----------------------------------------------------------------------------


def same_outcome(ours: Callable[..., object], theirs: Callable[..., object], *args: Any) -> None:
    """Same value, or the same exception type."""
    try:
        expected: object = theirs(*args)
    except Exception as exc:  # the reference's exception is the answer
        with pytest.raises(type(exc)):
            ours(*args)
        return
    got = ours(*args)
    assert got == expected and type(got) is type(expected), (args, got, expected)


digit_texts = st.one_of(
    st.binary(max_size=30),
    st.from_regex(rb"\A-?0{0,25}[0-9]{0,25}\Z"),
    st.sampled_from([b"", b"-", b"0", b"-0", b"00", b"9" * 18, b"9" * 19, b"0" * 30 + b"1",
                     b"1" * 4400, b" 1", b"1 ", b"+1", b"--1", b"\xd9\xa3", b"0" * 19]),
)  # fmt: skip


@settings(max_examples=examples(400), deadline=None)
@given(digit_texts)
def test_property_integer_readers_agree(text: bytes) -> None:
    for name in ("parse_uint", "parse_int", "int_in_reach"):
        same_outcome(getattr(compiled, name), getattr(pure, name), text)


def test_integer_readers_agree_on_other_types() -> None:
    for value in (None, "12", "١٢", bytearray(b"12"), memoryview(b"-3")):
        for name in ("parse_uint", "parse_int"):
            same_outcome(getattr(compiled, name), getattr(pure, name), value)


@settings(max_examples=examples(300), deadline=None)
@given(st.one_of(st.binary(max_size=600), frames()))
def test_property_checksum_and_parse_fields_agree(data: bytes) -> None:
    same_outcome(compiled.checksum, pure.checksum, data)
    same_outcome(compiled.checksum, pure.checksum, bytearray(data))
    same_outcome(compiled.parse_fields, pure.parse_fields, data)


render_tags = st.one_of(st.integers(1, 9999), st.integers(-(2**70), 2**70),
                        st.sampled_from([0, 10000, True, "35", b"35"]))  # fmt: skip
render_values = st.one_of(
    st.binary(max_size=20), st.integers(-(2**70), 2**70), st.text(max_size=5),
    st.sampled_from([True, False, 1.5, -0, 2**63, -(2**63), 2**64, b"%d", "é", "\u20ac"]),
)  # fmt: skip


@settings(max_examples=examples(400), deadline=None)
@given(st.lists(st.tuples(render_tags, render_values), max_size=40))
def test_property_render_agrees(fields: list[tuple[object, object]]) -> None:
    same_outcome(compiled.render, pure.render, fields)
    same_outcome(lambda f: compiled.render(iter(f)), lambda f: pure.render(iter(f)), fields)


def test_render_rejects_what_the_reference_rejects() -> None:
    for bad in ([(1,)], [(1, 2, 3)], [5], None, [({}, b"x")], [(1, object())]):
        same_outcome(compiled.render, pure.render, bad)


@settings(max_examples=examples(300), deadline=None)
@given(st.sampled_from([b"FIX.4.4", b"FIXT.1.1", b"", b"x" * 40]),
       st.one_of(st.binary(max_size=400), st.binary(min_size=2000, max_size=3000)))
def test_property_frame_agrees(begin: bytes, body: bytes) -> None:
    same_outcome(compiled.frame, pure.frame, begin, body)
    same_outcome(compiled.frame, pure.frame, bytearray(begin), body)
    same_outcome(compiled.frame, pure.frame, begin, memoryview(body))
    same_outcome(compiled.frame, pure.frame, "FIX.4.4", body)
