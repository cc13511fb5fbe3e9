"""MatchingEngine, rule by rule: validation, order types, TimeInForce, MinQty,
icebergs, stops, self-trade prevention, cancel/replace, status, mass cancel,
expiry, numbering and state dumps."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine import (
    CXL_DUPLICATE_CLORDID,
    CXL_OTHER,
    CXL_TOO_LATE,
    CXL_UNKNOWN_ORDER,
    REJ_DUPLICATE_ORDER,
    REJ_INCORRECT_QUANTITY,
    REJ_OTHER,
    REJ_UNKNOWN_SYMBOL,
    REJ_UNSUPPORTED_CHARACTERISTIC,
    RESPONSE_TO_CANCEL,
    RESPONSE_TO_REPLACE,
    Accepted,
    AdvanceTime,
    Cancelled,
    CancelOrder,
    CancelRejected,
    Event,
    Expired,
    Instrument,
    MassCancel,
    MassCancelReport,
    MassCancelScope,
    MatchingEngine,
    NewOrder,
    OrderStatusRequest,
    OrdStatus,
    OrdType,
    Rejected,
    RejectOrder,
    Replaced,
    ReplaceOrder,
    Side,
    StatusReport,
    StpMode,
    TimeInForce,
    Trade,
    Triggered,
)
from engine.engine import DAY_NS
from engine.reference import ReferenceEngine
from tests.engines import matching_engine  # noqa: F401  (every test: pure and compiled)

BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET, STOP, STOP_LIMIT = OrdType.LIMIT, OrdType.MARKET, OrdType.STOP, OrdType.STOP_LIMIT
DAY, GTC, GTD, IOC, FOK = (
    TimeInForce.DAY, TimeInForce.GTC, TimeInForce.GTD, TimeInForce.IOC, TimeInForce.FOK,
)  # fmt: skip
INSTRUMENTS = [
    Instrument("AAPL", band_low=50, band_high=200),
    Instrument("LOT", lot_size=100),
]
HOUR = 3_600 * 10**9
MIDNIGHT = 20_000 * DAY_NS
T0 = MIDNIGHT + 9 * HOUR  # 09:00 UTC; the default end of day is 21:00


def kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


def trades(events: list[Event]) -> list[tuple[int, int, int]]:
    """(resting order id, price, qty) per Trade."""
    return [(e.resting.order_id, e.price, e.qty) for e in events if isinstance(e, Trade)]


class Venue:
    """A MatchingEngine with a clock that ticks 1 µs per command and short-hand orders."""

    def __init__(self, **options: Any) -> None:
        self.engine = MatchingEngine(INSTRUMENTS, **options)
        self.ts = T0
        self.commands: list[Any] = []
        self.count = 0

    def send(self, command: Any) -> list[Event]:
        self.commands.append(command)
        return self.engine.process(command)

    def tick(self) -> int:
        self.ts += 1_000
        return self.ts

    def order(
        self,
        side: Side,
        qty: int,
        price: int | None = None,
        *,
        ord_type: OrdType | None = None,
        tif: TimeInForce = DAY,
        session: str = "S1",
        account: str = "",
        cl: str | None = None,
        stop: int | None = None,
        expire: int | None = None,
        min_qty: int = 0,
        max_floor: int = 0,
        symbol: str = "AAPL",
    ) -> list[Event]:
        if ord_type is None:
            if stop is not None:
                ord_type = STOP if price is None else STOP_LIMIT
            else:
                ord_type = MARKET if price is None else LIMIT
        if cl is None:
            self.count += 1
            cl = f"o{self.count}"
        return self.send(
            NewOrder(
                self.tick(), session, account, cl, symbol, side, ord_type, qty, price, stop, tif,
                expire, min_qty, max_floor,
            )
        )

    def cancel(
        self, orig: str, cl: str, *, side: Side = BUY, session: str = "S1", symbol: str = "AAPL"
    ) -> list[Event]:
        return self.send(CancelOrder(self.tick(), session, cl, orig, symbol, side))

    def replace(
        self,
        orig: str,
        cl: str,
        qty: int,
        price: int | None = None,
        *,
        side: Side = BUY,
        stop: int | None = None,
        session: str = "S1",
        symbol: str = "AAPL",
    ) -> list[Event]:
        return self.send(
            ReplaceOrder(self.tick(), session, cl, orig, symbol, side, qty, price, stop)
        )

    def status(self, cl: str, *, session: str = "S1") -> StatusReport:
        (report,) = self.send(OrderStatusRequest(self.tick(), session, cl, "AAPL", BUY))
        assert isinstance(report, StatusReport)
        return report

    def advance(self, ts: int) -> list[Event]:
        self.ts = ts
        return self.send(AdvanceTime(ts))

    def queue(self, side: Side, price: int) -> list[str]:
        """ClOrdIDs at one price level, front first."""
        book = self.engine.dump()["books"]["AAPL"]["bids" if side == BUY else "asks"]
        for level in book:
            if level["price"] == price:
                return [o["cl_ord_id"] for o in level["orders"]]
        return []


@pytest.fixture
def venue() -> Venue:
    return Venue()


# --- validation --------------------------------------------------------------------


def reject_of(events: list[Event]) -> Rejected:
    (event,) = events
    assert isinstance(event, Rejected)
    return event


def test_unknown_symbol_is_rejected(venue: Venue) -> None:
    event = reject_of(venue.order(BUY, 10, 100, symbol="NOPE"))
    assert event.reason == REJ_UNKNOWN_SYMBOL
    assert "unknown symbol 'NOPE'" in event.text
    assert event.cl_ord_id == "o1" and event.qty == 10 and event.price == 100


@pytest.mark.parametrize(
    ("qty", "symbol", "text"),
    [
        (0, "AAPL", "order quantity 0 must be positive"),
        (-5, "AAPL", "order quantity -5 must be positive"),
        (150, "LOT", "order quantity 150 is not a multiple of the lot size 100"),
    ],
)
def test_bad_quantity_is_rejected(venue: Venue, qty: int, symbol: str, text: str) -> None:
    event = reject_of(venue.order(BUY, qty, 100, symbol=symbol))
    assert event.reason == REJ_INCORRECT_QUANTITY
    assert event.text == text


@pytest.mark.parametrize(
    ("price", "stop", "text"),
    [
        (201, None, "price 2.01 outside band [0.50, 2.00]"),
        (49, None, "price 0.49 outside band [0.50, 2.00]"),
        (None, 300, "stop price 3.00 outside band [0.50, 2.00]"),
        (100, 10, "stop price 0.10 outside band [0.50, 2.00]"),
    ],
)
def test_price_outside_band_is_rejected(
    venue: Venue, price: int | None, stop: int | None, text: str
) -> None:
    event = reject_of(venue.order(BUY, 10, price, stop=stop))
    assert event.reason == REJ_OTHER
    assert event.text == text


@pytest.mark.parametrize(
    ("price", "stop", "text"),
    [
        (0, None, "price 0.00 must be positive"),
        (-5, None, "price -0.05 must be positive"),
        (None, 0, "stop price 0.00 must be positive"),
        (100, -1, "stop price -0.01 must be positive"),
    ],
)
def test_without_a_band_low_a_price_must_be_positive(
    venue: Venue, price: int | None, stop: int | None, text: str
) -> None:
    event = reject_of(venue.order(BUY, 100, price, stop=stop, symbol="LOT"))
    assert event.reason == REJ_OTHER
    assert event.text == text
    assert kinds(venue.order(BUY, 100, 1, symbol="LOT")) == ["Accepted"]  # one tick is fine


def test_a_band_low_below_zero_lets_prices_go_negative() -> None:
    spread = Instrument("SPREAD", band_low=-500, band_high=500)
    engine = MatchingEngine([spread])
    sell = NewOrder(T0, "S1", "A", "s", "SPREAD", SELL, LIMIT, 10, -120, None, DAY)
    buy = NewOrder(T0, "S2", "B", "b", "SPREAD", BUY, LIMIT, 10, -100, None, DAY)
    assert kinds(engine.process(sell)) == ["Accepted"]
    assert trades(engine.process(buy)) == [(1, -120, 10)]
    low = NewOrder(T0, "S1", "A", "x", "SPREAD", SELL, LIMIT, 10, -501, None, DAY)
    assert reject_of(engine.process(low)).text == "price -5.01 outside band [-5.00, 5.00]"


def test_band_limits_themselves_are_accepted(venue: Venue) -> None:
    assert kinds(venue.order(BUY, 10, 50)) == ["Accepted"]
    assert kinds(venue.order(SELL, 10, 200)) == ["Accepted"]


@pytest.mark.parametrize(
    ("ord_type", "price", "stop", "text"),
    [
        (MARKET, 100, None, "a market order takes no price"),
        (MARKET, None, 100, "a market order takes no stop price (use a stop order)"),
        (LIMIT, None, None, "a limit order needs a price"),
        (LIMIT, 100, 100, "a limit order takes no stop price (use a stop-limit order)"),
        (STOP, None, None, "a stop order needs a stop price"),
        (STOP, 100, 100, "a stop order takes no limit price (use a stop-limit order)"),
        (STOP_LIMIT, 100, None, "a stop-limit order needs a stop price"),
        (STOP_LIMIT, None, 100, "a stop-limit order needs a limit price"),
    ],
)
def test_price_fields_must_fit_the_order_type(
    venue: Venue, ord_type: OrdType, price: int | None, stop: int | None, text: str
) -> None:
    event = reject_of(venue.order(BUY, 10, price, ord_type=ord_type, stop=stop))
    assert event.reason == REJ_UNSUPPORTED_CHARACTERISTIC
    assert event.text == text


def test_gtd_needs_a_future_expire_time(venue: Venue) -> None:
    missing = reject_of(venue.order(BUY, 10, 100, tif=GTD))
    assert (missing.reason, missing.text) == (REJ_OTHER, "a GTD order needs an ExpireTime")
    past = reject_of(venue.order(BUY, 10, 100, tif=GTD, expire=venue.ts + 1_000))
    assert past.reason == REJ_OTHER
    assert "is not after the order's time" in past.text
    assert kinds(venue.order(BUY, 10, 100, tif=GTD, expire=venue.ts + 10**9)) == ["Accepted"]


@pytest.mark.parametrize(
    ("qty", "min_qty", "max_floor", "symbol", "text"),
    [
        (10, 11, 0, "AAPL", "MinQty 11 must be between 0 and the order quantity 10"),
        (10, 0, 11, "AAPL", "MaxFloor 11 must be between 0 and the order quantity 10"),
        (1000, 0, 150, "LOT", "MaxFloor 150 is not a multiple of the lot size 100"),
    ],
)
def test_min_qty_and_max_floor_must_fit_the_quantity(
    venue: Venue, qty: int, min_qty: int, max_floor: int, symbol: str, text: str
) -> None:
    price = 100
    event = reject_of(
        venue.order(BUY, qty, price, min_qty=min_qty, max_floor=max_floor, symbol=symbol)
    )
    assert event.reason == REJ_INCORRECT_QUANTITY
    assert event.text == text


def test_clordid_used_before_by_the_session_is_a_duplicate(venue: Venue) -> None:
    venue.order(SELL, 10, 100, cl="live")
    venue.order(SELL, 10, 101, cl="done")
    venue.cancel("done", "x-done", side=SELL)
    venue.send(
        RejectOrder(venue.tick(), "S1", "", "refused", "AAPL", BUY, LIMIT, 10, 18, "off tick")
    )
    for cl in ("live", "done", "refused"):
        event = reject_of(venue.order(BUY, 1, 60, cl=cl))
        assert event.reason == REJ_DUPLICATE_ORDER
        assert event.text == f"duplicate ClOrdID {cl!r}: already used by this session"
    # Another session may use the same ClOrdIDs.
    assert kinds(venue.order(BUY, 1, 60, cl="live", session="S3")) == ["Accepted"]


def test_a_rejected_order_changes_nothing_but_seq(venue: Venue) -> None:
    venue.order(SELL, 10, 100)
    before = venue.engine.dump()
    reject_of(venue.order(BUY, 0, 100, cl="again"))
    after = venue.engine.dump()
    assert after.pop("next_seq") == before.pop("next_seq") + 1
    assert after == before
    # Its ClOrdID was not taken: the corrected order may reuse it.
    assert kinds(venue.order(BUY, 5, 90, cl="again")) == ["Accepted"]


def test_reject_order_command_is_echoed_and_takes_the_clordid(venue: Venue) -> None:
    (event,) = venue.send(
        RejectOrder(venue.tick(), "S1", "ACC", "r1", "AAPL", SELL, LIMIT, 7, 18, "price off tick")
    )
    assert isinstance(event, Rejected)
    assert (event.account, event.cl_ord_id, event.side, event.qty, event.price) == (
        "ACC", "r1", SELL, 7, None,
    )  # fmt: skip
    assert (event.reason, event.text) == (18, "price off tick")
    assert venue.status("r1").order is None
    assert reject_of(venue.order(BUY, 1, 60, cl="r1")).reason == REJ_DUPLICATE_ORDER


# --- numbering ---------------------------------------------------------------------


def test_seq_order_ids_and_match_ids_count_up() -> None:
    venue = Venue(next_order_id=500, next_seq=1000)
    events = venue.order(SELL, 10, 100)
    events += venue.order(BUY, 0, 100)  # rejected: takes a seq, no order id
    events += venue.order(BUY, 4, 100)
    events += venue.order(BUY, 4, 100)
    assert [e.seq for e in events] == list(range(1000, 1000 + len(events)))
    accepted = [e.order.order_id for e in events if isinstance(e, Accepted)]
    assert accepted == [500, 501, 502]
    assert [e.match_id for e in events if isinstance(e, Trade)] == [1, 2]
    dump = venue.engine.dump()
    assert (dump["next_order_id"], dump["next_seq"], dump["next_match_id"]) == (503, 1006, 3)


# --- limit, market, IOC, FOK -----------------------------------------------------------


def test_limit_order_rests_and_is_acknowledged(venue: Venue) -> None:
    (accepted,) = venue.order(BUY, 10, 100, account="ACC", cl="b1")
    assert isinstance(accepted, Accepted)
    order = accepted.order
    assert (order.status, order.leaves_qty, order.cum_qty, order.qty) == (OrdStatus.NEW, 10, 0, 10)
    assert (order.cl_ord_id, order.account, order.session, order.price) == ("b1", "ACC", "S1", 100)
    assert venue.engine.book("AAPL").best_bid() == (100, 10)
    assert venue.engine.book("AAPL").best_ask() is None


def test_price_then_time_priority_at_the_resting_price(venue: Venue) -> None:
    venue.order(SELL, 10, 100, cl="a")  # order 1
    venue.order(SELL, 10, 100, cl="b")  # order 2
    venue.order(SELL, 10, 99, cl="c")  # order 3: better price
    venue.order(SELL, 10, 102, cl="d")  # order 4: beyond the buyer's limit
    events = venue.order(BUY, 25, 101, cl="buyer", session="S2")
    assert trades(events) == [(3, 99, 10), (1, 100, 10), (2, 100, 5)]
    last = events[-1]
    assert isinstance(last, Trade)
    assert last.aggressor.status == OrdStatus.FILLED
    assert last.aggressor.cum_value == 99 * 10 + 100 * 15
    assert last.resting.status == OrdStatus.PARTIALLY_FILLED
    assert (last.resting.leaves_qty, last.resting.cum_qty) == (5, 5)
    assert venue.engine.book("AAPL").depth(5) == ([], [(100, 5), (102, 10)])


def test_partial_fill_rests_the_remainder(venue: Venue) -> None:
    venue.order(SELL, 4, 100)
    events = venue.order(BUY, 10, 100)
    assert kinds(events) == ["Accepted", "Trade"]
    assert venue.engine.book("AAPL").best_bid() == (100, 6)
    (state,) = venue.engine.open_orders()
    assert (state.status, state.leaves_qty, state.cum_qty) == (OrdStatus.PARTIALLY_FILLED, 6, 4)


def test_ioc_remainder_is_cancelled(venue: Venue) -> None:
    venue.order(SELL, 4, 100)
    events = venue.order(BUY, 10, 101, tif=IOC)
    assert kinds(events) == ["Accepted", "Trade", "Cancelled"]
    cancelled = events[-1]
    assert cancelled.reason == "IOC remainder"
    assert cancelled.request_cl_ord_id is None
    assert (cancelled.order.status, cancelled.order.leaves_qty, cancelled.order.cum_qty) == (
        OrdStatus.CANCELED, 0, 4,
    )  # fmt: skip
    assert venue.engine.book("AAPL").best_bid() is None


def test_fok_fills_in_full_or_not_at_all(venue: Venue) -> None:
    venue.order(SELL, 5, 100)
    venue.order(SELL, 5, 101)
    venue.order(SELL, 5, 103)
    events = venue.order(BUY, 11, 102, tif=FOK)  # only 10 at acceptable prices
    assert kinds(events) == ["Accepted", "Cancelled"]
    assert events[-1].reason == "FOK order could not be filled in full"
    assert events[-1].order.cum_qty == 0
    assert venue.engine.book("AAPL").depth(5)[1] == [(100, 5), (101, 5), (103, 5)]
    events = venue.order(BUY, 10, 102, tif=FOK)
    assert kinds(events) == ["Accepted", "Trade", "Trade"]
    assert events[-1].aggressor.status == OrdStatus.FILLED


def test_market_order_sweeps_and_cancels_what_is_left(venue: Venue) -> None:
    venue.order(SELL, 5, 100)
    venue.order(SELL, 5, 150)
    events = venue.order(BUY, 12)
    assert trades(events) == [(1, 100, 5), (2, 150, 5)]
    assert kinds(events)[-1] == "Cancelled"
    assert events[-1].reason == "no liquidity"
    assert events[-1].order.cum_qty == 10


def test_market_order_into_an_empty_side_is_accepted_then_cancelled(venue: Venue) -> None:
    venue.order(BUY, 5, 100)  # own side only
    events = venue.order(SELL, 3) + venue.order(BUY, 3)
    assert kinds(events) == ["Accepted", "Trade", "Accepted", "Cancelled"]
    assert events[-1].reason == "no liquidity"
    assert events[-1].order.ord_type == MARKET


def test_market_fok_and_ioc(venue: Venue) -> None:
    venue.order(SELL, 5, 100)
    assert kinds(venue.order(BUY, 6, tif=FOK)) == ["Accepted", "Cancelled"]
    events = venue.order(BUY, 6, tif=IOC)
    assert kinds(events) == ["Accepted", "Trade", "Cancelled"]
    assert events[-1].reason == "no liquidity"


# --- MinQty ------------------------------------------------------------------------------


def test_min_qty_not_executable_cancels_without_any_fill(venue: Venue) -> None:
    venue.order(SELL, 3, 100)
    venue.order(SELL, 3, 105)
    events = venue.order(BUY, 10, 101, min_qty=4)
    assert kinds(events) == ["Accepted", "Cancelled"]
    assert events[-1].reason == "MinQty not met"
    assert events[-1].order.cum_qty == 0
    assert venue.engine.book("AAPL").best_ask() == (100, 3)


def test_min_qty_met_trades_and_rests_the_rest(venue: Venue) -> None:
    venue.order(SELL, 3, 100)
    venue.order(SELL, 3, 101)
    events = venue.order(BUY, 10, 101, min_qty=6)
    assert trades(events) == [(1, 100, 3), (2, 101, 3)]
    assert venue.engine.book("AAPL").best_bid() == (101, 4)
    # MinQty counts on entry only: a later partial fill of the rest is fine.
    assert trades(venue.order(SELL, 1, 101, session="S2")) == [(3, 101, 1)]


# --- icebergs ------------------------------------------------------------------------------


def test_iceberg_shows_one_slice(venue: Venue) -> None:
    venue.order(SELL, 30, 100, max_floor=10)
    venue.order(SELL, 5, 100)
    assert venue.engine.book("AAPL").best_ask() == (100, 15)


def test_iceberg_refill_goes_to_the_back_of_its_level(venue: Venue) -> None:
    venue.order(SELL, 30, 100, max_floor=10, cl="ice")  # order 1
    venue.order(SELL, 10, 100, cl="plain")  # order 2
    assert trades(venue.order(BUY, 10, 100, session="S2")) == [(1, 100, 10)]
    assert venue.queue(SELL, 100) == ["plain", "ice"]
    assert venue.engine.book("AAPL").best_ask() == (100, 20)
    # An aggressor goes on through the level after a slice is used up.
    events = venue.order(BUY, 25, 100, session="S2")
    assert trades(events) == [(2, 100, 10), (1, 100, 10), (1, 100, 5)]
    assert venue.engine.book("AAPL").best_ask() == (100, 5)


def test_iceberg_alone_refills_in_place(venue: Venue) -> None:
    venue.order(SELL, 25, 100, max_floor=10)
    events = venue.order(BUY, 25, 100, session="S2")
    assert trades(events) == [(1, 100, 10), (1, 100, 10), (1, 100, 5)]
    assert events[-1].resting.status == OrdStatus.FILLED


def test_incoming_iceberg_trades_its_whole_quantity_then_shows_a_slice(venue: Venue) -> None:
    venue.order(SELL, 8, 100)
    events = venue.order(BUY, 30, 100, max_floor=5)
    assert trades(events) == [(1, 100, 8)]
    assert venue.engine.book("AAPL").best_bid() == (100, 5)
    (state,) = venue.engine.open_orders()
    assert state.leaves_qty == 22


def test_iceberg_with_more_slices_than_allowed_is_rejected() -> None:
    """Each slice is a fill when the order is swept: MaxFloor 1 on 50,000 made 50,000
    fills in one command. MaxFloor must be at least OrderQty / max_iceberg_slices."""
    default = Venue()
    event = reject_of(default.order(SELL, 50_000, 100, max_floor=1))
    assert event.reason == REJ_OTHER
    assert event.text == (
        "MaxFloor 1 is too small for an order quantity of 50000: an iceberg shows at most "
        "1000 slices, so MaxFloor must be at least 50")
    assert kinds(default.order(SELL, 50_000, 100, max_floor=50)) == ["Accepted"]
    events = default.order(BUY, 50_000, 100, session="S2")
    assert len(trades(events)) == 1000  # the whole iceberg, at most 1000 fills

    venue = Venue(max_iceberg_slices=10)
    assert reject_of(venue.order(SELL, 101, 100, max_floor=10)).reason == REJ_OTHER
    assert kinds(venue.order(SELL, 100, 100, max_floor=10)) == ["Accepted"]


def test_replace_cannot_give_an_iceberg_more_slices_than_allowed() -> None:
    venue = Venue(max_iceberg_slices=10)
    venue.order(SELL, 100, 100, max_floor=10, cl="ice")
    (event,) = venue.replace("ice", "ice2", 110, side=SELL)
    assert isinstance(event, CancelRejected)
    assert (event.reason, event.response_to) == (CXL_OTHER, RESPONSE_TO_REPLACE)
    assert "MaxFloor 10 is too small for an order quantity of 110" in event.text
    (event,) = venue.replace("ice", "ice3", 90, side=SELL)  # fewer slices: fine
    assert isinstance(event, Replaced)


def test_max_iceberg_slices_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_iceberg_slices must be >= 1"):
        MatchingEngine(INSTRUMENTS, max_iceberg_slices=0)


# --- stops ----------------------------------------------------------------------------------


def test_stop_waits_while_there_is_no_trade(venue: Venue) -> None:
    events = venue.order(BUY, 5, stop=100)
    assert kinds(events) == ["Accepted"]
    assert events[0].order.status == OrdStatus.PENDING_NEW
    (state,) = venue.engine.open_orders()
    assert state.status == OrdStatus.PENDING_NEW
    assert venue.engine.book("AAPL").best_bid() is None


def test_buy_stop_fires_on_a_trade_at_or_above_its_price(venue: Venue) -> None:
    venue.order(BUY, 5, stop=101, cl="stop")  # order 1
    venue.order(SELL, 1, 100, cl="s1")  # order 2
    venue.order(SELL, 1, 101, cl="s2")  # order 3
    venue.order(SELL, 10, 102, cl="s3")  # order 4
    assert kinds(venue.order(BUY, 1, 100, session="S2")) == ["Accepted", "Trade"]  # at 100
    events = venue.order(BUY, 1, 101, session="S2")  # a trade at 101 fires the stop
    assert kinds(events) == ["Accepted", "Trade", "Triggered", "Trade"]
    triggered = events[2]
    assert triggered.order.order_id == 1
    assert triggered.order.status == OrdStatus.NEW
    assert trades(events[3:]) == [(4, 102, 5)]  # it became a market order
    assert events[3].aggressor.ord_type == STOP


def test_sell_stop_fires_on_a_trade_at_or_below_its_price(venue: Venue) -> None:
    venue.order(SELL, 5, stop=99)  # order 1
    venue.order(BUY, 10, 98)  # order 2
    venue.order(BUY, 1, 100)  # order 3
    assert kinds(venue.order(SELL, 1, 100, session="S2")) == ["Accepted", "Trade"]
    venue.order(BUY, 1, 99)  # order 5
    events = venue.order(SELL, 1, 99, session="S2")
    assert kinds(events) == ["Accepted", "Trade", "Triggered", "Trade"]
    assert trades(events[3:]) == [(2, 98, 5)]


def test_stop_limit_becomes_a_limit_order_and_may_rest(venue: Venue) -> None:
    venue.order(SELL, 1, 100)
    venue.order(BUY, 1, 100, session="S2")  # last = 100
    events = venue.order(BUY, 5, 101, stop=100)  # already reached: fires on entry
    assert kinds(events) == ["Accepted", "Triggered"]
    assert events[0].order.status == OrdStatus.PENDING_NEW
    assert venue.engine.book("AAPL").best_bid() == (101, 5)


def test_stop_fires_on_any_price_an_aggressor_swept(venue: Venue) -> None:
    venue.order(SELL, 1, 100)
    venue.order(BUY, 1, 100, session="S2")  # last = 100
    venue.order(SELL, 3, stop=98, session="S3")  # order 3 waits: 100 is above 98
    venue.order(BUY, 5, 95)  # order 4
    venue.order(SELL, 1, 97)  # order 5
    venue.order(SELL, 1, 102)  # order 6
    # Trades at 97 then 102: the last price ends above the stop, but 97 reached it.
    events = venue.order(BUY, 2, 102, session="S2")
    assert kinds(events) == ["Accepted", "Trade", "Trade", "Triggered", "Trade"]
    assert trades(events) == [(5, 97, 1), (6, 102, 1), (4, 95, 3)]


def test_stops_fired_by_one_sweep_run_by_order_id(venue: Venue) -> None:
    venue.order(SELL, 5, 100)  # order 1
    venue.order(SELL, 5, 101)  # order 2
    venue.order(BUY, 1, stop=101, session="S2")  # order 3
    venue.order(BUY, 1, stop=100, session="S2")  # order 4
    venue.order(SELL, 1, stop=90, session="S2")  # order 5: not reached
    events = venue.order(BUY, 6, 101, session="S3")  # trades at 100 and 101
    assert [e.order.order_id for e in events if isinstance(e, Triggered)] == [3, 4]
    assert trades(events) == [(1, 100, 5), (2, 101, 1), (2, 101, 1), (2, 101, 1)]
    assert [o.order_id for o in venue.engine.open_orders()] == [2, 5]


def test_cascade_runs_newly_fired_stops_after_the_current_ones(venue: Venue) -> None:
    venue.order(SELL, 1, 100)  # order 1
    venue.order(SELL, 1, 102)  # order 2
    venue.order(SELL, 1, 104)  # order 3
    venue.order(BUY, 1, stop=102, session="S2", cl="second")  # order 4: fired by order 5's trade
    venue.order(BUY, 1, stop=100, session="S2", cl="first")  # order 5: fired by the 100 trade
    venue.order(BUY, 1, stop=104, session="S2", cl="third")  # order 6: fired by order 4's trade
    events = venue.order(BUY, 1, 100, session="S3")
    assert kinds(events) == [
        "Accepted", "Trade",
        "Triggered", "Trade",  # 5 buys at 102
        "Triggered", "Trade",  # 4 buys at 104
        "Triggered", "Cancelled",  # 6 finds no more sellers
    ]  # fmt: skip
    assert [e.order.order_id for e in events if isinstance(e, Triggered)] == [5, 4, 6]
    assert [e.price for e in events if isinstance(e, Trade)] == [100, 102, 104]


# --- self-trade prevention ----------------------------------------------------------------


def stp_setup(mode: StpMode) -> tuple[Venue, list[Event]]:
    venue = Venue(stp_mode=mode)
    venue.order(SELL, 5, 100, account="ACC", cl="own")  # order 1
    venue.order(SELL, 5, 100, account="OTHER", cl="other")  # order 2
    events = venue.order(BUY, 8, 100, account="ACC", session="S2", cl="in")  # order 3
    return venue, events


def test_stp_cancel_resting_cancels_it_and_goes_on() -> None:
    venue, events = stp_setup(StpMode.CANCEL_RESTING)
    assert kinds(events) == ["Accepted", "Cancelled", "Trade"]
    assert events[1].order.order_id == 1
    assert events[1].reason == "self-trade prevention"
    assert trades(events) == [(2, 100, 5)]
    assert venue.engine.book("AAPL").best_bid() == (100, 3)


def test_stp_cancel_incoming_cancels_the_incoming_rest() -> None:
    venue, events = stp_setup(StpMode.CANCEL_INCOMING)
    assert kinds(events) == ["Accepted", "Cancelled"]
    assert events[1].order.order_id == 3
    assert events[1].reason == "self-trade prevention"
    assert venue.engine.book("AAPL").best_ask() == (100, 10)


def test_stp_cancel_both() -> None:
    venue, events = stp_setup(StpMode.CANCEL_BOTH)
    assert kinds(events) == ["Accepted", "Cancelled", "Cancelled"]
    assert [e.order.order_id for e in events[1:]] == [1, 3]
    assert venue.engine.book("AAPL").best_ask() == (100, 5)


def test_stp_after_partial_fills_keeps_them() -> None:
    venue = Venue(stp_mode=StpMode.CANCEL_INCOMING)
    venue.order(SELL, 5, 100, account="OTHER")
    venue.order(SELL, 5, 101, account="ACC")
    events = venue.order(BUY, 8, 101, account="ACC", session="S2")
    assert kinds(events) == ["Accepted", "Trade", "Cancelled"]
    assert events[-1].order.cum_qty == 5


def test_empty_account_never_counts_as_self() -> None:
    venue = Venue(stp_mode=StpMode.CANCEL_BOTH)
    venue.order(SELL, 5, 100, account="")
    assert trades(venue.order(BUY, 5, 100, account="")) == [(1, 100, 5)]


def test_fok_counts_only_what_lies_ahead_of_an_own_order_with_cancel_incoming() -> None:
    venue = Venue(stp_mode=StpMode.CANCEL_INCOMING)
    venue.order(SELL, 30, 100, max_floor=10, account="OTHER")  # shows 10, hides 20
    venue.order(SELL, 10, 100, account="ACC")  # matching stops here
    venue.order(SELL, 10, 100, account="OTHER")
    # Only the iceberg's slice (10) lies ahead of the own order: 11 cannot fill.
    assert kinds(venue.order(BUY, 11, 100, account="ACC", tif=FOK)) == ["Accepted", "Cancelled"]
    events = venue.order(BUY, 10, 100, account="ACC", tif=FOK)
    assert trades(events) == [(1, 100, 10)]
    # With CANCEL_RESTING the own order would just be cancelled: everything else counts.
    venue = Venue(stp_mode=StpMode.CANCEL_RESTING)
    venue.order(SELL, 30, 100, max_floor=10, account="OTHER")
    venue.order(SELL, 10, 100, account="ACC")
    venue.order(SELL, 10, 100, account="OTHER")
    events = venue.order(BUY, 40, 100, account="ACC", tif=FOK)
    assert sum(qty for _, _, qty in trades(events)) == 40


# --- cancel ---------------------------------------------------------------------------------


def cancel_reject_of(events: list[Event]) -> CancelRejected:
    (event,) = events
    assert isinstance(event, CancelRejected)
    return event


def test_cancel_takes_the_order_out(venue: Venue) -> None:
    venue.order(BUY, 10, 100, cl="b1")
    (event,) = venue.cancel("b1", "x1")
    assert isinstance(event, Cancelled)
    assert event.request_cl_ord_id == "x1"
    assert event.reason == "cancel request"
    assert (event.order.cl_ord_id, event.order.orig_cl_ord_id) == ("x1", "b1")
    assert (event.order.status, event.order.leaves_qty) == (OrdStatus.CANCELED, 0)
    assert venue.engine.book("AAPL").best_bid() is None
    assert venue.engine.open_orders() == []


def test_cancel_anywhere_in_the_queue_keeps_the_rest_in_order(venue: Venue) -> None:
    for cl in "abcdef":
        venue.order(BUY, 10, 100, cl=cl)
    venue.cancel("c", "xc")  # middle
    venue.cancel("d", "xd")  # middle again, next to the gap
    venue.cancel("a", "xa")  # front
    venue.cancel("f", "xf")  # back
    venue.order(BUY, 10, 100, cl="g")
    assert venue.queue(BUY, 100) == ["b", "e", "g"]
    assert venue.engine.book("AAPL").best_bid() == (100, 30)
    events = venue.order(SELL, 30, 100, session="S2")
    assert [e.resting.cl_ord_id for e in events if isinstance(e, Trade)] == ["b", "e", "g"]
    assert venue.engine.book("AAPL").best_bid() is None


def test_cancel_of_an_unknown_order_is_rejected(venue: Venue) -> None:
    venue.order(BUY, 10, 100, cl="b1")
    for orig, side, session in (("nope", BUY, "S1"), ("b1", SELL, "S1"), ("b1", BUY, "S2")):
        event = cancel_reject_of(venue.cancel(orig, "x", side=side, session=session))
        assert (event.reason, event.response_to) == (CXL_UNKNOWN_ORDER, RESPONSE_TO_CANCEL)
        assert (event.order_id, event.status) == (None, None)
        assert event.text.startswith("unknown order")
    assert venue.engine.book("AAPL").best_bid() == (100, 10)


def test_cancel_of_a_done_order_is_too_late(venue: Venue) -> None:
    venue.order(BUY, 10, 100, cl="b1")
    venue.order(SELL, 10, 100, session="S2")
    event = cancel_reject_of(venue.cancel("b1", "x1"))
    assert (event.reason, event.order_id, event.status) == (CXL_TOO_LATE, 1, OrdStatus.FILLED)
    assert event.text == "too late: order 'b1' is already filled"
    venue.order(BUY, 10, 90, cl="b2")
    venue.cancel("b2", "x2")
    assert cancel_reject_of(venue.cancel("b2", "x3")).text == (
        "too late: order 'b2' is already cancelled"
    )


def test_cancel_with_a_used_clordid_is_rejected(venue: Venue) -> None:
    venue.order(BUY, 10, 100, cl="b1")
    venue.order(BUY, 10, 99, cl="b2")
    event = cancel_reject_of(venue.cancel("b1", "b2"))
    assert (event.reason, event.order_id, event.status) == (
        CXL_DUPLICATE_CLORDID, 1, OrdStatus.NEW,
    )  # fmt: skip
    assert venue.engine.book("AAPL").best_bid() == (100, 10)


def test_cancel_by_any_clordid_of_the_replace_chain(venue: Venue) -> None:
    venue.order(BUY, 10, 100, cl="b1")
    venue.replace("b1", "b2", 8)
    venue.replace("b2", "b3", 6)
    (event,) = venue.cancel("b1", "x1")
    assert isinstance(event, Cancelled)
    assert (event.order.cl_ord_id, event.order.orig_cl_ord_id) == ("x1", "b3")


def test_cancel_of_a_waiting_stop(venue: Venue) -> None:
    venue.order(SELL, 5, stop=90, cl="s1")
    (event,) = venue.cancel("s1", "x1", side=SELL)
    assert isinstance(event, Cancelled)
    assert event.order.status == OrdStatus.CANCELED
    assert venue.engine.open_orders() == []
    assert venue.engine.dump()["stops"]["AAPL"] == []


# --- replace --------------------------------------------------------------------------------


def test_smaller_quantity_keeps_time_priority(venue: Venue) -> None:
    venue.order(BUY, 10, 100, cl="a")
    venue.order(BUY, 10, 100, cl="b")
    (event,) = venue.replace("a", "a2", 6)
    assert isinstance(event, Replaced)
    state = event.order
    assert (state.cl_ord_id, state.orig_cl_ord_id, state.qty, state.leaves_qty) == (
        "a2", "a", 6, 6,
    )  # fmt: skip
    assert venue.queue(BUY, 100) == ["a2", "b"]
    assert venue.engine.book("AAPL").best_bid() == (100, 16)


def test_larger_quantity_loses_time_priority(venue: Venue) -> None:
    venue.order(BUY, 10, 100, cl="a")
    venue.order(BUY, 10, 100, cl="b")
    venue.replace("a", "a2", 12)
    assert venue.queue(BUY, 100) == ["b", "a2"]


def test_new_price_loses_priority_and_may_trade_at_once(venue: Venue) -> None:
    venue.order(BUY, 10, 99, cl="a")
    venue.order(BUY, 10, 100, cl="b")
    venue.order(SELL, 4, 101, session="S2", cl="s")  # order 3
    events = venue.replace("a", "a2", 10, 101)
    assert kinds(events) == ["Replaced", "Trade"]
    assert events[0].order.price == 101
    assert events[0].order.leaves_qty == 10
    assert trades(events) == [(3, 101, 4)]
    assert events[1].aggressor.cl_ord_id == "a2"
    assert venue.engine.book("AAPL").best_bid() == (101, 6)


def test_replace_at_or_below_the_filled_quantity_cancels_the_rest(venue: Venue) -> None:
    venue.order(BUY, 10, 100, cl="a")
    venue.order(SELL, 6, 100, session="S2")
    (event,) = venue.replace("a", "a2", 6)
    assert isinstance(event, Cancelled)
    assert event.request_cl_ord_id == "a2"
    assert event.reason == "replaced at or below filled quantity"
    assert (event.order.cl_ord_id, event.order.orig_cl_ord_id) == ("a2", "a")
    assert (event.order.status, event.order.leaves_qty, event.order.cum_qty) == (
        OrdStatus.CANCELED, 0, 6,
    )  # fmt: skip
    assert venue.engine.open_orders() == []


def test_partially_filled_order_replaced_above_its_fills(venue: Venue) -> None:
    venue.order(BUY, 10, 100, cl="a")
    venue.order(SELL, 6, 100, session="S2")
    (event,) = venue.replace("a", "a2", 8)
    assert (event.order.qty, event.order.leaves_qty, event.order.cum_qty) == (8, 2, 6)
    assert event.order.status == OrdStatus.PARTIALLY_FILLED


def test_replace_rejects(venue: Venue) -> None:
    venue.order(BUY, 10, 100, cl="a")
    venue.order(BUY, 10, 100, cl="b")
    venue.order(BUY, 10, 100, cl="filled")
    venue.order(SELL, 30, 100, session="S2")  # fills a, b and "filled"
    venue.order(BUY, 10, 90, cl="live")
    venue.order(BUY, 100, 90, cl="lots", symbol="LOT")
    cases = [
        (venue.replace("nope", "r1", 5), CXL_UNKNOWN_ORDER, "unknown order"),
        (venue.replace("filled", "r2", 5), CXL_TOO_LATE, "too late"),
        (venue.replace("live", "a", 5), CXL_DUPLICATE_CLORDID, "duplicate ClOrdID 'a'"),
        (venue.replace("live", "r3", 5, 250), CXL_OTHER, "price 2.50 outside band [0.50, 2.00]"),
        (venue.replace("live", "r4", 0), CXL_OTHER, "order quantity 0 must be positive"),
        (venue.replace("lots", "r6", 100, 0, symbol="LOT"), CXL_OTHER,
         "price 0.00 must be positive"),
        (
            venue.replace("lots", "r5", 150, symbol="LOT"),
            CXL_OTHER,
            "order quantity 150 is not a multiple of the lot size 100",
        ),
    ]
    for events, reason, text in cases:
        event = cancel_reject_of(events)
        assert event.response_to == RESPONSE_TO_REPLACE
        assert event.reason == reason
        assert text in event.text
    assert venue.status("live").order.qty == 10
    # A rejected replace does not use up its ClOrdID.
    assert kinds(venue.replace("live", "r3", 5)) == ["Replaced"]


def test_replace_price_of_a_stop_order_is_rejected(venue: Venue) -> None:
    venue.order(BUY, 5, stop=120, cl="s")
    event = cancel_reject_of(venue.replace("s", "s2", 5, 110))
    assert (event.reason, event.text) == (CXL_OTHER, "the order has no limit price to change")


def test_replace_adjusts_the_iceberg_display(venue: Venue) -> None:
    venue.order(SELL, 30, 100, max_floor=10, cl="ice")
    venue.replace("ice", "ice2", 6, side=SELL)  # below the slice: shows all 6
    assert venue.engine.book("AAPL").best_ask() == (100, 6)
    venue.replace("ice2", "ice3", 40, side=SELL)  # requeued with a fresh slice
    assert venue.engine.book("AAPL").best_ask() == (100, 10)


def test_replace_stop_price_so_it_fires(venue: Venue) -> None:
    venue.order(SELL, 1, 100)
    venue.order(BUY, 1, 100, session="S2")  # last 100
    venue.order(SELL, 10, 101, session="S2")  # order 3
    venue.order(BUY, 5, stop=105, cl="stop")  # order 4 waits
    events = venue.replace("stop", "stop2", 4, stop=100)
    assert kinds(events) == ["Replaced", "Triggered", "Trade"]
    assert events[0].order.status == OrdStatus.PENDING_NEW
    assert events[0].order.stop_price == 100
    assert trades(events) == [(3, 101, 4)]


# --- status and mass cancel ---------------------------------------------------------------


def test_status_request(venue: Venue) -> None:
    venue.order(BUY, 10, 100, cl="a")
    venue.replace("a", "a2", 8)
    assert venue.status("a").order.cl_ord_id == "a2"
    assert venue.status("a2").order.leaves_qty == 8
    assert venue.status("nope").order is None
    assert venue.status("a", session="S2").order is None
    venue.cancel("a2", "x")
    report = venue.status("a2")
    assert report.order.status == OrdStatus.CANCELED
    assert (report.cl_ord_id, report.session) == ("a2", "S1")


def test_mass_cancel_takes_only_the_sessions_orders_in_scope(venue: Venue) -> None:
    venue.order(BUY, 10, 100, cl="a")  # 1
    venue.order(SELL, 10, 110, cl="b")  # 2
    venue.order(BUY, 5, stop=150, cl="stop")  # 3
    venue.order(BUY, 100, 10, cl="lot", symbol="LOT")  # 4
    venue.order(BUY, 10, 100, cl="theirs", session="S2")  # 5
    events = venue.send(MassCancel(venue.tick(), "S1", "m1", MassCancelScope.SYMBOL, "AAPL"))
    assert kinds(events) == ["Cancelled"] * 3 + ["MassCancelReport"]
    assert [e.order.order_id for e in events[:3]] == [1, 2, 3]
    for event in events[:3]:
        assert (event.request_cl_ord_id, event.reason) == ("m1", "mass cancel")
        assert event.order.cl_ord_id in ("a", "b", "stop")
    report = events[-1]
    assert isinstance(report, MassCancelReport)
    assert (report.cancelled, report.scope, report.symbol, report.cl_ord_id) == (
        3, MassCancelScope.SYMBOL, "AAPL", "m1",
    )  # fmt: skip
    events = venue.send(MassCancel(venue.tick(), "S1", "m2", MassCancelScope.ALL))
    assert [e.order.order_id for e in events[:-1]] == [4]
    assert events[-1].cancelled == 1
    assert [o.order_id for o in venue.engine.open_orders()] == [5]
    events = venue.send(MassCancel(venue.tick(), "S1", "m3", MassCancelScope.ALL))
    assert kinds(events) == ["MassCancelReport"]
    assert events[0].cancelled == 0


# --- expiry ---------------------------------------------------------------------------------


def test_gtd_expires_when_time_passes_its_expire_time(venue: Venue) -> None:
    venue.order(BUY, 10, 100, tif=GTD, expire=T0 + HOUR, cl="gtd")
    venue.order(BUY, 10, 99, tif=GTC, cl="gtc")
    assert venue.advance(T0 + HOUR - 1) == []
    (event,) = venue.advance(T0 + HOUR)
    assert isinstance(event, Expired)
    assert (event.order.cl_ord_id, event.order.status, event.order.leaves_qty) == (
        "gtd", OrdStatus.EXPIRED, 0,
    )  # fmt: skip
    assert event.ts == T0 + HOUR
    assert [o.cl_ord_id for o in venue.engine.open_orders()] == ["gtc"]
    rejected = cancel_reject_of(venue.cancel("gtd", "x"))
    assert rejected.text == "too late: order 'gtd' is already expired"


def test_expiry_comes_before_the_command_that_finds_it(venue: Venue) -> None:
    venue.order(SELL, 10, 100, tif=GTD, expire=T0 + HOUR)
    venue.ts = T0 + 2 * HOUR
    events = venue.order(BUY, 10, 100, session="S2")
    assert kinds(events) == ["Expired", "Accepted"]  # no trade with the expired order
    assert venue.engine.book("AAPL").best_bid() == (100, 10)


def test_day_orders_expire_at_the_end_of_day_and_gtc_stay(venue: Venue) -> None:
    venue.order(BUY, 10, 100, tif=DAY, cl="day")  # 1
    venue.order(BUY, 10, 99, tif=GTC, cl="gtc")  # 2
    venue.order(BUY, 5, stop=150, tif=DAY, cl="daystop")  # 3
    venue.order(BUY, 10, 98, tif=GTD, expire=MIDNIGHT + 21 * HOUR, cl="gtd")  # 4
    assert venue.advance(MIDNIGHT + 21 * HOUR - 1) == []
    events = venue.advance(MIDNIGHT + 21 * HOUR)
    assert kinds(events) == ["Expired"] * 3
    assert [e.order.order_id for e in events] == [1, 3, 4]  # by order id, GTD and Day mixed
    assert [o.cl_ord_id for o in venue.engine.open_orders()] == ["gtc"]
    # The next boundary is a day later; orders entered after this one live until then.
    venue.order(BUY, 10, 97, tif=DAY, cl="tomorrow")
    assert venue.advance(MIDNIGHT + DAY_NS + 21 * HOUR - 1) == []
    assert kinds(venue.advance(MIDNIGHT + DAY_NS + 21 * HOUR)) == ["Expired"]


def test_end_of_day_is_the_first_boundary_after_the_first_command() -> None:
    venue = Venue(end_of_day=21 * HOUR)
    venue.ts = MIDNIGHT + 21 * HOUR - 1_000  # the first command lands exactly on 21:00
    venue.order(BUY, 10, 100)
    assert venue.engine.dump()["next_end_of_day"] == MIDNIGHT + DAY_NS + 21 * HOUR
    assert venue.advance(MIDNIGHT + 22 * HOUR) == []
    # A jump of several days expires once and moves the boundary past the new time.
    assert kinds(venue.advance(MIDNIGHT + 3 * DAY_NS)) == ["Expired"]
    assert venue.engine.dump()["next_end_of_day"] == MIDNIGHT + 3 * DAY_NS + 21 * HOUR


def test_gtd_stop_expires(venue: Venue) -> None:
    venue.order(BUY, 5, stop=150, tif=GTD, expire=T0 + HOUR)
    (event,) = venue.advance(T0 + HOUR)
    assert event.order.status == OrdStatus.EXPIRED
    assert venue.engine.dump()["stops"]["AAPL"] == []


# --- done orders, dumps, replay ------------------------------------------------------------


def test_done_orders_are_kept_for_a_bounded_number() -> None:
    venue = Venue(done_orders_kept=2)
    for cl in ("a", "b", "c"):
        venue.order(BUY, 10, 100, cl=cl)
        venue.cancel(cl, f"x{cl}")
    assert cancel_reject_of(venue.cancel("a", "y")).reason == CXL_UNKNOWN_ORDER  # forgotten
    assert cancel_reject_of(venue.cancel("b", "y")).reason == CXL_TOO_LATE
    assert venue.status("a").order is None
    assert venue.status("c").order.status == OrdStatus.CANCELED
    # Forgotten with it: ClOrdIDs "a" and "xa" may be used again; "b", kept, may not.
    assert [type(e) for e in venue.order(BUY, 1, 100, cl="a")] == [Accepted]
    assert [type(e) for e in venue.order(BUY, 1, 100, cl="xa")] == [Accepted]
    assert reject_of(venue.order(BUY, 1, 100, cl="b")).reason == REJ_DUPLICATE_ORDER


def busy_day(venue: Venue) -> None:
    venue.order(SELL, 30, 100, max_floor=10, account="A", cl="ice")
    venue.order(SELL, 10, 101, account="B", cl="s2")
    venue.order(BUY, 5, stop=101, account="C", cl="stop", session="S2")
    venue.order(BUY, 15, 99, account="C", cl="bid", tif=GTD, expire=T0 + HOUR, session="S2")
    venue.order(BUY, 12, 100, account="D", cl="agg", session="S3")
    venue.replace("bid", "bid2", 20, 99, session="S2")
    venue.cancel("s2", "xs2", side=SELL)
    venue.order(BUY, 40, 101, account="A", cl="self", tif=IOC)
    venue.advance(T0 + 2 * HOUR)


def test_same_commands_give_the_same_events_and_dump() -> None:
    first = Venue()
    busy_day(first)
    second = MatchingEngine(INSTRUMENTS)
    third = ReferenceEngine(INSTRUMENTS)
    replayed = first.engine.dump()
    for command in first.commands:
        assert second.process(command) == third.process(command)
    assert second.dump() == replayed == third.dump()
    assert second.state_hash() == first.engine.state_hash() == third.state_hash()
    json.dumps(replayed)  # plain JSON values only
    assert len(first.engine.state_hash()) == 64


def test_dump_lists_book_levels_stops_and_counters(venue: Venue) -> None:
    venue.order(SELL, 30, 100, max_floor=10, cl="ice")
    venue.order(SELL, 5, 100, cl="plain")
    venue.order(BUY, 5, 90, cl="bid")
    venue.order(BUY, 5, stop=120, cl="stop")
    dump = venue.engine.dump()
    asks = dump["books"]["AAPL"]["asks"]
    assert [level["price"] for level in asks] == [100]
    assert [(o["cl_ord_id"], o["displayed"]) for o in asks[0]["orders"]] == [
        ("ice", 10), ("plain", 5),
    ]  # fmt: skip
    assert [o["cl_ord_id"] for o in dump["stops"]["AAPL"]] == ["stop"]
    assert dump["cl_ord_ids"] == {"S1": {"ice": 1, "plain": 2, "bid": 3, "stop": 4}}
    assert dump["last_price"] == {"AAPL": None, "LOT": None}
    assert dump["next_end_of_day"] == MIDNIGHT + 21 * HOUR


def test_open_orders_and_depth(venue: Venue) -> None:
    venue.order(BUY, 10, 100, session="S1")
    venue.order(BUY, 10, 99, session="S2")
    venue.order(BUY, 7, 99, session="S2")
    venue.order(SELL, 10, 105, session="S1", max_floor=2)
    assert [o.order_id for o in venue.engine.open_orders("S2")] == [2, 3]
    assert len(venue.engine.open_orders()) == 4
    assert venue.engine.book("AAPL").depth(1) == ([(100, 10)], [(105, 2)])
    assert venue.engine.book("AAPL").depth(5) == ([(100, 10), (99, 17)], [(105, 2)])


def test_unknown_command_type_is_a_type_error(venue: Venue) -> None:
    with pytest.raises(TypeError):
        venue.engine.process(("not", "a", "command"))


def test_end_of_day_setting_must_lie_within_a_day() -> None:
    with pytest.raises(ValueError):
        MatchingEngine(INSTRUMENTS, end_of_day=DAY_NS)
