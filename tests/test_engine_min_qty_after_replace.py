"""MinQty above the order quantity after a replace: the order can never meet it.

A NewOrder with MinQty above its quantity is rejected, but a replace may cut
the quantity of a waiting stop below its MinQty. When that stop fires, the
book may hold plenty, yet the order itself can fill at most its quantity:
MinQty is not met and the order is cancelled without trading, as the
reference model says. (Found by tests/test_engine_reference.py with
--hypothesis-seed=4; the fast engine used to count only the book.)
"""

from __future__ import annotations

from typing import Any

from engine import (
    Accepted,
    Cancelled,
    Instrument,
    MatchingEngine,
    NewOrder,
    OrdStatus,
    OrdType,
    Replaced,
    ReplaceOrder,
    Side,
    TimeInForce,
    Trade,
    Triggered,
)
from engine.engine import DAY_NS, REASON_MIN_QTY
from engine.reference import ReferenceEngine
from tests.engines import matching_engine  # noqa: F401  (every test: pure and compiled)

T0 = 20_000 * DAY_NS + 9 * 3_600 * 10**9
INSTRUMENTS = [Instrument("AAPL")]
GTC = TimeInForce.GTC


def stream() -> list[Any]:
    return [
        NewOrder(T0 + 1, "S2", "", "bid", "AAPL", Side.BUY, OrdType.LIMIT, 20, 100, None, GTC),
        NewOrder(T0 + 2, "S1", "", "stop", "AAPL", Side.SELL, OrdType.STOP, 20, None, 101, GTC,
                 None, 12),
        ReplaceOrder(T0 + 3, "S1", "stop2", "stop", "AAPL", Side.SELL, 6, None),
        NewOrder(T0 + 4, "S3", "", "hit", "AAPL", Side.SELL, OrdType.LIMIT, 1, 100, None, GTC),
    ]


def test_stop_replaced_below_its_min_qty_is_cancelled_when_it_fires() -> None:
    engine = MatchingEngine(INSTRUMENTS)
    events = [engine.process(command) for command in stream()]
    assert [type(e) for e in events[1]] == [Accepted]
    assert [type(e) for e in events[2]] == [Replaced]
    assert events[2][0].order.qty == 6 and events[2][0].order.min_qty == 12
    # The hit trades 1 at 100, which fires the sell stop (101); the stop, now a
    # market order for 6 with MinQty 12, is cancelled although 19 are bid.
    assert [type(e) for e in events[3]] == [Accepted, Trade, Triggered, Cancelled]
    cancelled = events[3][-1]
    assert cancelled.reason == REASON_MIN_QTY
    assert cancelled.order.cl_ord_id == "stop2"
    assert cancelled.order.cum_qty == 0 and cancelled.order.status == OrdStatus.CANCELED
    assert engine.book("AAPL").best_bid() == (100, 19)


def test_fast_engine_and_reference_agree_on_it() -> None:
    fast = MatchingEngine(INSTRUMENTS)
    reference = ReferenceEngine(INSTRUMENTS)
    for command in stream():
        assert fast.process(command) == reference.process(command)


def fok_stream() -> list[Any]:
    """The same with a fill-or-kill stop: its whole quantity (6) can fill, its
    MinQty (12) still cannot (found by the reference property test)."""
    fok = TimeInForce.FOK
    return [
        NewOrder(T0 + 1, "S2", "", "bid", "AAPL", Side.BUY, OrdType.LIMIT, 20, 100, None, GTC),
        NewOrder(T0 + 2, "S1", "", "stop", "AAPL", Side.SELL, OrdType.STOP, 20, None, 101, fok,
                 None, 12),
        ReplaceOrder(T0 + 3, "S1", "stop2", "stop", "AAPL", Side.SELL, 6, None),
        NewOrder(T0 + 4, "S3", "", "hit", "AAPL", Side.SELL, OrdType.LIMIT, 1, 100, None, GTC),
    ]


def test_fok_stop_replaced_below_its_min_qty_is_cancelled_for_min_qty() -> None:
    fast = MatchingEngine(INSTRUMENTS)
    reference = ReferenceEngine(INSTRUMENTS)
    for command in fok_stream():
        events = fast.process(command)
        assert events == reference.process(command), command
    assert [type(e) for e in events] == [Accepted, Trade, Triggered, Cancelled]
    assert events[-1].reason == REASON_MIN_QTY
    assert fast.book("AAPL").best_bid() == (100, 19)
