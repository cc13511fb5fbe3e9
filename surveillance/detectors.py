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


class Frame:
    """One batch's columns on the backend, plus the sizes the grids need."""

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
        put = ops.asarray
        self.ts = put(cols[TS])
        self.kind = put(cols[KIND])
        self.acct = put(cols[ACCT])
        self.acct2 = put(np.maximum(cols[ACCT2], 0))  # -1 (none) -> 0, always masked out
        self.sym = put(np.maximum(cols[SYM], 0))
        self.has_sym = put(cols[SYM] >= 0)
        self.side = put(cols[SIDE])
        self.price = put(cols[PRICE])
        self.qty = put(cols[QTY])
        self.oid = put(cols[OID])


def lag(ops: Ops, x: Array, k: int) -> Array:
    """x shifted k columns later along axis 1, zeros shifted in."""
    xp = ops.xp
    rows, cols = x.shape
    if k >= cols:
        return xp.zeros(x.shape, dtype=x.dtype)
    return xp.concatenate([xp.zeros((rows, k), dtype=x.dtype), x[:, : cols - k]], axis=1)


def lead(ops: Ops, x: Array) -> Array:
    """x shifted one column earlier along axis 1 (the next bucket), zeros shifted in."""
    xp = ops.xp
    return xp.concatenate([x[:, 1:], xp.zeros((x.shape[0], 1), dtype=x.dtype)], axis=1)


def compact_pairs(f: Frame, keys: Array, weights: Array) -> tuple[Array, np.ndarray]:
    """Dense ids for the (account, symbol) pairs with weight: presence by scatter-add,
    ids by cumulative sum. Returns (id per key, pair value per id)."""
    ops, xp = f.ops, f.ops.xp
    present = ops.scatter_add(f.A * f.S, keys, weights) > 0
    ids = xp.cumsum(present.astype(ops.int64)) - 1
    pair_of = ops.to_numpy(ops.nonzero(present))
    return xp.maximum(ids[keys], 0), pair_of


def _i64(ops: Ops, mask: Array) -> Array:
    return mask.astype(ops.int64)


def order_to_trade(f: Frame, p: OrderToTradeSettings) -> list[Alert]:
    ops, xp = f.ops, f.ops.xp
    step = p.step_s * SECOND
    b0 = f.t_min // step
    nb = f.t_max // step - b0 + 1
    bucket = f.ts // step - b0
    k = f.kind
    is_order = _i64(ops, ((k == NEW) | (k == CANCEL) | (k == REPLACE) | (k == MASS_CANCEL))
                    & f.has_sym)
    is_trade = _i64(ops, k == TRADE)
    keys = xp.concatenate([f.acct * f.S + f.sym, f.acct2 * f.S + f.sym])
    w_orders = xp.concatenate([is_order, xp.zeros_like(is_order)])
    w_trades = xp.concatenate([is_trade, is_trade])
    pid, pair_of = compact_pairs(f, keys, w_orders + w_trades)
    npairs = len(pair_of)
    if npairs == 0:
        return []
    cell = pid * nb + xp.concatenate([bucket, bucket])
    orders = xp.cumsum(ops.scatter_add(npairs * nb, cell, w_orders).reshape(npairs, nb), axis=1)
    trades = xp.cumsum(ops.scatter_add(npairs * nb, cell, w_trades).reshape(npairs, nb), axis=1)
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
    s0 = f.t_min // SECOND
    ns = f.t_max // SECOND - s0 + 1
    is_msg = _i64(ops, f.kind < TRADE)
    cell = f.acct * ns + (f.ts // SECOND - s0)
    counts = ops.scatter_add(f.A * ns, cell, is_msg).reshape(f.A, ns)
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
    width = p.window_s * SECOND
    b0 = f.t_min // width
    nb = f.t_max // width - b0 + 1
    bucket = f.ts // width - b0
    is_trade = _i64(ops, f.kind == TRADE)
    is_cx = _i64(ops, f.kind == CANCELLED)
    pair1 = f.acct * f.S + f.sym
    pair2 = f.acct2 * f.S + f.sym
    pid, pair_of = compact_pairs(f, xp.concatenate([pair1, pair2]),
                                 xp.concatenate([is_trade + is_cx, is_trade]))
    npairs = len(pair_of)
    if npairs == 0:
        return []
    size = npairs * nb * 2
    n = f.n
    side = f.side - 1  # 0 buy, 1 sell
    cell1 = (pid[:n] * nb + bucket) * 2 + side  # the row's account, its own side
    cell2 = (pid[n:] * nb + bucket) * 2 + (1 - side)  # a trade's resting side
    filled = ops.scatter_add(size, xp.concatenate([cell1, cell2]),
                             xp.concatenate([f.qty * is_trade, f.qty * is_trade]))
    cancelled = ops.scatter_add(size, cell1, f.qty * is_cx)
    # Price levels: distinct (cell, price) among the cancels.
    rows = ops.nonzero(f.kind == CANCELLED)
    levels = xp.zeros((size,), dtype=ops.int64)
    if rows.shape[0]:
        _, price_rank = ops.unique_inverse(f.price[rows])
        nprices = int(ops.to_numpy(price_rank).max()) + 1
        distinct, _ = ops.unique_inverse(cell1[rows] * nprices + price_rank)
        levels = ops.scatter_add(size, distinct // nprices, xp.ones_like(distinct))
    alerts: list[Alert] = []
    filled = filled.reshape(npairs, nb, 2)
    cancelled = cancelled.reshape(npairs, nb, 2)
    levels = levels.reshape(npairs, nb, 2)
    for fill_side in (0, 1):
        fill = filled[:, :, fill_side]
        opp_cx = cancelled[:, :, 1 - fill_side]
        opp_cx = opp_cx + lead(ops, opp_cx)  # this bucket and the next: one window after
        opp_lv = levels[:, :, 1 - fill_side]
        opp_lv = xp.maximum(opp_lv, lead(ops, opp_lv))
        flag = (fill > 0) & (opp_cx >= p.qty_ratio * fill) & (
            (opp_cx >= p.min_cancel_qty)
            | ((opp_lv >= p.min_levels) & (opp_cx >= p.min_layered_qty)))
        hits = np.flatnonzero(ops.to_numpy(flag).ravel())
        fq = ops.to_numpy(fill).ravel()[hits]
        cq = ops.to_numpy(opp_cx).ravel()[hits]
        lv = ops.to_numpy(opp_lv).ravel()[hits]
        for h, q_fill, q_cx, n_lv in zip(hits.tolist(), fq.tolist(), cq.tolist(), lv.tolist(),
                                         strict=True):
            pair, b = pair_of[h // nb], h % nb
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
    rows = ops.to_numpy(ops.nonzero((f.kind == TRADE) & (own[f.acct] == own[f.acct2])))
    if not len(rows):
        return []
    pick: dict[str, Any] = {name: ops.to_numpy(col[ops.asarray(rows)]).tolist() for name, col in (
        ("ts", f.ts), ("acct", f.acct), ("acct2", f.acct2), ("sym", f.sym), ("qty", f.qty),
        ("price", f.price), ("oid", f.oid))}
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
    trades = ops.nonzero(f.kind == TRADE)
    m = int(trades.shape[0])
    if m < 2:
        return []
    # Trades per symbol, in time order (row order is time order).
    order = ops.argsort(f.sym[trades] * m + xp.arange(m, dtype=ops.int64))
    rows = trades[order]
    sym, ts, px, oid = f.sym[rows], f.ts[rows], f.price[rows], f.oid[rows]
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
        ("acct", f.acct[rows][starts]), ("sym", sym[starts]), ("ts", t_start),
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
