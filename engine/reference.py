"""The reference engine: the same rules as `MatchingEngine`, written to be read.

No clever data structures: one list of resting orders for every symbol, one
list of waiting stops, and a scan over them whenever the best price is needed.
Time priority is an arrival number given to an order each time it joins the
back of a price level. FOK and MinQty find out what could trade by running the
matching on a throwaway copy of the engine. It is slow (O(n) per fill) and
only there so that tests can hold the fast engine to the same event stream
and the same `dump()`.

It shares with the fast engine only the pure order-entry checks and texts
(`new_order_error`, `replace_error`, ...) and the dump record format, none of
the matching.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.engine import (
    DAY_NS,
    DEFAULT_END_OF_DAY,
    DONE_ORDERS_KEPT,
    MAX_ICEBERG_SLICES,
    REASON_CANCEL_REQUEST,
    REASON_FOK,
    REASON_IOC,
    REASON_MASS_CANCEL,
    REASON_MIN_QTY,
    REASON_NO_LIQUIDITY,
    REASON_REPLACED_BELOW_FILLED,
    REASON_STP,
    duplicate_cl_ord_id_text,
    first_end_of_day_after,
    instrument_record,
    new_order_error,
    order_record,
    replace_error,
    state_hash_of,
    too_late_text,
    unknown_order_text,
)
from engine.types import (
    CXL_DUPLICATE_CLORDID,
    CXL_OTHER,
    CXL_TOO_LATE,
    CXL_UNKNOWN_ORDER,
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

LIVE = (OrdStatus.NEW, OrdStatus.PARTIALLY_FILLED, OrdStatus.PENDING_NEW)


@dataclass(eq=False)  # identity, not field equality: two orders are never "equal"
class RefOrder:
    order_id: int
    session: str
    account: str
    cl_ord_id: str
    orig_cl_ord_id: str | None
    symbol: str
    side: Side
    ord_type: OrdType
    tif: TimeInForce
    price: int | None
    stop_price: int | None
    qty: int
    leaves_qty: int
    cum_qty: int
    cum_value: int
    status: OrdStatus
    expire_time: int | None
    min_qty: int
    max_floor: int
    displayed: int = 0  # what the book shows while resting
    arrival: int = 0  # when it last joined the back of its price level

    def state(self) -> OrderState:
        return OrderState(
            self.order_id, self.session, self.account, self.cl_ord_id, self.orig_cl_ord_id,
            self.symbol, self.side, self.ord_type, self.tif, self.price, self.stop_price,
            self.qty, self.leaves_qty, self.cum_qty, self.cum_value, self.status,
            self.expire_time, self.min_qty, self.max_floor,
        )  # fmt: skip

    def is_live(self) -> bool:
        return self.status in LIVE

    def limit(self) -> int:
        """The price of an order on the book: only priced orders rest."""
        assert self.price is not None, "a resting order has a price"
        return self.price

    def trigger(self) -> int:
        """The stop price of a waiting stop order."""
        assert self.stop_price is not None, "a stop order has a stop price"
        return self.stop_price

    def new_slice(self) -> int:
        if self.max_floor > 0:
            return min(self.max_floor, self.leaves_qty)
        return self.leaves_qty


class ReferenceBook:
    """What `MatchingEngine.book()` offers, computed by scanning."""

    def __init__(self, engine: ReferenceEngine, symbol: str) -> None:
        self._engine = engine
        self.symbol = symbol

    def _levels(self, side: Side) -> list[tuple[int, int]]:
        shown: dict[int, int] = {}
        for order in self._engine.resting:
            if order.symbol == self.symbol and order.side == side:
                price = order.limit()
                shown[price] = shown.get(price, 0) + order.displayed
        return sorted(shown.items(), reverse=side == Side.BUY)

    def best_bid(self) -> tuple[int, int] | None:
        levels = self._levels(Side.BUY)
        return levels[0] if levels else None

    def best_ask(self) -> tuple[int, int] | None:
        levels = self._levels(Side.SELL)
        return levels[0] if levels else None

    def depth(self, n: int = 5) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        return self._levels(Side.BUY)[:n], self._levels(Side.SELL)[:n]


class ReferenceEngine:
    """Same interface and the same events as `MatchingEngine`, by brute force."""

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
        self.max_iceberg_slices = max_iceberg_slices
        self.instruments = {i.symbol: i for i in instruments}
        self.stp_mode = StpMode(stp_mode)
        self.end_of_day = end_of_day
        self.done_orders_kept = done_orders_kept
        self.next_order_id = next_order_id
        self.next_seq = next_seq
        self.next_match_id = 1
        self.next_end_of_day: int | None = None
        self.next_arrival = 1
        self.resting: list[RefOrder] = []  # every resting order of every symbol
        self.stops: list[RefOrder] = []  # every stop waiting for its trigger
        self.orders: dict[int, RefOrder] = {}  # live orders and the last done ones
        self.done: list[int] = []  # ids of done orders still kept, oldest first
        self.cl_ord_ids: dict[str, dict[str, int]] = {}
        self.rejected: list[tuple[str, str]] = []  # boundary rejects' ClOrdIDs, oldest first
        self.last_price: dict[str, int | None] = {s: None for s in self.instruments}
        self.events: list[Event] = []

    # --- public interface ----------------------------------------------------------

    def process(self, command: Any) -> list[Event]:
        self.events = []
        self.expire(command.ts)
        if isinstance(command, NewOrder):
            self.new_order(command)
        elif isinstance(command, CancelOrder):
            self.cancel_order(command)
        elif isinstance(command, ReplaceOrder):
            self.replace_order(command)
        elif isinstance(command, OrderStatusRequest):
            self.status_request(command)
        elif isinstance(command, MassCancel):
            self.mass_cancel(command)
        elif isinstance(command, RejectOrder):
            self.reject_order(command)
        elif isinstance(command, AdvanceTime):
            pass  # the expiry above is all it does
        else:
            raise TypeError(f"not an engine command: {type(command).__name__}")
        return self.events

    def book(self, symbol: str) -> ReferenceBook:
        if symbol not in self.instruments:
            raise KeyError(symbol)
        return ReferenceBook(self, symbol)

    def open_orders(self, session: str | None = None) -> list[OrderState]:
        live = sorted(self.resting + self.stops, key=lambda o: o.order_id)
        return [o.state() for o in live if session is None or o.session == session]

    def dump(self) -> dict[str, Any]:
        books = {}
        stops = {}
        for symbol in sorted(self.instruments):
            bids = [o for o in self.resting if o.symbol == symbol and o.side == Side.BUY]
            asks = [o for o in self.resting if o.symbol == symbol and o.side == Side.SELL]
            books[symbol] = {
                "bids": self.levels_record(bids, best_first_prices_descending=True),
                "asks": self.levels_record(asks, best_first_prices_descending=False),
            }
            waiting = sorted(
                (o for o in self.stops if o.symbol == symbol), key=lambda o: o.order_id
            )
            stops[symbol] = [order_record(o.state(), o.displayed) for o in waiting]
        symbols = sorted(self.instruments)
        return {
            "instruments": [instrument_record(self.instruments[s]) for s in symbols],
            "stp_mode": int(self.stp_mode),
            "end_of_day": self.end_of_day,
            "done_orders_kept": self.done_orders_kept,
            "next_order_id": self.next_order_id,
            "next_seq": self.next_seq,
            "next_match_id": self.next_match_id,
            "next_end_of_day": self.next_end_of_day,
            "last_price": {s: self.last_price[s] for s in sorted(self.instruments)},
            "books": books,
            "stops": stops,
            "done_orders": [order_record(self.orders[i].state(), 0) for i in self.done],
            "cl_ord_ids": {s: dict(ids) for s, ids in sorted(self.cl_ord_ids.items())},
        }

    def state_hash(self) -> str:
        return state_hash_of(self.dump())

    @staticmethod
    def levels_record(
        orders: list[RefOrder], best_first_prices_descending: bool
    ) -> list[dict[str, Any]]:
        prices = sorted({o.limit() for o in orders}, reverse=best_first_prices_descending)
        levels = []
        for price in prices:
            queue = sorted((o for o in orders if o.price == price), key=lambda o: o.arrival)
            levels.append(
                {"price": price, "orders": [order_record(o.state(), o.displayed) for o in queue]}
            )
        return levels

    # --- events ------------------------------------------------------------------------

    def emit(self, event_type: type, *fields: Any) -> None:
        self.events.append(event_type(self.next_seq, *fields))
        self.next_seq += 1

    # --- commands ------------------------------------------------------------------------

    def new_order(self, cmd: NewOrder) -> None:
        error = new_order_error(
            cmd, self.instruments.get(cmd.symbol), self.cl_ord_ids.get(cmd.session, {}),
            self.max_iceberg_slices,
        )
        if error is not None:
            reason, text = error
            self.emit(
                Rejected, cmd.ts, cmd.session, cmd.account, cmd.cl_ord_id, cmd.symbol,
                cmd.side, cmd.ord_type, cmd.qty, cmd.price, reason, text,
            )  # fmt: skip
            return
        is_stop = cmd.ord_type in (OrdType.STOP, OrdType.STOP_LIMIT)
        order = RefOrder(
            order_id=self.next_order_id,
            session=cmd.session,
            account=cmd.account,
            cl_ord_id=cmd.cl_ord_id,
            orig_cl_ord_id=None,
            symbol=cmd.symbol,
            side=cmd.side,
            ord_type=cmd.ord_type,
            tif=cmd.tif,
            price=cmd.price,
            stop_price=cmd.stop_price,
            qty=cmd.qty,
            leaves_qty=cmd.qty,
            cum_qty=0,
            cum_value=0,
            status=OrdStatus.PENDING_NEW if is_stop else OrdStatus.NEW,
            expire_time=cmd.expire_time,
            min_qty=cmd.min_qty,
            max_floor=cmd.max_floor,
        )
        self.next_order_id += 1
        self.cl_ord_ids.setdefault(cmd.session, {})[cmd.cl_ord_id] = order.order_id
        self.orders[order.order_id] = order
        self.emit(Accepted, cmd.ts, order.state())
        if not is_stop:
            self.run_incoming([order], cmd.ts, already_fired=False)
        elif self.stop_fires_now(order):
            self.run_incoming([order], cmd.ts, already_fired=True)
        else:
            self.stops.append(order)

    def lookup(self, session: str, cl_ord_id: str) -> RefOrder | None:
        order_id = self.cl_ord_ids.get(session, {}).get(cl_ord_id, 0)
        return self.orders.get(order_id)  # None for 0 (a refused order) or one no longer kept

    def check_amend(
        self, cmd: CancelOrder | ReplaceOrder, response_to: int
    ) -> RefOrder | None:
        order = self.lookup(cmd.session, cmd.orig_cl_ord_id)
        if order is None or order.symbol != cmd.symbol or order.side != cmd.side:
            self.cancel_reject(
                cmd, None, response_to, CXL_UNKNOWN_ORDER, unknown_order_text(cmd)
            )
            return None
        if not order.is_live():
            self.cancel_reject(
                cmd, order, response_to, CXL_TOO_LATE, too_late_text(cmd, order.status)
            )
            return None
        if cmd.cl_ord_id in self.cl_ord_ids[cmd.session]:
            self.cancel_reject(
                cmd, order, response_to, CXL_DUPLICATE_CLORDID, duplicate_cl_ord_id_text(cmd)
            )
            return None
        return order

    def cancel_reject(
        self,
        cmd: CancelOrder | ReplaceOrder,
        order: RefOrder | None,
        response_to: int,
        reason: int,
        text: str,
    ) -> None:
        self.emit(
            CancelRejected, cmd.ts, cmd.session, cmd.cl_ord_id, cmd.orig_cl_ord_id,
            order.order_id if order else None, order.status if order else None,
            response_to, reason, text,
        )  # fmt: skip

    def rename(self, order: RefOrder, cl_ord_id: str) -> None:
        self.cl_ord_ids[order.session][cl_ord_id] = order.order_id
        order.orig_cl_ord_id = order.cl_ord_id
        order.cl_ord_id = cl_ord_id

    def cancel_order(self, cmd: CancelOrder) -> None:
        order = self.check_amend(cmd, RESPONSE_TO_CANCEL)
        if order is None:
            return
        self.unlist(order)
        self.rename(order, cmd.cl_ord_id)
        self.finish_cancelled(order, cmd.ts, cmd.cl_ord_id, REASON_CANCEL_REQUEST)

    def replace_order(self, cmd: ReplaceOrder) -> None:
        order = self.check_amend(cmd, RESPONSE_TO_REPLACE)
        if order is None:
            return
        waiting = order.status == OrdStatus.PENDING_NEW
        text = replace_error(cmd, self.instruments[order.symbol], order.price is not None, waiting,
                             order.max_floor, self.max_iceberg_slices)
        if text is not None:
            self.cancel_reject(cmd, order, RESPONSE_TO_REPLACE, CXL_OTHER, text)
            return
        self.rename(order, cmd.cl_ord_id)
        if cmd.qty <= order.cum_qty:
            self.unlist(order)
            self.finish_cancelled(order, cmd.ts, cmd.cl_ord_id, REASON_REPLACED_BELOW_FILLED)
            return
        new_price = order.price if cmd.price is None else cmd.price
        if waiting:
            order.qty = cmd.qty
            order.leaves_qty = cmd.qty
            order.price = new_price
            if cmd.stop_price is not None:
                order.stop_price = cmd.stop_price
            self.emit(Replaced, cmd.ts, order.state())
            if self.stop_fires_now(order):
                self.stops.remove(order)
                self.run_incoming([order], cmd.ts, already_fired=True)
            return
        keeps_priority = new_price == order.price and cmd.qty <= order.qty
        order.qty = cmd.qty
        order.leaves_qty = cmd.qty - order.cum_qty
        if keeps_priority:
            order.displayed = min(order.displayed, order.leaves_qty)
            self.emit(Replaced, cmd.ts, order.state())
            return
        self.resting.remove(order)
        order.displayed = 0
        order.price = new_price
        self.emit(Replaced, cmd.ts, order.state())
        self.run_incoming([order], cmd.ts, already_fired=False, entry=False)

    def status_request(self, cmd: OrderStatusRequest) -> None:
        order = self.lookup(cmd.session, cmd.cl_ord_id)
        self.emit(
            StatusReport, cmd.ts, cmd.session, cmd.cl_ord_id, cmd.symbol, cmd.side,
            order.state() if order else None,
        )  # fmt: skip

    def mass_cancel(self, cmd: MassCancel) -> None:
        chosen = [
            o
            for o in sorted(self.resting + self.stops, key=lambda o: o.order_id)
            if o.session == cmd.session
            and (cmd.scope == MassCancelScope.ALL or o.symbol == cmd.symbol)
        ]
        for order in chosen:
            self.unlist(order)
            self.finish_cancelled(order, cmd.ts, cmd.cl_ord_id, REASON_MASS_CANCEL)
        self.emit(
            MassCancelReport, cmd.ts, cmd.session, cmd.cl_ord_id, cmd.scope, cmd.symbol,
            len(chosen),
        )  # fmt: skip

    def reject_order(self, cmd: RejectOrder) -> None:
        ids = self.cl_ord_ids.setdefault(cmd.session, {})
        if cmd.cl_ord_id not in ids:
            ids[cmd.cl_ord_id] = 0
            # Remembered as long as the last done_orders_kept boundary rejects.
            self.rejected.append((cmd.session, cmd.cl_ord_id))
            if len(self.rejected) > self.done_orders_kept:
                session, old = self.rejected.pop(0)
                if self.cl_ord_ids[session].get(old) == 0:
                    del self.cl_ord_ids[session][old]
        self.emit(
            Rejected, cmd.ts, cmd.session, cmd.account, cmd.cl_ord_id, cmd.symbol, cmd.side,
            cmd.ord_type, cmd.qty, None, cmd.reason, cmd.text,
        )  # fmt: skip

    # --- expiry ------------------------------------------------------------------------

    def expire(self, ts: int) -> None:
        if self.next_end_of_day is None:
            self.next_end_of_day = first_end_of_day_after(ts, self.end_of_day)
        live = self.resting + self.stops
        due = [
            o
            for o in live
            if o.tif == TimeInForce.GTD and o.expire_time is not None and o.expire_time <= ts
        ]
        if ts >= self.next_end_of_day:
            due += [o for o in live if o.tif == TimeInForce.DAY]
            self.next_end_of_day = first_end_of_day_after(ts, self.end_of_day)
        for order in sorted(due, key=lambda o: o.order_id):
            self.unlist(order)
            order.leaves_qty = 0
            order.displayed = 0
            order.status = OrdStatus.EXPIRED
            self.retire(order)
            self.emit(Expired, ts, order.state())

    # --- matching ------------------------------------------------------------------------

    def stop_fires_now(self, order: RefOrder) -> bool:
        last = self.last_price[order.symbol]
        if last is None:
            return False
        if order.side == Side.BUY:
            return last >= order.trigger()
        return last <= order.trigger()

    def run_incoming(
        self, queue: list[RefOrder], ts: int, already_fired: bool, entry: bool = True
    ) -> None:
        """Run incoming orders one after another; stops their trades fire join the queue."""
        queue = list(queue)
        fired = already_fired
        while queue:
            order = queue.pop(0)
            if fired:
                order.status = OrdStatus.NEW
                self.emit(Triggered, ts, order.state())
            prices = self.execute(order, ts, entry)
            if prices:
                low, high = min(prices), max(prices)
                newly = [
                    s
                    for s in self.stops
                    if s.symbol == order.symbol
                    and (
                        (s.side == Side.BUY and s.trigger() <= high)
                        or (s.side == Side.SELL and s.trigger() >= low)
                    )
                ]
                newly.sort(key=lambda o: o.order_id)
                for stop in newly:
                    self.stops.remove(stop)
                queue.extend(newly)
            fired = True  # everything after the first order is a fired stop
            entry = True

    def acceptable(self, order: RefOrder, price: int) -> bool:
        if order.price is None:
            return True
        if order.side == Side.BUY:
            return price <= order.price
        return price >= order.price

    def best_opposite(self, order: RefOrder) -> RefOrder | None:
        candidates = [
            o
            for o in self.resting
            if o.symbol == order.symbol
            and o.side != order.side
            and self.acceptable(order, o.limit())
        ]
        if not candidates:
            return None
        if order.side == Side.BUY:
            return min(candidates, key=lambda o: (o.limit(), o.arrival))
        return min(candidates, key=lambda o: (-o.limit(), o.arrival))

    def fillable_now(self, order: RefOrder) -> int:
        """What would fill if `order` matched now, found by matching a copy."""
        scratch, twin = copy.deepcopy((self, order))
        scratch.execute(twin, ts=0, entry=False)
        return twin.cum_qty - order.cum_qty

    def execute(self, order: RefOrder, ts: int, entry: bool) -> list[int]:
        """Match, then rest or cancel the remainder. Returns the trade prices."""
        if entry and (order.tif == TimeInForce.FOK or order.min_qty > 0):
            fillable = self.fillable_now(order)
            if order.tif == TimeInForce.FOK and fillable < order.qty:
                self.finish_cancelled(order, ts, None, REASON_FOK)
                return []
            if fillable < order.min_qty:
                self.finish_cancelled(order, ts, None, REASON_MIN_QTY)
                return []
        prices: list[int] = []
        stopped_by_stp = False
        while order.leaves_qty > 0:
            resting = self.best_opposite(order)
            if resting is None:
                break
            if order.account and resting.account == order.account:
                if self.stp_mode in (StpMode.CANCEL_RESTING, StpMode.CANCEL_BOTH):
                    self.resting.remove(resting)
                    self.finish_cancelled(resting, ts, None, REASON_STP)
                if self.stp_mode in (StpMode.CANCEL_INCOMING, StpMode.CANCEL_BOTH):
                    stopped_by_stp = True
                    break
                continue
            price = resting.limit()
            qty = min(order.leaves_qty, resting.displayed)
            for side in (resting, order):
                side.leaves_qty -= qty
                side.cum_qty += qty
                side.cum_value += qty * price
                side.status = (
                    OrdStatus.FILLED if side.leaves_qty == 0 else OrdStatus.PARTIALLY_FILLED
                )
            resting.displayed -= qty
            self.emit(
                Trade, ts, order.symbol, price, qty, self.next_match_id, order.state(),
                resting.state(),
            )  # fmt: skip
            self.next_match_id += 1
            prices.append(price)
            if resting.leaves_qty == 0:
                self.resting.remove(resting)
                self.retire(resting)
            elif resting.displayed == 0:
                resting.displayed = resting.new_slice()
                resting.arrival = self.take_arrival()
        if prices:
            self.last_price[order.symbol] = prices[-1]
        if order.leaves_qty == 0:
            self.retire(order)
        elif stopped_by_stp:
            self.finish_cancelled(order, ts, None, REASON_STP)
        elif order.price is None:
            self.finish_cancelled(order, ts, None, REASON_NO_LIQUIDITY)
        elif order.tif == TimeInForce.IOC:
            self.finish_cancelled(order, ts, None, REASON_IOC)
        elif order.tif == TimeInForce.FOK:
            self.finish_cancelled(order, ts, None, REASON_FOK)
        else:
            order.displayed = order.new_slice()
            order.arrival = self.take_arrival()
            self.resting.append(order)
        return prices

    # --- bookkeeping ---------------------------------------------------------------------

    def take_arrival(self) -> int:
        self.next_arrival += 1
        return self.next_arrival

    def unlist(self, order: RefOrder) -> None:
        if order in self.resting:
            self.resting.remove(order)
        else:
            self.stops.remove(order)

    def finish_cancelled(
        self, order: RefOrder, ts: int, request_cl_ord_id: str | None, reason: str
    ) -> None:
        order.leaves_qty = 0
        order.displayed = 0
        order.status = OrdStatus.CANCELED
        self.retire(order)
        self.emit(Cancelled, ts, order.state(), request_cl_ord_id, reason)

    def retire(self, order: RefOrder) -> None:
        self.done.append(order.order_id)
        if len(self.done) > self.done_orders_kept:
            gone = self.orders.pop(self.done.pop(0))
            # Its ClOrdIDs are forgotten with it: every one that names it.
            ids = self.cl_ord_ids[gone.session]
            for cl_ord_id in [c for c, oid in ids.items() if oid == gone.order_id]:
                del ids[cl_ord_id]
