"""Which codec serves: the compiled one wherever it can be built, unless FIXGW_PURE=1.

A build that silently produced no extension (setup.py makes it optional) shows
here, not as a slow venue.
"""

from __future__ import annotations

import os
import shutil

import pytest

import fix_gateway.codec as codec
from fix_gateway import codec_pure


def test_the_compiled_codec_serves_when_built() -> None:
    if os.environ.get("FIXGW_PURE") == "1":
        assert not codec.COMPILED
        assert codec.Decoder is codec_pure.Decoder and codec.frame is codec_pure.frame
        return
    if codec.codec_c is None and shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler here, so no compiled codec: the pure-Python one serves")
    assert codec.COMPILED, (
        "fix_gateway.codec_c is not built: run `python setup.py build_ext --inplace` "
        "(or `pip install -e .`), or set FIXGW_PURE=1 for the pure-Python codec"
    )
    compiled = codec.codec_c
    assert codec.Decoder is compiled.Decoder and codec.Message is compiled.Message
    assert codec.frame is compiled.frame and codec.render is compiled.render
    assert codec.parse_fields is compiled.parse_fields and codec.checksum is compiled.checksum
