"""Counts taken from the engine's event stream (an `OrderEntry.observers` hook).

Runs once per engine command on the event-loop thread, so it only bumps
dict entries; the collector turns them into metric families at scrape time.
"""

from __future__ import annotations

from engine.types import AdvanceTime, CancelRejected, Command, Event, Rejected


class EngineStats:
    __slots__ = ("cancel_rejects", "events", "order_rejects", "orders")

    def __init__(self) -> None:
        self.events: dict[type, int] = {}  # event class -> events emitted
        self.order_rejects: dict[tuple[str, int], int] = {}  # (session, OrdRejReason 103)
        self.cancel_rejects: dict[tuple[str, int], int] = {}  # (session, CxlRejReason 102)
        self.orders = 0  # order commands processed (everything but AdvanceTime)

    def observe(self, command: Command, events: list[Event], now: float) -> None:
        if command.__class__ is not AdvanceTime:
            self.orders += 1
        counts = self.events
        for event in events:
            cls = event.__class__
            counts[cls] = counts.get(cls, 0) + 1
            if cls is Rejected or cls is CancelRejected:
                rejects = self.order_rejects if cls is Rejected else self.cancel_rejects
                key = (event.session, event.reason)  # type: ignore[union-attr]
                rejects[key] = rejects.get(key, 0) + 1
