"""Columnar buffers of the engine event stream, fed on the hot path.

`EventColumns.observe` is an `EventStream` observer: per command it
appends one row for the command and one row per trade or voluntary cancel,
all plain ints (interned account and symbol ids), into one growable
`array('q')` -- one `extend` call per row, nothing else. `take()` swaps the
array out in O(1); the copy into NumPy columns (`Batch`) happens wherever the
caller runs it (the live monitor: in a worker thread).

A row is (ts, kind, acct, acct2, sym, side, price, qty, oid, oid2):
- command rows (kind < TRADE): the account that sent it (an order's Account,
  or the sending session when Account is empty), symbol (-1 if none), side,
  price and quantity as sent;
- TRADE: acct/oid the aggressor, acct2/oid2 the resting order, side the
  aggressor's side, price and quantity of the fill;
- CANCELLED: an order taken off the book on request (cancel, mass cancel,
  replace below filled), with its price and the quantity that was left.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from engine.types import (
    Cancelled,
    CancelOrder,
    Command,
    Event,
    MassCancel,
    NewOrder,
    OrderStatusRequest,
    RejectOrder,
    ReplaceOrder,
    Trade,
)

# Row kinds. Command kinds first: every command row is one inbound message.
NEW, CANCEL, REPLACE, STATUS, MASS_CANCEL, REJECT, TRADE, CANCELLED = range(8)
ORDER_MESSAGES = (NEW, CANCEL, REPLACE, MASS_CANCEL)  # counted by order-to-trade
NCOL = 10
TS, KIND, ACCT, ACCT2, SYM, SIDE, PRICE, QTY, OID, OID2 = range(NCOL)
_KINDS = {NewOrder: NEW, CancelOrder: CANCEL, ReplaceOrder: REPLACE,
          OrderStatusRequest: STATUS, MassCancel: MASS_CANCEL, RejectOrder: REJECT}


class Batch(NamedTuple):
    """Rows as int64 columns (shape (NCOL, n)) plus the names behind the ids."""

    cols: np.ndarray
    accounts: list[str]
    symbols: list[str]

    def __len__(self) -> int:
        return int(self.cols.shape[1])

    @classmethod
    def from_rows(cls, rows: array[int] | np.ndarray, accounts: list[str],
                  symbols: list[str]) -> Batch:
        flat = np.frombuffer(rows, dtype=np.int64) if isinstance(rows, array) else rows
        return cls(np.ascontiguousarray(flat.reshape(-1, NCOL).T), accounts, symbols)

    def concat(self, other: Batch) -> Batch:
        return Batch(np.concatenate([self.cols, other.cols], axis=1), other.accounts,
                     other.symbols)

    def since(self, ts_ns: int) -> Batch:
        """The rows at or after `ts_ns` (rows are in time order)."""
        start = int(np.searchsorted(self.cols[TS], ts_ns, side="left"))
        return Batch(self.cols[:, start:], self.accounts, self.symbols)


class Interner:
    """Strings to dense ids; `names` only grows, so a snapshot of it stays valid."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []

    def __call__(self, name: str) -> int:
        ident = self.ids.get(name)
        if ident is None:
            ident = self.ids[name] = len(self.names)
            self.names.append(name)
        return ident


class EventColumns:
    def __init__(self) -> None:
        self.accounts = Interner()
        self.symbols = Interner()
        self._rows = array("q")
        # Cancels and replaces carry no Account: the session's last one stands in.
        self._session_account: dict[str, int] = {}

    def observe(self, command: Command, events: list[Event], now: float) -> None:
        kind = _KINDS.get(type(command))
        if kind is None:
            return  # AdvanceTime: the clock, not a message
        extend = self._rows.extend
        session = command.session  # type: ignore[union-attr]
        if kind == NEW or kind == REJECT:  # noqa: SIM109 -- two int compares, no tuple
            name = command.account or session  # type: ignore[union-attr]
            acct = self.accounts.ids.get(name)
            if acct is None:
                acct = self.accounts(name)
            self._session_account[session] = acct
        else:
            acct = self._session_account.get(session)
            if acct is None:
                acct = self._session_account[session] = self.accounts(session)
        if kind == NEW:
            c: NewOrder = command  # type: ignore[assignment]
            sym = self.symbols.ids.get(c.symbol)
            extend((c.ts, NEW, acct, -1, self.symbols(c.symbol) if sym is None else sym,
                    c.side, c.price or 0, c.qty, 0, 0))
            if len(events) == 1:
                return  # accepted or rejected, nothing else: the command row says it all
        else:
            symbol = getattr(command, "symbol", None)
            extend((command.ts, kind, acct, -1, -1 if symbol is None else self.symbols(symbol),
                    getattr(command, "side", 0), getattr(command, "price", None) or 0,
                    getattr(command, "qty", 0), 0, 0))
        for event in events:
            if type(event) is Trade:
                agg = event.aggressor
                rest = event.resting
                extend((event.ts, TRADE, self.accounts(agg.account or agg.session),
                        self.accounts(rest.account or rest.session), self.symbols(event.symbol),
                        agg.side, event.price, event.qty, agg.order_id, rest.order_id))
            elif type(event) is Cancelled and event.request_cl_ord_id is not None:
                o = event.order
                extend((event.ts, CANCELLED, self.accounts(o.account or o.session), -1,
                        self.symbols(o.symbol), o.side, o.price or 0, o.qty - o.cum_qty,
                        o.order_id, 0))

    def __len__(self) -> int:
        return len(self._rows) // NCOL

    def drop_partial_row(self) -> None:
        """After a failed `observe`: cut a row that was only partly appended."""
        rows = self._rows
        del rows[len(rows) - len(rows) % NCOL:]

    def take(self) -> tuple[array[int], list[str], list[str]]:
        """Hand over the rows so far (O(1)); convert them with `Batch.from_rows`."""
        rows, self._rows = self._rows, array("q")
        return rows, self.accounts.names[:], self.symbols.names[:]

    def batch(self) -> Batch:
        return Batch.from_rows(*self.take())


def columns_from(commands: Iterable[tuple[Command, list[Event]]]) -> Batch:
    """Rows for (command, events) pairs, e.g. a journal replayed through an engine."""
    cols = EventColumns()
    for command, events in commands:
        cols.observe(command, events, 0.0)
    return cols.batch()

