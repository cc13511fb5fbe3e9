"""The matching engine: one command in, its sequence-numbered events out.

Sans-I/O and single-writer: `MatchingEngine.process` is called with one
command at a time, in arrival order; it has no clock (time is each command's
`ts`), no I/O and no randomness, so replaying the journal of commands into a
fresh engine reproduces every event, order id, match id and `seq`.

Rules in brief (the tests in tests/test_engine.py spell out each one):

- Price-time priority; a resting order trades at its own price; each fill is
  one `Trade` with both orders' state after it.
- Order types: Market (never rests: "no liquidity" remainder), Limit, Stop
  (becomes Market) and Stop-limit (becomes Limit). Stops wait until a trade
  reaches their stop price: a buy stop fires on a trade at or above it, a sell
  stop on a trade at or below it, including on entry against the last trade
  price. An aggressor that sweeps several prices fires every stop any of its
  trades reached. Fired stops run one after another in order of firing, then
  of order id; their trades may fire more stops (cascade).
- TimeInForce: Day (expires at the end-of-day boundary), GTC, GTD (expires
  at ExpireTime), IOC and FOK. MinQty and FOK are checked once, on entry to
  the book, against the quantity executable at that moment.
- Icebergs (MaxFloor): only a slice shows; each new slice goes to the back of
  its level. An iceberg has at most `max_iceberg_slices` slices (MaxFloor at
  least OrderQty / max_iceberg_slices, 1000 by default): each slice is a fill,
  so this bounds what sweeping one order costs a single command.
- Self-trade prevention between orders with the same non-empty account.
- Expiry is checked at the start of every command, before it runs, so
  nothing trades after it expired.

Done orders (filled, cancelled, expired) stay findable for cancel ("too late")
and status requests for the last `done_orders_kept` of them (100,000 by
default); an older one answers as unknown. A ClOrdID is known (a reuse is a
duplicate) while its order is live or kept, and the ClOrdIDs of boundary
rejects for as long as the last `done_orders_kept` of them: so memory stays
bounded however long the engine runs, and an order older than that window
is forgotten, ClOrdIDs included.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Callable, Container, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from heapq import heappop, heappush
from typing import Any, Final

from engine.types import (
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
    NewOrder,
    OrderState,
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

# Relative, so that the compiled twin built from this file (engine.compiled.engine)
# binds the compiled book beside it, and this module the pure one.
from .book import BookSide, Order, OrderBook

# Module constants are Final so that a mypyc build (`make compile`) keeps them
# in C statics instead of looking them up by name on every use.
DAY_NS: Final = 86_400 * 10**9
DEFAULT_END_OF_DAY: Final = 21 * 3600 * 10**9  # 21:00 UTC
DONE_ORDERS_KEPT: Final = 100_000
MAX_ICEBERG_SLICES: Final = 1000

# `Cancelled.reason` texts.
REASON_CANCEL_REQUEST: Final = "cancel request"
REASON_IOC: Final = "IOC remainder"
REASON_FOK: Final = "FOK order could not be filled in full"
REASON_NO_LIQUIDITY: Final = "no liquidity"
REASON_MIN_QTY: Final = "MinQty not met"
REASON_STP: Final = "self-trade prevention"
REASON_MASS_CANCEL: Final = "mass cancel"
REASON_REPLACED_BELOW_FILLED: Final = "replaced at or below filled quantity"

_new: Final = tuple.__new__  # builds a NamedTuple without its Python-level __new__
_NO_LIMIT: Final = 1 << 256  # above every level key: a market order accepts any price
_NO_IDS: dict[str, int] = {}

BUY: Final = Side.BUY
LIMIT: Final = OrdType.LIMIT
MARKET: Final = OrdType.MARKET
STOP: Final = OrdType.STOP
STOP_LIMIT: Final = OrdType.STOP_LIMIT
GTD: Final = TimeInForce.GTD
DAY: Final = TimeInForce.DAY
IOC: Final = TimeInForce.IOC
FOK: Final = TimeInForce.FOK
NEW: Final = OrdStatus.NEW
PENDING_NEW: Final = OrdStatus.PENDING_NEW
PARTIALLY_FILLED: Final = OrdStatus.PARTIALLY_FILLED
FILLED: Final = OrdStatus.FILLED
CANCELED: Final = OrdStatus.CANCELED
EXPIRED: Final = OrdStatus.EXPIRED
CANCEL_RESTING: Final = StpMode.CANCEL_RESTING
CANCEL_INCOMING: Final = StpMode.CANCEL_INCOMING

_DONE_WORDS: Final = {FILLED: "filled", CANCELED: "cancelled", EXPIRED: "expired"}


# --- order entry rules, shared with the reference engine ----------------------------


def price_text(ticks: int, instrument: Instrument) -> str:
    """A price as the client wrote it (ticks times the tick size): texts are for people."""
    return str(ticks * Decimal(str(instrument.tick_size)))


def utc_text(ts: int) -> str:
    """A time in ns since the epoch as UTC text (for people, in reject texts)."""
    seconds, ns = divmod(ts, 1_000_000_000)
    day = datetime.fromtimestamp(seconds, UTC).strftime("%Y%m%d-%H:%M:%S")
    return f"{day}.{ns // 1_000_000:03d}"


def lowest_price(instrument: Instrument) -> int:
    """The lowest limit or stop price accepted, in ticks: band_low, or one tick.

    Without a band_low a zero or negative price is a client's mistake, not an
    order (an instrument that trades below zero, a spread say, sets band_low).
    """
    low = instrument.band_low
    return 1 if low is None else low


def _band_text(name: str, value: int, instrument: Instrument) -> str | None:
    low = instrument.band_low
    high = instrument.band_high
    if low is None and value < lowest_price(instrument):
        return f"{name} {price_text(value, instrument)} must be positive"
    if (low is not None and value < low) or (high is not None and value > high):
        shown_low = "-inf" if low is None else price_text(low, instrument)
        shown_high = "+inf" if high is None else price_text(high, instrument)
        shown = price_text(value, instrument)
        return f"{name} {shown} outside band [{shown_low}, {shown_high}]"
    return None


def iceberg_error(qty: int, max_floor: int, max_slices: int) -> str | None:
    """Why an iceberg of `qty` showing `max_floor` would have too many slices, or None.

    Every slice is a fill when the order is swept, so a tiny MaxFloor would let one
    incoming order make tens of thousands of fills in one command."""
    if max_floor and max_floor * max_slices < qty:
        least = -(-qty // max_slices)
        return (f"MaxFloor {max_floor} is too small for an order quantity of {qty}: an "
                f"iceberg shows at most {max_slices} slices, so MaxFloor must be at least "
                f"{least}")
    return None


def new_order_error(  # noqa: C901
    cmd: NewOrder, instrument: Instrument | None, used_cl_ord_ids: Container[str],
    max_slices: int = MAX_ICEBERG_SLICES,
) -> tuple[int, str] | None:
    """(OrdRejReason, text) if `cmd` must be rejected, else None."""
    if instrument is None:
        return REJ_UNKNOWN_SYMBOL, f"unknown symbol {cmd.symbol!r}"
    qty = cmd.qty
    lot = instrument.lot_size
    if qty <= 0:
        return REJ_INCORRECT_QUANTITY, f"order quantity {qty} must be positive"
    if qty % lot:
        return (
            REJ_INCORRECT_QUANTITY,
            f"order quantity {qty} is not a multiple of the lot size {lot}",
        )
    if qty > instrument.max_qty:
        return (
            REJ_INCORRECT_QUANTITY,
            f"order quantity {qty} exceeds the maximum order quantity {instrument.max_qty}",
        )
    price = cmd.price
    stop_price = cmd.stop_price
    if price is not None and (text := _band_text("price", price, instrument)):
        return REJ_OTHER, text
    if stop_price is not None and (text := _band_text("stop price", stop_price, instrument)):
        return REJ_OTHER, text
    ord_type = cmd.ord_type
    text = None
    if ord_type == LIMIT:
        if price is None:
            text = "a limit order needs a price"
        elif stop_price is not None:
            text = "a limit order takes no stop price (use a stop-limit order)"
    elif ord_type == MARKET:
        if price is not None:
            text = "a market order takes no price"
        elif stop_price is not None:
            text = "a market order takes no stop price (use a stop order)"
    elif ord_type == STOP:
        if stop_price is None:
            text = "a stop order needs a stop price"
        elif price is not None:
            text = "a stop order takes no limit price (use a stop-limit order)"
    elif ord_type == STOP_LIMIT:
        if stop_price is None:
            text = "a stop-limit order needs a stop price"
        elif price is None:
            text = "a stop-limit order needs a limit price"
    else:
        text = f"order type {ord_type!r} is not supported"
    if text is not None:
        return REJ_UNSUPPORTED_CHARACTERISTIC, text
    if cmd.tif == GTD:
        expire_time = cmd.expire_time
        if expire_time is None:
            return REJ_OTHER, "a GTD order needs an ExpireTime"
        if expire_time <= cmd.ts:
            return REJ_OTHER, (f"ExpireTime {utc_text(expire_time)} is not after the order's "
                               f"time {utc_text(cmd.ts)}")
    min_qty = cmd.min_qty
    if min_qty < 0 or min_qty > qty:
        return (
            REJ_INCORRECT_QUANTITY,
            f"MinQty {min_qty} must be between 0 and the order quantity {qty}",
        )
    max_floor = cmd.max_floor
    if max_floor < 0 or max_floor > qty:
        return (
            REJ_INCORRECT_QUANTITY,
            f"MaxFloor {max_floor} must be between 0 and the order quantity {qty}",
        )
    if max_floor % lot:
        return (
            REJ_INCORRECT_QUANTITY,
            f"MaxFloor {max_floor} is not a multiple of the lot size {lot}",
        )
    if text := iceberg_error(qty, max_floor, max_slices):
        return REJ_OTHER, text
    if cmd.cl_ord_id in used_cl_ord_ids:
        return (
            REJ_DUPLICATE_ORDER,
            f"duplicate ClOrdID {cmd.cl_ord_id!r}: already used by this session",
        )
    return None


def replace_error(
    cmd: ReplaceOrder, instrument: Instrument, has_limit_price: bool, waiting_stop: bool,
    max_floor: int = 0, max_slices: int = MAX_ICEBERG_SLICES,
) -> str | None:
    """Why the new terms of a replace are invalid (CxlRejReason Other), or None.

    A new stop price only matters while the stop still waits for its trigger;
    it is ignored afterwards.
    """
    qty = cmd.qty
    lot = instrument.lot_size
    if qty <= 0:
        return f"order quantity {qty} must be positive"
    if qty % lot:
        return f"order quantity {qty} is not a multiple of the lot size {lot}"
    if qty > instrument.max_qty:
        return f"order quantity {qty} exceeds the maximum order quantity {instrument.max_qty}"
    if text := iceberg_error(qty, max_floor, max_slices):
        return text
    if cmd.price is not None:
        if not has_limit_price:
            return "the order has no limit price to change"
        if text := _band_text("price", cmd.price, instrument):
            return text
    if waiting_stop and cmd.stop_price is not None:
        return _band_text("stop price", cmd.stop_price, instrument)
    return None


def unknown_order_text(cmd: CancelOrder | ReplaceOrder) -> str:
    side = "buy" if cmd.side == BUY else "sell"
    return f"unknown order: no {side} {cmd.symbol} order with ClOrdID {cmd.orig_cl_ord_id!r}"


def too_late_text(cmd: CancelOrder | ReplaceOrder, status: OrdStatus) -> str:
    return f"too late: order {cmd.orig_cl_ord_id!r} is already {_DONE_WORDS[status]}"


def _keep_older(order: Order) -> None:
    """Before a rename: the id about to leave orig_cl_ord_id is kept, so that
    forgetting the order forgets every ClOrdID it had."""
    if order.orig_cl_ord_id is not None:
        if order.older is None:
            order.older = []
        order.older.append(order.orig_cl_ord_id)


def duplicate_cl_ord_id_text(cmd: CancelOrder | ReplaceOrder) -> str:
    return f"duplicate ClOrdID {cmd.cl_ord_id!r}: already used by this session"


def first_end_of_day_after(ts: int, end_of_day: int) -> int:
    """The first end-of-day boundary strictly after `ts`."""
    boundary = ts - ts % DAY_NS + end_of_day
    return boundary if boundary > ts else boundary + DAY_NS


def order_record(state: OrderState, displayed: int) -> dict[str, Any]:
    """One order in `dump()`: its state plus what the book displays of it."""
    record: dict[str, Any] = dict(zip(OrderState._fields, state, strict=True))
    record["side"] = int(state.side)
    record["ord_type"] = int(state.ord_type)
    record["tif"] = int(state.tif)
    record["status"] = int(state.status)
    record["displayed"] = displayed
    return record


def instrument_record(instrument: Instrument) -> dict[str, Any]:
    return {
        "symbol": instrument.symbol,
        "tick_size": str(instrument.tick_size),
        "lot_size": instrument.lot_size,
        "band_low": instrument.band_low,
        "band_high": instrument.band_high,
        "max_qty": instrument.max_qty,
    }


def state_hash_of(dump: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a dump."""
    text = json.dumps(dump, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


# --- the engine -------------------------------------------------------------------------


class MatchingEngine:
    """Order books for a set of instruments, driven by commands (see module docstring)."""

    def __init__(
        self,
        instruments: Iterable[Instrument],
        stp_mode: StpMode = StpMode.CANCEL_RESTING,
        end_of_day: int = DEFAULT_END_OF_DAY,
        next_order_id: int = 1,
        next_seq: int = 1,
        done_orders_kept: int = DONE_ORDERS_KEPT,
        max_iceberg_slices: int = MAX_ICEBERG_SLICES,
    ) -> None:
        if not 0 <= end_of_day < DAY_NS:
            raise ValueError(f"end_of_day must be within one day in ns, got {end_of_day}")
        if done_orders_kept < 0:
            raise ValueError(f"done_orders_kept must be >= 0, got {done_orders_kept}")
        if max_iceberg_slices < 1:
            raise ValueError(f"max_iceberg_slices must be >= 1, got {max_iceberg_slices}")
        self._max_slices = max_iceberg_slices
        self._instruments = {i.symbol: i for i in instruments}
        # symbol -> (lot size, lowest, highest accepted price, largest quantity) for
        # the fast order check.
        self._quick_check = {
            i.symbol: (
                i.lot_size,
                lowest_price(i),
                _NO_LIMIT if i.band_high is None else i.band_high,
                i.max_qty,
            )
            for i in self._instruments.values()
        }
        self._books = {symbol: OrderBook(symbol) for symbol in self._instruments}
        self._stp = StpMode(stp_mode)
        self._end_of_day = end_of_day
        self._done_kept = done_orders_kept
        self._next_order_id = next_order_id
        self._seq = next_seq
        self._next_match_id = 1
        self._next_eod: int | None = None  # set by the first command
        # The earliest time anything may expire (GTD heap top or end of day);
        # below it the per-command expiry check is one comparison.
        self._next_expiry = -(1 << 256)
        self._gtd: list[tuple[int, int]] = []  # (expire_time, order_id); done ones linger
        self._orders: dict[int, Order] = {}  # live orders and the last done ones
        self._done: deque[int] = deque()  # ids of done orders still kept, oldest first
        self._cl_ord_ids: dict[str, dict[str, int]] = {}  # session -> ClOrdID -> order id (0: none)
        # (session, ClOrdID) of boundary rejects, oldest first: kept as long as done orders.
        self._rejected_ids: deque[tuple[str, str]] = deque()
        self._handlers: dict[type, Callable[[Any, list[Event]], None]] = {
            NewOrder: self._new_order,
            CancelOrder: self._cancel_order,
            ReplaceOrder: self._replace_order,
            OrderStatusRequest: self._status_request,
            MassCancel: self._mass_cancel,
            RejectOrder: self._reject_order,
            AdvanceTime: self._advance_time,
        }

    # --- public interface ----------------------------------------------------------

    def process(self, command: Any) -> list[Event]:
        """Apply one command; return its events, numbered with consecutive `seq`s."""
        kind = type(command)
        if kind is not NewOrder and kind is not CancelOrder and kind not in self._handlers:
            raise TypeError(f"not an engine command: {kind.__name__}")
        events: list[Event] = []
        if command.ts >= self._next_expiry:
            self._expire_due(command.ts, events)
        # The two everyday commands by direct call: a compiled (mypyc) engine
        # then calls them natively instead of through a bound method.
        if kind is NewOrder:
            self._new_order(command, events)
        elif kind is CancelOrder:
            self._cancel_order(command, events)
        else:
            self._handlers[kind](command, events)
        return events

    def book(self, symbol: str) -> OrderBook:
        return self._books[symbol]

    @property
    def next_expiry(self) -> int:
        """Before this time (ns) a command expires nothing: an AdvanceTime is a no-op."""
        return self._next_expiry

    @property
    def next_end_of_day(self) -> int | None:
        """When Day orders next expire (ns); None until the first command."""
        return self._next_eod

    def order_state(self, session: str, cl_ord_id: str) -> OrderState | None:
        """The state of the session's order known by `cl_ord_id` (any in its chain)."""
        order = self._find(session, cl_ord_id)
        return None if order is None else order.state()

    def open_orders(self, session: str | None = None) -> list[OrderState]:
        """Live orders (resting and waiting stops), by order id; one session's or all."""
        return [
            order.state()
            for order in self._live_orders()
            if session is None or order.session == session
        ]

    def dump(self) -> dict[str, Any]:
        """The full state as plain JSON-able values; equal for equal histories."""
        books = {}
        stops = {}
        last_price = {}
        for symbol in sorted(self._books):
            book = self._books[symbol]
            books[symbol] = {
                "bids": self._side_record(book.bids),
                "asks": self._side_record(book.asks),
            }
            stops[symbol] = [
                order_record(o.state(), o.displayed)
                for o in sorted(book.stops.values(), key=_by_id)
            ]
            last_price[symbol] = book.last_price
        orders = self._orders
        return {
            "instruments": [instrument_record(self._instruments[s]) for s in sorted(self._books)],
            "stp_mode": int(self._stp),
            "end_of_day": self._end_of_day,
            "done_orders_kept": self._done_kept,
            "next_order_id": self._next_order_id,
            "next_seq": self._seq,
            "next_match_id": self._next_match_id,
            "next_end_of_day": self._next_eod,
            "last_price": last_price,
            "books": books,
            "stops": stops,
            "done_orders": [order_record(orders[i].state(), 0) for i in self._done],
            "cl_ord_ids": {s: dict(ids) for s, ids in sorted(self._cl_ord_ids.items())},
        }

    def state_hash(self) -> str:
        return state_hash_of(self.dump())

    # --- command handlers ----------------------------------------------------------

    def _new_order(self, cmd: NewOrder, events: list[Event]) -> None:
        (
            ts, session, account, cl_ord_id, symbol, side, ord_type, qty, price, stop_price, tif,
            expire_time, min_qty, max_floor,
        ) = cmd  # fmt: skip
        ids = self._cl_ord_ids.get(session)
        band = self._quick_check.get(symbol)
        # The everyday order (a plain limit within the band, new ClOrdID) is valid
        # on these few comparisons; anything else, valid or not, takes the full rules.
        if (
            band is None or ord_type is not LIMIT or stop_price is not None or min_qty
            or max_floor or tif is GTD or ids is None or cl_ord_id in ids or price is None
            or qty <= 0 or qty % band[0] or price < band[1] or price > band[2] or qty > band[3]
        ):  # fmt: skip
            error = new_order_error(
                cmd, self._instruments.get(symbol), _NO_IDS if ids is None else ids,
                self._max_slices,
            )
            if error is not None:
                self._reject(cmd, error, events)
                return
            if ids is None:
                ids = self._cl_ord_ids[session] = {}
        order_id = self._next_order_id
        self._next_order_id = order_id + 1
        status = NEW if stop_price is None else PENDING_NEW
        # Built slot by slot from the fields already unpacked: a constructor call
        # would unpack the command a second time (about 40% more per order).
        order = Order()
        order.order_id = order_id
        order.session = session
        order.account = account
        order.cl_ord_id = cl_ord_id
        order.orig_cl_ord_id = None
        order.older = None
        order.symbol = symbol
        order.side = side
        order.ord_type = ord_type
        order.tif = tif
        order.price = price
        order.stop_price = stop_price
        order.qty = order.leaves_qty = qty
        order.cum_qty = order.cum_value = order.displayed = 0
        order.status = status
        order.expire_time = expire_time
        order.min_qty = min_qty
        order.max_floor = max_floor
        ids[cl_ord_id] = order_id
        self._orders[order_id] = order
        if tif == GTD:
            assert expire_time is not None  # checked by new_order_error
            heappush(self._gtd, (expire_time, order_id))
            if expire_time < self._next_expiry:
                self._next_expiry = expire_time
        seq = self._seq
        self._seq = seq + 1
        # The snapshot from the command's fields: cheaper than order.state().
        state = _new(
            OrderState,
            (
                order_id, session, account, cl_ord_id, None, symbol, side, ord_type, tif, price,
                stop_price, qty, qty, 0, 0, status, expire_time, min_qty, max_floor,
            ),
        )  # fmt: skip
        events.append(_new(Accepted, (seq, ts, state)))
        book = self._books[symbol]
        if stop_price is not None:
            if _fires(order, book.last_price):
                self._run_triggered(book, [order], ts, events)
            else:
                book.add_stop(order)
            return
        if price is not None and tif != IOC and tif != FOK and not min_qty:
            # A limit order that does not cross just joins the back of its level
            # (BookSide.add, inlined: this is most of what a venue does all day).
            if side == BUY:
                best = book.asks.best
                if best is None or best.price > price:
                    own = book.bids
                    key = -price
                else:
                    own = None
            else:
                best = book.bids.best
                if best is None or best.price < price:
                    own = book.asks
                    key = price
                else:
                    own = None
            if own is not None:
                shown = order.displayed = max_floor if 0 < max_floor < qty else qty
                level = own.levels.get(key)
                if level is None:
                    own.add(order)
                    return
                order.level = level
                order.next = None
                tail = order.prev = level.tail
                assert tail is not None  # a level in the dict has orders
                tail.next = order
                level.tail = order
                level.displayed += shown
                return
        traded = self._execute(order, book, ts, events, True)
        if traded is not None and book.stops:
            self._run_triggered(book, book.take_triggered(*traded), ts, events)

    def _reject(self, cmd: NewOrder, error: tuple[int, str], events: list[Event]) -> None:
        seq = self._seq
        self._seq = seq + 1
        reason, text = error
        events.append(
            _new(
                Rejected,
                (
                    seq, cmd.ts, cmd.session, cmd.account, cmd.cl_ord_id, cmd.symbol, cmd.side,
                    cmd.ord_type, cmd.qty, cmd.price, reason, text,
                ),
            )
        )

    def _cancel_order(self, cmd: CancelOrder, events: list[Event]) -> None:
        ts, session, cl_ord_id, orig_cl_ord_id, symbol, side = cmd
        ids = self._cl_ord_ids.get(session)
        order = None
        if ids is not None:
            order_id = ids.get(orig_cl_ord_id)
            if order_id:
                order = self._orders.get(order_id)
        if (
            order is None or ids is None or not order.leaves_qty or cl_ord_id in ids
            or order.symbol != symbol or order.side != side
        ):  # fmt: skip
            self._amend_rejected(cmd, order, RESPONSE_TO_CANCEL, events)
            return
        if order.status == PENDING_NEW:  # a stop waiting for its trigger
            self._books[symbol].remove_stop(order)
        elif (prev := order.prev) is not None and (nxt := order.next) is not None:
            # Mid-queue (BookSide.remove, inlined for the common case).
            prev.next = nxt
            nxt.prev = prev
            level = order.level
            assert level is not None
            level.displayed -= order.displayed
            order.prev = order.next = order.level = None
        else:
            self._books[symbol].sides[side].remove(order)
        ids[cl_ord_id] = order.order_id
        _keep_older(order)
        order.orig_cl_ord_id = order.cl_ord_id
        order.cl_ord_id = cl_ord_id
        order.leaves_qty = order.displayed = 0
        order.status = CANCELED
        done = self._done
        done.append(order.order_id)
        if len(done) > self._done_kept:
            self._forget(done.popleft())
        seq = self._seq
        self._seq = seq + 1
        events.append(
            _new(Cancelled, (seq, ts, order.state(), cl_ord_id, REASON_CANCEL_REQUEST))
        )

    def _replace_order(self, cmd: ReplaceOrder, events: list[Event]) -> None:
        order = self._find(cmd.session, cmd.orig_cl_ord_id)
        if (
            order is None or not order.leaves_qty or order.symbol != cmd.symbol
            or order.side != cmd.side or cmd.cl_ord_id in self._cl_ord_ids[cmd.session]
        ):  # fmt: skip
            self._amend_rejected(cmd, order, RESPONSE_TO_REPLACE, events)
            return
        ts = cmd.ts
        waiting = order.status == PENDING_NEW
        text = replace_error(
            cmd, self._instruments[order.symbol], order.price is not None, waiting,
            order.max_floor, self._max_slices,
        )
        if text is not None:
            self._cancel_reject(cmd, order, RESPONSE_TO_REPLACE, CXL_OTHER, text, events)
            return
        self._rename(order, cmd.cl_ord_id)
        qty = cmd.qty
        if qty <= order.cum_qty:
            self._take_out(order)
            self._close(order, CANCELED, ts, cmd.cl_ord_id, REASON_REPLACED_BELOW_FILLED, events)
            return
        price = order.price if cmd.price is None else cmd.price
        book = self._books[order.symbol]
        if waiting:
            book.remove_stop(order)
            order.qty = order.leaves_qty = qty
            order.price = price
            if cmd.stop_price is not None:
                order.stop_price = cmd.stop_price
            self._emit_replaced(order, ts, events)
            if _fires(order, book.last_price):
                self._run_triggered(book, [order], ts, events)
            else:
                book.add_stop(order)
            return
        leaves = qty - order.cum_qty
        if price == order.price and qty <= order.qty:
            # Smaller (or equal) at the same price: keeps its place in the queue.
            order.qty = qty
            order.leaves_qty = leaves
            shown = order.displayed
            if shown > leaves:
                level = order.level
                assert level is not None
                level.displayed -= shown - leaves
                order.displayed = leaves
            self._emit_replaced(order, ts, events)
            return
        # A new price or more quantity: back of the queue, and it may trade now.
        book.sides[order.side].remove(order)
        order.displayed = 0
        order.qty = qty
        order.leaves_qty = leaves
        order.price = price
        self._emit_replaced(order, ts, events)
        traded = self._execute(order, book, ts, events, False)
        if traded is not None and book.stops:
            self._run_triggered(book, book.take_triggered(*traded), ts, events)

    def _status_request(self, cmd: OrderStatusRequest, events: list[Event]) -> None:
        order = self._find(cmd.session, cmd.cl_ord_id)
        seq = self._seq
        self._seq = seq + 1
        events.append(
            _new(
                StatusReport,
                (
                    seq, cmd.ts, cmd.session, cmd.cl_ord_id, cmd.symbol, cmd.side,
                    None if order is None else order.state(),
                ),
            )
        )

    def _mass_cancel(self, cmd: MassCancel, events: list[Event]) -> None:
        session = cmd.session
        everything = cmd.scope == MassCancelScope.ALL
        chosen = [
            order
            for order in self._live_orders()
            if order.session == session and (everything or order.symbol == cmd.symbol)
        ]
        for order in chosen:
            self._take_out(order)
            self._close(order, CANCELED, cmd.ts, cmd.cl_ord_id, REASON_MASS_CANCEL, events)
        seq = self._seq
        self._seq = seq + 1
        events.append(
            _new(
                MassCancelReport,
                (seq, cmd.ts, session, cmd.cl_ord_id, cmd.scope, cmd.symbol, len(chosen)),
            )
        )

    def _reject_order(self, cmd: RejectOrder, events: list[Event]) -> None:
        ids = self._cl_ord_ids.setdefault(cmd.session, {})
        if cmd.cl_ord_id not in ids:
            ids[cmd.cl_ord_id] = 0
            rejected = self._rejected_ids
            rejected.append((cmd.session, cmd.cl_ord_id))
            if len(rejected) > self._done_kept:
                session, old = rejected.popleft()
                kept = self._cl_ord_ids[session]
                if kept.get(old) == 0:
                    del kept[old]
        seq = self._seq
        self._seq = seq + 1
        events.append(
            _new(
                Rejected,
                (
                    seq, cmd.ts, cmd.session, cmd.account, cmd.cl_ord_id, cmd.symbol, cmd.side,
                    cmd.ord_type, cmd.qty, None, cmd.reason, cmd.text,
                ),
            )
        )

    def _advance_time(self, cmd: AdvanceTime, events: list[Event]) -> None:
        """Nothing beyond the expiry check every command gets."""

    # --- matching ----------------------------------------------------------------------

    def _execute(  # noqa: C901
        self, order: Order, book: OrderBook, ts: int, events: list[Event], entry: bool
    ) -> tuple[int, int] | None:
        """Match `order` (not in the book) against the other side, then rest or cancel
        what is left. `entry`: the order enters the book for the first time, so FOK
        and MinQty apply. Returns the (lowest, highest) trade price, or None."""
        if order.side == BUY:
            opp = book.asks
            own = book.bids
        else:
            opp = book.bids
            own = book.asks
        price = order.price
        limit = _NO_LIMIT if price is None else price * opp.sign
        if entry:
            fok = order.tif == FOK
            min_qty = order.min_qty
            need = order.qty if fok else min_qty
            if need:
                # What could fill: never more than the order's own leaves. A replace
                # may cut the quantity below MinQty, which then cannot be met whatever
                # the book holds, FOK or not (the reference model agrees).
                leaves = order.leaves_qty
                fillable = 0 if need > leaves else \
                    min(_executable(order, opp, limit, need, self._stp), leaves)
                if fok and fillable < order.qty:
                    self._close(order, CANCELED, ts, None, REASON_FOK, events)
                    return None
                if fillable < min_qty:
                    self._close(order, CANCELED, ts, None, REASON_MIN_QTY, events)
                    return None
        account = order.account
        symbol = order.symbol
        leaves = order.leaves_qty
        cum = order.cum_qty
        cum_value = order.cum_value
        # The aggressor's snapshot around its changing quantities; its ClOrdID,
        # price and quantity cannot change while it matches.
        head = (
            order.order_id, order.session, account, order.cl_ord_id, order.orig_cl_ord_id,
            symbol, order.side, order.ord_type, order.tif, price, order.stop_price, order.qty,
        )  # fmt: skip
        tail = (order.expire_time, order.min_qty, order.max_floor)
        seq = self._seq
        match_id = self._next_match_id
        done = self._done
        keep = self._done_kept
        first_price = fill_price = None
        stp_stopped = False
        level = opp.best
        while level is not None and level.key <= limit:
            resting = level.head
            assert resting is not None  # a level in the book has orders
            if account and resting.account == account:
                self._seq = seq
                if self._stp != CANCEL_INCOMING:
                    opp.remove(resting)
                    self._close(resting, CANCELED, ts, None, REASON_STP, events)
                seq = self._seq
                if self._stp != CANCEL_RESTING:
                    stp_stopped = True
                    break
                level = opp.best
                continue
            fill_price = level.price
            if first_price is None:
                first_price = fill_price
            qty = resting.displayed
            if qty > leaves:
                qty = leaves
            value = qty * fill_price
            resting_leaves = resting.leaves_qty - qty
            resting.leaves_qty = resting_leaves
            resting.cum_qty += qty
            resting.cum_value += value
            resting.displayed -= qty
            level.displayed -= qty
            resting.status = resting_status = PARTIALLY_FILLED if resting_leaves else FILLED
            leaves -= qty
            cum += qty
            cum_value += value
            status = PARTIALLY_FILLED if leaves else FILLED
            # Both snapshots built in place: this loop is where trades cost.
            events.append(
                _new(
                    Trade,
                    (
                        seq, ts, symbol, fill_price, qty, match_id,
                        _new(OrderState, (*head, leaves, cum, cum_value, status, *tail)),
                        _new(
                            OrderState,
                            (
                                resting.order_id, resting.session, resting.account,
                                resting.cl_ord_id, resting.orig_cl_ord_id, symbol, resting.side,
                                resting.ord_type, resting.tif, fill_price, resting.stop_price,
                                resting.qty, resting_leaves, resting.cum_qty, resting.cum_value,
                                resting_status, resting.expire_time, resting.min_qty,
                                resting.max_floor,
                            ),
                        ),
                    ),
                )
            )  # fmt: skip
            seq += 1
            match_id += 1
            if not resting_leaves:
                # Filled: off the front of its level (BookSide.pop_head), then retired.
                nxt = resting.next
                if nxt is None:
                    level.head = level.tail = None
                    opp.drop(level)
                    level = opp.best
                else:
                    level.head = nxt
                    nxt.prev = None
                    resting.next = None
                resting.level = None
                done.append(resting.order_id)
                if len(done) > keep:
                    self._forget(done.popleft())
                if not leaves:
                    break
            elif not resting.displayed:
                resting.displayed = resting.slice_size()  # the iceberg's next slice
                opp.requeue_head(level)
                if not leaves:
                    break
            else:
                break  # the incoming order is filled; the resting one still shows some
        self._seq = seq
        self._next_match_id = match_id
        order.leaves_qty = leaves
        order.cum_qty = cum
        order.cum_value = cum_value
        if fill_price is not None:
            order.status = status
        if fill_price is not None:
            book.last_price = fill_price
        if not leaves:
            self._retire(order)
        elif stp_stopped:
            self._close(order, CANCELED, ts, None, REASON_STP, events)
        elif price is None:
            self._close(order, CANCELED, ts, None, REASON_NO_LIQUIDITY, events)
        elif order.tif == IOC or order.tif == FOK:
            reason = REASON_IOC if order.tif == IOC else REASON_FOK
            self._close(order, CANCELED, ts, None, reason, events)
        else:
            order.displayed = order.slice_size()
            own.add(order)
        if fill_price is None or first_price is None:
            return None
        return (first_price, fill_price) if first_price <= fill_price else (fill_price, first_price)

    def _run_triggered(
        self, book: OrderBook, fired: list[Order], ts: int, events: list[Event]
    ) -> None:
        """Run fired stops as incoming orders, in order of firing, then of order id;
        stops their trades fire queue up behind them."""
        queue = deque(fired)
        while queue:
            order = queue.popleft()
            order.status = NEW
            seq = self._seq
            self._seq = seq + 1
            events.append(_new(Triggered, (seq, ts, order.state())))
            traded = self._execute(order, book, ts, events, True)
            if traded is not None and book.stops:
                queue.extend(book.take_triggered(*traded))

    # --- expiry ------------------------------------------------------------------------

    def _expire_due(self, ts: int, events: list[Event]) -> None:
        if self._next_eod is None:
            self._next_eod = first_end_of_day_after(ts, self._end_of_day)
        due = []
        heap = self._gtd
        orders = self._orders
        while heap and heap[0][0] <= ts:
            order = orders.get(heappop(heap)[1])
            if order is not None and order.leaves_qty:
                due.append(order)
        if ts >= self._next_eod:
            due.extend(order for order in self._live_orders() if order.tif == DAY)
            self._next_eod = first_end_of_day_after(ts, self._end_of_day)
        self._next_expiry = min(self._next_eod, heap[0][0]) if heap else self._next_eod
        due.sort(key=_by_id)
        for order in due:
            self._take_out(order)
            order.leaves_qty = order.displayed = 0
            order.status = EXPIRED
            self._retire(order)
            seq = self._seq
            self._seq = seq + 1
            events.append(_new(Expired, (seq, ts, order.state())))

    # --- bookkeeping ---------------------------------------------------------------------

    def _live_orders(self) -> list[Order]:
        """Every resting order and waiting stop, by order id."""
        live = []
        for book in self._books.values():
            live.extend(book.resting_orders())
            live.extend(book.stops.values())
        live.sort(key=_by_id)
        return live

    def _find(self, session: str, cl_ord_id: str) -> Order | None:
        ids = self._cl_ord_ids.get(session)
        if ids is None:
            return None
        order_id = ids.get(cl_ord_id)
        return None if not order_id else self._orders.get(order_id)

    def _amend_rejected(
        self,
        cmd: CancelOrder | ReplaceOrder,
        order: Order | None,
        response_to: int,
        events: list[Event],
    ) -> None:
        """Answer a cancel or replace that cannot proceed: the order is unknown (or not
        in that symbol and side), already done, or the new ClOrdID is taken."""
        if order is None or order.symbol != cmd.symbol or order.side != cmd.side:
            self._cancel_reject(
                cmd, None, response_to, CXL_UNKNOWN_ORDER, unknown_order_text(cmd), events
            )
        elif not order.leaves_qty:
            text = too_late_text(cmd, order.status)
            self._cancel_reject(cmd, order, response_to, CXL_TOO_LATE, text, events)
        else:
            text = duplicate_cl_ord_id_text(cmd)
            self._cancel_reject(cmd, order, response_to, CXL_DUPLICATE_CLORDID, text, events)

    def _cancel_reject(
        self,
        cmd: CancelOrder | ReplaceOrder,
        order: Order | None,
        response_to: int,
        reason: int,
        text: str,
        events: list[Event],
    ) -> None:
        seq = self._seq
        self._seq = seq + 1
        events.append(
            _new(
                CancelRejected,
                (
                    seq, cmd.ts, cmd.session, cmd.cl_ord_id, cmd.orig_cl_ord_id,
                    None if order is None else order.order_id,
                    None if order is None else order.status,
                    response_to, reason, text,
                ),
            )
        )

    def _rename(self, order: Order, cl_ord_id: str) -> None:
        """The order is now known by the cancel's or replace's ClOrdID."""
        self._cl_ord_ids[order.session][cl_ord_id] = order.order_id
        _keep_older(order)
        order.orig_cl_ord_id = order.cl_ord_id
        order.cl_ord_id = cl_ord_id

    def _emit_replaced(self, order: Order, ts: int, events: list[Event]) -> None:
        seq = self._seq
        self._seq = seq + 1
        events.append(_new(Replaced, (seq, ts, order.state())))

    def _take_out(self, order: Order) -> None:
        """Remove a live order from its book (price level or stop list)."""
        book = self._books[order.symbol]
        if order.status == PENDING_NEW:
            book.remove_stop(order)
        else:
            book.sides[order.side].remove(order)

    def _close(
        self,
        order: Order,
        status: OrdStatus,
        ts: int,
        request_cl_ord_id: str | None,
        reason: str,
        events: list[Event],
    ) -> None:
        """Finish an order that is out of the book and emit its Cancelled event."""
        order.leaves_qty = order.displayed = 0
        order.status = status
        self._retire(order)
        seq = self._seq
        self._seq = seq + 1
        events.append(_new(Cancelled, (seq, ts, order.state(), request_cl_ord_id, reason)))

    def _retire(self, order: Order) -> None:
        """A done order stays findable until `done_orders_kept` newer ones are done."""
        done = self._done
        done.append(order.order_id)
        if len(done) > self._done_kept:
            self._forget(done.popleft())

    def _forget(self, order_id: int) -> None:
        """Drop a done order that left the kept window, and its ClOrdIDs."""
        order = self._orders.pop(order_id)
        ids = self._cl_ord_ids[order.session]
        for cl_ord_id in (order.cl_ord_id, order.orig_cl_ord_id, *(order.older or ())):
            if cl_ord_id is not None and ids.get(cl_ord_id) == order_id:
                del ids[cl_ord_id]

    @staticmethod
    def _side_record(side: BookSide) -> list[dict[str, Any]]:
        return [
            {
                "price": level.price,
                "orders": [order_record(o.state(), o.displayed) for o in level.orders()],
            }
            for level in side.levels_in_order()
        ]


def _fires(order: Order, last_price: int | None) -> bool:
    """Whether the last trade price already reaches a stop's trigger."""
    stop_price = order.stop_price
    if last_price is None or stop_price is None:
        return False
    if order.side == BUY:
        return last_price >= stop_price
    return last_price <= stop_price


def _executable(order: Order, opp: BookSide, limit: int, need: int, stp: StpMode) -> int:
    """How much of `order` could trade now (counting up to `need`), as matching would:
    with CANCEL_RESTING an own order is cancelled and skipped; otherwise the first own
    order ends the matching, so only what is queued ahead of it counts (an iceberg ahead
    of it shows one slice, since its next one goes behind it)."""
    account = order.account
    blocking = bool(account) and stp != CANCEL_RESTING
    total = 0
    levels = opp.levels
    for key in opp.keys:
        if key > limit:
            break
        resting = levels[key].head
        if blocking:
            shown = 0
            level_total = 0
            while resting is not None:
                if resting.account == account:
                    return total + shown
                shown += resting.displayed
                level_total += resting.leaves_qty
                resting = resting.next
            total += level_total
        else:
            while resting is not None:
                if not account or resting.account != account:
                    total += resting.leaves_qty
                resting = resting.next
        if total >= need:
            break
    return total


def _by_id(order: Order) -> int:
    return order.order_id
