"""Hostile order entry: random mixes of valid and invalid order messages never
raise, never end the session, and every message gets its answer."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

import pytest

from engine.engine import MatchingEngine
from engine.journal import CommandJournal
from engine.types import Instrument
from fix_gateway.application.order_entry import OrderEntry
from fix_gateway.codec import Decoder, Message, encode
from fix_gateway.session import Connection, Session, SessionConfig, SessionRegistry
from fix_gateway.utc_time import format_timestamp
from session_store import FsyncPolicy, MemoryStore
from tests.fix_peer import DICTIONARY, T0

INSTRUMENTS = [Instrument("ACME"), Instrument("LOT", Decimal("0.05"), 100, 20, 400)]
NOW = format_timestamp(T0)
VALUES: dict[int, list[str]] = {
    11: ["A", "B", "C", "D"], 55: ["ACME", "LOT", "NOSUCH"], 54: ["1", "2", "3", "9"],
    38: ["100", "-5", "0", "1.5", "abc", "100000000000000000000"], 40: ["1", "2", "3", "4", "9"],
    44: ["10", "10.05", "-1", "0", "10.001", "99999999999999999999.99"], 99: ["10", "11", "-3"],
    59: ["0", "1", "3", "4", "6", "2"], 126: [format_timestamp(T0 + 10).decode(), "bad"],
    110: ["10", "-1", "500"], 111: ["10", "0", "-1", "7"], 41: ["A", "B", "C", "Z"],
    530: ["1", "7", "3"], 60: [NOW.decode()],
}  # fmt: skip
FIELDS = {
    "D": [11, 55, 54, 38, 40, 44, 99, 59, 126, 110, 111, 60],
    "F": [11, 41, 55, 54, 60], "G": [11, 41, 55, 54, 38, 40, 44, 99, 60],
    "H": [11, 55, 54], "q": [11, 530, 55, 60],
}  # fmt: skip
ANSWERS = {b"8", b"9", b"r", b"3", b"j"}


@pytest.mark.parametrize("seed", range(4))
def test_random_order_traffic_is_always_answered(tmp_path: Path, seed: int) -> None:
    session = Session(SessionConfig("FIXGW", "C"), MemoryStore(), DICTIONARY,
                      on_event=lambda *a: None)
    session.application = OrderEntry(
        MatchingEngine(INSTRUMENTS),
        CommandJournal(tmp_path / "journal.dat", fsync=FsyncPolicy.NONE),
        INSTRUMENTS, {"FIXGW-C": session}.get,
    )
    conn = Connection(SessionRegistry([session]), T0)
    conn.data_received(encode([(35, "A"), (34, 1), (49, "C"), (52, NOW), (56, "FIXGW"),
                               (98, 0), (108, 30)]), T0)
    decoder = Decoder()
    conn.take_output()
    rng = random.Random(seed)
    for seq in range(2, 1502):
        msg_type = rng.choice("DDDFGHq")
        body = [(t, rng.choice(VALUES[t])) for t in FIELDS[msg_type] if rng.random() < 0.85]
        conn.data_received(encode([(35, msg_type), (34, seq), (49, "C"), (52, NOW),
                                   (56, "FIXGW"), *body]), T0)
        replies = [m for chunk in conn.take_output() for m in decoder.feed(chunk)[0]
                   if isinstance(m, Message)]
        assert any(m.msg_type in ANSWERS for m in replies), (msg_type, body)
        assert conn.close_reason is None
    assert session.store.next_target_seq == 1502
