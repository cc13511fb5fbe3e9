"""FIX tag=value codec, pure Python: incremental framing, parsing and encoding.

The reference implementation: `fix_gateway.codec` is the module the rest of
the code imports. Sans-I/O: bytes in, `Message` or `Garbled` out; fields in, bytes out. Nothing in
here raises on bad input: a frame that cannot be trusted comes back as
`Garbled` with a reason, and the decoder resynchronises on the next "8=FIX".
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Sequence
from typing import NamedTuple
from zlib import adler32

SOH = b"\x01"
_TRAILER_MARK = b"\x0110="
_START_MARK = b"8=FIX"
_TRAILER_LEN = 7  # b"10=ddd\x01"
_MAX_BEGIN_FIELD = 21  # b"8=FIX" and up to 16 more bytes, as _HEAD allows

# Tags whose value is length-prefixed binary data (the preceding tag gives the length).
DATA_TAGS: dict[int, int] = {
    89: 93,  # Signature <- SignatureLength
    91: 90,  # SecureData <- SecureDataLen
    96: 95,  # RawData <- RawDataLength
    213: 212,  # XmlData <- XmlDataLen
    351: 350,  # EncodedSecurityDesc
    353: 352,  # EncodedListExecInst
    355: 354,  # EncodedText
    357: 356,  # EncodedSubject
    359: 358,  # EncodedHeadline
    361: 360,  # EncodedAllocText
    363: 362,  # EncodedUnderlyingIssuer
    365: 364,  # EncodedUnderlyingSecurityDesc
    445: 444,  # EncodedListStatusText
    618: 619,  # EncodedLegIssuer
    621: 620,  # EncodedLegSecurityDesc
}
_DATA_LENGTH_TAGS = frozenset(DATA_TAGS.values())

# bytes tag -> int, so the hot path never calls int() per field.
_TAG_OF: dict[bytes, int] = {str(n).encode(): n for n in range(1, 10000)}
# The fast path's map leaves out data-length tags: meeting one (a KeyError)
# sends the frame to the slow path, which honours the data field's length.
_PLAIN_TAG_OF: dict[bytes, int] = {
    text: n for text, n in _TAG_OF.items() if n not in _DATA_LENGTH_TAGS
}
# Every byte but '=' and SOH, for reading the separator skeleton of a frame.
_NOT_SEPARATORS = bytes(b for b in range(256) if b not in (0x01, 0x3D))
_ALTERNATING = b"=\x01" * 40000
_TAG_BYTES: dict[int, bytes] = {n: str(n).encode() + b"=" for n in range(1, 10000)}

_HEAD = re.compile(rb"8=FIX[^\x01]{0,16}\x019=(\d{1,9})\x01")
_INT_TAG = re.compile(rb"-?\d{1,9}")

# Significant digits an integer field may carry: 18 fit any 64-bit column. A peer
# chooses the length of what it sends, and Python's int() raises past 4,300 digits
# (and costs quadratic time below that), so nothing converts a longer one.
MAX_INT_DIGITS = 18


def int_in_reach(digits: bytes) -> bool:
    """Whether ASCII digits (an optional '-' first) have at most MAX_INT_DIGITS
    significant digits: leading zeros do not count."""
    return len(digits) <= MAX_INT_DIGITS or len(
        digits.lstrip(b"-").lstrip(b"0")) <= MAX_INT_DIGITS


def parse_uint(text: bytes | None) -> int | None:
    """A non-negative FIX integer (ASCII digits only, no sign, no space), or None
    when it is absent, malformed or has more than MAX_INT_DIGITS significant digits."""
    if text is None or not text.isdigit():
        return None
    if len(text) > MAX_INT_DIGITS:
        text = text.lstrip(b"0") or b"0"  # int() would count leading zeros to its limit
        if len(text) > MAX_INT_DIGITS:
            return None
    return int(text)


def parse_int(text: bytes | None) -> int | None:
    """A FIX integer (ASCII digits, an optional '-' first), or None as `parse_uint` says."""
    if text is None:
        return None
    if text[:1] == b"-":
        value = parse_uint(text[1:])
        return None if value is None else -value
    return parse_uint(text)


def checksum(data: bytes) -> int:
    """FIX CheckSum: byte sum modulo 256.

    Adler-32's low half is 1 + the byte sum modulo 65521, exact while the sum
    stays below 65521, i.e. for chunks of up to 256 bytes; that is ten times
    faster than `sum(data)`.
    """
    n = len(data)
    if n <= 256:
        return ((zlib.adler32(data) & 0xFFFF) - 1) & 0xFF
    total = 0
    for i in range(0, n, 256):
        total += (zlib.adler32(data[i : i + 256]) & 0xFFFF) - 1
    return total & 0xFF


def tag_prefix(tag: int) -> bytes:
    """b"<tag>=" for a tag number."""
    prefix = _TAG_BYTES.get(tag)
    return prefix if prefix is not None else str(tag).encode() + b"="


class Message:
    """A parsed FIX message: fields in wire order, repeated tags kept.

    `tags[i]` and `values[i]` are the i-th field; `raw` is the exact frame.
    Lookups by tag return the first occurrence.
    """

    __slots__ = ("_pos", "raw", "tags", "values")

    def __init__(self, tags: Sequence[int], values: list[bytes], raw: bytes = b"") -> None:
        self.tags = tags if tags.__class__ is tuple else tuple(tags)
        self.values = values
        self.raw = raw
        self._pos: dict[int, int] | None = None

    def get(self, tag: int, default: bytes | None = None) -> bytes | None:
        pos = self._pos
        if pos is None:
            pos = self._pos = positions(self.tags)
        i = pos.get(tag)
        return default if i is None else self.values[i]

    def get_many(self, tags: Sequence[int]) -> list[bytes | None]:
        """The values of `tags` (first occurrences; None where absent), in one call."""
        pos = self._pos
        if pos is None:
            pos = self._pos = positions(self.tags)
        values = self.values
        return [None if (i := pos.get(tag)) is None else values[i] for tag in tags]

    def __contains__(self, tag: int) -> bool:
        pos = self._pos
        if pos is None:
            pos = self._pos = positions(self.tags)
        return tag in pos

    def get_all(self, tag: int) -> list[bytes]:
        return [v for t, v in zip(self.tags, self.values, strict=True) if t == tag]

    @property
    def msg_type(self) -> bytes:
        # The framer guarantees 8, 9, 35 are the first three fields.
        return self.values[2]

    @property
    def fields(self) -> list[tuple[int, bytes]]:
        return list(zip(self.tags, self.values, strict=True))

    def __repr__(self) -> str:
        shown = "|".join(f"{t}={v.decode('latin-1')}" for t, v in self.fields)
        return f"Message({shown})"


# tag -> position of its first occurrence, per tag sequence: shared by every
# message of the same shape, so a lookup builds no dict per message. Bounded.
_POSITIONS: dict[tuple[int, ...], dict[int, int]] = {}


def positions(tags: tuple[int, ...]) -> dict[int, int]:
    pos = _POSITIONS.get(tags)
    if pos is None:
        pos = {}
        for i, tag in enumerate(tags):
            pos.setdefault(tag, i)
        if len(_POSITIONS) >= 4096:
            _POSITIONS.clear()
        _POSITIONS[tags] = pos
    return pos


class Garbled(NamedTuple):
    """A frame that was dropped: why, and the bytes that were skipped."""

    reason: str
    raw: bytes


class Oversized(NamedTuple):
    """The peer sent more than `max_message_size` bytes without a complete message."""

    size: int


Decoded = Message | Garbled


def parse_fields(raw: bytes) -> tuple[Sequence[int], list[bytes]] | None:
    """Split a whole frame (8=... through 10=...) into tags and values.

    None when a tag is not an integer (the frame is garbled). Integer tags
    that are not valid tag numbers (0, -1) are kept for the validator to
    reject with RefTagID set to them.
    """
    # Fast path: separators strictly alternate '=' SOH '=' SOH ... (so no
    # value holds a '=' and every field has one), and no binary data field.
    skeleton = raw.translate(None, _NOT_SEPARATORS)
    if skeleton[-1:] == SOH and _ALTERNATING.startswith(skeleton):
        parts = raw.replace(b"=", SOH).split(SOH)
        tag_texts = parts[0:-1:2]
        key = SOH.join(tag_texts)
        tags = _TAG_CACHE.get(key) or _tag_tuple(key, tag_texts)
        if tags is not None:
            return tags, parts[1::2]
    return _parse_fields_slow(raw)


# Tag sequences seen recently (joined tag texts -> tag numbers): a client
# sends the same few message shapes over and over, so most frames skip the
# per-field int conversion. Bounded: cleared when full.
_TAG_CACHE: dict[bytes, tuple[int, ...]] = {}
_TAG_CACHE_SIZE = 4096


def _tag_tuple(key: bytes, tag_texts: list[bytes]) -> tuple[int, ...] | None:
    """Tag numbers for a frame's tag texts (and remember them), or None if the
    fast path cannot take it (a non-numeric or data-length tag)."""
    try:
        tags = tuple(map(_PLAIN_TAG_OF.__getitem__, tag_texts))
    except KeyError:
        return None
    if len(_TAG_CACHE) >= _TAG_CACHE_SIZE:
        _TAG_CACHE.clear()
    _TAG_CACHE[key] = tags
    return tags


def _parse_fields_slow(raw: bytes) -> tuple[Sequence[int], list[bytes]] | None:
    """Field-by-field parse that honours data-field lengths and odd tags."""
    tags: list[int] = []
    values: list[bytes] = []
    pos = 0
    end = len(raw)
    data_len: dict[int, int] = {}
    while pos < end:
        eq = raw.find(b"=", pos)
        if eq < 0:
            break
        tag_text = raw[pos:eq]
        tag = _TAG_OF.get(tag_text)
        if tag is None:
            if _INT_TAG.fullmatch(tag_text) is None:
                return None
            tag = int(tag_text)
        length_tag = DATA_TAGS.get(tag)
        if length_tag is not None and length_tag in data_len:
            stop = eq + 1 + data_len[length_tag]
            if raw[stop : stop + 1] != SOH:
                stop = raw.find(SOH, eq + 1)
        else:
            stop = raw.find(SOH, eq + 1)
        if stop < 0:
            stop = end
        value = raw[eq + 1 : stop]
        if tag in _DATA_LENGTH_TAGS:
            length = parse_uint(value)
            if length is not None:  # else the data field ends at its SOH; validation rejects
                data_len[tag] = length
        tags.append(tag)
        values.append(value)
        pos = stop + 1
    return tuple(tags), values


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


class Decoder:
    """Incremental framer: feed TCP chunks, get complete messages in order.

    A message may be split at any byte and many may arrive in one chunk. The
    buffer is consumed by offset, so a chunk holding a thousand messages is
    scanned once, not once per message.
    """

    __slots__ = ("_buf", "max_message_size")

    def __init__(self, max_message_size: int = 65536) -> None:
        self._buf = b""
        self.max_message_size = max_message_size

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> tuple[list[Decoded], Oversized | None]:
        """Add bytes; return the frames completed so far and an overflow if any.

        Oversized (a BodyLength beyond the limit, or that many bytes without a
        complete message) means the stream cannot be trusted any more: the
        caller should drop the connection. The decoder's buffer is cleared.
        """
        buf = self._buf + data if self._buf else data
        out: list[Decoded] = []
        pos = 0
        n = len(buf)
        tag_cache = _TAG_CACHE
        while pos < n:
            # Fast path: a well-formed frame right here. Anything unusual falls
            # through to the general path below, which classifies it.
            if buf.startswith(b"8=FIX.4.4\x019=", pos):
                length_end = buf.find(SOH, pos + 12, pos + 22)
                # No SOH within 9 digits: not for this path (-1 would slice to the end).
                length_text = buf[pos + 12 : length_end] if length_end > 0 else b""
                body_start = length_end + 1
            else:
                head = _HEAD.match(buf, pos)
                if head is not None:
                    length_text = head[1]
                    body_start = head.end()
                else:
                    length_text = b""
            if length_text.isdigit():
                trailer = body_start + int(length_text)
                end = trailer + _TRAILER_LEN
                if (
                    end <= n
                    and end - pos <= 256  # checksum below is exact up to 256 bytes
                    and buf[end - 1] == 1
                    and buf.startswith(_TRAILER_MARK, trailer - 1)
                    and buf.startswith(b"35=", body_start)
                ):
                    digits = buf[trailer + 3 : end - 1]
                    total = (adler32(buf[pos:trailer]) & 0xFFFF) - 1
                    if digits.isdigit() and int(digits) == total & 0xFF:
                        raw = buf if pos == 0 and end == n else buf[pos:end]
                        # parse_fields' fast path, inlined: this loop is the hot path.
                        skeleton = raw.translate(None, _NOT_SEPARATORS)
                        if _ALTERNATING.startswith(skeleton):
                            parts = raw.replace(b"=", SOH).split(SOH)
                            tag_texts = parts[0:-1:2]
                            key = SOH.join(tag_texts)
                            tags = tag_cache.get(key)
                            if tags is None:
                                tags = _tag_tuple(key, tag_texts)
                            if tags is not None:
                                out.append(Message(tags, parts[1::2], raw))
                                pos = end
                                continue
            start = buf.find(_START_MARK, pos)
            if start < 0:
                # Keep a possible partial "8=FIX" at the end; drop the rest.
                keep = max(pos, n - (len(_START_MARK) - 1))
                if keep > pos:
                    out.append(Garbled("bytes outside a message", buf[pos:keep]))
                pos = keep
                break
            if start > pos:
                out.append(Garbled("bytes outside a message", buf[pos:start]))
            try:
                result = self._frame_at(buf, start, n)
            except _TooLarge as exc:
                self._buf = b""
                return out, Oversized(exc.size)
            if result is None:  # incomplete
                pos = start
                break
            item, pos = result
            out.append(item)
        self._buf = buf[pos:]
        over = None
        if len(self._buf) > self.max_message_size:
            over = Oversized(len(self._buf))
            self._buf = b""
        return out, over

    def _frame_at(self, buf: bytes, start: int, n: int) -> tuple[Decoded, int] | None:
        """Frame the message at `start`: (item, next position) or None if incomplete.

        As QuickFIX does: read BodyLength N, skip N bytes past it, then the
        message ends at the first "<SOH>10=...<SOH>" from there. A BodyLength
        that lies makes that span garbled -- and a too-large one swallows what
        follows it, exactly as a QuickFIX peer would see it.
        """
        soh1 = buf.find(SOH, start)
        if soh1 < 0:
            return None
        if soh1 - start > _MAX_BEGIN_FIELD or buf.find(b"=", start + 2, soh1) >= 0:
            # "8=FIX" in garbage that runs into a real message: not a frame start
            # (its checksum could match by chance, and swallow the message).
            return self._resync(buf, start, "BeginString(8) is not valid")
        if buf[soh1 + 1 : soh1 + 3] != b"9=" and n >= soh1 + 3:
            return self._resync(buf, start, "BodyLength(9) is not the second field")
        soh2 = buf.find(SOH, soh1 + 1)
        if soh2 < 0:
            if n - soh1 > 12:  # no sane BodyLength is this long
                return self._resync(buf, start, "BodyLength(9) is not a number")
            return None
        length_text = buf[soh1 + 3 : soh2]
        if not length_text.isdigit() or len(length_text) > 9:
            return self._resync(buf, start, "BodyLength(9) is not a number")
        body_start = soh2 + 1
        trailer = body_start + int(length_text)  # where "10=" should start
        if trailer + _TRAILER_LEN - start > self.max_message_size:
            raise _TooLarge(trailer + _TRAILER_LEN - start)
        if n < trailer:
            return None
        mark = buf.find(_TRAILER_MARK, trailer - 1)
        if mark < 0:
            return None
        end = buf.find(SOH, mark + 4)
        if end < 0:
            return None
        end += 1
        raw = buf[start:end]
        if mark != trailer - 1:
            return Garbled("BodyLength(9) does not match", raw), end
        if buf[body_start : body_start + 3] != b"35=":
            return Garbled("MsgType(35) is not the third field", raw), end
        sum_text = buf[trailer + 3 : end - 1]
        if len(sum_text) != 3 or not sum_text.isdigit() or int(sum_text) != checksum(
            buf[start:trailer]
        ):
            return Garbled("CheckSum(10) is wrong", raw), end
        parsed = parse_fields(raw)
        if parsed is None:
            return Garbled("a tag is not a number", raw), end
        return Message(parsed[0], parsed[1], raw), end

    @staticmethod
    def _resync(buf: bytes, start: int, reason: str) -> tuple[Decoded, int]:
        """Drop the bad frame: skip to the next "8=FIX" (or the end of the buffer)."""
        nxt = buf.find(_START_MARK, start + 1)
        # Without a next "8=FIX", keep a tail that may be the start of one.
        stop = nxt if nxt >= 0 else max(start + 1, len(buf) - (len(_START_MARK) - 1))
        return Garbled(reason, buf[start:stop]), stop


# --- encoding ---------------------------------------------------------------

# Header order after 8, 9, 35: ascending tag number, as QuickFIX-family
# engines write it (and as the FIX acceptance scripts compare it); a data
# field's length tag always precedes it (90/91, 212/213).
HEADER_ORDER: tuple[int, ...] = (
    35, 34, 43, 49, 50, 52, 56, 57, 90, 91, 97, 115, 116, 122, 128, 129, 142, 143, 144,
    145, 212, 213, 347, 369, 627,
)  # fmt: skip
HEADER_TAGS = frozenset((8, 9, *HEADER_ORDER, 628, 629, 630))
_HEADER_RANK = {tag: i for i, tag in enumerate(HEADER_ORDER)}
_HOP_TAGS = frozenset((628, 629, 630))

FieldValue = bytes | str | int


def as_bytes(value: FieldValue) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("latin-1")
    return str(value).encode()


def render(fields: Iterable[tuple[int, FieldValue]]) -> bytes:
    """Render fields to b"tag=value\\x01..." in the given order."""
    prefixes = _TAG_BYTES
    out: list[bytes] = []
    for tag, value in fields:
        prefix = prefixes.get(tag) or tag_prefix(tag)
        if value.__class__ is not bytes:
            value = as_bytes(value)
        out.append(prefix)
        out.append(value)
        out.append(SOH)
    return b"".join(out)


def frame(begin_string: bytes, body: bytes) -> bytes:
    """Wrap a rendered body (starting with 35=) with 8=, 9= and 10=."""
    head = b"8=%b\x019=%d\x01%b" % (begin_string, len(body), body)
    return b"%b10=%03d\x01" % (head, checksum(head))


def encode(
    fields: Iterable[tuple[int, FieldValue]], begin_string: bytes = b"FIX.4.4"
) -> bytes:
    """Encode a message from fields; header fields are put in standard order.

    Any 8, 9 or 10 in `fields` is ignored and recomputed. Header fields keep
    the standard header order; body fields keep their given order.
    """
    header: list[tuple[int, tuple[int, FieldValue]]] = []
    body: list[tuple[int, FieldValue]] = []
    in_hops = False  # inside the header's NoHops(627) group
    for tag, value in fields:
        if tag in (8, 9, 10):
            continue
        if in_hops and tag in _HOP_TAGS:
            header.append((_HEADER_RANK[627], (tag, value)))
            continue
        rank = _HEADER_RANK.get(tag)
        in_hops = tag == 627
        if rank is not None:
            header.append((rank, (tag, value)))
        else:
            body.append((tag, value))
    header.sort(key=lambda item: item[0])  # stable: hop group members stay in order
    return frame(begin_string, render([f for _, f in header] + body))


class MessageTemplate:
    """A message layout rendered once: constant fields baked in, variable ones as slots.

    Each spec item is `(tag, value)` for a constant, `(tag, bytes)` for a
    variable bytes slot or `(tag, int)` for a variable integer slot, in wire
    order starting with 35. `encode(*values)` fills the slots in order and
    frames the result: one %-format and one checksum per message, which is
    what the order hot path needs (an ExecutionReport in about a microsecond).
    """

    __slots__ = ("_begin", "_begin_sum", "_format", "slots")

    def __init__(
        self, spec: Iterable[tuple[int, FieldValue | type[bytes] | type[int]]],
        begin_string: bytes = b"FIX.4.4",
    ) -> None:
        parts: list[bytes] = []
        slots: list[int] = []
        for tag, value in spec:
            if isinstance(value, type):  # a slot: bytes or int, filled in by encode
                parts.append(tag_prefix(tag) + (b"%d" if value is int else b"%b") + SOH)
                slots.append(tag)
            else:
                literal = as_bytes(value)
                parts.append(tag_prefix(tag) + literal.replace(b"%", b"%%") + SOH)
        self._format = b"".join(parts)
        self._begin = b"8=%b\x019=" % begin_string
        self._begin_sum = checksum(self._begin) + 1  # + the SOH after BodyLength
        self.slots = tuple(slots)

    def encode(self, *values: bytes | int) -> bytes:
        body = self._format % values
        length = b"%d" % len(body)
        # CheckSum from the parts, so the frame is assembled only once.
        total = self._begin_sum + checksum(length) + checksum(body)
        return b"%b%b\x01%b10=%03d\x01" % (self._begin, length, body, total & 0xFF)
