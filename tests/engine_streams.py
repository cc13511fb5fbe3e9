"""Random command streams for the matching engine (every command type, bad values,
time running past end of day) and the engine options they run under: Hypothesis
strategies for the differential, snapshot and compiled-engine tests."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import strategies as st

from engine import (
    AdvanceTime,
    CancelOrder,
    Instrument,
    MassCancel,
    MassCancelScope,
    NewOrder,
    OrderStatusRequest,
    OrdStatus,
    OrdType,
    RejectOrder,
    ReplaceOrder,
    Side,
    StpMode,
    TimeInForce,
)
from engine.engine import DAY_NS

INSTRUMENTS = [
    Instrument("X", band_low=95, band_high=105),
    Instrument("Y", lot_size=10),
]
SYMBOLS = ["X", "X", "Y", "Y", "Z"]  # Z is unknown
SESSIONS = ["S1", "S2", "S3"]
SIDES = [Side.BUY, Side.SELL]
ACCOUNTS = ["A", "A", "B", ""]  # "" never self-trades
END_OF_DAY = 3_600 * 10**9
START = 10 * DAY_NS + END_OF_DAY - 5_000  # a few commands before the first end of day
LIVE = (OrdStatus.NEW, OrdStatus.PARTIALLY_FILLED, OrdStatus.PENDING_NEW)

KINDS = ["new"] * 14 + ["cancel"] * 3 + ["replace"] * 3 + ["mass", "status", "reject", "advance"]


def build_stream(steps: list[tuple[int, int]]) -> list[Any]:  # noqa: C901
    """Commands from (kind, seed) steps: the kind picks the command, the seed its fields.

    Hypothesis draws only two integers a command (drawing every field is slow, and
    shrinking still removes commands and simplifies kinds); the fields come from a
    `random.Random(seed)`, which also picks targets among the ClOrdIDs seen so far.
    """
    ts = START
    known: list[tuple[str, str, str, Side]] = []  # (session, ClOrdID, symbol, side) seen
    commands: list[Any] = []
    for kind_index, seed in steps:
        rng = random.Random(seed)
        choice = rng.choice

        def one_in(n: int, rng: random.Random = rng) -> bool:
            return rng.randrange(n) == 0

        def cl_ord_id(rng: random.Random = rng) -> str:
            return f"c{rng.randrange(60)}"

        def target(rng: random.Random = rng) -> tuple[str, str, str, Side]:
            if known and rng.randrange(8):
                # Mostly recent orders, which are more likely to be live.
                return rng.choice(known[-8:] if rng.randrange(2) else known)
            return (rng.choice(SESSIONS), cl_ord_id(), rng.choice(SYMBOLS), rng.choice(SIDES))

        def price_near_mid(rng: random.Random = rng) -> int:
            return rng.randrange(98, 103)  # a narrow range: levels fill up

        kind = KINDS[kind_index]
        ts += choice([0, 1, 50, 400])
        session = choice(SESSIONS)
        if kind == "new":
            symbol = "Z" if one_in(25) else choice(["X", "Y"])
            lot = 10 if symbol == "Y" else 1
            side = choice(SIDES)
            ord_type = choice(
                [OrdType.LIMIT] * 6 + [OrdType.MARKET, OrdType.STOP, OrdType.STOP_LIMIT]
            )
            qty = choice([1, 2, 3, 5, 8, 13, 20]) * lot
            if one_in(30):
                qty = choice([0, -lot, lot + 3])
            price: int | None = price_near_mid()
            stop_price: int | None = price_near_mid()
            if one_in(20):  # outside the band of X
                price = choice([94, 106])
            if ord_type in (OrdType.MARKET, OrdType.STOP):
                price = None
            if ord_type in (OrdType.MARKET, OrdType.LIMIT):
                stop_price = None
            if one_in(40):  # the wrong fields for the type
                price, stop_price = stop_price, price
            tif = choice(
                [TimeInForce.DAY] * 3 + [TimeInForce.GTC] * 2
                + [TimeInForce.GTD, TimeInForce.IOC, TimeInForce.FOK]
            )  # fmt: skip
            expire_time = None
            if tif == TimeInForce.GTD or one_in(20):
                expire_time = ts + choice([-1, 1, 100, 1_000, 3_000, 3_000])
                if one_in(30):
                    expire_time = None
            min_qty = 0
            if one_in(6):
                min_qty = rng.randrange(1, qty // lot + 2) * lot if qty > 0 else 1
            max_floor = 0
            if one_in(3):
                max_floor = rng.randrange(1, 4) * lot
                if one_in(20):
                    max_floor += 1 if one_in(2) else qty
            cl = cl_ord_id()
            known.append((session, cl, symbol, side))
            commands.append(
                NewOrder(
                    ts, session, choice(ACCOUNTS), cl, symbol, side, ord_type, qty, price,
                    stop_price, tif, expire_time, min_qty, max_floor,
                )
            )
        elif kind == "cancel":
            session, orig, symbol, side = target()
            cl = cl_ord_id()
            known.append((session, cl, symbol, side))
            commands.append(CancelOrder(ts, session, cl, orig, symbol, side))
        elif kind == "replace":
            session, orig, symbol, side = target()
            cl = cl_ord_id()
            known.append((session, cl, symbol, side))
            lot = 10 if symbol == "Y" else 1
            qty = choice([1, 2, 3, 4, 6, 10]) * lot
            if one_in(30):
                qty = choice([0, lot + 1])
            price = None if one_in(3) else price_near_mid()
            if one_in(20):
                price = choice([94, 106])
            stop_price = None if one_in(2) else price_near_mid()
            commands.append(
                ReplaceOrder(ts, session, cl, orig, symbol, side, qty, price, stop_price)
            )
        elif kind == "mass":
            scope = choice(list(MassCancelScope))
            commands.append(MassCancel(ts, session, cl_ord_id(), scope, choice([*SYMBOLS, None])))
        elif kind == "status":
            session, cl, symbol, side = target()
            commands.append(OrderStatusRequest(ts, session, cl, symbol, side))
        elif kind == "reject":
            commands.append(
                RejectOrder(
                    ts, session, "A", cl_ord_id(), "X", Side.BUY, OrdType.LIMIT, 1, 18,
                    "price off tick",
                )
            )
        else:
            ts += choice([1_000, 3_000, DAY_NS // 2, DAY_NS])
            commands.append(AdvanceTime(ts))
    return commands


streams = st.lists(
    st.tuples(st.integers(0, len(KINDS) - 1), st.integers(0, 2**32 - 1)), min_size=20, max_size=100
).map(build_stream)

engine_options = st.fixed_dictionaries(
    {
        "stp_mode": st.sampled_from(list(StpMode)),
        "done_orders_kept": st.sampled_from([2, 5, 100_000]),
        "max_iceberg_slices": st.sampled_from([2, 5, 1000]),
    }
)
