"""One order book per symbol: price levels, FIFO queues, resting stop orders.

The book only keeps orders in priority order; matching, events and the rules
of what may rest live in `engine.py`. What it guarantees:

- price levels per side in a `SortedList` of keys plus a dict key -> `Level`;
  a level's key is its price for asks and minus its price for bids, so the
  best level of either side is the lowest key and one code path serves both;
- the best level of each side is cached: `best_bid()`/`best_ask()` are O(1);
- FIFO within a level as an intrusive doubly linked list through the orders
  themselves, so an order leaves its level in O(1) wherever it stands
  (a cancel needs no search, a fill at the front no shifting);
- each level keeps the sum of its orders' displayed quantities, so depth is
  what the market sees (an iceberg counts only its current slice);
- stop orders waiting for their trigger, per side, sorted by stop price.
"""

from __future__ import annotations

from typing import Final

from sortedcontainers import SortedList

from engine.types import OrderState, OrdStatus, OrdType, Side, TimeInForce

_new: Final = tuple.__new__


class Order:
    """A live or recently finished order. Mutable, owned by the engine.

    `displayed` is the quantity the book shows: the leaves quantity, or the
    current slice of an iceberg; 0 for an order that is not resting.
    `prev`/`next`/`level` link a resting order into its price level; they are
    set when it joins one.

    The engine creates orders slot by slot from the NewOrder it has just
    unpacked (MatchingEngine._new_order): no __init__, as a constructor call
    would cost a second unpacking on every order.
    """

    __slots__ = (
        "account",
        "cl_ord_id",
        "cum_qty",
        "cum_value",
        "displayed",
        "expire_time",
        "leaves_qty",
        "level",
        "max_floor",
        "min_qty",
        "next",
        "older",
        "ord_type",
        "order_id",
        "orig_cl_ord_id",
        "prev",
        "price",
        "qty",
        "session",
        "side",
        "status",
        "stop_price",
        "symbol",
        "tif",
    )
    # Declared for mypy and mypyc (`make compile`): a compiled Order stores
    # these as C fields.
    account: str
    cl_ord_id: str
    cum_qty: int
    cum_value: int
    displayed: int
    expire_time: int | None
    leaves_qty: int
    level: Level | None
    max_floor: int
    min_qty: int
    next: Order | None
    older: list[str] | None  # ClOrdIDs it had before orig_cl_ord_id (renamed twice or more)
    ord_type: OrdType
    order_id: int
    orig_cl_ord_id: str | None
    prev: Order | None
    price: int | None
    qty: int
    session: str
    side: Side
    status: OrdStatus
    stop_price: int | None
    symbol: str
    tif: TimeInForce

    def state(self) -> OrderState:
        # tuple.__new__ skips NamedTuple's Python-level __new__: this runs for
        # every event, twice per trade.
        return _new(
            OrderState,
            (
                self.order_id,
                self.session,
                self.account,
                self.cl_ord_id,
                self.orig_cl_ord_id,
                self.symbol,
                self.side,
                self.ord_type,
                self.tif,
                self.price,
                self.stop_price,
                self.qty,
                self.leaves_qty,
                self.cum_qty,
                self.cum_value,
                self.status,
                self.expire_time,
                self.min_qty,
                self.max_floor,
            ),
        )

    def slice_size(self) -> int:
        """What to display when (re)entering the book: all of it, or one iceberg slice."""
        leaves = self.leaves_qty
        floor = self.max_floor
        return floor if 0 < floor < leaves else leaves

    def __repr__(self) -> str:
        return (
            f"Order({self.order_id} {self.cl_ord_id} {self.side.name} {self.leaves_qty}"
            f"@{self.price} shown {self.displayed} {self.status.name})"
        )


class Level:
    """One price on one side: a FIFO of orders and their displayed total."""

    __slots__ = ("displayed", "head", "key", "price", "tail")

    def __init__(self, price: int, key: int) -> None:
        self.price = price
        self.key = key
        self.head: Order | None = None
        self.tail: Order | None = None
        self.displayed = 0

    def orders(self) -> list[Order]:
        """The level's orders, front of the queue first."""
        out = []
        order = self.head
        while order is not None:
            out.append(order)
            order = order.next
        return out

    def count(self) -> int:
        """How many orders wait at this price (a walk, for metrics; nothing built)."""
        n = 0
        order = self.head
        while order is not None:
            n += 1
            order = order.next
        return n


class BookSide:
    """Bids or asks. Keys are `sign * price` so the best level is the lowest key."""

    __slots__ = ("best", "keys", "levels", "sign")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.levels: dict[int, Level] = {}
        self.keys = SortedList()
        self.best: Level | None = None

    def add(self, order: Order) -> None:
        """Queue `order` at the back of its price level (its `displayed` already set)."""
        price = order.price
        assert price is not None  # only limit orders rest
        key = price * self.sign
        level = self.levels.get(key)
        if level is None:
            level = self.levels[key] = Level(price, key)
            self.keys.add(key)
            best = self.best
            if best is None or key < best.key:
                self.best = level
        order.level = level
        order.next = None
        tail = level.tail
        order.prev = tail
        if tail is None:
            level.head = order
        else:
            tail.next = order
        level.tail = order
        level.displayed += order.displayed

    def remove(self, order: Order) -> None:
        """Take `order` out of its level, wherever it stands in the queue."""
        level = order.level
        assert level is not None
        prev = order.prev
        nxt = order.next
        if prev is None:
            level.head = nxt
        else:
            prev.next = nxt
        if nxt is None:
            level.tail = prev
        else:
            nxt.prev = prev
        order.prev = order.next = order.level = None
        level.displayed -= order.displayed
        if level.head is None:
            self.drop(level)

    def requeue_head(self, level: Level) -> None:
        """Send the front order (an iceberg with a fresh slice) to the back of its level."""
        order = level.head
        tail = level.tail
        assert order is not None and tail is not None
        level.displayed += order.displayed
        nxt = order.next
        if nxt is None:
            return
        level.head = nxt
        nxt.prev = None
        tail.next = order
        order.prev = tail
        order.next = None
        level.tail = order

    def drop(self, level: Level) -> None:
        """Forget an empty level."""
        key = level.key
        del self.levels[key]
        keys = self.keys
        if self.best is level:
            keys.pop(0)
            self.best = self.levels[keys[0]] if keys else None
        else:
            keys.remove(key)

    def levels_in_order(self) -> list[Level]:
        """All levels, best first."""
        levels = self.levels
        return [levels[key] for key in self.keys]

    def depth(self, n: int) -> list[tuple[int, int]]:
        """Up to `n` best levels as (price, displayed quantity)."""
        levels = self.levels
        return [(levels[key].price, levels[key].displayed) for key in self.keys.islice(0, n)]


class OrderBook:
    """Bids, asks, waiting stop orders and the last trade price of one symbol."""

    __slots__ = (
        "asks", "bids", "buy_stops", "last_price", "sell_stops", "sides", "stops", "symbol",
    )  # fmt: skip

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids = BookSide(-1)
        self.asks = BookSide(1)
        # Indexed by Side (BUY=1, SELL=2): an order's own side (index 0 unused).
        self.sides: tuple[BookSide, BookSide, BookSide] = (self.bids, self.bids, self.asks)
        self.last_price: int | None = None
        # Stops by order id, plus (stop price, order id) sorted for triggering:
        # buy stops fire from the lowest stop price up, sell stops from the highest down.
        self.stops: dict[int, Order] = {}
        self.buy_stops = SortedList()
        self.sell_stops = SortedList()

    def best_bid(self) -> tuple[int, int] | None:
        """(price, displayed quantity) of the best bid, or None."""
        level = self.bids.best
        return None if level is None else (level.price, level.displayed)

    def best_ask(self) -> tuple[int, int] | None:
        """(price, displayed quantity) of the best ask, or None."""
        level = self.asks.best
        return None if level is None else (level.price, level.displayed)

    def depth(self, n: int = 5) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(bids, asks): up to `n` levels each, best first, as (price, displayed quantity)."""
        return self.bids.depth(n), self.asks.depth(n)

    # --- stop orders --------------------------------------------------------------

    def add_stop(self, order: Order) -> None:
        self.stops[order.order_id] = order
        keys = self.buy_stops if order.side == Side.BUY else self.sell_stops
        keys.add((order.stop_price, order.order_id))

    def remove_stop(self, order: Order) -> None:
        del self.stops[order.order_id]
        keys = self.buy_stops if order.side == Side.BUY else self.sell_stops
        keys.remove((order.stop_price, order.order_id))

    def take_triggered(self, low: int, high: int) -> list[Order]:
        """Remove and return the stops that trades between `low` and `high` fire,
        by order id: buy stops at or below `high`, sell stops at or above `low`."""
        stops = self.stops
        fired = []
        buys = self.buy_stops
        while buys and buys[0][0] <= high:
            fired.append(stops.pop(buys.pop(0)[1]))
        sells = self.sell_stops
        while sells and sells[-1][0] >= low:
            fired.append(stops.pop(sells.pop()[1]))
        if len(fired) > 1:
            fired.sort(key=_order_id)
        return fired

    def live_count(self) -> int:
        """Resting orders plus waiting stops, without listing them."""
        resting = sum(level.count() for side in (self.bids, self.asks)
                      for level in side.levels.values())
        return resting + len(self.stops)

    def resting_orders(self) -> list[Order]:
        """Every resting order, bids then asks, each side best level first, FIFO within."""
        out = []
        for side in (self.bids, self.asks):
            for level in side.levels_in_order():
                out.extend(level.orders())
        return out


def _order_id(order: Order) -> int:
    return order.order_id
