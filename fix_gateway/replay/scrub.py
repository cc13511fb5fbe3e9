"""`fixgw replay scrub`: mask the secrets that files from before masking still hold.

The gateway writes Password(554), NewPassword(925) and RawData(96) masked
(fix_gateway/redaction.py); older inbound stores and message logs hold them in
clear. This rewrites those files with the same masked, re-framed copies. Run
it with the gateway stopped: the gateway appends to these files and keeps
their offsets in memory.

Each message log is rewritten to a temporary file and renamed over the old
one. An inbound store is two files (messages, index): both are written as
`*.scrub`, then the index is renamed, then the messages; a scrub cut short
between the two renames is finished by the next one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

from fix_gateway.codec import Message, parse_fields
from fix_gateway.redaction import MASK, redacted
from session_store.inbound_log import INBOUND_DAT, INBOUND_IDX, RECORD, read_inbound

_SCRUB = ".scrub"
_SECRET_IN_LOG = re.compile(rb"\|(?:554|925|96)=")
# A value runs to the next `|<tag>=` or the frame's final `|`, so a `|` inside it is masked too.
_SECRET_VALUE_IN_LOG = re.compile(rb"(\|(?:554|925|96)=).*?(?=\|\d+=|\|$)")


class ScrubCount(NamedTuple):
    messages: int  # frames masked
    files: int  # files rewritten


def scrub_inbound(directory: Path) -> int:
    """Mask the secrets in one session's inbound store; the number of messages masked."""
    dat, idx = directory / INBOUND_DAT, directory / INBOUND_IDX
    dat_new, idx_new = _scrub_name(dat), _scrub_name(idx)
    if dat_new.exists() and not idx_new.exists():  # cut short after the index was renamed
        os.replace(dat_new, dat)
    records = list(read_inbound(directory))
    frames = [_masked(r.raw) for r in records]
    changed = sum(new != r.raw for new, r in zip(frames, records, strict=True))  # != : rerun
    if not changed:
        return 0
    index, offset = [], 0
    for record, raw in zip(records, frames, strict=True):
        index.append(RECORD.pack(record.received, record.next_out_seq, offset, len(raw)))
        offset += len(raw)
    _write_synced(dat_new, b"".join(frames))
    _write_synced(idx_new, b"".join(index))
    os.replace(idx_new, idx)
    os.replace(dat_new, dat)
    return changed


def scrub_message_log(path: Path) -> int:
    """Mask the secrets in one message log file; the number of lines masked."""
    lines = path.read_bytes().splitlines(keepends=True)
    changed = 0
    for i, line in enumerate(lines):
        if _SECRET_IN_LOG.search(line):
            masked = _masked_log_line(line)
            changed += masked != line  # already masked: left alone
            lines[i] = masked
    if changed:
        new = _scrub_name(path)
        _write_synced(new, b"".join(lines))
        os.replace(new, path)
    return changed


def scrub(data_dir: Path, log_dir: Path) -> tuple[ScrubCount, ScrubCount]:
    """Every session store under `data_dir` and every message log in `log_dir`."""
    stores = [scrub_inbound(d) for d in sorted((data_dir / "sessions").glob("*"))
              if d.is_dir()]
    logs = [scrub_message_log(p) for p in sorted(log_dir.glob("*.messages.log*"))
            if p.is_file() and not p.name.endswith(_SCRUB)]
    return (ScrubCount(sum(stores), sum(1 for n in stores if n)),
            ScrubCount(sum(logs), sum(1 for n in logs if n)))


def _masked(raw: bytes) -> bytes:
    msg = _message(raw)
    return raw if msg is None else redacted(msg)


def _message(raw: bytes) -> Message | None:
    parsed = parse_fields(raw)
    if parsed is None or len(parsed[0]) < 3:
        return None
    return Message(parsed[0], parsed[1], raw)


def _masked_log_line(line: bytes) -> bytes:
    """`<time> <IN|OUT> 8=FIX...|10=nnn|`: re-framed when the frame parses, else masked
    in place (a `|` inside a value can make the frame unparseable once SOH became `|`)."""
    start = line.find(b"8=FIX")
    end = len(line.rstrip(b"\r\n"))
    msg = _message(line[start:end].replace(b"|", b"\x01")) if start >= 0 else None
    if msg is not None:
        return line[:start] + redacted(msg).replace(b"\x01", b"|") + line[end:]
    return _SECRET_VALUE_IN_LOG.sub(rb"\1" + MASK, line)


def _scrub_name(path: Path) -> Path:
    return path.with_name(path.name + _SCRUB)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
