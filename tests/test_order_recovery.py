"""Journal replay and the repair of reports a crash kept from the session stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.engine import MatchingEngine
from engine.journal import CommandJournal
from engine.types import AdvanceTime, Instrument, NewOrder, OrdType, Side, TimeInForce
from fix_gateway.application.journal_settings import check_and_save
from fix_gateway.application.order_entry import OrderEntry
from fix_gateway.codec import Decoder, Message
from fix_gateway.config import ConfigError, GatewaySettings
from fix_gateway.session import Session, SessionConfig
from session_store import FsyncPolicy, MemoryStore
from tests.engines import matching_engine  # noqa: F401  (every test: pure and compiled)
from tests.fix_peer import DICTIONARY

INSTRUMENTS = [Instrument("ACME")]
T0 = 1_800_000_000 * 10**9


def venue(journal_path: Path) -> tuple[OrderEntry, dict[str, Session]]:
    sessions = {
        f"FIXGW-{c}": Session(SessionConfig("FIXGW", c), MemoryStore(), DICTIONARY,
                              on_event=lambda *a: None)
        for c in ("A", "B")
    }
    journal = CommandJournal(journal_path, fsync=FsyncPolicy.NONE)
    entry = OrderEntry(MatchingEngine(INSTRUMENTS), journal, INSTRUMENTS, sessions.get)
    return entry, sessions


def order(ts: int, session: str, cl: str, side: Side, qty: int, price: int) -> NewOrder:
    return NewOrder(T0 + ts, session, "", cl, "ACME", side, OrdType.LIMIT, qty, price, None,
                    TimeInForce.GTC)


def stored(session: Session) -> list[Message]:
    out: list[Message] = []
    for _, raw in session.store.get_range(1, 10**9):
        items, _ = Decoder().feed(raw)
        out += [m for m in items if isinstance(m, Message)]
    return out


def exec_ids(session: Session) -> list[bytes]:
    return [m.get(17) or b"" for m in stored(session) if m.msg_type == b"8"]


def test_replay_rebuilds_the_engine_exactly(tmp_path: Path) -> None:
    live, _ = venue(tmp_path / "j.dat")
    for i, (session, side, price) in enumerate([("FIXGW-A", Side.BUY, 100),
                                                 ("FIXGW-B", Side.SELL, 101),
                                                 ("FIXGW-B", Side.SELL, 100)]):
        live.submit(order(i, session, f"O{i}", side, 10 + i, price), now=1.0)
    live.journal.flush()
    recovered, _ = venue(tmp_path / "j.dat")
    assert recovered.recover(recovered.journal.replay(), now=2.0) == 3
    assert recovered.engine.dump() == live.engine.dump()


def test_clock_ticks_are_journaled_only_when_an_expiry_is_due(tmp_path: Path) -> None:
    entry, sessions = venue(tmp_path / "j.dat")
    entry.advance_time(T0 / 1e9)  # the first tick sets the next end of day
    entry.submit(NewOrder(T0 + 1, "FIXGW-A", "", "G1", "ACME", Side.BUY, OrdType.LIMIT, 10,
                          100, None, TimeInForce.GTD, T0 + 5 * 10**9), now=T0 / 1e9)
    for second in range(1, 5):  # idle seconds: nothing due, nothing journaled
        entry.advance_time(T0 / 1e9 + second)
    entry.advance_time(T0 / 1e9 + 6)  # the GTD order expires
    entry.journal.flush()
    ticks = [e.command.ts for e in CommandJournal(tmp_path / "j.dat").replay()
             if isinstance(e.command, AdvanceTime)]
    assert ticks == [T0, T0 + 6 * 10**9]
    assert [m.get(150) for m in stored(sessions["FIXGW-A"])] == [b"0", b"C"]
    recovered, _ = venue(tmp_path / "j.dat")
    recovered.recover(recovered.journal.replay(), now=T0 / 1e9 + 7)
    assert recovered.engine.dump() == entry.engine.dump()


def test_reports_missing_from_a_store_after_a_crash_are_restored(tmp_path: Path) -> None:
    live, live_sessions = venue(tmp_path / "j.dat")
    # Batch 1: committed (its reports reached both stores).
    live.submit(order(1, "FIXGW-A", "A1", Side.BUY, 10, 100), now=1.0)
    live.journal.flush()
    live.journal.mark_committed()
    committed = {name: len(stored(s)) for name, s in live_sessions.items()}
    # Batch 2: journaled, then the process died. A's store got its reports, B's did not.
    live.submit(order(2, "FIXGW-B", "B1", Side.SELL, 4, 100), now=1.0)
    live.journal.flush()

    restarted, sessions = venue(tmp_path / "j.dat")
    for name, session in sessions.items():
        keep = len(stored(live_sessions[name])) if name == "FIXGW-A" else committed[name]
        for seq, raw in list(live_sessions[name].store.get_range(1, 10**9))[:keep]:
            session.store.append_outbound(seq, raw)
            session.store.set_next_sender_seq(seq + 1)
    restarted.recover(restarted.journal.replay(), now=5.0)

    assert exec_ids(sessions["FIXGW-A"]) == exec_ids(live_sessions["FIXGW-A"])  # nothing twice
    assert exec_ids(sessions["FIXGW-B"]) == exec_ids(live_sessions["FIXGW-B"])  # restored
    b_reports = [m for m in stored(sessions["FIXGW-B"]) if m.msg_type == b"8"]
    assert [(m.get(11), m.get(150)) for m in b_reports] == [(b"B1", b"0"), (b"B1", b"F")]


def test_restored_reports_follow_the_one_report_rule_per_command(tmp_path: Path) -> None:
    """An order that ends in its own command unfilled gets one report (Canceled), and
    recovery rebuilds reports command by command: a resting order cancelled by a later
    command of the same lost batch (self-trade prevention) keeps its New."""
    live, live_sessions = venue(tmp_path / "j.dat")
    live.journal.mark_committed()  # nothing committed: the whole batch below is lost

    def new(ts: int, cl: str, account: str, side: Side, ord_type: OrdType,
            price: int | None) -> NewOrder:
        return NewOrder(T0 + ts, "FIXGW-B", account, cl, "ACME", side, ord_type, 10, price,
                        None, TimeInForce.GTC)

    live.submit(new(1, "B1", "X", Side.BUY, OrdType.LIMIT, 100), now=1.0)
    live.submit(new(2, "B2", "X", Side.SELL, OrdType.LIMIT, 100), now=1.0)  # STP: B1 out
    live.submit(new(3, "B3", "", Side.SELL, OrdType.MARKET, None), now=1.0)  # no bids
    live.journal.flush()
    sent = [(m.get(11), m.get(150)) for m in stored(live_sessions["FIXGW-B"])]
    assert sent == [(b"B1", b"0"), (b"B2", b"0"), (b"B1", b"4"), (b"B3", b"4")]

    restarted, sessions = venue(tmp_path / "j.dat")
    restarted.recover(restarted.journal.replay(), now=5.0)
    assert [(m.get(11), m.get(150)) for m in stored(sessions["FIXGW-B"])] == sent
    assert exec_ids(sessions["FIXGW-B"]) == exec_ids(live_sessions["FIXGW-B"])


def test_a_changed_iceberg_slice_limit_is_refused_while_the_journal_holds_orders(
    tmp_path: Path,
) -> None:
    """The slice limit decides which orders the engine takes: replaying a journal under
    another one could reject an order the venue acknowledged."""
    def settings(slices: int) -> GatewaySettings:
        return GatewaySettings.model_validate(
            {"engine": {"max_iceberg_slices": slices}, "store": {"data_dir": str(tmp_path)}})

    record = tmp_path / "engine-settings.json"
    assert check_and_save(record, settings(1000), lambda: True) is False
    with pytest.raises(ConfigError, match=r"engine.max_iceberg_slices: 1000 -> 10"):
        check_and_save(record, settings(10), lambda: True)
    assert check_and_save(record, settings(10), lambda: False) is True  # nothing to replay
