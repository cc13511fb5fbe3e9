"""Engine value types: instruments, commands in, events out.

Everything is an integer inside: prices are ticks of the instrument's tick
size, quantities are units (shares, contracts), times are nanoseconds since
the epoch, passed in with each command (the engine has no clock). Commands
and events are small immutable tuples (NamedTuple): cheap to build, and made
of plain values only, so they can be journaled and could cross a log between
processes unchanged.

Every command that reaches the engine is journaled and every event gets the
next engine sequence number (`seq`), so replaying the journal reproduces the
same events, order ids and execution ids exactly.
"""

from __future__ import annotations

from decimal import Decimal
from enum import IntEnum
from typing import NamedTuple


class Side(IntEnum):
    BUY = 1
    SELL = 2


class OrdType(IntEnum):
    MARKET = 1
    LIMIT = 2
    STOP = 3  # becomes a market order when triggered
    STOP_LIMIT = 4  # becomes a limit order when triggered


class TimeInForce(IntEnum):
    DAY = 0
    GTC = 1
    IOC = 3
    FOK = 4
    GTD = 6


class StpMode(IntEnum):
    """Self-trade prevention when both sides would share an Account (1)."""

    CANCEL_RESTING = 1
    CANCEL_INCOMING = 2
    CANCEL_BOTH = 3


class OrdStatus(IntEnum):
    """FIX OrdStatus (39) of an order after an event; the FIX layer maps it to a char."""

    NEW = 0
    PARTIALLY_FILLED = 1
    FILLED = 2
    CANCELED = 4
    REPLACED = 5  # not used as a state; ExecType only
    PENDING_NEW = 10  # a stop order waiting for its trigger (FIX 39=0: accepted, working)
    REJECTED = 8
    EXPIRED = 12  # FIX 39=C


# OrdRejReason (103) values the engine and order entry use.
REJ_BROKER_OPTION = 0
REJ_UNKNOWN_SYMBOL = 1
REJ_EXCHANGE_CLOSED = 2
REJ_TOO_LATE = 4
REJ_UNKNOWN_ORDER = 5
REJ_DUPLICATE_ORDER = 6
REJ_UNSUPPORTED_CHARACTERISTIC = 11
REJ_INCORRECT_QUANTITY = 13
REJ_INVALID_PRICE_INCREMENT = 18
REJ_OTHER = 99

# CxlRejReason (102)
CXL_TOO_LATE = 0
CXL_UNKNOWN_ORDER = 1
CXL_DUPLICATE_CLORDID = 6
CXL_OTHER = 99

# CxlRejResponseTo (434)
RESPONSE_TO_CANCEL = 1
RESPONSE_TO_REPLACE = 2


# The widest numbers the venue takes in: every order quantity and every price in
# ticks fits a signed 64-bit column (surveillance) with room for sums, and is a
# JSON number that JavaScript reads exactly (drop-copy records).
MAX_ORDER_QTY = 10**12
MAX_PRICE_TICKS = 10**15


class Instrument(NamedTuple):
    """A tradable symbol. `tick_size` is the price increment as a Decimal."""

    symbol: str
    tick_size: Decimal = Decimal("0.01")
    lot_size: int = 1
    band_low: int | None = None  # lowest accepted limit/stop price, in ticks
    band_high: int | None = None  # highest accepted limit/stop price, in ticks
    max_qty: int = 1_000_000_000  # largest order quantity (a fat-finger limit)


# --- commands -------------------------------------------------------------------
# `session` names the FIX session that sent the command (e.g. "FIXGW-CLIENT1");
# `ts` is the command's time in nanoseconds since the epoch.


class NewOrder(NamedTuple):
    ts: int
    session: str
    account: str
    cl_ord_id: str
    symbol: str
    side: Side
    ord_type: OrdType
    qty: int
    price: int | None  # ticks; None for Market and Stop
    stop_price: int | None  # ticks; Stop and Stop-limit only
    tif: TimeInForce
    expire_time: int | None = None  # ns; GTD only
    min_qty: int = 0  # 0: none
    max_floor: int = 0  # 0: fully displayed; else iceberg display quantity


class CancelOrder(NamedTuple):
    ts: int
    session: str
    cl_ord_id: str  # of this cancel request
    orig_cl_ord_id: str  # the order to cancel, by the ClOrdID it was last known by
    symbol: str
    side: Side


class ReplaceOrder(NamedTuple):
    ts: int
    session: str
    cl_ord_id: str  # the order's new ClOrdID
    orig_cl_ord_id: str
    symbol: str
    side: Side
    qty: int  # new total order quantity (filled quantity included)
    price: int | None  # new limit price in ticks (None: keep / market)
    stop_price: int | None = None


class OrderStatusRequest(NamedTuple):
    ts: int
    session: str
    cl_ord_id: str
    symbol: str
    side: Side


class MassCancelScope(IntEnum):
    """MassCancelRequestType (530) values supported."""

    SYMBOL = 1
    ALL = 7


class MassCancel(NamedTuple):
    """Cancel the sender's resting orders: all of them, or those in one symbol."""

    ts: int
    session: str
    cl_ord_id: str
    scope: MassCancelScope
    symbol: str | None = None


class RejectOrder(NamedTuple):
    """An order refused before it could become a NewOrder (e.g. price off tick,
    unknown symbol): journaled like any command so its reject gets an ExecID."""

    ts: int
    session: str
    account: str
    cl_ord_id: str
    symbol: str
    side: Side
    ord_type: OrdType
    qty: int
    reason: int  # OrdRejReason (103)
    text: str


class AdvanceTime(NamedTuple):
    """The clock moved: expire Day orders after the end of the trading day and
    GTD orders past their ExpireTime."""

    ts: int


Command = (
    NewOrder | CancelOrder | ReplaceOrder | OrderStatusRequest | MassCancel | RejectOrder
    | AdvanceTime
)


# --- events ---------------------------------------------------------------------


class OrderState(NamedTuple):
    """A snapshot of one order, as every event that concerns it carries it."""

    order_id: int
    session: str
    account: str
    cl_ord_id: str  # current ClOrdID
    orig_cl_ord_id: str | None  # the ClOrdID before the latest replace or cancel
    symbol: str
    side: Side
    ord_type: OrdType
    tif: TimeInForce
    price: int | None
    stop_price: int | None
    qty: int  # total order quantity
    leaves_qty: int
    cum_qty: int
    cum_value: int  # sum of fill qty * fill price (ticks), for AvgPx
    status: OrdStatus
    expire_time: int | None = None
    min_qty: int = 0
    max_floor: int = 0


class Accepted(NamedTuple):
    seq: int
    ts: int
    order: OrderState


class Rejected(NamedTuple):
    seq: int
    ts: int
    session: str
    account: str
    cl_ord_id: str
    symbol: str
    side: Side
    ord_type: OrdType
    qty: int
    price: int | None
    reason: int  # OrdRejReason (103)
    text: str


class Trade(NamedTuple):
    """One fill between an incoming (aggressor) and a resting order, at the
    resting order's price. Both snapshots are taken after the fill."""

    seq: int
    ts: int
    symbol: str
    price: int
    qty: int
    match_id: int
    aggressor: OrderState
    resting: OrderState


class Cancelled(NamedTuple):
    """An order left the book without filling its rest: a cancel request
    (`request_cl_ord_id` set), IOC/FOK/Market remainder, MinQty not met,
    self-trade prevention, a mass cancel or a replace below the filled quantity."""

    seq: int
    ts: int
    order: OrderState
    request_cl_ord_id: str | None
    reason: str


class Replaced(NamedTuple):
    seq: int
    ts: int
    order: OrderState  # after the replace (cl_ord_id new, orig_cl_ord_id old)


class Expired(NamedTuple):
    seq: int
    ts: int
    order: OrderState


class Triggered(NamedTuple):
    """A stop or stop-limit order's trigger price was reached by the last trade."""

    seq: int
    ts: int
    order: OrderState


class CancelRejected(NamedTuple):
    seq: int
    ts: int
    session: str
    cl_ord_id: str
    orig_cl_ord_id: str
    order_id: int | None
    status: OrdStatus | None  # the order's status if it is known
    response_to: int  # CxlRejResponseTo (434)
    reason: int  # CxlRejReason (102)
    text: str


class StatusReport(NamedTuple):
    """Answer to OrderStatusRequest: the order's state (None if unknown)."""

    seq: int
    ts: int
    session: str
    cl_ord_id: str
    symbol: str
    side: Side
    order: OrderState | None


class MassCancelReport(NamedTuple):
    seq: int
    ts: int
    session: str
    cl_ord_id: str
    scope: MassCancelScope
    symbol: str | None
    cancelled: int  # how many orders were cancelled (each also has a Cancelled event)


Event = (
    Accepted | Rejected | Trade | Cancelled | Replaced | Expired | Triggered | CancelRejected
    | StatusReport | MassCancelReport
)
