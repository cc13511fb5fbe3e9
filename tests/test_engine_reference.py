"""Property tests: MatchingEngine against ReferenceEngine, and book invariants.

Random command streams (two symbols and an unknown one, three sessions sharing
a few accounts so that self-trade prevention fires, every order type and
TimeInForce, icebergs, MinQty, stops, cancels and replaces of live, done and
unknown ClOrdIDs, mass cancels, status requests, refused orders, time jumps
across the end of day) go to both engines. They must produce the same events
and end in the same `dump()`; and after every command the fast engine's book
must hold the invariants checked in `check_invariants`.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from engine import (
    Cancelled,
    Event,
    Expired,
    MatchingEngine,
    Replaced,
    Side,
    Trade,
)
from engine.reference import ReferenceEngine
from tests.engine_streams import (
    END_OF_DAY,
    INSTRUMENTS,
    LIVE,
    engine_options,
    streams,
)
from tests.engines import matching_engine  # noqa: F401  (every test: pure and compiled)


def order_records(dump: dict[str, Any]) -> list[dict[str, Any]]:
    records = []
    for book in dump["books"].values():
        for side in ("bids", "asks"):
            for level in book[side]:
                records.extend(level["orders"])
    for stops in dump["stops"].values():
        records.extend(stops)
    return records


def fifo_queues(dump: dict[str, Any]) -> dict[tuple[str, int, int], list[int]]:
    """(symbol, side, price) -> order ids, front first."""
    queues = {}
    for symbol, book in dump["books"].items():
        for side_name, side in (("bids", Side.BUY), ("asks", Side.SELL)):
            for level in book[side_name]:
                queues[(symbol, int(side), level["price"])] = [
                    o["order_id"] for o in level["orders"]
                ]
    return queues


class Tracker:
    """What the event stream says so far: latest state per order, per symbol fills."""

    def __init__(self) -> None:
        self.cum: dict[int, tuple[str, Side, int]] = {}
        self.next_seq = 1


def check_invariants(  # noqa: C901
    engine: MatchingEngine, before: dict[str, Any], events: list[Event], tracker: Tracker
) -> dict[str, Any]:
    """Check the engine after one command (`before`: its dump before); return its dump."""
    after = engine.dump()
    # Every event numbered, no gap, no reuse.
    for event in events:
        assert event.seq == tracker.next_seq
        tracker.next_seq += 1
    # The book is never crossed; displayed quantities add up.
    for symbol, book in after["books"].items():
        bids, asks = book["bids"], book["asks"]
        if bids and asks:
            assert bids[0]["price"] < asks[0]["price"]
        view = engine.book(symbol)
        assert view.best_bid() == (
            (bids[0]["price"], sum(o["displayed"] for o in bids[0]["orders"])) if bids else None
        )
        assert view.best_ask() == (
            (asks[0]["price"], sum(o["displayed"] for o in asks[0]["orders"])) if asks else None
        )
        for level in bids + asks:
            assert level["orders"]
            for o in level["orders"]:
                assert o["price"] == level["price"]
                assert 0 < o["displayed"] <= o["leaves_qty"]
                if o["max_floor"]:
                    assert o["displayed"] <= o["max_floor"]
                else:
                    assert o["displayed"] == o["leaves_qty"]
        # The FIFO links agree both ways and with the levels' displayed totals.
        for side in (view.bids, view.asks):
            assert list(side.keys) == sorted(side.levels)
            assert side.best is (side.levels[side.keys[0]] if side.keys else None)
            for level in side.levels.values():
                forward = level.orders()
                backward = []
                order = level.tail
                while order is not None:
                    backward.append(order)
                    order = order.prev
                assert forward == backward[::-1]
                assert all(o.level is level for o in forward)
                assert level.displayed == sum(o.displayed for o in forward)
    # Quantity is conserved on every order the events show and the book holds.
    states = [o for o in order_records(after)] + after["done_orders"]
    for event in events:
        for name in ("order", "aggressor", "resting"):
            state = getattr(event, name, None)
            if state is not None:
                states.append(state._asdict())
    for state in states:
        assert state["cum_qty"] >= 0
        if state["status"] in LIVE:
            assert state["qty"] == state["leaves_qty"] + state["cum_qty"]
            assert state["leaves_qty"] > 0
        else:
            assert state["leaves_qty"] == 0
            assert state["cum_qty"] <= state["qty"]
    # Trades: opposite sides, never one account on both, at the resting price, FIFO.
    queues = fifo_queues(before)
    touched: set[int] = set()
    for event in events:
        if isinstance(event, Trade):
            aggressor, resting = event.aggressor, event.resting
            assert aggressor.side != resting.side
            assert not (aggressor.account and aggressor.account == resting.account)
            assert event.price == resting.price
            if aggressor.price is not None:
                if aggressor.side == Side.BUY:
                    assert event.price <= aggressor.price
                else:
                    assert event.price >= aggressor.price
            queue = queues.get((event.symbol, int(resting.side), resting.price), [])
            ahead = queue[: queue.index(resting.order_id)] if resting.order_id in queue else queue
            untouched = [i for i in ahead if i not in touched]
            assert not untouched, f"trade with {resting.order_id} skipped {untouched}"
            touched.add(resting.order_id)
            touched.add(aggressor.order_id)
            for state in (aggressor, resting):
                tracker.cum[state.order_id] = (state.symbol, state.side, state.cum_qty)
        elif isinstance(event, Cancelled | Expired | Replaced):
            touched.add(event.order.order_id)  # left the queue, or moved to its back
    # As much bought as sold in every symbol.
    bought: dict[str, int] = defaultdict(int)
    sold: dict[str, int] = defaultdict(int)
    for symbol, side, cum in tracker.cum.values():
        (bought if side == Side.BUY else sold)[symbol] += cum
    assert bought == sold
    return after


@pytest.mark.slow
@settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(commands=streams, options=engine_options)
def test_fast_engine_matches_reference_and_keeps_invariants(
    commands: list[Any], options: dict[str, Any]
) -> None:
    fast = MatchingEngine(INSTRUMENTS, end_of_day=END_OF_DAY, **options)
    reference = ReferenceEngine(INSTRUMENTS, end_of_day=END_OF_DAY, **options)
    tracker = Tracker()
    dump = fast.dump()
    for command in commands:
        events = fast.process(command)
        assert events == reference.process(command), command
        dump = check_invariants(fast, dump, events, tracker)
    assert fast.dump() == reference.dump()
    assert fast.state_hash() == reference.state_hash()
    assert fast.open_orders() == reference.open_orders()
    for symbol in ("X", "Y"):
        assert fast.book(symbol).depth(3) == reference.book(symbol).depth(3)
        # What /metrics reports as open orders per symbol, counted without snapshots.
        assert fast.book(symbol).live_count() == sum(
            o.symbol == symbol for o in reference.open_orders())
    # Replaying the same commands into a fresh engine gives the same state.
    replay = MatchingEngine(INSTRUMENTS, end_of_day=END_OF_DAY, **options)
    for command in commands:
        replay.process(command)
    assert replay.state_hash() == fast.state_hash()
