"""An engine restored from a snapshot is the engine the snapshot was taken from.

Random streams from the reference-model tests (every order type, icebergs,
stops, GTD, replaces, mass cancels, refused orders, end-of-day jumps) are cut
at a random point: one engine runs them straight through; another is
snapshotted at the cut, the snapshot goes through marshal (as on disk) into a
fresh engine, and that one runs the rest. Both must emit the same events after
the cut and end in the same state.
"""

from __future__ import annotations

import marshal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import (
    AdvanceTime,
    Instrument,
    MatchingEngine,
    NewOrder,
    OrdType,
    Side,
    StpMode,
    TimeInForce,
)
from engine import snapshot as snap
from tests.engine_streams import END_OF_DAY, INSTRUMENTS, engine_options, streams
from tests.engines import matching_engine  # noqa: F401  (every test: pure and compiled)
from tests.property_examples import examples


def through_disk(engine: MatchingEngine) -> dict[str, Any]:
    loaded: dict[str, Any] = marshal.loads(marshal.dumps(snap.take(engine)))
    return loaded


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands=streams, options=engine_options, cut=st.floats(0, 1))
def test_restored_engine_answers_every_later_command_the_same(
    commands: list[Any], options: dict[str, Any], cut: float
) -> None:
    at = int(cut * len(commands))
    straight = MatchingEngine(INSTRUMENTS, end_of_day=END_OF_DAY, **options)
    for command in commands[:at]:
        straight.process(command)
    # The slice limit is configuration, like the STP mode: the restart passes it again.
    restored = snap.restore(through_disk(straight), INSTRUMENTS, options["stp_mode"],
                            END_OF_DAY, max_iceberg_slices=options["max_iceberg_slices"])
    assert restored.dump() == straight.dump()
    for command in commands[at:]:
        assert restored.process(command) == straight.process(command), command
    assert restored.dump() == straight.dump()
    assert restored.next_expiry == straight.next_expiry
    for symbol in ("X", "Y"):
        assert restored.book(symbol).depth(10) == straight.book(symbol).depth(10)
    # A snapshot of the restored engine is the snapshot of the original.
    assert snap.take(restored) == snap.take(straight)


def test_snapshot_refuses_other_settings() -> None:
    engine = MatchingEngine(INSTRUMENTS, end_of_day=END_OF_DAY)
    engine.process(NewOrder(1, "S1", "A", "c1", "X", Side.BUY, OrdType.LIMIT, 5, 100, None,
                            TimeInForce.GTC))
    taken = through_disk(engine)
    assert snap.holds_orders(taken)
    assert not snap.holds_orders(snap.take(MatchingEngine(INSTRUMENTS)))
    with pytest.raises(snap.SnapshotMismatch, match="not configured: \\['X'\\]"):
        snap.restore(taken, [Instrument("Y")], StpMode.CANCEL_RESTING, END_OF_DAY)
    with pytest.raises(snap.SnapshotMismatch, match="stp_mode or end_of_day"):
        snap.restore(taken, INSTRUMENTS, StpMode.CANCEL_BOTH, END_OF_DAY)
    with pytest.raises(snap.SnapshotMismatch, match="stp_mode or end_of_day"):
        snap.restore(taken, INSTRUMENTS, StpMode.CANCEL_RESTING, END_OF_DAY + 1)
    with pytest.raises(snap.SnapshotMismatch, match="format"):
        snap.restore({**taken, "format": 99}, INSTRUMENTS, StpMode.CANCEL_RESTING, END_OF_DAY)


def test_new_rules_restore_the_orders_and_go_on_under_the_new_settings() -> None:
    engine = MatchingEngine(INSTRUMENTS, end_of_day=END_OF_DAY)
    engine.process(NewOrder(1, "S1", "A", "c1", "X", Side.BUY, OrdType.LIMIT, 5, 100, None,
                            TimeInForce.DAY))
    taken = through_disk(engine)
    same_day = snap.restore(taken, INSTRUMENTS, StpMode.CANCEL_BOTH, END_OF_DAY,
                            new_rules=True)
    assert same_day.dump()["books"] == engine.dump()["books"]
    assert same_day.next_end_of_day == engine.next_end_of_day  # only the STP mode changed
    later = snap.restore(taken, INSTRUMENTS, StpMode.CANCEL_RESTING, END_OF_DAY + 3600 * 10**9,
                         new_rules=True)
    assert later.next_end_of_day is None  # the next command counts the new end of day
    with pytest.raises(snap.SnapshotMismatch, match="not configured: \\['X'\\]"):
        snap.restore(taken, [Instrument("Y")], StpMode.CANCEL_RESTING, END_OF_DAY,
                     new_rules=True)  # its orders' instrument stays, whatever the rules


def test_settings_may_change_while_no_order_was_made_and_the_counters_carry_on() -> None:
    engine = MatchingEngine(INSTRUMENTS, end_of_day=END_OF_DAY, next_seq=41)
    engine.process(AdvanceTime(5))
    taken = through_disk(engine)
    assert not snap.holds_orders(taken)
    restored = snap.restore(taken, [Instrument("Q")], StpMode.CANCEL_BOTH, END_OF_DAY + 7)
    events = restored.process(NewOrder(9, "S1", "A", "c1", "Q", Side.BUY, OrdType.LIMIT, 5,
                                       100, None, TimeInForce.DAY))
    assert [e.seq for e in events] == [41]  # ExecIDs keep counting from where they were
