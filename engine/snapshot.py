"""The engine's whole state as plain values, and an engine rebuilt from them.

Recovery replays the journal into a fresh engine; without snapshots that
means the venue's whole history at every start (about 15 s per million
commands here). A snapshot is everything `MatchingEngine` holds at one
moment, so recovery can start from it and replay only what came after.

Exact, not approximate: the rebuilt engine holds the same orders (every slot,
the kept done ones included), each price level's queue in the same order, the
same waiting stops, ClOrdID maps, GTD heap, counters and end-of-day boundary,
so it answers every later command with the same events as the engine it was
taken from (tests/test_engine_snapshot.py checks this on random streams).

Plain values only (ints, strings, None, tuples, lists): the result can be
marshalled or written as JSON, and holds no reference into the live engine.
Sans-I/O like the engine; `engine.history` writes and reads the files.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from importlib import import_module
from operator import attrgetter
from typing import Any

import engine as _engine_package
from engine.book import BookSide, Order
from engine.engine import MAX_ICEBERG_SLICES, MatchingEngine
from engine.types import Instrument, OrdStatus, OrdType, Side, StpMode, TimeInForce

FORMAT = 1

# Order slots in a snapshot's order records; the queue links (level, prev, next)
# are rebuilt from the level queues instead.
ORDER_FIELDS = (
    "order_id", "session", "account", "cl_ord_id", "orig_cl_ord_id", "older", "symbol",
    "side", "ord_type", "tif", "price", "stop_price", "qty", "leaves_qty", "cum_qty",
    "cum_value", "displayed", "status", "expire_time", "min_qty", "max_floor",
)  # fmt: skip
_ENUMS = {"side": Side, "ord_type": OrdType, "tif": TimeInForce, "status": OrdStatus}
# A snapshot reads every kept order (100,000 and more): one C call for all slots,
# then the enums as plain ints (marshal takes no IntEnum).
_SLOTS = attrgetter(*ORDER_FIELDS)
_SIDE, _ORD_TYPE, _TIF, _STATUS = (ORDER_FIELDS.index(n) for n in _ENUMS)
_OLDER = ORDER_FIELDS.index("older")
_BY_VALUE: dict[type, dict[int, Any]] = {
    enum: {int(member): member for member in enum} for enum in _ENUMS.values()}


class SnapshotMismatch(ValueError):
    """A snapshot that cannot be restored into an engine built with these settings."""


def take(engine: MatchingEngine) -> dict[str, Any]:
    """Everything the engine holds, as plain values (see the module docstring)."""
    e = engine
    books = {}
    for symbol, book in e._books.items():
        books[symbol] = {
            "bids": _queues(book.bids),
            "asks": _queues(book.asks),
            "stops": sorted(book.stops),
            "last_price": book.last_price,
        }
    return {
        "format": FORMAT,
        "symbols": sorted(e._instruments),
        "stp_mode": int(e._stp),
        "end_of_day": e._end_of_day,
        "done_orders_kept": e._done_kept,
        "next_order_id": e._next_order_id,
        "next_seq": e._seq,
        "next_match_id": e._next_match_id,
        "next_end_of_day": e._next_eod,
        "next_expiry": e._next_expiry,
        "gtd": [list(item) for item in e._gtd],  # heap order, kept as is
        "orders": [_order_record(order) for order in e._orders.values()],
        "done": list(e._done),
        "cl_ord_ids": [[session, list(ids.items())] for session, ids in e._cl_ord_ids.items()],
        "rejected_ids": [list(item) for item in e._rejected_ids],
        "books": books,
    }


def restore(
    snapshot: dict[str, Any], instruments: Iterable[Instrument], stp_mode: StpMode,
    end_of_day: int, *, new_rules: bool = False, max_iceberg_slices: int = MAX_ICEBERG_SLICES,
    engine_type: type[MatchingEngine] | None = None,
) -> MatchingEngine:
    """An engine in exactly the state `snapshot` was taken in.

    `instruments`, `stp_mode` and `end_of_day` come from the configuration, as
    for a fresh engine. Every symbol the snapshot's orders are in must still be
    configured. Once an order was made, the STP mode and end of day must be
    the ones it was taken under, unless `new_rules`: nothing will be replayed
    after the snapshot, so the engine may go on under other rules (a new end of
    day counts from the first command). Otherwise SnapshotMismatch.

    `engine_type`: the pure or the compiled engine; by default `engine.MatchingEngine`,
    the one this process runs.
    """
    if snapshot.get("format") != FORMAT:
        raise SnapshotMismatch(f"unknown snapshot format {snapshot.get('format')!r}")
    engine_type = engine_type or _engine_package.MatchingEngine
    engine = engine_type(instruments, stp_mode, end_of_day=end_of_day,
                         next_order_id=snapshot["next_order_id"],
                         next_seq=snapshot["next_seq"],
                         done_orders_kept=snapshot["done_orders_kept"],
                         max_iceberg_slices=max_iceberg_slices)
    new_order = _order_type(engine)
    missing = sorted(priced_symbols(snapshot) - set(engine._instruments))
    if missing:
        raise SnapshotMismatch(f"instruments in the snapshot are not configured: {missing}")
    same_eod = snapshot["end_of_day"] == end_of_day
    same_rules = snapshot["stp_mode"] == int(engine._stp) and same_eod
    if not same_rules and not new_rules and holds_orders(snapshot):
        raise SnapshotMismatch("the snapshot was taken under another stp_mode or end_of_day")
    engine._next_match_id = snapshot["next_match_id"]
    if same_eod:  # else the next command computes the next end of day afresh
        engine._next_eod = snapshot["next_end_of_day"]
        engine._next_expiry = snapshot["next_expiry"]
    engine._gtd = [(t, i) for t, i in snapshot["gtd"]]
    orders = engine._orders
    for record in snapshot["orders"]:
        order = _order_from(record, new_order)
        orders[order.order_id] = order
    engine._done = deque(snapshot["done"])
    engine._cl_ord_ids = {session: dict((c, i) for c, i in pairs)
                          for session, pairs in snapshot["cl_ord_ids"]}
    engine._rejected_ids = deque((s, c) for s, c in snapshot["rejected_ids"])
    for symbol, saved in snapshot["books"].items():
        book = engine._books.get(symbol)
        if book is None:
            continue  # an instrument no longer configured, which never had an order
        for side, queues in ((book.bids, saved["bids"]), (book.asks, saved["asks"])):
            for order_ids in queues:
                for order_id in order_ids:
                    side.add(orders[order_id])  # FIFO: the queue's order is kept
        for order_id in saved["stops"]:
            book.add_stop(orders[order_id])
        book.last_price = saved["last_price"]
    return engine


def priced_symbols(snapshot: dict[str, Any]) -> set[str]:
    """The symbols of the orders the snapshot keeps (live and done): their prices are
    ticks of those instruments' tick sizes."""
    symbol = ORDER_FIELDS.index("symbol")
    return {record[symbol] for record in snapshot["orders"]}


def holds_orders(snapshot: dict[str, Any]) -> bool:
    """Whether the snapshot remembers any order or ClOrdID (and so depends on the
    instruments' settings)."""
    return bool(snapshot["orders"]) or any(pairs for _, pairs in snapshot["cl_ord_ids"])


def _queues(side: BookSide) -> list[list[int]]:
    """Each level's order ids, front of the queue first, best level first."""
    return [[order.order_id for order in level.orders()] for level in side.levels_in_order()]


def _order_record(order: Order) -> list[Any]:
    record = list(_SLOTS(order))
    record[_SIDE] = int(record[_SIDE])
    record[_ORD_TYPE] = int(record[_ORD_TYPE])
    record[_TIF] = int(record[_TIF])
    record[_STATUS] = int(record[_STATUS])
    if record[_OLDER] is not None:
        record[_OLDER] = list(record[_OLDER])  # a copy: the live order keeps renaming
    return record


def _order_type(engine: MatchingEngine) -> type[Order]:
    """The Order class of the engine's own book: the book module beside the engine's
    (engine.book for the pure engine, engine.compiled.book for the compiled one)."""
    package = type(engine).__module__.rpartition(".")[0]
    order_type: type[Order] = import_module(f"{package}.book").Order
    return order_type


def _order_from(record: list[Any], order_type: type[Order]) -> Order:
    order = order_type()
    for name, value in zip(ORDER_FIELDS, record, strict=True):
        setattr(order, name, value)
    # Members by value from a dict: much cheaper than calling the enum per order.
    order.side = _BY_VALUE[Side][order.side]
    order.ord_type = _BY_VALUE[OrdType][order.ord_type]
    order.tif = _BY_VALUE[TimeInForce][order.tif]
    order.status = _BY_VALUE[OrdStatus][order.status]
    if order.older is not None:
        order.older = list(order.older)
    order.level = order.prev = order.next = None
    return order
