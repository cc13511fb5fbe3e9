"""Drop copy: every ExecutionReport into the stream, and out to FIX drop-copy sessions.

`DropCopyHub.on_events` is the stage of the event stream after the reports
(fix_gateway/application/event_stream.py): on the order hot path, for each
ExecutionReport an order-entry session was just sent (handed forward in the
read's `Batch`), `copy` appends the report, as framed, to the durable stream
and hands a copy to every drop-copy session that covers it and is caught up.
A drop-copy session that was offline (or is new) catches up in chunks from the
stream on the gateway's tick, then receives copies live.

A copy is the original report's body plus CopyMsgIndicator 797=Y, with the
original session's identity in the header: OnBehalfOfCompID 115 = the
venue's SenderCompID on that session, DeliverToCompID 128 = the client firm
it was sent to. Copies are stored in the drop-copy session's own store, so a
consumer recovers by ResendRequest like any FIX client.

Where a consumer stands (its cursor: the last stream entry it has been given
or that its filter skips) lives in memory; at start it is found again from
the consumer's own store: the ExecID of the last copy stored there, looked up
in the stream. Both are written in the same group commit, so that is exact.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from drop_copy.stream import DropCopyStream, StreamReader
from engine.types import Command, Event
from fix_gateway.application.event_stream import Batch
from fix_gateway.session.session import EventSink, Session
from fix_gateway.utc_time import parse_timestamp

log = logging.getLogger("fixgw.dropcopy")

ER = b"8"
COPY_FLAG = b"797=Y\x01"
CATCH_UP_CHUNK = 2000  # copies per consumer per tick while catching up
RECONCILE_DEPTH = 5000  # stored messages searched for the last copy at start
RECOVERY_DEPTH = 100_000  # stream entries searched for a re-sent report after a crash


class Delivery:
    DAY = "day"  # on logon: everything since the consumer's last copy, or since 00:00 UTC
    LIVE = "live"  # on logon: only what happens from now on


@dataclass(eq=False)
class Consumer:
    """One FIX drop-copy session and what it covers."""

    session: Session
    sessions: frozenset[str] = frozenset()  # order-entry session names or TargetCompIDs

    accounts: frozenset[bytes] = frozenset()  # Account (1) values; empty: all
    delivery: str = Delivery.DAY
    cursor: int | None = None  # last stream seq given (or skipped); None: not yet placed
    live: bool = False  # logged on and caught up: copies go out as they happen

    def covers(self, origin: str, client: str, body: bytes) -> bool:
        """Whether a report sent on session `origin` (to firm `client`) is for us."""
        if self.sessions and origin not in self.sessions and client not in self.sessions:
            return False
        return not self.accounts or field_value(body, b"1") in self.accounts


class DropCopyHub:
    def __init__(self, stream: DropCopyStream, consumers: Iterable[Consumer] = (),
                 batch: Batch | None = None) -> None:
        self.stream = stream
        self.consumers = list(consumers)
        self.batch = batch if batch is not None else Batch()
        if self.batch.reports is None:  # the reports stage keeps what it sends, for us
            self.batch.reports = []
        self.waiting: set[Consumer] = set()  # logged on, catching up from the stream
        self._reader: StreamReader | None = None
        self._recent_exec_ids: set[bytes | None] | None = None  # for copy_if_missing
        self._headers: dict[tuple[bytes, bytes], bytes] = {}  # (sender, target) -> 115/128
        for consumer in self.consumers:
            consumer.cursor = self._find_cursor(consumer)

    @property
    def reader(self) -> StreamReader:
        if self._reader is None:
            self._reader = StreamReader(self.stream.store.directory)
        return self._reader

    # --- the hot path ------------------------------------------------------------

    def on_events(self, command: Command, events: list[Event], now: float) -> None:
        """The event-stream stage: copy the ExecutionReports the command's events
        were just answered with, in the order sent."""
        reports = self.batch.reports
        if reports:
            copy = self.copy
            try:
                for session, body, raw in reports:
                    copy(session, body, raw, now)
            finally:  # copied at most once, even if a copy raised
                reports.clear()

    def copy(self, session: Session, body: bytes, raw: bytes, now: float) -> None:
        """An ExecutionReport (`raw`, with `body`) was just sent on `session`."""
        seq = self.stream.append(raw)
        config = session.config
        for consumer in self.consumers:
            if not consumer.live:
                continue
            if consumer.cursor != seq - 1:  # cannot happen; if it did, catch up instead
                consumer.live = False
                self.waiting.add(consumer)
                continue
            consumer.cursor = seq
            if consumer.covers(config.name, config.target_comp_id, body):
                self._deliver(consumer, self._header(config.sender_comp_id,
                                                     config.target_comp_id), body, now)

    def copy_if_missing(self, session: Session, body: bytes, raw: bytes, now: float) -> None:
        """Recovery: a report lost in a crash is being sent again; copy it unless
        the stream already has it (the stream is written before session stores)."""
        if self._recent_exec_ids is None:
            begin = max(1, self.stream.committed - RECOVERY_DEPTH + 1)
            self._recent_exec_ids = {field_value(r, b"17")
                                     for _, r in self.reader.read(begin, RECOVERY_DEPTH)}
        if field_value(body, b"17") not in self._recent_exec_ids:
            self.copy(session, body, raw, now)

    def recovered(self, now: float) -> None:
        """Recovery is over: copy the reports it stored again (handed forward in the
        batch) that the stream lacks, then drop what `copy_if_missing` needed."""
        reports = self.batch.reports
        if reports:
            try:
                for session, body, raw in reports:
                    self.copy_if_missing(session, body, raw, now)
            finally:
                reports.clear()
        self._recent_exec_ids = None

    def _header(self, sender: str | bytes, target: str | bytes) -> bytes:
        """OnBehalfOfCompID 115 and DeliverToCompID 128 for reports of one session."""
        key = (sender if isinstance(sender, bytes) else sender.encode(),
               target if isinstance(target, bytes) else target.encode())
        header = self._headers.get(key)
        if header is None:
            header = self._headers[key] = b"115=%b\x01128=%b\x01" % key
        return header

    def _deliver(self, consumer: Consumer, header: bytes, body: bytes, now: float) -> None:
        consumer.session.send_rendered(ER, body + COPY_FLAG, now, header)
        self.batch.sessions.add(consumer.session)

    # --- session events -----------------------------------------------------------

    def event_sink(self, consumer: Consumer, inner: EventSink) -> EventSink:
        """Wrap a drop-copy session's event sink to see its logons and disconnects."""

        def sink(event: str, session: Session, fields: dict[str, object]) -> None:
            inner(event, session, fields)
            if event == "logon":
                self.on_logon(consumer)
            elif event == "disconnect":
                consumer.live = False
                self.waiting.discard(consumer)

        return sink

    def on_logon(self, consumer: Consumer) -> None:
        head = self.stream.committed
        if consumer.delivery == Delivery.LIVE or (consumer.cursor is None and head == 0):
            consumer.cursor = self.stream.head
        elif consumer.cursor is None:
            consumer.cursor = self._start_of_day()
        consumer.live = False
        self.waiting.add(consumer)
        log.info("event=dropcopy_logon session=%s from=%d head=%d", consumer.session.config.name,
                 consumer.cursor + 1, self.stream.head)

    def pump(self, now: float, ready: Callable[[Session], bool] = lambda _: True) -> None:
        """Catch up consumers that are behind, a chunk each: called at every commit
        and tick while any is waiting. `ready(session)`: its socket has taken what it
        was given (a consumer is fed at its own pace, not cut off as slow)."""
        for consumer in list(self.waiting):
            session = consumer.session
            if not session.connected or session.close_reason is not None:
                self.waiting.discard(consumer)
                continue
            if ready(session) and not session.resending:
                self._catch_up(consumer, now)

    def _catch_up(self, consumer: Consumer, now: float) -> None:
        assert consumer.cursor is not None
        committed = self.stream.committed
        if consumer.cursor < committed:
            for seq, raw in self.reader.read(consumer.cursor + 1, CATCH_UP_CHUNK):
                if seq > committed:
                    break
                consumer.cursor = seq
                sender, target, body = split_report(raw)
                client = target.decode()
                if consumer.covers(f"{sender.decode()}-{client}", client, body):
                    self._deliver(consumer, self._header(sender, target), body, now)
        # Entries of the batch in progress go out with it once the consumer is live.
        if consumer.cursor >= committed and not self.stream.pending:
            consumer.live = True
            self.waiting.discard(consumer)
            log.info("event=dropcopy_live session=%s seq=%d", consumer.session.config.name,
                     consumer.cursor)

    # --- where a consumer stands ---------------------------------------------------

    def _find_cursor(self, consumer: Consumer) -> int | None:
        """The stream seq of the last copy in the consumer's store, if any."""
        store = consumer.session.store
        last = store.next_sender_seq - 1
        exec_id = None
        for _, raw in store.get_range(max(1, last - RECONCILE_DEPTH), last):
            if b"\x01797=Y\x01" in raw:
                exec_id = field_value(raw, b"17")
        if exec_id is None:
            return None
        head = self.stream.committed
        end = head
        while end > 0:
            begin = max(1, end - CATCH_UP_CHUNK + 1)
            for seq, raw in reversed(self.reader.read(begin, end - begin + 1)):
                if field_value(raw, b"17") == exec_id:
                    return seq
            end = begin - 1
        log.warning("event=dropcopy_cursor_lost session=%s exec_id=%s",
                    consumer.session.config.name, exec_id.decode())
        return None

    def _start_of_day(self) -> int:
        """The last stream seq before today (UTC): entries are in time order."""
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        cutoff = midnight.timestamp()
        reader = self.reader

        class _Times:
            def __len__(self) -> int:
                return reader.head()

            def __getitem__(self, i: int) -> float:
                entry = reader.read(i + 1, 1)
                return parse_timestamp(field_value(entry[0][1], b"52") or b"") or 0.0

        return bisect_left(_Times(), cutoff)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


def field_value(message: bytes, tag: bytes) -> bytes | None:
    """The first value of `tag` in a tag=value message (after its first field)."""
    key = b"\x01" + tag + b"="
    start = message.find(key)
    if start < 0:
        return None
    start += len(key)
    return message[start : message.index(b"\x01", start)]


def split_report(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """(SenderCompID, TargetCompID, body) of a report framed by `Session.send_rendered`:
    its header ends with 56, and the body runs up to the CheckSum."""
    sender = field_value(raw, b"49") or b""
    target_at = raw.index(b"\x0156=") + 4
    body_at = raw.index(b"\x01", target_at) + 1
    return sender, raw[target_at : body_at - 1], raw[body_at : raw.rindex(b"10=")]
