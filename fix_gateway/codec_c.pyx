# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""FIX tag=value codec, compiled: the per-message work of `fix_gateway.codec_pure`
(framing, BodyLength and CheckSum, the tag=value split, `frame`, `render`,
`checksum`, the integer readers) as C-level loops over the bytes buffer.

Same results as the pure-Python reference for every input: the same messages,
the same Garbled reasons and spans, the same Oversized, the same bytes out
(tests/test_codec_compiled.py holds the two against each other). Rare shapes
(data fields with a length, arguments that are not exactly bytes or int) are
handed to the reference functions, so their answers are the reference's own.

A `Message` framed here keeps its values as offsets into its raw frame and
makes a bytes object only for the values that are read: the order path reads
a dozen of a NewOrderSingle's twenty fields.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.ref cimport Py_INCREF
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from libc.stdint cimport int32_t, uint16_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy

from fix_gateway import codec_pure as _pure

from fix_gateway.codec_pure import Garbled, Oversized

cdef object _Garbled = Garbled
cdef object _Oversized = Oversized
cdef object _parse_fields_slow = _pure._parse_fields_slow
cdef object _positions = _pure.positions
cdef object _as_bytes = _pure.as_bytes
cdef object _tag_prefix = _pure.tag_prefix
cdef dict _TAG_BYTES = _pure._TAG_BYTES

cdef enum:
    SOH = 1
    TRAILER_LEN = 7          # b"10=ddd\x01"
    MAX_BEGIN_FIELD = 21     # b"8=FIX" and up to 16 more bytes
    MAX_INT_DIGITS = 18      # as codec_pure.MAX_INT_DIGITS
    LAZY_FIELDS = 48         # a Message keeps offsets for up to this many fields
    LAZY_RAW = 65535         # ... in frames of up to this many bytes (uint16 offsets)
    TAG_CACHE_SIZE = 4096
    # What splitting a frame found.
    SPLIT_OK = 0
    SPLIT_BAD_TAG = 1        # a tag is not an integer: the frame is garbled
    SPLIT_DATA = 2           # a data-length tag: the reference's slow path decides
    SPLIT_NOT_PLAIN = 3      # not the strict shape the fast path takes

assert _pure.MAX_INT_DIGITS == MAX_INT_DIGITS
assert _pure._TRAILER_LEN == TRAILER_LEN and _pure._MAX_BEGIN_FIELD == MAX_BEGIN_FIELD


cdef inline bint is_data_length_tag(long tag) noexcept:
    # codec_pure._DATA_LENGTH_TAGS
    return tag in (93, 90, 95, 212, 350, 352, 354, 356, 358, 360, 362, 364, 444, 619, 620)


assert set(_pure._DATA_LENGTH_TAGS) == {
    t for t in range(1, 10000) if is_data_length_tag(t)}


# --- byte scanning ---------------------------------------------------------------


cdef inline Py_ssize_t find_byte(const char* s, Py_ssize_t start, Py_ssize_t stop,
                                 char c) noexcept:
    """Index of the first `c` in s[start:stop], or -1 (as bytes.find)."""
    if start >= stop:
        return -1
    cdef const char* p = <const char*>memchr(s + start, c, <size_t>(stop - start))
    return -1 if p == NULL else p - s


cdef inline Py_ssize_t find_seq(const char* s, Py_ssize_t start, Py_ssize_t stop,
                                const char* pat, Py_ssize_t m) noexcept:
    """Index of the first `pat` (m bytes) wholly inside s[start:stop], or -1."""
    cdef const char* p
    while stop - start >= m:
        p = <const char*>memchr(s + start, pat[0], <size_t>(stop - start - m + 1))
        if p == NULL:
            return -1
        if memcmp(p, pat, <size_t>m) == 0:
            return p - s
        start = p - s + 1
    return -1


cdef inline bint all_digits(const char* s, Py_ssize_t a, Py_ssize_t b) noexcept:
    """bytes.isdigit() of s[a:b]: not empty, ASCII digits only."""
    if a >= b:
        return False
    while a < b:
        if s[a] < 48 or s[a] > 57:
            return False
        a += 1
    return True


cdef inline long long digits_value(const char* s, Py_ssize_t a, Py_ssize_t b) noexcept:
    cdef long long v = 0
    while a < b:
        v = v * 10 + (s[a] - 48)
        a += 1
    return v


cdef inline unsigned int byte_sum(const char* s, Py_ssize_t a, Py_ssize_t b) noexcept:
    cdef const unsigned char* u = <const unsigned char*>s
    cdef size_t total = 0
    while a < b:
        total += u[a]
        a += 1
    return <unsigned int>(total & 0xFF)


# --- Message -------------------------------------------------------------------------


cdef class Message:
    """A parsed FIX message: fields in wire order, repeated tags kept.

    `tags[i]` and `values[i]` are the i-th field; `raw` is the exact frame.
    Lookups by tag return the first occurrence. As `codec_pure.Message`.
    """

    cdef public object tags
    cdef object _raw
    cdef object _values      # list, or None while the values are offsets into _raw
    cdef object _pos         # tag -> first position, or None until a lookup
    cdef Py_ssize_t _lazy    # fields held as offsets (0: none)
    cdef uint16_t _start[LAZY_FIELDS]
    cdef uint16_t _stop[LAZY_FIELDS]

    def __init__(self, tags, values, raw=b""):
        self.tags = tags if type(tags) is tuple else tuple(tags)
        self._values = values
        self._raw = raw
        self._pos = None
        self._lazy = 0

    cdef inline object _value(self, Py_ssize_t i):
        if self._values is None and 0 <= i < self._lazy:
            return PyBytes_FromStringAndSize(
                PyBytes_AS_STRING(self._raw) + self._start[i], self._stop[i] - self._start[i])
        return self.values[i]

    cdef inline dict _positions(self):
        if self._pos is None:
            self._pos = _positions(self.tags)
        return <dict>self._pos

    @property
    def values(self):
        cdef list values
        cdef Py_ssize_t i
        cdef object value
        if self._values is None:
            values = PyList_New(self._lazy)
            for i in range(self._lazy):
                value = PyBytes_FromStringAndSize(
                    PyBytes_AS_STRING(self._raw) + self._start[i],
                    self._stop[i] - self._start[i])
                Py_INCREF(value)
                PyList_SET_ITEM(values, i, value)
            self._values = values
            self._lazy = 0
        return self._values

    @values.setter
    def values(self, values):
        self._values = values
        self._lazy = 0

    @property
    def raw(self):
        return self._raw

    @raw.setter
    def raw(self, raw):
        self.values  # offsets point into the old frame: make the values first
        self._raw = raw

    def get(self, tag, default=None):
        i = self._positions().get(tag)
        return default if i is None else self._value(<Py_ssize_t>i)

    def get_many(self, tags):
        """The values of `tags` (first occurrences; None where absent), in one call."""
        cdef dict pos = self._positions()
        cdef list out = []
        for tag in tags:
            i = pos.get(tag)
            out.append(None if i is None else self._value(<Py_ssize_t>i))
        return out

    def __contains__(self, tag):
        return tag in self._positions()

    def get_all(self, tag):
        return [v for t, v in zip(self.tags, self.values, strict=True) if t == tag]

    @property
    def msg_type(self):
        # The framer guarantees 8, 9, 35 are the first three fields.
        return self._value(2)

    @property
    def fields(self):
        return list(zip(self.tags, self.values, strict=True))

    def __repr__(self):
        shown = "|".join(f"{t}={v.decode('latin-1')}" for t, v in self.fields)
        return f"Message({shown})"

    def __reduce__(self):
        return (Message, (self.tags, self.values, self._raw))


# --- splitting a frame into fields -------------------------------------------------

# Scratch space for one split: tag, value start, value stop per field. Grown
# as needed, never shrunk; the GIL makes it single-user.
cdef int32_t* _scratch = NULL
cdef Py_ssize_t _scratch_fields = 0


cdef int32_t* scratch(Py_ssize_t fields) except NULL:
    global _scratch, _scratch_fields
    cdef int32_t* grown
    if fields > _scratch_fields:
        grown = <int32_t*>realloc(_scratch, <size_t>(fields * 3) * sizeof(int32_t))
        if grown == NULL:
            raise MemoryError()
        _scratch = grown
        _scratch_fields = fields
    return _scratch


cdef int split_plain(const char* s, Py_ssize_t n, int32_t* out, Py_ssize_t* count) noexcept:
    """The reference's fast path: separators strictly alternate '=' SOH, the
    frame ends with SOH, every tag is "1".."9999" written plainly and none is a
    data-length tag. Else SPLIT_NOT_PLAIN."""
    cdef Py_ssize_t pos = 0, eq, stop, k = 0, j
    cdef long tag
    while pos < n:
        # The tag: 1-4 digits, no leading zero, then '='.
        tag = 0
        j = pos
        while j < n and j - pos < 5 and 48 <= s[j] <= 57:
            tag = tag * 10 + (s[j] - 48)
            j += 1
        if j == pos or j >= n or s[j] != 61 or j - pos > 4 or s[pos] == 48:
            return SPLIT_NOT_PLAIN
        if is_data_length_tag(tag):
            return SPLIT_NOT_PLAIN
        eq = j
        stop = eq + 1
        while stop < n and s[stop] != SOH:
            if s[stop] == 61:
                return SPLIT_NOT_PLAIN
            stop += 1
        if stop >= n:
            return SPLIT_NOT_PLAIN
        out[3 * k] = <int32_t>tag
        out[3 * k + 1] = <int32_t>(eq + 1)
        out[3 * k + 2] = <int32_t>stop
        k += 1
        pos = stop + 1
    count[0] = k
    return SPLIT_OK


cdef int split_general(const char* s, Py_ssize_t n, int32_t* out, Py_ssize_t* count) noexcept:
    """The reference's slow path (`_parse_fields_slow`), for frames without a
    data-length tag: a field runs from its '=' to the next SOH (or the end); a
    tag is `-?\\d{1,9}`; bytes after the last '=' -less SOH are ignored."""
    cdef Py_ssize_t pos = 0, eq, stop, k = 0, a, digits
    cdef long tag
    cdef bint negative
    while pos < n:
        eq = find_byte(s, pos, n, 61)
        if eq < 0:
            break
        a = pos
        negative = s[a] == 45 and eq - a > 1
        if negative:
            a += 1
        digits = eq - a
        if digits < 1 or digits > 9 or not all_digits(s, a, eq):
            return SPLIT_BAD_TAG
        tag = <long>digits_value(s, a, eq)
        if negative:
            tag = -tag
        if is_data_length_tag(tag):
            return SPLIT_DATA
        stop = find_byte(s, eq + 1, n, SOH)
        if stop < 0:
            stop = n
        out[3 * k] = <int32_t>tag
        out[3 * k + 1] = <int32_t>(eq + 1)
        out[3 * k + 2] = <int32_t>stop
        k += 1
        pos = stop + 1
    count[0] = k
    return SPLIT_OK


# Tag sequences seen recently (the tags as C ints, in bytes) -> (tags tuple,
# tag -> first position): a client sends the same few message shapes over and
# over, so most frames make no int and no dict of their own. Bounded.
cdef dict _SHAPES = {}


cdef tuple shape_of(int32_t* fields, Py_ssize_t k):
    """(tags, positions) for the tags of `k` split fields."""
    cdef Py_ssize_t i
    cdef int32_t* tags
    cdef bytes key
    cdef tuple tag_tuple
    cdef dict pos
    cdef object tag
    # Pack the tags to the front of a second area: fields[3*i] -> key[i].
    key = PyBytes_FromStringAndSize(NULL, k * <Py_ssize_t>sizeof(int32_t))
    tags = <int32_t*>PyBytes_AS_STRING(key)
    for i in range(k):
        tags[i] = fields[3 * i]
    cdef object found = _SHAPES.get(key)
    if found is not None:
        return <tuple>found
    tag_tuple = PyTuple_New(k)
    pos = {}
    for i in range(k):
        tag = fields[3 * i]
        Py_INCREF(tag)
        PyTuple_SET_ITEM(tag_tuple, i, tag)
        if tag not in pos:
            pos[tag] = i
    if len(_SHAPES) >= TAG_CACHE_SIZE:
        _SHAPES.clear()
    shape = (tag_tuple, pos)
    _SHAPES[key] = shape
    return shape


cdef list values_list(bytes raw, int32_t* fields, Py_ssize_t k):
    cdef const char* s = PyBytes_AS_STRING(raw)
    cdef list values = PyList_New(k)
    cdef Py_ssize_t i
    cdef object value
    for i in range(k):
        value = PyBytes_FromStringAndSize(s + fields[3 * i + 1],
                                          fields[3 * i + 2] - fields[3 * i + 1])
        Py_INCREF(value)
        PyList_SET_ITEM(values, i, value)
    return values


cdef Message message_from(bytes raw, int32_t* fields, Py_ssize_t k):
    """A Message over `raw` from its split fields: values as offsets when they
    fit, else as a list."""
    cdef tuple shape = shape_of(fields, k)
    cdef Message msg = Message.__new__(Message)
    cdef Py_ssize_t i
    msg.tags = shape[0]
    msg._pos = shape[1]
    msg._raw = raw
    if k <= LAZY_FIELDS and PyBytes_GET_SIZE(raw) <= LAZY_RAW:
        msg._lazy = k
        for i in range(k):
            msg._start[i] = <uint16_t>fields[3 * i + 1]
            msg._stop[i] = <uint16_t>fields[3 * i + 2]
    else:
        msg._values = values_list(raw, fields, k)
    return msg


cdef object parse_frame(bytes raw):
    """The Message in a whole checked frame, or None when a tag is not a number
    (as the reference's `parse_fields`)."""
    cdef const char* s = PyBytes_AS_STRING(raw)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(raw), k = 0
    cdef int32_t* fields = scratch(n // 2 + 1)
    cdef int found = split_general(s, n, fields, &k)
    if found == SPLIT_OK:
        return message_from(raw, fields, k)
    if found == SPLIT_BAD_TAG:
        return None
    parsed = _parse_fields_slow(raw)
    if parsed is None:
        return None
    return Message(parsed[0], parsed[1], raw)


def parse_fields(raw):
    """Split a whole frame (8=... through 10=...) into tags and values; None
    when a tag is not an integer. As `codec_pure.parse_fields`."""
    if type(raw) is not bytes:
        return _pure.parse_fields(raw)
    cdef bytes text = <bytes>raw
    cdef Py_ssize_t n = PyBytes_GET_SIZE(text), k = 0
    cdef int32_t* fields = scratch(n // 2 + 1)
    cdef int found = split_general(PyBytes_AS_STRING(text), n, fields, &k)
    if found == SPLIT_OK:
        return shape_of(fields, k)[0], values_list(text, fields, k)
    if found == SPLIT_BAD_TAG:
        return None
    return _parse_fields_slow(text)


# --- framing -------------------------------------------------------------------------


cdef class Decoder:
    """Incremental framer: feed TCP chunks, get complete messages in order.
    As `codec_pure.Decoder`."""

    cdef bytes _buf
    cdef public Py_ssize_t max_message_size

    def __init__(self, Py_ssize_t max_message_size=65536):
        self._buf = b""
        self.max_message_size = max_message_size

    @property
    def buffered(self):
        return PyBytes_GET_SIZE(self._buf)

    def feed(self, data):
        """Add bytes; return the frames completed so far and an overflow if any."""
        cdef bytes buf
        if type(data) is not bytes:
            data = bytes(data)
        buf = self._buf + <bytes>data if PyBytes_GET_SIZE(self._buf) else <bytes>data
        cdef const char* s = PyBytes_AS_STRING(buf)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
        cdef list out = []
        cdef Py_ssize_t pos = 0, length_end, body_start = 0, length_a = 0, length_b = 0
        cdef Py_ssize_t trailer, end, start, keep, j, k = 0
        cdef Py_ssize_t too_large = 0
        cdef int32_t* fields
        cdef bytes raw
        cdef object item
        while pos < n:
            # Fast path, as the reference's: a well-formed frame right here.
            length_a = length_b = 0
            if n - pos >= 12 and memcmp(s + pos, b"8=FIX.4.4\x019=", 12) == 0:
                length_end = find_byte(s, pos + 12, min(pos + 22, n), SOH)
                if length_end > 0:
                    length_a, length_b = pos + 12, length_end
                body_start = length_end + 1
            elif n - pos >= 5 and memcmp(s + pos, b"8=FIX", 5) == 0:
                # rb"8=FIX[^\x01]{0,16}\x019=(\d{1,9})\x01"
                j = find_byte(s, pos + 5, min(pos + 22, n), SOH)
                if j >= 0 and j + 3 <= n and s[j + 1] == 57 and s[j + 2] == 61:
                    length_end = j + 3
                    while length_end < n and length_end - (j + 3) < 10 and 48 <= s[length_end] <= 57:
                        length_end += 1
                    if (length_end < n and s[length_end] == SOH
                            and 1 <= length_end - (j + 3) <= 9):
                        length_a, length_b = j + 3, length_end
                        body_start = length_end + 1
            if length_b > length_a and all_digits(s, length_a, length_b):
                trailer = body_start + <Py_ssize_t>digits_value(s, length_a, length_b)
                end = trailer + TRAILER_LEN
                if (end <= n and end - pos <= 256 and s[end - 1] == SOH
                        and memcmp(s + trailer - 1, b"\x0110=", 4) == 0
                        and body_start + 3 <= n and memcmp(s + body_start, b"35=", 3) == 0
                        and all_digits(s, trailer + 3, end - 1)
                        and digits_value(s, trailer + 3, end - 1)
                            == byte_sum(s, pos, trailer)):
                    raw = buf if pos == 0 and end == n else buf[pos:end]
                    fields = scratch(PyBytes_GET_SIZE(raw) // 2 + 1)
                    if split_plain(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw),
                                   fields, &k) == SPLIT_OK:
                        out.append(message_from(raw, fields, k))
                        pos = end
                        continue
            start = find_seq(s, pos, n, b"8=FIX", 5)
            if start < 0:
                # Keep a possible partial "8=FIX" at the end; drop the rest.
                keep = max(pos, n - 4)
                if keep > pos:
                    out.append(_Garbled("bytes outside a message", buf[pos:keep]))
                pos = keep
                break
            if start > pos:
                out.append(_Garbled("bytes outside a message", buf[pos:start]))
            item = self._frame_at(buf, start, n, &pos, &too_large)
            if too_large:
                self._buf = b""
                return out, _Oversized(too_large)
            if item is None:  # incomplete
                pos = start
                break
            out.append(item)
        self._buf = buf[pos:]
        over = None
        if PyBytes_GET_SIZE(self._buf) > self.max_message_size:
            over = _Oversized(PyBytes_GET_SIZE(self._buf))
            self._buf = b""
        return out, over

    cdef object _frame_at(self, bytes buf, Py_ssize_t start, Py_ssize_t n,
                          Py_ssize_t* next_pos, Py_ssize_t* too_large):
        """The item at `start` (next_pos set past it), None if incomplete, or
        too_large set. As the reference's `_frame_at`."""
        cdef const char* s = PyBytes_AS_STRING(buf)
        cdef Py_ssize_t soh1, soh2, body_start, trailer, mark, end, size
        cdef bytes raw
        soh1 = find_byte(s, start, n, SOH)
        if soh1 < 0:
            return None
        if soh1 - start > MAX_BEGIN_FIELD or find_byte(s, start + 2, soh1, 61) >= 0:
            return resync(buf, start, "BeginString(8) is not valid", next_pos)
        if n >= soh1 + 3 and not (s[soh1 + 1] == 57 and s[soh1 + 2] == 61):
            return resync(buf, start, "BodyLength(9) is not the second field", next_pos)
        soh2 = find_byte(s, soh1 + 1, n, SOH)
        if soh2 < 0:
            if n - soh1 > 12:  # no sane BodyLength is this long
                return resync(buf, start, "BodyLength(9) is not a number", next_pos)
            return None
        # buf[soh1 + 3 : soh2], empty when soh2 comes first
        if soh2 - (soh1 + 3) > 9 or not all_digits(s, soh1 + 3, soh2):
            return resync(buf, start, "BodyLength(9) is not a number", next_pos)
        body_start = soh2 + 1
        trailer = body_start + <Py_ssize_t>digits_value(s, soh1 + 3, soh2)
        size = trailer + TRAILER_LEN - start
        if size > self.max_message_size:
            too_large[0] = size
            return None
        if n < trailer:
            return None
        mark = find_seq(s, trailer - 1, n, b"\x0110=", 4)
        if mark < 0:
            return None
        end = find_byte(s, mark + 4, n, SOH)
        if end < 0:
            return None
        end += 1
        raw = buf[start:end]
        next_pos[0] = end
        if mark != trailer - 1:
            return _Garbled("BodyLength(9) does not match", raw)
        if not (body_start + 3 <= n and memcmp(s + body_start, b"35=", 3) == 0):
            return _Garbled("MsgType(35) is not the third field", raw)
        if (end - 1 - (trailer + 3) != 3 or not all_digits(s, trailer + 3, end - 1)
                or digits_value(s, trailer + 3, end - 1) != byte_sum(s, start, trailer)):
            return _Garbled("CheckSum(10) is wrong", raw)
        msg = parse_frame(raw)
        if msg is None:
            return _Garbled("a tag is not a number", raw)
        return msg


cdef object resync(bytes buf, Py_ssize_t start, str reason, Py_ssize_t* next_pos):
    """Drop the bad frame: skip to the next "8=FIX" (or the end of the buffer)."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
    cdef Py_ssize_t nxt = find_seq(PyBytes_AS_STRING(buf), start + 1, n, b"8=FIX", 5)
    # Without a next "8=FIX", keep a tail that may be the start of one.
    cdef Py_ssize_t stop = nxt if nxt >= 0 else max(start + 1, n - 4)
    next_pos[0] = stop
    return _Garbled(reason, buf[start:stop])


# --- integers ------------------------------------------------------------------------


def int_in_reach(digits):
    """Whether ASCII digits (an optional '-' first) have at most MAX_INT_DIGITS
    significant digits: leading zeros do not count."""
    if type(digits) is not bytes:
        return _pure.int_in_reach(digits)
    cdef const char* s = PyBytes_AS_STRING(<bytes>digits)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(<bytes>digits), a = 0
    if n <= MAX_INT_DIGITS:
        return True
    while a < n and s[a] == 45:  # lstrip(b"-")
        a += 1
    while a < n and s[a] == 48:  # lstrip(b"0")
        a += 1
    return n - a <= MAX_INT_DIGITS


cdef object uint_of(const char* s, Py_ssize_t a, Py_ssize_t b):
    if not all_digits(s, a, b):
        return None
    if b - a > MAX_INT_DIGITS:
        while b - a > 1 and s[a] == 48:
            a += 1
        if b - a > MAX_INT_DIGITS:
            return None
    return digits_value(s, a, b)


def parse_uint(text):
    """A non-negative FIX integer (ASCII digits only, no sign, no space), or None
    when it is absent, malformed or has more than MAX_INT_DIGITS significant digits."""
    if text is None:
        return None
    if type(text) is not bytes:
        return _pure.parse_uint(text)
    return uint_of(PyBytes_AS_STRING(<bytes>text), 0, PyBytes_GET_SIZE(<bytes>text))


def parse_int(text):
    """A FIX integer (ASCII digits, an optional '-' first), or None as `parse_uint` says."""
    if text is None:
        return None
    if type(text) is not bytes:
        return _pure.parse_int(text)
    cdef const char* s = PyBytes_AS_STRING(<bytes>text)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(<bytes>text)
    if n and s[0] == 45:
        value = uint_of(s, 1, n)
        return None if value is None else -value
    return uint_of(s, 0, n)


# --- encoding ------------------------------------------------------------------------


def checksum(data):
    """FIX CheckSum: byte sum modulo 256."""
    if type(data) is not bytes:
        return _pure.checksum(data)
    return byte_sum(PyBytes_AS_STRING(<bytes>data), 0, PyBytes_GET_SIZE(<bytes>data))


cdef inline Py_ssize_t put_decimal(char* out, unsigned long long v) noexcept:
    """Write v in decimal at out; return its length."""
    cdef char tmp[24]
    cdef Py_ssize_t k = 0, i
    while True:
        tmp[k] = <char>(48 + v % 10)
        k += 1
        v //= 10
        if v == 0:
            break
    for i in range(k):
        out[i] = tmp[k - 1 - i]
    return k


def frame(begin_string, body):
    """Wrap a rendered body (starting with 35=) with 8=, 9= and 10=."""
    if type(begin_string) is not bytes or type(body) is not bytes:
        return _pure.frame(begin_string, body)
    cdef Py_ssize_t nb = PyBytes_GET_SIZE(<bytes>begin_string)
    cdef Py_ssize_t nbody = PyBytes_GET_SIZE(<bytes>body)
    cdef char length[24]
    cdef Py_ssize_t nlen = put_decimal(length, <unsigned long long>nbody)
    cdef Py_ssize_t head = 2 + nb + 3 + nlen + 1 + nbody
    cdef bytes out = PyBytes_FromStringAndSize(NULL, head + TRAILER_LEN)
    cdef char* p = PyBytes_AS_STRING(out)
    memcpy(p, b"8=", 2)
    memcpy(p + 2, PyBytes_AS_STRING(<bytes>begin_string), nb)
    memcpy(p + 2 + nb, b"\x019=", 3)
    memcpy(p + 5 + nb, length, nlen)
    p[5 + nb + nlen] = SOH
    memcpy(p + 6 + nb + nlen, PyBytes_AS_STRING(<bytes>body), nbody)
    cdef unsigned int total = byte_sum(p, 0, head)
    p += head
    p[0] = 49  # '1'
    p[1] = 48  # '0'
    p[2] = 61  # '='
    p[3] = <char>(48 + total // 100)
    p[4] = <char>(48 + total // 10 % 10)
    p[5] = <char>(48 + total % 10)
    p[6] = SOH
    return out


cdef struct Buffer:
    char* data
    Py_ssize_t size
    Py_ssize_t cap


cdef int reserve(Buffer* b, Py_ssize_t more) except -1:
    cdef Py_ssize_t cap
    cdef char* grown
    if b.size + more <= b.cap:
        return 0
    cap = max(b.cap * 2, b.size + more)
    grown = <char*>realloc(b.data, <size_t>cap)
    if grown == NULL:
        raise MemoryError()
    b.data = grown
    b.cap = cap
    return 0


cdef int append(Buffer* b, const char* s, Py_ssize_t n) except -1:
    reserve(b, n)
    memcpy(b.data + b.size, s, <size_t>n)
    b.size += n
    return 0


cdef int append_int(Buffer* b, object value) except -1:
    """str(value) for an exact int; its digits written in C when it fits."""
    cdef int overflow = 0
    cdef long long v = PyLong_AsLongLongAndOverflow(value, &overflow)
    cdef unsigned long long u
    cdef bytes text
    if overflow:
        text = _as_bytes(value)
        return append(b, PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text))
    reserve(b, 21)
    if v < 0:
        b.data[b.size] = 45  # '-'
        b.size += 1
        u = <unsigned long long>(-(v + 1)) + 1
    else:
        u = <unsigned long long>v
    b.size += put_decimal(b.data + b.size, u)
    return 0


def render(fields):
    """Render fields to b"tag=value\\x01..." in the given order."""
    cdef Buffer b
    cdef long long tag_number
    cdef int overflow = 0
    b.data = <char*>malloc(512)
    if b.data == NULL:
        raise MemoryError()
    b.size = 0
    b.cap = 512
    try:
        for tag, value in fields:
            if type(tag) is int:
                tag_number = PyLong_AsLongLongAndOverflow(tag, &overflow)
            else:
                tag_number = 0
            if not overflow and 1 <= tag_number <= 9999:
                reserve(&b, 5)
                b.size += put_decimal(b.data + b.size, <unsigned long long>tag_number)
                b.data[b.size] = 61  # '='
                b.size += 1
            else:
                overflow = 0
                prefix = _TAG_BYTES.get(tag) or _tag_prefix(tag)
                append(&b, PyBytes_AS_STRING(prefix), PyBytes_GET_SIZE(prefix))
            if type(value) is bytes:
                append(&b, PyBytes_AS_STRING(<bytes>value), PyBytes_GET_SIZE(<bytes>value))
            elif type(value) is int:
                append_int(&b, value)
            else:
                value = _as_bytes(value)
                append(&b, PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value))
            reserve(&b, 1)
            b.data[b.size] = SOH
            b.size += 1
        return PyBytes_FromStringAndSize(b.data, b.size)
    finally:
        free(b.data)
