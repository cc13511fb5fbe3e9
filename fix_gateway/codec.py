"""FIX tag=value codec: incremental framing, parsing and encoding.

The module the rest of the code imports. The implementation lives in
`fix_gateway.codec_pure`, the pure-Python reference.
"""

from __future__ import annotations

from fix_gateway.codec_pure import (
    DATA_TAGS,
    HEADER_ORDER,
    HEADER_TAGS,
    MAX_INT_DIGITS,
    SOH,
    Decoded,
    Decoder,
    FieldValue,
    Garbled,
    Message,
    MessageTemplate,
    Oversized,
    _parse_fields_slow,
    as_bytes,
    checksum,
    encode,
    frame,
    int_in_reach,
    parse_fields,
    parse_int,
    parse_uint,
    positions,
    render,
    tag_prefix,
)

__all__ = [
    "DATA_TAGS",
    "HEADER_ORDER",
    "HEADER_TAGS",
    "MAX_INT_DIGITS",
    "SOH",
    "Decoded",
    "Decoder",
    "FieldValue",
    "Garbled",
    "Message",
    "MessageTemplate",
    "Oversized",
    "_parse_fields_slow",
    "as_bytes",
    "checksum",
    "encode",
    "frame",
    "int_in_reach",
    "parse_fields",
    "parse_int",
    "parse_uint",
    "positions",
    "render",
    "tag_prefix",
]
