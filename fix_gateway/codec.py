"""FIX tag=value codec: incremental framing, parsing and encoding.

The module the rest of the code imports. It serves the compiled codec
(`fix_gateway.codec_c`, Cython) where that extension is built, and the
pure-Python reference (`fix_gateway.codec_pure`) where it is not or where the
environment says `FIXGW_PURE=1` when this module is first imported. `COMPILED`
says which. The two give the same results for every input
(tests/test_codec_compiled.py); the rare-path pieces (`encode`,
`MessageTemplate`, the constants) are the reference's in both.
"""

from __future__ import annotations

import os


def fixgw_pure() -> bool:
    """Whether the environment asks for the pure-Python modules (FIXGW_PURE=1)."""
    return os.environ.get("FIXGW_PURE") == "1"


from fix_gateway.codec_pure import (  # noqa: E402
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

try:
    from fix_gateway import codec_c
except ImportError:  # not built: no C compiler, or FIXGW_PURE=1 at build time
    codec_c = None

COMPILED = codec_c is not None and not fixgw_pure()
if COMPILED:
    from fix_gateway.codec_c import (  # type: ignore[no-redef]
        Decoder,
        Message,
        checksum,
        frame,
        int_in_reach,
        parse_fields,
        parse_int,
        parse_uint,
        render,
    )

__all__ = [
    "COMPILED",
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
    "fixgw_pure",
    "frame",
    "int_in_reach",
    "parse_fields",
    "parse_int",
    "parse_uint",
    "positions",
    "render",
    "tag_prefix",
]
