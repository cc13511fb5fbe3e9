"""MaxOpenOrders: a session's live orders, counted from the engine's event stream.

`OpenOrders` keeps, per session, the ids of its orders that are live (resting
or a waiting stop): every event that carries an order snapshot (Accepted,
Trade, Cancelled, Replaced, Expired, Triggered) adds the order when it has
quantity left and removes it otherwise, so the count is exact whatever ended
the order. It starts from the engine's state after recovery, then follows the
stream as an observer of `OrderEntry.stream`. A NewOrderSingle that would take
a session past its limit becomes an ExecutionReport reject (150=8, 39=8, 103=3
"order exceeds limit") with a Text saying so.
"""

from __future__ import annotations

from engine.engine import MatchingEngine
from engine.types import (
    Accepted,
    Cancelled,
    Command,
    Event,
    Expired,
    NewOrder,
    OrderState,
    Replaced,
    Trade,
    Triggered,
)
from fix_gateway.application.order_entry import BoundaryReject, OrderEntry
from fix_gateway.session.session import Session

REJ_ORDER_EXCEEDS_LIMIT = 3  # OrdRejReason(103)
_SNAPSHOT_EVENTS = (Accepted, Cancelled, Replaced, Expired, Triggered)


class OpenOrders:
    def __init__(self, engine: MatchingEngine) -> None:
        self.live: dict[str, set[int]] = {}
        for order in engine.open_orders():
            self.live.setdefault(order.session, set()).add(order.order_id)

    @classmethod
    def install(cls, order_entry: OrderEntry) -> OpenOrders:
        counter = cls(order_entry.engine)
        order_entry.stream.observers.append(counter.observe)
        order_entry.order_checks.append(counter.check)
        return counter

    def count(self, session: str) -> int:
        return len(self.live.get(session, ()))

    def observe(self, command: Command, events: list[Event], now: float) -> None:
        for event in events:
            if type(event) is Trade:
                self._update(event.aggressor)
                self._update(event.resting)
            elif isinstance(event, _SNAPSHOT_EVENTS):
                self._update(event.order)

    def _update(self, order: OrderState) -> None:
        live = self.live.get(order.session)
        if live is None:
            live = self.live[order.session] = set()
        if order.leaves_qty > 0:
            live.add(order.order_id)
        else:
            live.discard(order.order_id)

    def check(self, session: Session, order: NewOrder) -> None:
        """Raise BoundaryReject when `order` would exceed the session's MaxOpenOrders."""
        limit = session.config.max_open_orders
        if limit is not None and len(self.live.get(order.session, ())) >= limit:
            raise BoundaryReject(REJ_ORDER_EXCEEDS_LIMIT,
                                 f"MaxOpenOrders exceeded: {limit} open orders already")
