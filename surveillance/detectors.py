"""The surveillance detectors, vectorised over accounts and symbols.

Each detector turns the whole columnar history (a `Frame`) into alerts with a
fixed number of array operations -- scatter-adds into (account, symbol, time
bucket) grids, cumulative sums along time for rolling windows, sorts and
searchsorted for per-symbol price paths -- run by `ops` (MLX or NumPy). Only
the flagged cells come back to Python, to become `Alert`s. The definitions,
parameters and defaults are in README.md ("Surveillance").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from surveillance.alerts import Alert, ns_to_time
from surveillance.columns import (
    ACCT,
    ACCT2,
    CANCEL,
    CANCELLED,
    KIND,
    MASS_CANCEL,
    NEW,
    OID,
    PRICE,
    QTY,
    REPLACE,
    SIDE,
    SYM,
    TRADE,
    TS,
    Batch,
)
from surveillance.ops import Array, MlxOps, NumpyOps
from surveillance.settings import (
    MessageBurstSettings,
    OrderToTradeSettings,
    PriceMoveSettings,
    SpoofingSettings,
    SurveillanceSettings,
)

Ops = NumpyOps | MlxOps
SECOND = 10**9
DAY = 86_400 * SECOND


class Rows:
    """Some rows' columns on the backend (e.g. the trades), selected on the host:
    MLX has no data-dependent shapes, so masks are compacted with NumPy first."""

    def __init__(self, ops: Ops, cols: np.ndarray, rows: np.ndarray, sec: np.ndarray,
                 names: tuple[str, ...]) -> None:
        self.n = len(rows)
        index = {"ts": TS, "acct": ACCT, "acct2": ACCT2, "sym": SYM, "side": SIDE,
                 "price": PRICE, "qty": QTY, "oid": OID}
        for name in names:
            values = sec[rows] if name == "sec" else cols[index[name], rows]
            setattr(self, name, ops.asarray(np.ascontiguousarray(values)))


class Frame:
    """One batch, split by row kind, on the backend, plus the sizes the grids need."""

    def __init__(self, ops: Ops, batch: Batch) -> None:
        self.ops = ops
        self.n = len(batch)
        cols = batch.cols
        self.accounts = batch.accounts
        self.symbols = batch.symbols
        self.A = max(len(batch.accounts), 1)
        self.S = max(len(batch.symbols), 1)
        self.t_min = int(cols[TS].min()) if self.n else 0
        self.t_max = int(cols[TS].max()) if self.n else 0
        self.s0 = self.t_min // SECOND  # seconds are counted from here
        sec = cols[TS] // SECOND - self.s0
        kind = cols[KIND]
        is_order = (kind == NEW) | (kind == CANCEL) | (kind == REPLACE) | (kind == MASS_CANCEL)
        pick = np.flatnonzero
        self.msg = Rows(ops, cols, pick(kind < TRADE), sec, ("acct", "sec"))
        self.orders = Rows(ops, cols, pick(is_order & (cols[SYM] >= 0)), sec,
                           ("acct", "sym", "sec"))
        self.trades = Rows(ops, cols, pick(kind == TRADE), sec, (
            "ts", "sec", "acct", "acct2", "sym", "side", "price", "qty", "oid"))
        self.cancels = Rows(ops, cols, pick(kind == CANCELLED), sec,
                            ("sec", "acct", "sym", "side", "price", "qty"))


def lag(ops: Ops, x: Array, k: int) -> Array:
    """x shifted k columns later along axis 1, zeros shifted in."""
    xp = ops.xp
    rows, cols = x.shape
    if k >= cols:
        return xp.zeros(x.shape, dtype=x.dtype)
    return xp.concatenate([xp.zeros((rows, k), dtype=x.dtype), x[:, : cols - k]], axis=1)


def compact_pairs(f: Frame, keys: Array) -> tuple[Array, np.ndarray]:
    """Dense ids for the (account, symbol) pairs that occur: presence by scatter-add,
    ids by cumulative sum. Returns (id per key, pair value per id)."""
    ops, xp = f.ops, f.ops.xp
    present = ops.count(f.A * f.S, keys) > 0
    ids = xp.cumsum(present.astype(ops.int64)) - 1
    pair_of = np.flatnonzero(ops.to_numpy(present))
    return ids[keys], pair_of


def order_to_trade(f: Frame, p: OrderToTradeSettings) -> list[Alert]:
    ops, xp = f.ops, f.ops.xp
    o, t = f.orders, f.trades
    if o.n == 0:
        return []
    step = p.step_s * SECOND
    b0 = f.t_min // step
    nb = f.t_max // step - b0 + 1
    first = f.s0 - b0 * p.step_s  # seconds from the first bucket's start to s0

    def bucket(sec: Array) -> Array:
        return (sec + first) // p.step_s

    pid, pair_of = compact_pairs(f, xp.concatenate(
        [o.acct * f.S + o.sym, t.acct * f.S + t.sym, t.acct2 * f.S + t.sym]))
    npairs = len(pair_of)
    tb = bucket(t.sec)
    trade_cells = xp.concatenate([pid[o.n : o.n + t.n] * nb + tb, pid[o.n + t.n :] * nb + tb])
    orders = ops.count(npairs * nb, pid[: o.n] * nb + bucket(o.sec)).reshape(npairs, nb)
    trades = ops.count(npairs * nb, trade_cells).reshape(npairs, nb)
    orders = xp.cumsum(orders, axis=1)
    trades = xp.cumsum(trades, axis=1)
    width = p.window_s // p.step_s
    orders = orders - lag(ops, orders, width)
    trades = trades - lag(ops, trades, width)
    flag = (orders >= p.min_orders) & (orders > p.max_ratio * xp.maximum(trades, 1))
    start = flag & ~lag(ops, flag, 1)
    hits = np.flatnonzero(ops.to_numpy(start).ravel())
    o = ops.to_numpy(orders).ravel()[hits]
    t = ops.to_numpy(trades).ravel()[hits]
    alerts = []
    for h, n_orders, n_trades in zip(hits.tolist(), o.tolist(), t.tolist(), strict=True):
        pair, b = pair_of[h // nb], h % nb
        end = (b0 + b + 1) * step
        alerts.append(Alert(
            type="order_to_trade", account=f.accounts[pair // f.S], symbol=f.symbols[pair % f.S],
            time=ns_to_time(end - p.window_s * SECOND),
            score=n_orders / max(n_trades, 1) / p.max_ratio,
            details={"orders": n_orders, "trades": n_trades, "window_s": p.window_s},
        ))
    return alerts


def message_burst(f: Frame, p: MessageBurstSettings) -> list[Alert]:
    ops, xp = f.ops, f.ops.xp
    s0 = f.s0
    ns = f.t_max // SECOND - s0 + 1
    counts = ops.count(f.A * ns, f.msg.acct * ns + f.msg.sec).reshape(f.A, ns)
    before = xp.cumsum(counts, axis=1) - counts  # messages in seconds [0, b)
    baseline = before - lag(ops, before, p.baseline_s)  # in [b - baseline_s, b)
    over = counts > p.max_per_second
    burst = (counts >= p.min_messages) & (
        counts * p.baseline_s > p.baseline_multiple * xp.maximum(baseline, p.baseline_s))
    flag = over | burst
    start = flag & ~lag(ops, flag, 1)
    hits = np.flatnonzero(ops.to_numpy(start).ravel())
    c = ops.to_numpy(counts).ravel()[hits]
    base = ops.to_numpy(baseline).ravel()[hits]
    alerts = []
    for h, n, prior in zip(hits.tolist(), c.tolist(), base.tolist(), strict=True):
        rate = prior / p.baseline_s
        alerts.append(Alert(
            type="message_burst", account=f.accounts[h // ns], symbol=None,
            time=ns_to_time((s0 + h % ns) * SECOND),
            score=max(n / p.max_per_second, n / (p.baseline_multiple * max(rate, 1.0))),
            details={"messages_per_s": n, "baseline_per_s": round(rate, 3)},
        ))
    return alerts


def spoofing(f: Frame, p: SpoofingSettings) -> list[Alert]:
    ops, xp = f.ops, f.ops.xp
    t, c = f.trades, f.cancels
    if t.n == 0 or c.n == 0:
        return []
    b0 = f.t_min // (p.window_s * SECOND)
    nb = f.t_max // (p.window_s * SECOND) - b0 + 1
    first = f.s0 - b0 * p.window_s
    width = p.window_s * SECOND
    pid, pair_of = compact_pairs(f, xp.concatenate(
        [c.acct * f.S + c.sym, t.acct * f.S + t.sym, t.acct2 * f.S + t.sym]))
    npairs = len(pair_of)
    size = npairs * nb * 2
    tb = (t.sec + first) // p.window_s
    cb = (c.sec + first) // p.window_s
    cancel_cells = (pid[: c.n] * nb + cb) * 2 + (c.side - 1)  # 0 buy, 1 sell
    aggressor = (pid[c.n : c.n + t.n] * nb + tb) * 2 + (t.side - 1)
    resting = (pid[c.n + t.n :] * nb + tb) * 2 + (2 - t.side)  # the other side
    cancelled = ops.scatter_add(size, cancel_cells, c.qty)
    # Price levels: distinct (cell, price) among the cancels, counted per cell.
    low = int(ops.to_numpy(xp.min(c.price)).item())
    prices = int(ops.to_numpy(xp.max(c.price)).item()) - low + 1
    price = c.price - low
    if size * prices >= 2**62:  # a very wide price range: ranks keep the key in int64
        _, price = ops.unique_inverse(c.price)
        prices = int(ops.to_numpy(price).max()) + 1
    distinct, _ = ops.unique_inverse(cancel_cells * prices + price)
    levels = ops.count(size, distinct // prices)
    # Only cells with a fill can alert: the fills per cell, then the opposite side's
    # cancels in that bucket and the next (gathered from the dense cancel grid).
    cells, inverse = ops.unique_inverse(xp.concatenate([aggressor, resting]))
    fill = ops.scatter_add(cells.shape[0], inverse, xp.concatenate([t.qty, t.qty]))
    opposite = cells + 1 - 2 * (cells % 2)
    has_next = (cells // 2) % nb < nb - 1
    following = xp.where(has_next, opposite + 2, opposite)
    opp_cx = cancelled[opposite] + xp.where(has_next, cancelled[following], 0)
    opp_lv = xp.maximum(levels[opposite], xp.where(has_next, levels[following], 0))
    flag = (opp_cx >= p.qty_ratio * fill) & (
        (opp_cx >= p.min_cancel_qty) | ((opp_lv >= p.min_levels) & (opp_cx >= p.min_layered_qty)))
    hits = np.flatnonzero(ops.to_numpy(flag))
    if not len(hits):
        return []
    at = ops.asarray(hits)
    found = zip(*(ops.to_numpy(x[at]).tolist() for x in (cells, fill, opp_cx, opp_lv)),
                strict=True)
    alerts: list[Alert] = []
    for cell, q_fill, q_cx, n_lv in found:
        pair, b, fill_side = pair_of[cell // 2 // nb], cell // 2 % nb, cell % 2
        alerts.append(Alert(
            type="spoofing", account=f.accounts[pair // f.S], symbol=f.symbols[pair % f.S],
            time=ns_to_time((b0 + b) * width), score=q_cx / q_fill / p.qty_ratio,
            details={"fill_side": "buy" if fill_side == 0 else "sell", "filled_qty": q_fill,
                     "cancelled_opposite_qty": q_cx, "cancelled_levels": n_lv,
                     "window_s": p.window_s},
        ))
    return alerts


def wash_trades(f: Frame, groups: dict[str, list[str]]) -> list[Alert]:
    ops = f.ops
    owner = np.arange(f.A, dtype=np.int64)
    group_of: dict[int, str] = {}
    ids = {name: i for i, name in enumerate(f.accounts)}
    for g, (name, members) in enumerate(sorted(groups.items())):
        for member in members:
            if member in ids:
                owner[ids[member]] = f.A + g
                group_of[f.A + g] = name
    own = ops.asarray(owner)
    t = f.trades
    if t.n == 0:
        return []
    rows = np.flatnonzero(ops.to_numpy(own[t.acct] == own[t.acct2]))
    if not len(rows):
        return []
    sel = ops.asarray(rows)
    pick: dict[str, Any] = {name: ops.to_numpy(getattr(t, name)[sel]).tolist() for name in (
        "ts", "acct", "acct2", "sym", "qty", "price", "oid")}
    alerts = []
    for i in range(len(rows)):
        a, a2 = pick["acct"][i], pick["acct2"][i]
        alerts.append(Alert(
            type="wash_trade", account=f.accounts[a], symbol=f.symbols[pick["sym"][i]],
            time=ns_to_time(pick["ts"][i]), score=1.0,
            details={"counterparty": f.accounts[a2], "qty": pick["qty"][i],
                     "price_ticks": pick["price"][i], "aggressor_order_id": pick["oid"][i],
                     "owner": "same account" if a == a2 else group_of[int(owner[a])]},
        ))
    return alerts


def price_moves(f: Frame, p: PriceMoveSettings) -> list[Alert]:
    """Marking the close and momentum ignition: one aggressive order's sweep moves the
    last price by >= move_bps; near the close, or given back within the reversal window."""
    ops, xp = f.ops, f.ops.xp
    t = f.trades
    m = t.n
    if m < 2:
        return []
    # Trades per symbol, in time order (row order is time order).
    rows = ops.argsort(t.sym * m + xp.arange(m, dtype=ops.int64))
    sym, ts, px, oid, acct = t.sym[rows], t.ts[rows], t.price[rows], t.oid[rows], t.acct[rows]
    same_sym = sym[1:] == sym[:-1]
    new_order = (oid[1:] != oid[:-1]) | ~same_sym
    first = xp.concatenate([xp.ones((1,), dtype=new_order.dtype), new_order])
    starts = ops.nonzero(first)
    ends = xp.concatenate([starts[1:] - 1, xp.array([m - 1], dtype=ops.int64)])
    has_prev = xp.concatenate([xp.zeros((1,), dtype=same_sym.dtype), same_sym])[starts]
    before = xp.concatenate([px[:1], px[:-1]])[starts]  # last price before the sweep
    after = px[ends]
    move = after - before
    big = has_prev & (xp.abs(move) * 10_000 >= p.move_bps * xp.maximum(before, 1))
    t_start = ts[starts]
    tod = t_start % DAY
    near_close = (tod <= p.close_ns) & (tod >= p.close_ns - p.close_window_s * SECOND)
    # The last price at the end of the reversal window: searchsorted on (symbol, ms).
    ms = ts // 1_000_000 - f.t_min // 1_000_000
    span = (f.t_max - f.t_min) // 1_000_000 + p.reversal_window_s * 1000 + 1
    keys = sym * span + ms
    probe = sym[ends] * span + ms[ends] + p.reversal_window_s * 1000
    at = ops.searchsorted(keys, probe, "right") - 1
    later = px[at]
    given_back = (after - later) * xp.where(move > 0, 1, -1)
    reversed_ = (at > ends) & (given_back * 100 >= p.reversal_pct * xp.abs(move))
    kinds = [("marking_close", big & near_close), ("momentum_ignition", big & reversed_)]
    hits = {name: ops.to_numpy(ops.nonzero(mask)) for name, mask in kinds}
    if not any(len(h) for h in hits.values()):
        return []
    host = {name: ops.to_numpy(col) for name, col in (
        ("acct", acct[starts]), ("sym", sym[starts]), ("ts", t_start),
        ("before", before), ("after", after), ("later", later))}
    alerts = []
    for name, idx in hits.items():
        for i in idx.tolist():
            b, a = int(host["before"][i]), int(host["after"][i])
            bps = abs(a - b) * 10_000 / max(b, 1)
            details: dict[str, Any] = {"move_bps": round(bps, 1), "from_price_ticks": b,
                                       "to_price_ticks": a}
            if name == "momentum_ignition":
                details["price_after_ticks"] = int(host["later"][i])
                details["reversal_window_s"] = p.reversal_window_s
            alerts.append(Alert(
                type=name, account=f.accounts[int(host["acct"][i])],
                symbol=f.symbols[int(host["sym"][i])], time=ns_to_time(int(host["ts"][i])),
                score=bps / p.move_bps, details=details,
            ))
    return alerts


def run_detectors(batch: Batch, settings: SurveillanceSettings, ops: Ops) -> list[Alert]:
    """Every detector over one batch, alerts in (time, type, account, symbol) order."""
    if len(batch) == 0:
        return []
    f = Frame(ops, batch)
    alerts = (
        order_to_trade(f, settings.order_to_trade)
        + message_burst(f, settings.message_burst)
        + spoofing(f, settings.spoofing)
        + wash_trades(f, settings.beneficial_owners)
        + price_moves(f, settings.price_move)
    )
    alerts.sort(key=lambda a: (a.time, a.type, a.account, a.symbol or ""))
    return alerts
