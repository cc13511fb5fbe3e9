"""The one event stream: stages answer a command in order, observers watch it, and
the reports stage hands what it sent forward in the read's batch (sans I/O)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from drop_copy.hub import DropCopyHub
from drop_copy.stream import DropCopyStream, StreamReader
from engine.engine import MatchingEngine
from engine.journal import CommandJournal
from engine.types import (
    AdvanceTime,
    Command,
    Event,
    Instrument,
    NewOrder,
    OrdType,
    Side,
    TimeInForce,
)
from fix_gateway.application.event_stream import Batch, EventStream
from fix_gateway.application.order_entry import OrderEntry
from fix_gateway.session import Session, SessionConfig
from session_store import FsyncPolicy, MemoryStore
from tests.fix_peer import DICTIONARY

INSTRUMENTS = [Instrument("ACME")]
T0 = 1_800_000_000 * 10**9
TICK = AdvanceTime(T0)


def test_stages_run_in_order_then_the_observers() -> None:
    stream = EventStream()
    seen: list[str] = []
    stream.stages += [lambda c, e, n: seen.append("reports"), lambda c, e, n: seen.append("copy")]
    stream.observers += [lambda c, e, n: seen.append("count"), lambda c, e, n: seen.append("stats")]
    stream.publish(TICK, [], 1.0)
    assert seen == ["reports", "copy", "count", "stats"]


def test_an_observer_error_is_logged_and_trading_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = EventStream()
    answered: list[Command] = []
    stream.stages.append(lambda c, e, n: answered.append(c))

    def broken(command: Command, events: list[Event], now: float) -> None:
        raise ValueError("analytics bug")

    stream.observers.append(broken)
    with caplog.at_level(logging.ERROR, logger="fixgw.orders"):
        stream.publish(TICK, [], 1.0)  # does not raise
    assert answered == [TICK]
    assert "event=observer_error" in caplog.text


def test_a_stage_error_propagates_and_no_observer_sees_the_command() -> None:
    stream = EventStream()
    watched: list[Command] = []

    def broken(command: Command, events: list[Event], now: float) -> None:
        raise ValueError("report bug")

    stream.stages.append(broken)
    stream.observers.append(lambda c, e, n: watched.append(c))
    with pytest.raises(ValueError):
        stream.publish(TICK, [], 1.0)
    assert watched == []


def _venue(tmp_path: Path, batch: Batch) -> tuple[OrderEntry, dict[str, Session]]:
    sessions = {
        f"FIXGW-{c}": Session(SessionConfig("FIXGW", c), MemoryStore(), DICTIONARY,
                              on_event=lambda *a: None)
        for c in ("A", "B")
    }
    journal = CommandJournal(tmp_path / "j.dat", fsync=FsyncPolicy.NONE)
    return OrderEntry(MatchingEngine(INSTRUMENTS), journal, INSTRUMENTS, sessions.get,
                      batch), sessions


def _order(ts: int, session: str, cl: str, side: Side) -> NewOrder:
    return NewOrder(T0 + ts, session, "", cl, "ACME", side, OrdType.LIMIT, 10, 100, None,
                    TimeInForce.GTC)


def test_drop_copy_takes_the_reports_handed_forward_in_the_batch(tmp_path: Path) -> None:
    batch = Batch()
    entry, sessions = _venue(tmp_path, batch)
    hub = DropCopyHub(DropCopyStream(tmp_path / "stream", fsync=FsyncPolicy.NONE), (), batch)
    entry.stream.stages.append(hub.on_events)
    entry.submit(_order(1, "FIXGW-A", "A1", Side.BUY), now=1.0)
    assert batch.reports == []  # copied within the command
    entry.submit(_order(2, "FIXGW-B", "B1", Side.SELL), now=1.0)  # New, then both fills
    assert batch.reports == []
    assert batch.sessions == set(sessions.values())
    hub.stream.flush()
    with StreamReader(tmp_path / "stream") as reader:
        copied = [raw for _, raw in reader.read(1, 100)]
    a, b = ([raw for _, raw in s.store.get_range(1, 100)] for s in sessions.values())
    # Every ExecutionReport, as framed for its session, in the order sent: A1 New,
    # B1 New, the aggressor's fill, the resting order's fill.
    assert copied == [a[0], b[0], b[1], a[1]]


def test_without_drop_copy_the_reports_are_not_kept(tmp_path: Path) -> None:
    batch = Batch()
    entry, sessions = _venue(tmp_path, batch)
    entry.submit(_order(1, "FIXGW-A", "A1", Side.BUY), now=1.0)
    assert batch.reports is None
    assert batch.sessions == {sessions["FIXGW-A"]}


@pytest.mark.parametrize("stream_written", [False, True])
def test_recovery_copies_each_restored_report_once(tmp_path: Path,
                                                   stream_written: bool) -> None:
    """A crash after the journal was written: the lost batch's reports are stored again
    at the next start and handed forward in the batch; the drop-copy stage copies those
    the stream lacks (all of them when the crash came before the stream was written,
    none when after), so the stream holds each report once."""
    live_batch = Batch()
    live, live_sessions = _venue(tmp_path, live_batch)
    live_hub = DropCopyHub(DropCopyStream(tmp_path / "stream", fsync=FsyncPolicy.NONE), (),
                           live_batch)
    live.stream.stages.append(live_hub.on_events)
    live.submit(_order(1, "FIXGW-A", "A1", Side.BUY), now=1.0)  # committed
    live.journal.flush()
    live_hub.stream.flush()
    live.journal.mark_committed()
    committed = {name: s.store.next_sender_seq - 1 for name, s in live_sessions.items()}
    live.submit(_order(2, "FIXGW-B", "B1", Side.SELL), now=1.0)  # lost from the stores
    live.journal.flush()
    if stream_written:
        live_hub.stream.flush()

    batch = Batch()
    restarted, sessions = _venue(tmp_path, batch)
    hub = DropCopyHub(DropCopyStream(tmp_path / "stream", fsync=FsyncPolicy.NONE), (), batch)
    restarted.stream.stages.append(hub.on_events)
    for name, session in sessions.items():
        for seq, raw in live_sessions[name].store.get_range(1, committed[name]):
            session.store.append_outbound(seq, raw)
            session.store.set_next_sender_seq(seq + 1)
    restarted.recover(restarted.journal.replay(), now=5.0)
    hub.recovered(5.0)
    hub.stream.flush()

    with StreamReader(tmp_path / "stream") as reader:
        copied = [raw for _, raw in reader.read(1, 100)]
    a, b = ([raw for _, raw in s.store.get_range(1, 100)] for s in sessions.values())
    assert len(a) == len(b) == 2  # A1 New and fill, B1 New and fill
    if stream_written:  # the live process's copies, as it framed them
        live_a, live_b = ([raw for _, raw in s.store.get_range(1, 100)]
                          for s in live_sessions.values())
        assert copied == [live_a[0], live_b[0], live_b[1], live_a[1]]
    else:  # A1's New from the live process, the rest as stored again
        assert copied == [a[0], b[0], b[1], a[1]]
    assert batch.reports == []
