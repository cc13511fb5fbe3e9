"""The surveillance detectors, vectorised over accounts and symbols.

Each detector turns the whole columnar history (a `Frame`) into alerts with a
fixed number of array operations -- scatter-adds into dense (account, symbol,
time bucket) grids, cumulative sums and shifts along time for rolling windows,
one sort and searchsorted for per-symbol price paths -- run by `ops` (MLX or
NumPy). A detector first builds its arrays (`Pending.arrays`; lazy on MLX),
`run_detectors` evaluates every detector's arrays in one `ops.eval`, and only
then does each read its flagged cells back to make `Alert`s. The definitions,
parameters and defaults are in docs/surveillance.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

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
INT32_MAX = 2**31 - 1
# int32 columns: ids, seconds, sides (and quantities when they fit, see Frame).
_NARROW = {"acct", "acct2", "sym", "side", "sec"}
_COLUMN = {"ts": TS, "acct": ACCT, "acct2": ACCT2, "sym": SYM, "side": SIDE, "price": PRICE,
           "qty": QTY, "oid": OID}


class Pending(NamedTuple):
    """A detector's arrays, still to be evaluated, and how to read alerts from them."""

    arrays: list[Array]
    alerts: Callable[[], list[Alert]]


NOTHING = Pending([], list)


def evaluate(ops: Ops, pending: list[Pending]) -> list[Alert]:
    """Run every pending detector's arrays in one evaluation, then collect the alerts."""
    ops.eval(*(a for p in pending for a in p.arrays))
    return [alert for p in pending for alert in p.alerts()]


def index_dtype(ops: Ops, size: int) -> Any:
    return ops.int32 if size <= INT32_MAX else ops.int64


class Rows:
    """Some rows' columns on the backend (e.g. the trades), selected on the host:
    MLX has no data-dependent shapes, so masks are compacted with NumPy first."""

    # The columns a selection can hold; each instance has those named when it is made.
    ts: Array
    sec: Array
    acct: Array
    acct2: Array
    sym: Array
    side: Array
    price: Array
    qty: Array
    oid: Array

    def __init__(self, ops: Ops, cols: np.ndarray, rows: np.ndarray, sec: np.ndarray,
                 narrow: set[str], names: tuple[str, ...]) -> None:
        self.n = len(rows)
        for name in names:
            values = sec[rows] if name == "sec" else cols[_COLUMN[name]].take(rows)
            if name in narrow:
                values = values.astype(np.int32)
            setattr(self, name, ops.asarray(values))


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
        if self.A * self.S > INT32_MAX or self.t_max // SECOND - self.s0 > INT32_MAX:
            raise ValueError("surveillance batch too large for int32 ids and seconds")
        sec = (cols[TS] // SECOND - self.s0).astype(np.int32)
        kind = cols[KIND]
        is_order = (kind == NEW) | (kind == CANCEL) | (kind == REPLACE) | (kind == MASS_CANCEL)
        pick = np.flatnonzero
        # Quantities as int32 when even the sum of all of them fits (scatters of int32 are
        # about twice as fast on the MLX CPU); prices, times and order ids stay int64.
        trade_rows, cancel_rows = pick(kind == TRADE), pick(kind == CANCELLED)
        total_qty = int(cols[QTY].take(trade_rows).sum()) + int(cols[QTY].take(cancel_rows).sum())
        narrow = _NARROW | ({"qty"} if 2 * total_qty <= INT32_MAX else set())
        self.msg = Rows(ops, cols, pick(kind < TRADE), sec, narrow, ("acct", "sec"))
        self.orders = Rows(ops, cols, pick(is_order & (cols[SYM] >= 0)), sec, narrow,
                           ("acct", "sym", "sec"))
        self.trades = Rows(ops, cols, trade_rows, sec, narrow, (
            "ts", "sec", "acct", "acct2", "sym", "side", "price", "qty", "oid"))
        self.cancels = Rows(ops, cols, cancel_rows, sec, narrow,
                            ("sec", "acct", "sym", "side", "price", "qty"))
        cancel_prices = cols[PRICE].take(cancel_rows)
        self.cancel_price_range = ((int(cancel_prices.min()), int(cancel_prices.max()))
                                   if len(cancel_rows) else (0, 0))

    def pair_ids(self, keys: list[Array], buckets: int) -> tuple[list[Array], np.ndarray]:
        """Grid rows for (account, symbol) pair keys (account * S + symbol), and the pair
        behind each grid row. Every pair gets a row while a pairs x `buckets` grid is no
        bigger than a few cells per event (no scatter, no gather); beyond that, only the
        pairs that occur (found by a scatter, so evaluated here, then a gather)."""
        pairs = self.A * self.S
        if pairs * buckets <= max(4 * self.n, 2**16):
            return keys, np.arange(pairs)
        ops, xp = self.ops, self.ops.xp
        present = ops.count(pairs, xp.concatenate(keys)) > 0
        ids = xp.cumsum(present.astype(ops.int32)) - 1
        ops.eval(ids)
        return [ids[k] for k in keys], np.flatnonzero(ops.to_numpy(present))


def lag(ops: Ops, x: Array, k: int) -> Array:
    """x shifted k places later along `axis` (the last), zeros shifted in."""
    xp = ops.xp
    n = x.shape[-1]
    zeros = xp.zeros((*x.shape[:-1], min(k, n)), dtype=x.dtype)
    if k >= n:
        return zeros
    return xp.concatenate([zeros, x[..., : n - k]], axis=-1)


def order_to_trade(f: Frame, p: OrderToTradeSettings) -> Pending:
    ops, xp = f.ops, f.ops.xp
    o, t = f.orders, f.trades
    if o.n == 0:
        return NOTHING
    step = p.step_s * SECOND
    b0 = f.t_min // step
    nb = f.t_max // step - b0 + 1
    first = f.s0 - b0 * p.step_s  # seconds from the first bucket's start to s0
    (po, pa, pr), pair_of = f.pair_ids(
        [o.acct * f.S + o.sym, t.acct * f.S + t.sym, t.acct2 * f.S + t.sym], nb)
    npairs = len(pair_of)
    size = npairs * nb
    dtype = index_dtype(ops, 2 * size)
    tb = ((t.sec + first) // p.step_s).astype(dtype)
    # One scatter for both grids: order messages in [0, size), trades in [size, 2 size).
    cells = xp.concatenate([po.astype(dtype) * nb + ((o.sec + first) // p.step_s),
                            pa.astype(dtype) * nb + tb + size,
                            pr.astype(dtype) * nb + tb + size])
    grid = xp.cumsum(ops.count(2 * size, cells).reshape(2, npairs, nb), axis=2)
    width = p.window_s // p.step_s
    grid = grid - lag(ops, grid, width)  # per window ending with each bucket
    orders, trades = grid[0], grid[1]
    flag = (orders >= p.min_orders) & (orders > p.max_ratio * xp.maximum(trades, 1))
    start = flag & ~lag(ops, flag, 1)

    def alerts() -> list[Alert]:
        hits = np.flatnonzero(ops.to_numpy(start))
        n_orders = ops.to_numpy(orders).ravel()[hits].tolist()
        n_trades = ops.to_numpy(trades).ravel()[hits].tolist()
        found = []
        for h, n_o, n_t in zip(hits.tolist(), n_orders, n_trades, strict=True):
            pair, b = int(pair_of[h // nb]), h % nb
            end = (b0 + b + 1) * step
            found.append(Alert(
                type="order_to_trade", account=f.accounts[pair // f.S],
                symbol=f.symbols[pair % f.S], time=ns_to_time(end - p.window_s * SECOND),
                score=n_o / max(n_t, 1) / p.max_ratio,
                details={"orders": n_o, "trades": n_t, "window_s": p.window_s},
            ))
        return found

    return Pending([start, orders, trades], alerts)


def message_burst(f: Frame, p: MessageBurstSettings) -> Pending:
    ops, xp = f.ops, f.ops.xp
    if f.msg.n == 0:
        return NOTHING
    s0 = f.s0
    ns = f.t_max // SECOND - s0 + 1
    dtype = index_dtype(ops, f.A * ns)
    counts = ops.count(f.A * ns, f.msg.acct.astype(dtype) * ns + f.msg.sec).reshape(f.A, ns)
    before = xp.cumsum(counts, axis=1) - counts  # messages in seconds [0, b)
    baseline = before - lag(ops, before, p.baseline_s)  # in [b - baseline_s, b)
    over = counts > p.max_per_second
    # A baseline needs history: an account busy from its first second has none, and
    # against a near-zero baseline any steady flow would look like a burst. It has
    # history once it sent something in [b - baseline_s, b - min_history_s).
    history = lag(ops, before, p.min_history_s) > lag(ops, before, p.baseline_s)
    burst = history & (counts >= p.min_messages) & (
        counts * p.baseline_s > p.baseline_multiple * xp.maximum(baseline, p.baseline_s))
    flag = over | burst
    start = flag & ~lag(ops, flag, 1)

    def alerts() -> list[Alert]:
        hits = np.flatnonzero(ops.to_numpy(start))
        c = ops.to_numpy(counts).ravel()[hits].tolist()
        base = ops.to_numpy(baseline).ravel()[hits].tolist()
        found = []
        for h, n, prior in zip(hits.tolist(), c, base, strict=True):
            rate = prior / p.baseline_s
            found.append(Alert(
                type="message_burst", account=f.accounts[h // ns], symbol=None,
                time=ns_to_time((s0 + h % ns) * SECOND),
                score=max(n / p.max_per_second, n / (p.baseline_multiple * max(rate, 1.0))),
                details={"messages_per_s": n, "baseline_per_s": round(rate, 3)},
            ))
        return found

    return Pending([start, counts, baseline], alerts)


def spoofing(f: Frame, p: SpoofingSettings) -> Pending:
    """Per (pair, bucket, side) cell: the fills, and the opposite side's cancelled
    quantity and distinct price levels in that bucket and the next."""
    ops, xp = f.ops, f.ops.xp
    t, c = f.trades, f.cancels
    if t.n == 0 or c.n == 0:
        return NOTHING
    b0 = f.t_min // (p.window_s * SECOND)
    nb = f.t_max // (p.window_s * SECOND) - b0 + 1
    first = f.s0 - b0 * p.window_s
    width = p.window_s * SECOND
    (pc, pa, pr), pair_of = f.pair_ids(
        [c.acct * f.S + c.sym, t.acct * f.S + t.sym, t.acct2 * f.S + t.sym], nb)
    npairs = len(pair_of)
    size = npairs * nb * 2
    dtype = index_dtype(ops, size)
    tb = (t.sec + first) // p.window_s
    cancel_cells = (pc.astype(dtype) * nb + (c.sec + first) // p.window_s) * 2 + (c.side - 1)
    aggressor = (pa.astype(dtype) * nb + tb) * 2 + (t.side - 1)  # side: 0 buy, 1 sell
    resting = (pr.astype(dtype) * nb + tb) * 2 + (2 - t.side)  # the other side
    fill = ops.scatter_add(size, xp.concatenate([aggressor, resting]),
                           xp.concatenate([t.qty, t.qty])).reshape(npairs, nb, 2)
    cancelled = ops.scatter_add(size, cancel_cells, c.qty).reshape(npairs, nb, 2)
    # Price levels: the distinct (cell, price) keys among the cancels, counted per cell.
    low, high = f.cancel_price_range
    prices = high - low + 1
    keys = ops.sort(cancel_cells.astype(ops.int64) * prices + (c.price - low))
    new_key = xp.concatenate([xp.ones((1,), dtype=xp.bool_),
                              keys[1:] != keys[:-1]]).astype(ops.int32)
    levels = ops.count(size, keys // prices, new_key).reshape(npairs, nb, 2)
    # The opposite side of each cell (swap the last axis), this bucket and the next.
    opp_cx = cancelled[..., ::-1]
    opp_lv = levels[..., ::-1]
    opp_cx = opp_cx + lead_bucket(ops, opp_cx)
    opp_lv = xp.maximum(opp_lv, lead_bucket(ops, opp_lv))
    flag = (fill > 0) & (opp_cx >= p.qty_ratio * fill.astype(ops.int64)) & (
        (opp_cx >= p.min_cancel_qty) | ((opp_lv >= p.min_levels) & (opp_cx >= p.min_layered_qty)))

    def alerts() -> list[Alert]:
        hits = np.flatnonzero(ops.to_numpy(flag))
        found: list[Alert] = []
        values = (ops.to_numpy(x).ravel()[hits].tolist() for x in (fill, opp_cx, opp_lv))
        for cell, q_fill, q_cx, n_lv in zip(hits.tolist(), *values, strict=True):
            pair, b, fill_side = int(pair_of[cell // 2 // nb]), cell // 2 % nb, cell % 2
            found.append(Alert(
                type="spoofing", account=f.accounts[pair // f.S], symbol=f.symbols[pair % f.S],
                time=ns_to_time((b0 + b) * width), score=q_cx / q_fill / p.qty_ratio,
                details={"fill_side": "buy" if fill_side == 0 else "sell", "filled_qty": q_fill,
                         "cancelled_opposite_qty": q_cx, "cancelled_levels": n_lv,
                         "window_s": p.window_s},
            ))
        return found

    return Pending([flag, fill, opp_cx, opp_lv], alerts)


def lead_bucket(ops: Ops, grid: Array) -> Array:
    """(pair, bucket, side) grid shifted one bucket earlier: each cell sees the next."""
    xp = ops.xp
    zeros = xp.zeros((grid.shape[0], 1, 2), dtype=grid.dtype)
    return xp.concatenate([grid[:, 1:], zeros], axis=1)


def wash_trades(f: Frame, groups: dict[str, list[str]]) -> Pending:
    ops = f.ops
    t = f.trades
    if t.n == 0:
        return NOTHING
    owner = np.arange(f.A, dtype=np.int32)
    group_of: dict[int, str] = {}
    ids = {name: i for i, name in enumerate(f.accounts)}
    for g, (name, members) in enumerate(sorted(groups.items())):
        for member in members:
            if member in ids:
                owner[ids[member]] = f.A + g
                group_of[f.A + g] = name
    if group_of:
        own = ops.asarray(owner)
        same = own[t.acct] == own[t.acct2]
    else:
        same = t.acct == t.acct2  # every account its own owner: no lookups

    def alerts() -> list[Alert]:
        rows = np.flatnonzero(ops.to_numpy(same))
        pick: dict[str, Any] = {name: ops.to_numpy(getattr(t, name))[rows].tolist() for name in (
            "ts", "acct", "acct2", "sym", "qty", "price", "oid")}
        found = []
        for i in range(len(rows)):
            a, a2 = pick["acct"][i], pick["acct2"][i]
            found.append(Alert(
                type="wash_trade", account=f.accounts[a], symbol=f.symbols[pick["sym"][i]],
                time=ns_to_time(pick["ts"][i]), score=1.0,
                details={"counterparty": f.accounts[a2], "qty": pick["qty"][i],
                         "price_ticks": pick["price"][i], "aggressor_order_id": pick["oid"][i],
                         "owner": "same account" if a == a2 else group_of[int(owner[a])]},
            ))
        return found

    return Pending([same], alerts)


def price_moves(f: Frame, p: PriceMoveSettings) -> Pending:
    """Marking the close and momentum ignition: one aggressive order's sweep moves the
    last price by >= move_bps; near the close, or given back within the reversal window.
    Computed for every trade in (symbol, time) order, read at the first of each sweep."""
    ops, xp = f.ops, f.ops.xp
    t = f.trades
    m = t.n
    if m < 2:
        return NOTHING
    # Trades per symbol, in time order (row order is time order; the keys are distinct).
    idx = xp.arange(m, dtype=index_dtype(ops, f.S * m))
    rows = ops.argsort(t.sym.astype(idx.dtype) * m + idx)
    sym, ts, px, oid = t.sym[rows], t.ts[rows], t.price[rows], t.oid[rows]
    same_sym = sym[1:] == sym[:-1]
    true = xp.ones((1,), dtype=xp.bool_)
    first = xp.concatenate([true, (oid[1:] != oid[:-1]) | ~same_sym])  # a sweep starts
    has_prev = xp.concatenate([~true, same_sym])
    # A sweep ends just before the next one starts.
    starts = xp.where(first, xp.arange(m, dtype=ops.int32), m)
    end = xp.concatenate([ops.suffix_min(starts)[1:], xp.array([m], dtype=ops.int32)]) - 1
    before = xp.concatenate([px[:1], px[:-1]])  # last price before the sweep
    after = px[end]
    move = after - before
    big = first & has_prev & (xp.abs(move) * 10_000 >= p.move_bps * xp.maximum(before, 1))
    tod = ts % DAY
    near_close = (tod <= p.close_ns) & (tod >= p.close_ns - p.close_window_s * SECOND)
    # The last price at the end of the reversal window: searchsorted on (symbol, ms).
    ms = ts // 1_000_000 - f.t_min // 1_000_000
    span = (f.t_max - f.t_min) // 1_000_000 + p.reversal_window_s * 1000 + 1
    keys = sym.astype(ops.int64) * span + ms
    at = ops.searchsorted(keys, keys[end] + p.reversal_window_s * 1000, "right") - 1
    later = px[at]
    given_back = (after - later) * xp.where(move > 0, 1, -1)
    reversed_ = (at > end) & (given_back * 100 >= p.reversal_pct * xp.abs(move))
    kinds = (("marking_close", big & near_close), ("momentum_ignition", big & reversed_))
    acct = t.acct[rows]

    def alerts() -> list[Alert]:
        hits = {name: np.flatnonzero(ops.to_numpy(mask)) for name, mask in kinds}
        if not any(len(h) for h in hits.values()):
            return []
        host = {name: ops.to_numpy(col) for name, col in (
            ("acct", acct), ("sym", sym), ("ts", ts), ("before", before), ("after", after),
            ("later", later))}
        found = []
        for name, rows_hit in hits.items():
            for i in rows_hit.tolist():
                b, a = int(host["before"][i]), int(host["after"][i])
                bps = abs(a - b) * 10_000 / max(b, 1)
                details: dict[str, Any] = {"move_bps": round(bps, 1), "from_price_ticks": b,
                                           "to_price_ticks": a}
                if name == "momentum_ignition":
                    details["price_after_ticks"] = int(host["later"][i])
                    details["reversal_window_s"] = p.reversal_window_s
                found.append(Alert(
                    type=name, account=f.accounts[int(host["acct"][i])],
                    symbol=f.symbols[int(host["sym"][i])], time=ns_to_time(int(host["ts"][i])),
                    score=bps / p.move_bps, details=details,
                ))
        return found

    return Pending([mask for _, mask in kinds] + [acct, sym, ts, before, after, later], alerts)


def plan(f: Frame, settings: SurveillanceSettings) -> list[Pending]:
    """Every detector's arrays over one frame, not yet evaluated."""
    return [
        order_to_trade(f, settings.order_to_trade),
        message_burst(f, settings.message_burst),
        spoofing(f, settings.spoofing),
        wash_trades(f, settings.beneficial_owners),
        price_moves(f, settings.price_move),
    ]


def run_detectors(batch: Batch, settings: SurveillanceSettings, ops: Ops) -> list[Alert]:
    """Every detector over one batch, alerts in (time, type, account, symbol) order."""
    if len(batch) == 0:
        return []
    alerts = evaluate(ops, plan(Frame(ops, batch), settings))
    alerts.sort(key=lambda a: (a.time, a.type, a.account, a.symbol or ""))
    return alerts
