"""Synthetic order flow for the surveillance tests and benchmark.

`Scenario` drives a real `MatchingEngine`: background flow from many accounts
over several symbols (passive adds around a fair price, cancels of resting
orders, small IOC orders crossing the spread), and, when asked, each abuse
pattern planted with a known account, symbol and time. Every command goes
through the engine, so the detectors see real events. The background is
built so that no detector should fire on it: prices stay within ten ticks of
fair (under 50 bps), each account sends about one message every few seconds.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import NamedTuple

from engine import MatchingEngine
from engine.types import (
    Accepted,
    Cancelled,
    CancelOrder,
    Command,
    Event,
    Expired,
    Instrument,
    NewOrder,
    OrderState,
    OrdType,
    Replaced,
    Side,
    StatusReport,
    TimeInForce,
    Trade,
    Triggered,
)
from surveillance.columns import Batch, EventColumns

SECOND = 10**9
FAIR = 10_000  # ticks: 100.00 at a 0.01 tick
START = int(datetime(2026, 1, 15, 20, 30, tzinfo=UTC).timestamp()) * SECOND
CLOSE = int(datetime(2026, 1, 15, 21, 0, tzinfo=UTC).timestamp()) * SECOND  # the default close

# The events that carry the order they concern.
_WITH_ORDER = (Accepted, Cancelled, Replaced, Expired, Triggered, StatusReport)


def _order_of(event: Event) -> OrderState | None:
    """The order an event concerns, where it carries one."""
    return event.order if isinstance(event, _WITH_ORDER) else None


def _first_order(events: list[Event]) -> OrderState:
    """The order of a command's first event (a new order's Accepted)."""
    order = _order_of(events[0])
    assert order is not None, f"no order in {events[0]!r}"
    return order


class Planted(NamedTuple):
    type: str
    account: str
    symbol: str | None
    ts: int  # ns


class _Open:
    """An account's resting orders: O(1) add, remove and random pick."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.pos: dict[str, int] = {}

    def add(self, cl: str) -> None:
        self.pos[cl] = len(self.ids)
        self.ids.append(cl)

    def remove(self, cl: str) -> None:
        i = self.pos.pop(cl, None)
        if i is None:
            return
        last = self.ids.pop()
        if last != cl:
            self.ids[i] = last
            self.pos[last] = i


class Scenario:
    def __init__(self, seed: int = 1, accounts: int = 200, symbols: int = 5,
                 rate: float = 50.0) -> None:
        self.rng = random.Random(seed)
        self.accounts = [f"ACC{i:04d}" for i in range(accounts)]
        self.symbols = [f"SYM{i}" for i in range(symbols)]
        extra = ["SPOOFSYM", "IGNSYM", "CLOSESYM"]
        self.engine = MatchingEngine([Instrument(s) for s in self.symbols + extra])
        self.rate = rate  # background messages per second
        self.columns = EventColumns()
        self.planted: list[Planted] = []
        self.now = START
        self.commands = 0
        self._orders: dict[str, tuple[str, str, Side]] = {}  # cl_ord_id -> account, symbol, side
        self._open: dict[str, _Open] = {}
        self._next = 0

    # --- the engine ------------------------------------------------------------------

    def send(self, command: Command) -> list[Event]:
        events = self.engine.process(command)
        self.columns.observe(command, events, 0.0)
        self.commands += 1
        for e in events:
            if type(e) is Trade and e.resting.leaves_qty == 0:
                self._forget(e.resting.cl_ord_id)
            elif type(e) is Cancelled:
                self._forget(e.order.cl_ord_id)
        return events

    def _forget(self, cl: str) -> None:
        known = self._orders.pop(cl, None)
        if known is not None:
            self._open[known[0]].remove(cl)

    def order(self, account: str, symbol: str, side: Side, qty: int, price: int,
              tif: TimeInForce = TimeInForce.GTC, session: str | None = None) -> list[Event]:
        self._next += 1
        cl = f"O{self._next}"
        events = self.send(NewOrder(self.now, session or f"S-{account}", account, cl, symbol,
                                    side, OrdType.LIMIT, qty, price, None, tif))
        if tif == TimeInForce.GTC and any(
                o.leaves_qty for o in map(_order_of, events)
                if o is not None and o.cl_ord_id == cl and o.status in (0, 1)):
            self._orders[cl] = (account, symbol, side)
            self._open.setdefault(account, _Open()).add(cl)
        return events

    def cancel(self, cl: str) -> list[Event]:
        account, symbol, side = self._orders[cl]
        self._next += 1
        return self.send(CancelOrder(self.now, f"S-{account}", f"C{self._next}", cl, symbol,
                                     side))

    # --- background flow -----------------------------------------------------------------

    def background(self, until: int, symbols: list[str] | None = None) -> None:
        """Random flow until `until` (ns); Poisson arrivals at `rate` messages/s."""
        rng = self.rng
        syms = symbols or self.symbols
        mean_gap = SECOND / self.rate
        while True:
            self.now += int(rng.expovariate(1.0) * mean_gap) + 1
            if self.now >= until:
                self.now = until
                return
            account = rng.choice(self.accounts)
            symbol = rng.choice(syms)
            roll = rng.random()
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            sign = -1 if side == Side.BUY else 1
            opened = self._open.get(account)
            if roll < 0.4 and opened is not None and opened.ids:
                self.cancel(rng.choice(opened.ids))
            elif roll < 0.85:
                self.order(account, symbol, side, rng.randint(1, 100),
                           FAIR + sign * rng.randint(1, 10))
            else:  # cross the spread, never far: an IOC to two ticks beyond fair
                self.order(account, symbol, side, rng.randint(1, 50), FAIR - sign * 2,
                           TimeInForce.IOC)

    def seed_books(self, symbols: list[str]) -> None:
        """A few resting orders each side so the first crossing orders find liquidity
        (ten a second: a market maker, not a burst)."""
        for symbol in symbols:
            for level in range(1, 6):
                for side, sign in ((Side.BUY, -1), (Side.SELL, 1)):
                    self.order("MM", symbol, side, 50, FAIR + sign * level)
                    self.now += SECOND // 10

    # --- planted patterns ----------------------------------------------------------------

    def plant_wash(self, symbol: str) -> None:
        """Two accounts of one beneficial owner trade with each other; and an order
        with no Account trading against the same session (no STP without an Account)."""
        self.order("WASH_A", symbol, Side.SELL, 300, FAIR + 1)
        t = self.now
        events = self.order("WASH_B", symbol, Side.BUY, 10**9, FAIR + 1, TimeInForce.IOC)
        assert any(type(e) is Trade and e.resting.account == "WASH_A" for e in events)
        self.planted.append(Planted("wash_trade", "WASH_B", symbol, t))
        self.now += SECOND // 2
        self.order("", symbol, Side.SELL, 200, FAIR + 1, session="SELFX")
        t = self.now
        events = self.order("", symbol, Side.BUY, 10**9, FAIR + 1, TimeInForce.IOC,
                            session="SELFX")
        assert any(type(e) is Trade and e.resting.session == "SELFX" for e in events)
        self.planted.append(Planted("wash_trade", "SELFX", symbol, t))

    def plant_spoof(self, symbol: str = "SPOOFSYM") -> None:
        """Large bids layered at five levels, a small sell fills, the bids are cancelled."""
        layers = [self.order("SPOOFER", symbol, Side.BUY, 2000, FAIR - 3 - i)
                  for i in range(5)]
        self.now += SECOND // 5
        t = self.now
        filled = False
        for limit in (FAIR - 1, FAIR - 2):
            events = self.order("SPOOFER", symbol, Side.SELL, 100, limit, TimeInForce.IOC)
            if any(type(e) is Trade for e in events):
                filled = True
                break
        assert filled, "no bid for the spoofer's sell"
        self.now += SECOND
        for events in layers:
            self.cancel(_first_order(events).cl_ord_id)
        self.planted.append(Planted("spoofing", "SPOOFER", symbol, t))

    def plant_ignition(self, symbol: str = "IGNSYM") -> None:
        """A thin far offer, then one buy sweeps the book up to it: 80 bps; the
        background flow brings the price back within the reversal window."""
        self.order("FAROFFER", symbol, Side.SELL, 50, FAIR + 80)
        self.now += SECOND
        t = self.now
        events = self.order("IGNITER", symbol, Side.BUY, 10**9, FAIR + 80, TimeInForce.IOC)
        assert any(type(e) is Trade and e.price == FAIR + 80 for e in events)
        self.planted.append(Planted("momentum_ignition", "IGNITER", symbol, t))

    def plant_close(self, symbol: str = "CLOSESYM") -> None:
        """Ten seconds before the close one buy sweeps to a far offer; no trade after."""
        self.order("FAROFFER", symbol, Side.SELL, 50, FAIR + 70)
        self.now = CLOSE - 10 * SECOND
        t = self.now
        events = self.order("CLOSER", symbol, Side.BUY, 10**9, FAIR + 70, TimeInForce.IOC)
        assert any(type(e) is Trade and e.price == FAIR + 70 for e in events)
        self.planted.append(Planted("marking_close", "CLOSER", symbol, t))

    def plant_quiet_start(self, account: str, symbol: str) -> None:
        """One order, cancelled: the account is known, with a quiet baseline (an
        account with no history at all is judged by max_per_second alone)."""
        events = self.order(account, symbol, Side.BUY, 1, FAIR - 50)
        self.now += SECOND // 10
        self.cancel(_first_order(events).cl_ord_id)

    def plant_burst(self, symbol: str) -> None:
        """300 orders and cancels far from the market within one second (quote
        stuffing); being all orders and no trades it is also an order-to-trade alert."""
        t = self.now
        step = SECOND // 320
        for _ in range(150):
            events = self.order("STUFFER", symbol, Side.BUY, 1, FAIR - 50)
            self.now += step
            self.cancel(_first_order(events).cl_ord_id)
            self.now += step
        self.planted.append(Planted("message_burst", "STUFFER", None, t))
        self.planted.append(Planted("order_to_trade", "STUFFER", symbol, t))

    def plant_order_to_trade(self, symbol: str) -> None:
        """250 order messages in 50 s (5/s, no burst) and a single trade."""
        t = self.now
        for i in range(125):
            events = self.order("OTR1", symbol, Side.SELL, 10, FAIR + 30 + i % 5)
            self.now += SECOND // 5
            self.cancel(_first_order(events).cl_ord_id)
            self.now += SECOND // 5
        self.planted.append(Planted("order_to_trade", "OTR1", symbol, t))

    def batch(self) -> Batch:
        return self.columns.batch()


BENEFICIAL_OWNERS = {"owner1": ["WASH_A", "WASH_B"]}


def clean_flow(seed: int = 1, seconds: int = 600, rate: float = 50.0) -> Scenario:
    sc = Scenario(seed, rate=rate)
    sc.seed_books(sc.symbols)
    sc.background(START + seconds * SECOND)
    return sc


def planted_flow(seed: int = 1, rate: float = 50.0) -> Scenario:
    """Background from 20:30 to 20:59:30 UTC with every pattern planted in it."""
    sc = Scenario(seed, rate=rate)
    everything = [*sc.symbols, "SPOOFSYM", "IGNSYM", "CLOSESYM"]
    sc.seed_books(everything)
    sc.background(START + 120 * SECOND, everything)
    sc.plant_wash(sc.symbols[0])
    sc.background(sc.now + 120 * SECOND, everything)
    sc.plant_spoof()
    sc.background(sc.now + 120 * SECOND, everything)
    sc.plant_ignition()
    sc.background(sc.now + 60 * SECOND, everything)
    sc.plant_quiet_start("STUFFER", sc.symbols[1])
    sc.background(sc.now + 60 * SECOND, everything)
    sc.plant_burst(sc.symbols[1])
    sc.background(sc.now + 120 * SECOND, everything)
    sc.plant_order_to_trade(sc.symbols[2])
    sc.background(CLOSE - 30 * SECOND, everything)
    sc.plant_close()
    return sc
