"""Engine events -> FIX 4.4 messages for the sessions that own the orders.

`ReportWriter.on_events`, the first stage of the event stream
(event_stream.py), turns the events of one engine command into the messages
they announce (an ExecutionReport per order side, an OrderCancelReject, an
OrderMassCancelReport) and sends them through the owning session, which stores
them before they go out; it hands forward, in the read's `Batch`, the sessions
it gave output to and the ExecutionReports as framed (for drop copy). ExecIDs
come from the event's engine sequence number, so they are unique across
restarts.

Only FIX 4.4 values go out (QuickFIX with its default validation refuses
anything else): a stop waiting for its trigger is New (39=0), its trigger is a
restatement (150=D, 378=99, 58=stop triggered). An order that ends within the
command that entered it without a fill (market into an empty book, IOC or FOK
with nothing executable, MinQty not met) gets its Canceled report only, not a
New first: the rule is a function of the command's events alone, so recovery,
which rebuilds reports from replayed events, writes the same reports.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.types import (
    Accepted,
    Cancelled,
    CancelRejected,
    Command,
    Event,
    Expired,
    MassCancelReport,
    OrderState,
    OrdStatus,
    Rejected,
    Replaced,
    StatusReport,
    Trade,
    Triggered,
)
from fix_gateway.application.event_stream import Batch
from fix_gateway.application.prices import PriceScale
from fix_gateway.codec import FieldValue, render
from fix_gateway.session.session import Session
from fix_gateway.utc_time import format_timestamp

ORD_STATUS: dict[int, bytes] = {
    OrdStatus.NEW: b"0",
    OrdStatus.PARTIALLY_FILLED: b"1",
    OrdStatus.FILLED: b"2",
    OrdStatus.CANCELED: b"4",
    OrdStatus.REJECTED: b"8",
    # A stop waiting for its trigger is accepted and working: New, as its ExecType says.
    OrdStatus.PENDING_NEW: b"0",
    OrdStatus.EXPIRED: b"C",
}
SIDE = {1: b"1", 2: b"2"}
ORD_TYPE = {1: b"1", 2: b"2", 3: b"3", 4: b"4"}
TIF = {0: b"0", 1: b"1", 3: b"3", 4: b"4", 6: b"6"}
ADDED_LIQUIDITY = b"1"
REMOVED_LIQUIDITY = b"2"

# OrdRejReason (103) values FIX 4.4 defines; any other (18, invalid price increment, is
# FIX 5.0's) goes out as 99 Other, its Text saying what was wrong.
FIX44_ORD_REJ_REASONS = frozenset((*range(16), 99))

# The trigger of a stop, in FIX 4.4 values (150=L is FIX 5.0's).
TRIGGERED_TAIL = b"378=99\x0158=stop triggered\x01"

ER = b"8"
CANCEL_REJECT = b"9"
MASS_CANCEL_REPORT = b"r"


_ER_BODY = (
    b"37=%d\x0111=%b\x01%b17=%b\x01150=%b\x0139=%b\x01%b55=%b\x0154=%b\x0138=%d\x01"
    b"40=%b\x01%b%b151=%d\x0114=%d\x016=%b\x0160=%b\x01%b"
)

_last_ts = -1
_last_ts_text = b""


def transact_time(ts: int) -> bytes:
    """TransactTime for an event time in ns; a command's events share one."""
    global _last_ts, _last_ts_text
    if ts != _last_ts:
        _last_ts_text = format_timestamp(ts / 1e9)
        _last_ts = ts
    return _last_ts_text


class ReportWriter:
    def __init__(
        self, sessions: Callable[[str], Session | None], scales: dict[str, PriceScale],
        batch: Batch | None = None,
    ) -> None:
        self._session = sessions
        self.scales = scales
        self.batch = batch if batch is not None else Batch()
        self._out = self.batch.sessions  # the batch's sessions with new output
        # OrderCancelRejects sent without an engine event (CxlRejReason 99), by session.
        self.boundary_cancel_rejects: dict[str, int] = {}
        self._handlers: dict[type, Callable[[Event, float], None]] = {
            Accepted: self._accepted,  # type: ignore[dict-item]
            Rejected: self._rejected,  # type: ignore[dict-item]
            Trade: self._trade,  # type: ignore[dict-item]
            Cancelled: self._cancelled,  # type: ignore[dict-item]
            Replaced: self._replaced,  # type: ignore[dict-item]
            Expired: self._expired,  # type: ignore[dict-item]
            Triggered: self._triggered,  # type: ignore[dict-item]
            CancelRejected: self._cancel_rejected,  # type: ignore[dict-item]
            StatusReport: self._status,  # type: ignore[dict-item]
            MassCancelReport: self._mass_cancel_report,  # type: ignore[dict-item]
        }

    def write(self, event: Event, now: float) -> None:
        self._handlers[type(event)](event, now)

    def on_events(self, command: Command, events: list[Event], now: float) -> None:
        """The reports of one command's events (see the module docstring)."""
        handlers = self._handlers
        if len(events) == 1:  # the everyday resting order: nothing to hold back
            event = events[0]
            handlers[type(event)](event, now)
            return
        silent = ended_unfilled(events)
        for event in events:
            if silent and isinstance(event, Accepted | Triggered) \
                    and event.order.order_id in silent:
                continue
            handlers[type(event)](event, now)

    # --- one handler per event type ---------------------------------------------------

    def _accepted(self, ev: Accepted, now: float) -> None:
        self._order_report(ev.order, b"%d" % ev.seq, b"0", ev.ts, now)

    def _trade(self, ev: Trade, now: float) -> None:
        scale = self.scales[ev.symbol]
        last_px = scale.to_text(ev.price)
        for order, suffix, liquidity in (
            (ev.aggressor, b"-1", REMOVED_LIQUIDITY),
            (ev.resting, b"-2", ADDED_LIQUIDITY),
        ):
            fill = b"32=%d\x0131=%b\x01851=%b\x01" % (ev.qty, last_px, liquidity)
            self._order_report(order, b"%d%b" % (ev.seq, suffix), b"F", ev.ts, now, fill)

    def _cancelled(self, ev: Cancelled, now: float) -> None:
        self._order_report(ev.order, b"%d" % ev.seq, b"4", ev.ts, now, text=ev.reason)

    def _replaced(self, ev: Replaced, now: float) -> None:
        self._order_report(ev.order, b"%d" % ev.seq, b"5", ev.ts, now)

    def _expired(self, ev: Expired, now: float) -> None:
        self._order_report(ev.order, b"%d" % ev.seq, b"C", ev.ts, now)

    def _triggered(self, ev: Triggered, now: float) -> None:
        self._order_report(ev.order, b"%d" % ev.seq, b"D", ev.ts, now, tail=TRIGGERED_TAIL)

    def _rejected(self, ev: Rejected, now: float) -> None:
        session = self._session(ev.session)
        if session is None:
            return
        scale = self.scales.get(ev.symbol)
        body: list[tuple[int, FieldValue]] = [
            (37, b"NONE"), (11, ev.cl_ord_id), (17, b"%d" % ev.seq), (150, b"8"), (39, b"8"),
            (103, ev.reason if ev.reason in FIX44_ORD_REJ_REASONS else 99),
        ]  # fmt: skip
        if ev.account:
            body.append((1, ev.account))
        body += [(55, ev.symbol), (54, SIDE[ev.side]), (38, ev.qty), (40, ORD_TYPE[ev.ord_type])]
        if ev.price is not None and scale is not None:
            body.append((44, scale.to_text(ev.price)))
        body += [(151, 0), (14, 0), (6, 0), (60, transact_time(ev.ts)), (58, ev.text)]
        self._send(session, ER, body, now)

    def _status(self, ev: StatusReport, now: float) -> None:
        if ev.order is not None:
            self._order_report(ev.order, b"%d" % ev.seq, b"I", ev.ts, now,
                               cl_ord_id=ev.cl_ord_id)
            return
        session = self._session(ev.session)
        if session is None:
            return
        self._send(session, ER, [
            (37, b"NONE"), (11, ev.cl_ord_id), (17, b"%d" % ev.seq), (150, b"I"), (39, b"8"),
            (103, 5), (55, ev.symbol), (54, SIDE[ev.side]), (38, 0), (151, 0), (14, 0), (6, 0),
            (60, transact_time(ev.ts)), (58, "Unknown order"),
        ], now)  # fmt: skip

    def _cancel_rejected(self, ev: CancelRejected, now: float) -> None:
        session = self._session(ev.session)
        if session is None:
            return
        status = ORD_STATUS[ev.status] if ev.status is not None else b"8"
        order_id = b"%d" % ev.order_id if ev.order_id is not None else b"NONE"
        self._send(session, CANCEL_REJECT, [
            (37, order_id), (11, ev.cl_ord_id), (41, ev.orig_cl_ord_id), (39, status),
            (434, ev.response_to), (102, ev.reason), (60, transact_time(ev.ts)), (58, ev.text),
        ], now)  # fmt: skip

    def _mass_cancel_report(self, ev: MassCancelReport, now: float) -> None:
        session = self._session(ev.session)
        if session is None:
            return
        body: list[tuple[int, FieldValue]] = [
            (37, b"MC%d" % ev.seq), (11, ev.cl_ord_id), (530, int(ev.scope)),
            (531, int(ev.scope)), (533, ev.cancelled),
        ]  # fmt: skip
        if ev.symbol:
            body.append((55, ev.symbol))
        body.append((60, transact_time(ev.ts)))
        self._send(session, MASS_CANCEL_REPORT, body, now)

    # --- answers that need no engine event (no ExecID) ------------------------------

    def cancel_reject_now(
        self, session: Session, cl_ord_id: str, orig_cl_ord_id: str, text: str, now: float,
        response_to: int, order: OrderState | None = None,
    ) -> None:
        """OrderCancelReject for a request refused at the FIX boundary; `order` is
        the order it named, when known (its id and status go in 37 and 39)."""
        order_id = b"%d" % order.order_id if order is not None else b"NONE"
        status = ORD_STATUS[order.status] if order is not None else b"8"
        counts = self.boundary_cancel_rejects
        counts[session.config.name] = counts.get(session.config.name, 0) + 1
        self._send(session, CANCEL_REJECT, [
            (37, order_id), (11, cl_ord_id), (41, orig_cl_ord_id), (39, status),
            (434, response_to), (102, 99), (60, format_timestamp(now)), (58, text),
        ], now)  # fmt: skip

    def mass_cancel_reject_now(
        self, session: Session, cl_ord_id: str, request_type: bytes, now: float, text: str,
        reason: int = 99,
    ) -> None:
        """OrderMassCancelReport with MassCancelResponse 0 (request rejected)."""
        self._send(session, MASS_CANCEL_REPORT, [
            (37, b"NONE"), (11, cl_ord_id), (530, request_type), (531, b"0"),
            (532, reason), (60, format_timestamp(now)), (58, text),
        ], now)  # fmt: skip

    def session_named(self, name: str) -> Session | None:
        return self._session(name)

    # --- building blocks -----------------------------------------------------------

    def _order_report(
        self,
        order: OrderState,
        exec_id: bytes,
        exec_type: bytes,
        ts: int,
        now: float,
        fill: bytes = b"",
        text: str | None = None,
        cl_ord_id: str | None = None,
        tail: bytes = b"",
    ) -> None:
        """One ExecutionReport for `order`, rendered with a single %-format
        (this runs for every order, often twice)."""
        session = self._session(order.session)
        if session is None:
            return
        scale = self.scales[order.symbol]
        optional = b""  # the fields that only some orders have, in their places
        if order.price is not None:
            optional += b"44=%b\x01" % scale.to_text(order.price)
        if order.stop_price is not None:
            optional += b"99=%b\x01" % scale.to_text(order.stop_price)
        optional += b"59=%b\x01" % TIF[order.tif]
        if order.expire_time is not None:
            optional += b"126=%b\x01" % transact_time(order.expire_time)
        if order.min_qty:
            optional += b"110=%d\x01" % order.min_qty
        if order.max_floor:
            optional += b"111=%d\x01" % order.max_floor
        orig = order.orig_cl_ord_id
        body = _ER_BODY % (
            order.order_id,
            (cl_ord_id or order.cl_ord_id).encode("latin-1"),
            b"41=%b\x01" % orig.encode("latin-1") if orig and cl_ord_id is None else b"",
            exec_id,
            exec_type,
            ORD_STATUS[order.status],
            b"1=%b\x01" % order.account.encode("latin-1") if order.account else b"",
            order.symbol.encode("latin-1"),
            SIDE[order.side],
            order.qty,
            ORD_TYPE[order.ord_type],
            optional,
            fill,
            order.leaves_qty,
            order.cum_qty,
            scale.average(order.cum_value, order.cum_qty) if order.cum_qty else b"0",
            transact_time(ts),
            b"58=%b\x01" % text.encode("latin-1") if text else tail,
        )
        raw = session.send_rendered(ER, body, now)
        self._out.add(session)
        reports = self.batch.reports
        if reports is not None:
            reports.append((session, body, raw))

    def _send(
        self, session: Session, msg_type: bytes, body: list[tuple[int, FieldValue]], now: float
    ) -> None:
        rendered = render(body)
        raw = session.send_rendered(msg_type, rendered, now)
        self._out.add(session)
        reports = self.batch.reports
        if msg_type == ER and reports is not None:
            reports.append((session, rendered, raw))


def ended_unfilled(events: list[Event]) -> set[int]:
    """Ids of the orders accepted by this command and cancelled by it without a fill
    (not at a client's request): their Accepted and Triggered events are not reported."""
    accepted = {ev.order.order_id for ev in events if type(ev) is Accepted}
    if not accepted:
        return accepted
    return {
        ev.order.order_id for ev in events
        if type(ev) is Cancelled and ev.request_cl_ord_id is None and not ev.order.cum_qty
        and ev.order.order_id in accepted
    }


def report_signature(msg_type: bytes, fields: dict[int, bytes]) -> bytes | None:
    """What identifies a stored report: its ExecID, or its type and ClOrdID."""
    if msg_type == ER:
        return fields.get(17)
    if msg_type in (CANCEL_REJECT, MASS_CANCEL_REPORT):
        cl_ord_id = fields.get(11)
        return msg_type + b":" + cl_ord_id if cl_ord_id is not None else None
    return None
