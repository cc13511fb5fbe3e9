"""Read a data directory's session stores without changing them.

A session lives in `<data_dir>/sessions/<ours>-<theirs>/` (see
session_store/file_store.py). Its outbound messages are always there; its
inbound ones when the gateway ran with `[store] record_inbound = true`. The
timeline puts both in the order they happened: each inbound record carries
the outbound MsgSeqNum the session was about to send when it arrived.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fix_gateway import tags as t
from fix_gateway.codec import Message, parse_fields
from fix_gateway.redaction import redacted
from fix_gateway.utc_time import parse_timestamp
from session_store import decode_seqnums, read_inbound, read_outbound

Direction = Literal["IN", "OUT"]


class SessionNotFound(LookupError):
    """No stored session of that name (the message lists the ones there are)."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    direction: Direction
    msg: Message
    received: float | None = None  # inbound only: the gateway's clock on arrival
    next_out_seq: int = 0  # inbound only: the outbound MsgSeqNum due when it arrived

    @property
    def seq(self) -> int:
        text = self.msg.get(t.MSG_SEQ_NUM) or b""
        return int(text) if text.isdigit() else 0

    @property
    def sending_time(self) -> float | None:
        return parse_timestamp(self.msg.get(t.SENDING_TIME) or b"")

    @property
    def time(self) -> float | None:
        """When it happened: arrival for inbound, SendingTime for outbound."""
        return self.received if self.received is not None else self.sending_time


@dataclass(slots=True)
class StoredSession:
    name: str  # the directory name, <ours>-<theirs>
    directory: Path
    next_sender_seq: int = 1
    next_target_seq: int = 1
    creation_time: float | None = None
    outbound: list[StoredMessage] = field(default_factory=list)
    inbound: list[StoredMessage] = field(default_factory=list)

    @property
    def comp_ids(self) -> tuple[str, str]:
        """(ours, theirs), from the first stored message; else from the directory name."""
        for m in self.outbound:
            return _text(m.msg, t.SENDER_COMP_ID), _text(m.msg, t.TARGET_COMP_ID)
        for m in self.inbound:
            return _text(m.msg, t.TARGET_COMP_ID), _text(m.msg, t.SENDER_COMP_ID)
        ours, _, theirs = self.name.partition("-")
        return ours, theirs

    def timeline(self) -> list[StoredMessage]:
        """Inbound and outbound interleaved in the order the session saw them."""
        keyed = [((m.seq, 1, i), m) for i, m in enumerate(self.outbound)]
        keyed += [((m.next_out_seq, 0, i), m) for i, m in enumerate(self.inbound)]
        keyed.sort(key=lambda item: item[0])
        return [m for _, m in keyed]


def load_session(directory: Path) -> StoredSession:
    session = StoredSession(directory.name, directory)
    seqnums = directory / "seqnums"
    if seqnums.exists():
        slot = decode_seqnums(seqnums.read_bytes())
        if slot is not None:
            _, session.next_sender_seq, session.next_target_seq = slot
    meta = directory / "meta.json"
    if meta.exists():
        try:
            session.creation_time = float(json.loads(meta.read_text())["creation_time"])
        except (ValueError, KeyError, TypeError):
            session.creation_time = None
    for _, raw in read_outbound(directory):
        msg = _parse(raw)
        if msg is not None:
            session.outbound.append(StoredMessage("OUT", msg))
    for record in read_inbound(directory):
        msg = _parse(record.raw)
        if msg is not None:
            session.inbound.append(
                StoredMessage("IN", msg, record.received, record.next_out_seq))
    return session


def session_directories(data_dir: Path) -> list[Path]:
    root = data_dir / "sessions"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "seqnums").exists())


def find_session(data_dir: Path, name: str) -> StoredSession:
    """A session by directory name (FIXGW-CLIENT1) or by the client's CompID (CLIENT1)."""
    dirs = session_directories(data_dir)
    matches = [d for d in dirs if d.name == name] or \
        [d for d in dirs if d.name.partition("-")[2] == name]
    if len(matches) != 1:
        known = ", ".join(d.name for d in dirs) or "none"
        what = "ambiguous" if matches else "not found"
        raise SessionNotFound(f"session {name!r} {what} in {data_dir / 'sessions'}"
                              f" (sessions: {known})")
    return load_session(matches[0])


def _parse(raw: bytes) -> Message | None:
    """The stored frame, with any secret masked (files from before masking hold them)."""
    parsed = parse_fields(raw)
    if parsed is None or len(parsed[0]) < 3:
        return None
    msg = Message(parsed[0], parsed[1], raw)
    masked = redacted(msg)
    if masked is raw:
        return msg
    parsed = parse_fields(masked)
    assert parsed is not None  # built from fields that parsed
    return Message(parsed[0], parsed[1], masked)


def _text(msg: Message, tag: int) -> str:
    return (msg.get(tag) or b"").decode("latin-1")
