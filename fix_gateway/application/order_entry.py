"""Order entry: FIX application messages -> engine commands -> reports.

`OrderEntry` is the application behind every order-entry session. For each
NewOrderSingle, OrderCancelRequest, OrderCancelReplaceRequest,
OrderStatusRequest and OrderMassCancelRequest it builds one engine command
(or a `RejectOrder` when the order is refused at the FIX boundary, e.g. a
price off tick), journals it, runs it through the engine and publishes the
command and its events on the event stream (event_stream.py), whose first
stage writes the reports to the sessions that own the orders. The gateway then
flushes the journal, then the session stores, then writes to sockets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

from engine.engine import MatchingEngine
from engine.journal import CommandJournal, Entry
from engine.types import (
    MAX_ORDER_QTY,
    MAX_PRICE_TICKS,
    REJ_INCORRECT_QUANTITY,
    REJ_INVALID_PRICE_INCREMENT,
    REJ_OTHER,
    REJ_UNKNOWN_SYMBOL,
    REJ_UNSUPPORTED_CHARACTERISTIC,
    AdvanceTime,
    CancelOrder,
    Command,
    Event,
    Instrument,
    MassCancel,
    MassCancelScope,
    NewOrder,
    OrderStatusRequest,
    OrdType,
    RejectOrder,
    ReplaceOrder,
    Side,
    TimeInForce,
)
from fix_gateway.application.event_stream import Batch, EventStream
from fix_gateway.application.execution_reports import (
    CANCEL_REJECT,
    ER,
    MASS_CANCEL_REPORT,
    ReportWriter,
    report_signature,
)
from fix_gateway.application.prices import PriceScale, parse_quantity, scales_for
from fix_gateway.codec import Message, parse_fields
from fix_gateway.session.session import Session
from fix_gateway.utc_time import parse_timestamp

log = logging.getLogger("fixgw.orders")

_SIDES = {b"1": Side.BUY, b"2": Side.SELL}
_ORD_TYPES = {b"1": OrdType.MARKET, b"2": OrdType.LIMIT, b"3": OrdType.STOP,
              b"4": OrdType.STOP_LIMIT}
_TIFS = {b"0": TimeInForce.DAY, b"1": TimeInForce.GTC, b"3": TimeInForce.IOC,
         b"4": TimeInForce.FOK, b"6": TimeInForce.GTD}
# NewOrderSingle fields read, in the order _new_order unpacks them.
_NEW_ORDER_TAGS = (11, 55, 1, 54, 40, 38, 44, 99, 59, 126, 110, 111)
_MASS_SCOPES = {b"1": MassCancelScope.SYMBOL, b"7": MassCancelScope.ALL}
_QTY_RANGE_TEXT = f"OrderQty(38) is outside the venue's range (at most {MAX_ORDER_QTY:,})"


# A pre-trade check on a NewOrderSingle that became a NewOrder: raises
# BoundaryReject to refuse it (e.g. MaxOpenOrders, open_orders.py).
OrderCheck = Callable[[Session, NewOrder], None]


class BoundaryReject(Exception):
    """An order that cannot become an engine command as sent: (reason, text)."""

    def __init__(self, reason: int, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text


class OrderEntry:
    def __init__(
        self,
        engine: MatchingEngine,
        journal: CommandJournal,
        instruments: Iterable[Instrument],
        sessions: Callable[[str], Session | None],
        batch: Batch | None = None,
    ) -> None:
        self.engine = engine
        self.journal = journal
        self.instruments = {i.symbol: i for i in instruments}
        self.scales: dict[str, PriceScale] = scales_for(self.instruments)
        self.batch = batch if batch is not None else Batch()
        self.reports = ReportWriter(sessions, self.scales, self.batch)
        # Every command's events go here; a FIX order is answered by its reports,
        # so they are the first stage. The venue subscribes the rest (server.py).
        self.stream = EventStream()
        self.stream.stages.append(self.reports.on_events)
        self.order_checks: list[OrderCheck] = []
        self._handlers: dict[bytes, Callable[[Session, Message, float], None]] = {
            b"D": self._new_order,
            b"F": self._cancel,
            b"G": self._replace,
            b"H": self._status,
            b"q": self._mass_cancel,
        }

    # --- the session's Application interface ------------------------------------------

    def on_message(self, session: Session, msg: Message, now: float) -> None:
        handler = self._handlers.get(msg.msg_type)
        if handler is None:
            session.reject_unsupported(msg, now)
            return
        handler(session, msg, now)

    def submit(self, command: Command, now: float) -> list[Event]:
        """Journal a command, run it, publish its events (its reports first)."""
        self.journal.append(command)
        events = self.engine.process(command)
        self.stream.publish(command, events, now)
        return events

    def advance_time(self, now: float) -> None:
        """Move the engine's clock: journaled only when an expiry (GTD, end of day) is
        due, since a clock tick with nothing due changes nothing. An idle venue
        then grows no journal and replays no ticks."""
        ts = int(now * 1e9)
        if ts >= self.engine.next_expiry:
            self.submit(AdvanceTime(ts), now)

    # --- FIX -> commands ---------------------------------------------------------

    def _new_order(self, session: Session, msg: Message, now: float) -> None:
        ts = int(now * 1e9)
        (cl_ord_id_b, symbol_b, account_b, side_b, ord_type_b, qty_b, price_b, stop_b, tif_b,
         expire_b, min_qty_b, max_floor_b) = msg.get_many(_NEW_ORDER_TAGS)
        cl_ord_id = (cl_ord_id_b or b"").decode("latin-1")
        symbol = (symbol_b or b"").decode("latin-1")
        account = (account_b or b"").decode("latin-1")
        side = _SIDES.get(side_b or b"")
        ord_type = _ORD_TYPES.get(ord_type_b or b"")
        qty = parse_quantity(qty_b or b"")
        try:
            if side is None:
                raise BoundaryReject(REJ_UNSUPPORTED_CHARACTERISTIC,
                                     "Side(54) must be 1 (buy) or 2 (sell)")
            if ord_type is None:
                raise BoundaryReject(REJ_UNSUPPORTED_CHARACTERISTIC,
                                     "OrdType(40) must be 1, 2, 3 or 4")
            if qty is None:
                raise BoundaryReject(REJ_INCORRECT_QUANTITY,
                                     "OrderQty(38) missing or not a whole number")
            if not -MAX_ORDER_QTY <= qty <= MAX_ORDER_QTY:
                qty = None  # not even echoed: what passes here must fit 64-bit columns
                raise BoundaryReject(REJ_INCORRECT_QUANTITY, _QTY_RANGE_TEXT)
            scale = self.scales.get(symbol)
            if scale is None:
                raise BoundaryReject(REJ_UNKNOWN_SYMBOL, f"Unknown symbol {symbol!r}")
            tif = _TIFS.get(tif_b or b"0")
            if tif is None:
                raise BoundaryReject(REJ_UNSUPPORTED_CHARACTERISTIC,
                                     "TimeInForce(59) must be 0, 1, 3, 4 or 6")
            command = NewOrder(
                ts, session.config.name, account, cl_ord_id, symbol, side, ord_type, qty,
                None if price_b is None else self._price(scale, price_b, "Price(44)"),
                None if stop_b is None else self._price(scale, stop_b, "StopPx(99)"),
                tif,
                None if expire_b is None else self._expire_time(expire_b),
                0 if min_qty_b is None else self._optional_qty(min_qty_b, "MinQty(110)"),
                0 if max_floor_b is None else self._optional_qty(max_floor_b, "MaxFloor(111)"),
            )
            for check in self.order_checks:
                check(session, command)
        except BoundaryReject as exc:
            self.submit(RejectOrder(
                ts, session.config.name, account, cl_ord_id, symbol, side or Side.BUY,
                ord_type or OrdType.LIMIT, qty or 0, exc.reason, exc.text,
            ), now)  # fmt: skip
            return
        self.submit(command, now)

    def _cancel(self, session: Session, msg: Message, now: float) -> None:
        side = _SIDES.get(msg.get(54) or b"", Side.BUY)
        self.submit(CancelOrder(
            int(now * 1e9), session.config.name, _text(msg, 11), _text(msg, 41),
            _text(msg, 55), side,
        ), now)  # fmt: skip

    def _replace(self, session: Session, msg: Message, now: float) -> None:
        get = msg.get
        symbol = _text(msg, 55)
        scale = self.scales.get(symbol)
        qty = parse_quantity(get(38) or b"")
        try:
            if scale is None:
                raise BoundaryReject(REJ_UNKNOWN_SYMBOL, f"Unknown symbol {symbol!r}")
            if qty is None:
                raise BoundaryReject(REJ_INCORRECT_QUANTITY,
                                     "OrderQty(38) missing or not a whole number")
            if not -MAX_ORDER_QTY <= qty <= MAX_ORDER_QTY:
                raise BoundaryReject(REJ_INCORRECT_QUANTITY, _QTY_RANGE_TEXT)
            price = self._price(scale, get(44), "Price(44)")
            stop = self._price(scale, get(99), "StopPx(99)")
            self._unchangeable_terms(session, msg)
        except BoundaryReject as exc:
            # No engine event, so no ExecID needed: answer directly, with the
            # order's own id and status when it is known.
            orig = _text(msg, 41)
            self.reports.cancel_reject_now(
                session, _text(msg, 11), orig, exc.text, now, response_to=2,
                order=self.engine.order_state(session.config.name, orig))
            return
        self.submit(ReplaceOrder(
            int(now * 1e9), session.config.name, _text(msg, 11), _text(msg, 41), symbol,
            _SIDES.get(get(54) or b"", Side.BUY), qty, price, stop,
        ), now)  # fmt: skip

    def _unchangeable_terms(self, session: Session, msg: Message) -> None:
        """A replace may change quantity, price and stop price only: any other term of
        the live order it restates (OrdType, TimeInForce, ExpireTime, MinQty,
        MaxFloor) must be the order's own, or it is refused, not ignored (absent,
        they stay). Unknown, finished or mismatched orders are the engine's to answer."""
        get = msg.get
        order = self.engine.order_state(session.config.name, _text(msg, 41))
        if order is None or not order.leaves_qty or order.symbol != _text(msg, 55) \
                or order.side != _SIDES.get(get(54) or b""):
            return
        asked: list[tuple[int, str, bytes | None, object, object]] = [
            (40, "OrdType", get(40), _ORD_TYPES.get(get(40) or b""), order.ord_type),
            (59, "TimeInForce", get(59), _TIFS.get(get(59) or b""), order.tif),
        ]
        if get(126) is not None:
            asked.append((126, "ExpireTime", get(126), self._expire_time(get(126)),
                          order.expire_time))
        for tag, name, held in ((110, "MinQty", order.min_qty),
                                (111, "MaxFloor", order.max_floor)):
            if get(tag) is not None:
                asked.append((tag, name, get(tag), self._optional_qty(get(tag), name), held))
        for tag, name, text, value, current in asked:
            if text is not None and value != current:
                raise BoundaryReject(
                    REJ_OTHER,
                    f"{name}({tag}) cannot change in a replace: the request asks for "
                    f"{_shown(text)}; cancel the order and send a new one",
                )

    def _status(self, session: Session, msg: Message, now: float) -> None:
        self.submit(OrderStatusRequest(
            int(now * 1e9), session.config.name, _text(msg, 11), _text(msg, 55),
            _SIDES.get(msg.get(54) or b"", Side.BUY),
        ), now)  # fmt: skip

    def _mass_cancel(self, session: Session, msg: Message, now: float) -> None:
        scope = _MASS_SCOPES.get(msg.get(530) or b"")
        if scope is None:
            self.reports.mass_cancel_reject_now(
                session, _text(msg, 11), msg.get(530) or b"", now,
                "MassCancelRequestType(530) must be 1 (by symbol) or 7 (all orders)")
            return
        symbol = _text(msg, 55) or None
        if scope is MassCancelScope.SYMBOL and symbol is None:
            self.reports.mass_cancel_reject_now(
                session, _text(msg, 11), b"1", now, "Symbol(55) required to cancel by symbol")
            return
        if symbol is not None and symbol not in self.instruments:
            self.reports.mass_cancel_reject_now(
                session, _text(msg, 11), msg.get(530) or b"1", now, f"Unknown symbol {symbol!r}",
                reason=1)  # MassCancelRejectReason 1: invalid or unknown security
            return
        self.submit(MassCancel(int(now * 1e9), session.config.name, _text(msg, 11), scope,
                               symbol), now)

    # --- field conversions ------------------------------------------------------------

    @staticmethod
    def _price(scale: PriceScale, text: bytes | None, name: str) -> int | None:
        if text is None:
            return None
        ticks = scale.to_ticks(text)
        if ticks is None:
            raise BoundaryReject(
                REJ_INVALID_PRICE_INCREMENT,
                f"{name} {_shown(text)} is not a multiple of the tick size "
                f"{scale.to_text(1).decode()}",
            )
        if not -MAX_PRICE_TICKS <= ticks <= MAX_PRICE_TICKS:
            raise BoundaryReject(
                REJ_OTHER,
                f"{name} {_shown(text)} is outside the venue's price range "
                f"(at most {scale.to_text(MAX_PRICE_TICKS).decode()} in absolute value)",
            )
        return ticks

    @staticmethod
    def _optional_qty(text: bytes | None, name: str) -> int:
        if text is None:
            return 0
        qty = parse_quantity(text)
        if qty is None or not 0 <= qty <= MAX_ORDER_QTY:
            raise BoundaryReject(REJ_INCORRECT_QUANTITY,
                                 f"{name} must be a whole number from 0 to {MAX_ORDER_QTY}")
        return qty

    @staticmethod
    def _expire_time(text: bytes | None) -> int | None:
        if text is None:
            return None
        seconds = parse_timestamp(text)
        if seconds is None:
            raise BoundaryReject(REJ_OTHER, "ExpireTime(126) is not a UTCTimestamp")
        return round(seconds * 1e9)

    # --- recovery -------------------------------------------------------------------

    def recover(self, entries: Iterable[Entry], now: float) -> int:
        """Replay the journal into the engine; store reports a crash lost.

        Reports of committed batches are in the session stores. For the last,
        uncommitted batch each session's reports were written by one write
        (all or nothing): if a session's store lacks its first report of that
        batch, all of that session's reports of the batch are stored now, and
        its client gets them by ResendRequest when it logs on. The ExecutionReports
        stored again are handed forward in the batch, like any others, for the
        drop-copy stage (which copies those its stream lacks).
        """
        replayed = 0
        pending: list[_Replayed] = []  # per command: reports are written per command
        for entry in entries:
            events = self.engine.process(entry.command)
            replayed += 1
            if not entry.committed:
                pending.append(_Replayed(entry.command, events))
        if pending:
            self._restore_lost_reports(pending, now)
        return replayed

    def _restore_lost_reports(self, batch: list[_Replayed], now: float) -> None:
        # Render the batch's reports without sending, to see what each session should hold.
        capture = _CapturingSessions()
        # The stand-ins take only what ReportWriter calls on a session (send_rendered).
        probe = ReportWriter(cast("Callable[[str], Session | None]", capture.get), self.scales)
        for replayed in batch:
            probe.on_events(replayed.command, replayed.events, now)
        reports = self.batch.reports
        for name, bodies in capture.sent.items():
            session = self.reports.session_named(name)
            if session is None or _store_has(session, bodies[0]):
                continue
            log.warning("event=recovered_reports session=%s count=%d", name, len(bodies))
            for msg_type, body in bodies:
                raw = session.send_rendered(msg_type, body, now)
                if msg_type == ER and reports is not None:
                    reports.append((session, body, raw))


@dataclass(frozen=True, slots=True)
class _Replayed:
    """A command replayed from the journal and its events."""

    command: Command
    events: list[Event]


def _text(msg: Message, tag: int) -> str:
    return (msg.get(tag) or b"").decode("latin-1")


_SHOWN = 40  # characters of a refused value quoted in Text(58)


def _shown(value: bytes) -> str:
    """A refused value for Text(58): a peer's 60,000 digits are not worth echoing."""
    text = value.decode("latin-1")
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}... ({len(text)} characters)"


class _CapturingSessions:
    """Stands in for sessions during recovery: records what would be sent."""

    def __init__(self) -> None:
        self.sent: dict[str, list[tuple[bytes, bytes]]] = {}

    def get(self, name: str) -> _Capture:
        return _Capture(self.sent.setdefault(name, []))


class _Capture:
    def __init__(self, sink: list[tuple[bytes, bytes]]) -> None:
        self._sink = sink

    def send_rendered(self, msg_type: bytes, body: bytes, now: float, extra: bytes = b"") -> bytes:
        self._sink.append((msg_type, body))
        return b""


def _store_has(session: Session, report: tuple[bytes, bytes], depth: int = 2000) -> bool:
    """Whether the session's recent outbound messages include `report`."""
    msg_type, body = report
    parsed = parse_fields(b"35=" + msg_type + b"\x01" + body)
    if parsed is None:
        return False
    wanted = report_signature(msg_type, dict(zip(parsed[0], parsed[1], strict=True)))
    last = session.store.next_sender_seq - 1
    for _, raw in session.store.get_range(max(1, last - depth), last):
        stored = parse_fields(raw)
        if stored is None:
            continue
        fields = dict(zip(stored[0], stored[1], strict=True))
        stored_type = fields.get(35, b"")
        if stored_type in (b"8", CANCEL_REJECT, MASS_CANCEL_REPORT) and \
                report_signature(stored_type, fields) == wanted:
            return True
    return False
