"""The engine's one event stream, fanned out by one mechanism, and the read batch.

After each engine command, `EventStream.publish(command, events, now)` hands
the command and its events to every subscriber, in the order they were
subscribed, all with that one signature. Subscribers come in two lists:

- `stages` answer the command: the ExecutionReports to the owning sessions
  (`ReportWriter.on_events`), then the drop copy of the reports just sent
  (`DropCopyHub.on_events`). An error in one propagates like any error
  handling a message: the connection ends with a Logout, and what the batch
  decided before it is still written ahead.
- `observers` watch it: open-order counts (MaxOpenOrders), surveillance,
  metrics. They must be cheap (append to a buffer, bump a counter), as they
  run on the hot path, and they must never stop trading: an error is logged.

A stage hands its results forward through `Batch`, the one record of what a
read batch produced that must be written ahead before it is spoken: the
sessions that got output (their stores to flush, then their sockets to write)
and the ExecutionReports sent, as framed, for the drop-copy stage. The
gateway's commit reads the batch, flushes, writes and clears it. Nothing here
does I/O; the composition root (`fix_gateway.server`) owns one batch and one
stream and subscribes every consumer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from engine.types import Command, Event
from fix_gateway.session.session import Session

log = logging.getLogger("fixgw.orders")

# (command, its events, now): every consumer of the stream has this signature.
Subscriber = Callable[[Command, list[Event], float], None]


class Batch:
    __slots__ = ("reports", "sessions")

    def __init__(self) -> None:
        self.sessions: set[Session] = set()  # sessions with new output this batch
        # ExecutionReports sent and not yet copied: (session, body, framed), in the
        # order sent; None while no drop copy takes them (nothing is kept).
        self.reports: list[tuple[Session, bytes, bytes]] | None = None


class EventStream:
    __slots__ = ("observers", "stages")

    def __init__(self) -> None:
        self.stages: list[Subscriber] = []  # answer the command; errors propagate
        self.observers: list[Subscriber] = []  # watch the stream; errors are logged

    def publish(self, command: Command, events: list[Event], now: float) -> None:
        for stage in self.stages:
            stage(command, events, now)
        try:
            for observer in self.observers:
                observer(command, events, now)
        except Exception:
            # Metrics and analytics watch the stream; they must never stop trading
            # after the command is journaled and answered.
            log.exception("event=observer_error command=%r", command)
