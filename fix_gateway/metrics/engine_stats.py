"""Counts taken from the engine's event stream (an `EventStream` observer).

Runs once per engine command on the event-loop thread, so it only bumps
dict entries; the collector turns them into metric families at scrape time.
"""

from __future__ import annotations

from engine.types import (
    CancelOrder,
    CancelRejected,
    Command,
    Event,
    MassCancel,
    NewOrder,
    OrderStatusRequest,
    Rejected,
    RejectOrder,
    ReplaceOrder,
)

# The FIX MsgType each order command answers (a RejectOrder is a refused D).
COMMAND_MSG_TYPES: dict[type, str] = {
    NewOrder: "D", RejectOrder: "D", CancelOrder: "F", ReplaceOrder: "G",
    OrderStatusRequest: "H", MassCancel: "q",
}


class EngineStats:
    __slots__ = ("batch", "cancel_rejects", "events", "order_rejects", "orders")

    def __init__(self) -> None:
        self.events: dict[type, int] = {}  # event class -> events emitted
        self.order_rejects: dict[tuple[str, int], int] = {}  # (session, OrdRejReason 103)
        self.cancel_rejects: dict[tuple[str, int], int] = {}  # (session, CxlRejReason 102)
        self.orders = 0  # order commands processed (everything but AdvanceTime)
        # MsgType -> order commands since the read batch began (cleared per batch), so
        # the ack latency of new orders is not mixed with that of cancels.
        self.batch: dict[str, int] = {}

    def observe(self, command: Command, events: list[Event], now: float) -> None:
        msg_type = COMMAND_MSG_TYPES.get(command.__class__)
        if msg_type is not None:
            self.orders += 1
            batch = self.batch
            batch[msg_type] = batch.get(msg_type, 0) + 1
        counts = self.events
        for event in events:
            cls = event.__class__
            counts[cls] = counts.get(cls, 0) + 1
            if isinstance(event, (Rejected, CancelRejected)):
                rejects = self.order_rejects if cls is Rejected else self.cancel_rejects
                key = (event.session, event.reason)
                rejects[key] = rejects.get(key, 0) + 1
