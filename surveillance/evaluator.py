"""Incremental live evaluation: each interval, only the windows new rows can touch.

An alert of a given type at time T depends only on rows in
[T - past, T + future] (`reach`): e.g. an order-to-trade window starting at T
needs its own `window_s` and the bucket before it (to tell that the alert
starts there). New rows from `t_new` on can therefore only create alerts
with T >= t_new - future, and those need rows from t_new - (past + future)
on: the `horizon`. Each interval the detectors run over the rows since
`t_new - horizon` only, and keep the alerts whose whole reach lies in them;
the alerts they find again that an earlier interval delivered are dropped by
the sink (exactly once). The only state carried further back is each
symbol's last trade (the price a later sweep moves from).

With no new rows nothing can change: no evaluation at all.
"""

from __future__ import annotations

from array import array

import numpy as np

from surveillance.alerts import Alert, ns_to_time
from surveillance.columns import KIND, SYM, TRADE, TS, Batch
from surveillance.detectors import SECOND, run_detectors
from surveillance.ops import make_ops
from surveillance.settings import SurveillanceSettings


def reach_past(settings: SurveillanceSettings) -> dict[str, int]:
    """Per alert type, how far before its time the rows it depends on start (ns)."""
    return {
        # the window before it: to tell a new alert from one already running
        "order_to_trade": settings.order_to_trade.step_s * SECOND,
        # the second before and that second's baseline
        "message_burst": (settings.message_burst.baseline_s + 1) * SECOND,
    }


def horizon_ns(settings: SurveillanceSettings) -> int:
    """past + future reach of the widest detector: rows older than this before the
    first new row cannot change any alert."""
    s = settings
    return SECOND * max(
        s.order_to_trade.step_s + s.order_to_trade.window_s,
        s.message_burst.baseline_s + 2,
        2 * s.spoofing.window_s,
        s.price_move.reversal_window_s + 1,
    )


def last_trades(batch: Batch, before_ns: int) -> Batch:
    """Each symbol's last trade, stamped just before `before_ns` so the grids do not
    stretch back to it: it only supplies the price a later sweep moves from."""
    cols = batch.cols
    trades = np.flatnonzero(cols[KIND] == TRADE)
    if not len(trades):
        return Batch(cols[:, :0], batch.accounts, batch.symbols)
    sym = cols[SYM, trades][::-1]
    _, first_in_reverse = np.unique(sym, return_index=True)
    rows = np.sort(trades[len(trades) - 1 - first_in_reverse])
    carried = cols[:, rows].copy()
    carried[TS] = np.maximum(carried[TS], before_ns - 1)
    return Batch(carried, batch.accounts, batch.symbols)


class Evaluator:
    """The live detectors' state: the recent rows (kept `retention_s`) and the last
    trade per symbol before them. Runs wherever the monitor puts it (a worker
    process or thread), one call at a time."""

    def __init__(self, settings: SurveillanceSettings) -> None:
        self.settings = settings
        self.ops = make_ops(settings.backend)
        self.history: Batch | None = None  # rows in time order
        self.carry: Batch | None = None  # last trades per symbol before `history`
        self.evaluated_rows = 0  # rows the detectors saw in the last evaluation
        self._past = reach_past(settings)
        self._horizon = horizon_ns(settings)
        self._keep = max(self._horizon, settings.retention_s * SECOND)

    def analyse(self, rows: array[int] | bytes, accounts: list[str],
                symbols: list[str]) -> tuple[list[Alert], int | None]:
        """Add the new rows; return the alerts they may have created, and the time (ns)
        before which no later call reports an alert (the sink may forget those)."""
        new = Batch.from_rows(np.frombuffer(rows, dtype=np.int64), accounts, symbols)
        if not len(new):
            return [], None
        history = new if self.history is None else self.history.concat(new)
        cut = int(new.cols[TS, 0]) - self._horizon
        older = self.carry is not None or int(history.cols[TS, 0]) < cut
        frame = self._frame(history, cut) if older else history
        self.evaluated_rows = len(frame)
        alerts = run_detectors(frame, self.settings, self.ops)
        if older:
            alerts = [a for a in alerts if a.time >= ns_to_time(cut + self._past.get(a.type, 0))]
        self._trim(history, int(history.cols[TS, -1]) - self._keep)
        return alerts, cut if older else None

    def _frame(self, history: Batch, cut: int) -> Batch:
        """The rows since `cut`, after each symbol's last trade before it."""
        start = int(np.searchsorted(history.cols[TS], cut, side="left"))
        before = Batch(history.cols[:, :start], history.accounts, history.symbols)
        if self.carry is not None:
            before = Batch(self.carry.cols, history.accounts, history.symbols).concat(before)
        tail = Batch(history.cols[:, start:], history.accounts, history.symbols)
        return last_trades(before, cut).concat(tail)

    def _trim(self, history: Batch, keep_from: int) -> None:
        start = int(np.searchsorted(history.cols[TS], keep_from, side="left"))
        if start:
            dropped = Batch(history.cols[:, :start], history.accounts, history.symbols)
            if self.carry is not None:
                dropped = self.carry.concat(dropped)
            self.carry = last_trades(dropped, -1)
            history = Batch(history.cols[:, start:], history.accounts, history.symbols)
        self.history = history
