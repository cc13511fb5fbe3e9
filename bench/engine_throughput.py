"""Matching engine throughput: commands (and the events they produce) per second, one core.

What is measured: `engine.process(command)` in a loop over a pre-generated
stream, timed with `time.perf_counter`, nothing else in the loop but counting
the events. The stream is made before timing and is the same on every run
(seeded):

- 10 symbols, each with a mid price that drifts by a tick now and then;
- about 60% passive limit orders (Day), 1 to 5 ticks behind the mid on their
  own side, so they queue near the touch without crossing;
- about 30% cancels of orders that are live at that moment (the generator
  runs a scratch engine to know which ones are);
- about 10% aggressive orders that cross the spread and sweep a few orders:
  limit IOC a few ticks through the mid, or market.

Twenty sessions send them, each with its own account, so an aggressor now
and then meets its own resting order and self-trade prevention cancels it.
The garbage collector is on, with the settings `fixgw serve` uses. The
process is pinned to one CPU where the OS allows it.

Both builds run: the pure-Python engine (engine.engine) and the compiled one
(engine.compiled, built by `setup.py build_ext --inplace` or `pip install -e .`),
in interleaved rounds, so that the noise of a shared machine hits both alike;
the last line gives their ratio. Without a compiled build only the pure one runs.

Each figure is the best of a few runs, each into a fresh engine: operations
(commands) per second and events per second. `ReferenceEngine`, the slow twin
the tests compare against, runs on the first commands of the same stream only.

Memory per resting order: what an engine holds (tracemalloc) after 100,000
passive limit orders rest in it (10 symbols, 1,000 price levels, one order each
per level and session), divided by 100,000: the order, its ClOrdID string,
its entries in the order and ClOrdID maps, and its share of the price levels.

Run from the repository root:

    .venv/bin/python bench/engine_throughput.py            # 1,000,000 commands
    .venv/bin/python bench/engine_throughput.py --quick    # 100,000 commands
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import PureMatchingEngine, compiled_engine
from engine.engine import DAY_NS
from engine.reference import ReferenceEngine
from engine.types import (
    Accepted,
    Cancelled,
    CancelOrder,
    Instrument,
    NewOrder,
    OrdStatus,
    OrdType,
    Side,
    TimeInForce,
    Trade,
)

SYMBOLS = [f"SYM{i}" for i in range(10)]
SESSIONS = [f"CLIENT{i:02d}" for i in range(20)]
INSTRUMENTS = [Instrument(s, band_low=1, band_high=1_000_000) for s in SYMBOLS]
START = 20_000 * DAY_NS + 9 * 3_600 * 10**9  # 09:00 UTC
BUY, SELL = Side.BUY, Side.SELL


def pin_to_one_core(cpu: int | None) -> str:
    """Pin to `cpu` (default: the highest allowed, away from CPU 0's interrupts)."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    chosen = max(os.sched_getaffinity(0)) if cpu is None else cpu
    os.sched_setaffinity(0, {chosen})
    return f"pinned to CPU {chosen}"


def builds() -> dict[str, type]:
    """The engine builds to measure: pure Python, and the compiled one where built."""
    found: dict[str, type] = {"pure": PureMatchingEngine}
    compiled = compiled_engine()
    if compiled is not None:
        found["compiled"] = compiled
    return found


def tune_gc() -> None:
    """The collector policy the server runs with (fix_gateway.gc_policy)."""
    from fix_gateway import gc_policy

    gc_policy.install()


class LiveOrders:
    """Orders resting right now, for picking a random one to cancel in O(1)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, str, Side]] = []
        self.index: dict[tuple[str, str], int] = {}

    def add(self, item: tuple[str, str, str, Side]) -> None:
        self.index[item[:2]] = len(self.items)
        self.items.append(item)

    def discard(self, session: str, cl_ord_id: str) -> None:
        position = self.index.pop((session, cl_ord_id), None)
        if position is None:
            return
        last = self.items.pop()
        if position < len(self.items):
            self.items[position] = last
            self.index[last[:2]] = position

    def pick(self, rng: random.Random) -> tuple[str, str, str, Side] | None:
        return rng.choice(self.items) if self.items else None


def generate(count: int, seed: int = 7) -> list[Any]:
    """The command stream (see the module docstring)."""
    rng = random.Random(seed)
    scratch = PureMatchingEngine(INSTRUMENTS)
    live = LiveOrders()
    mids = {s: 10_000 + 100 * i for i, s in enumerate(SYMBOLS)}
    commands: list[Any] = []
    ts = START
    for n in range(count):
        ts += 1_000
        session = SESSIONS[n % len(SESSIONS)]
        cl_ord_id = f"{n:x}"
        roll = rng.random()
        if roll < 0.02:  # the mid drifts
            symbol = rng.choice(SYMBOLS)
            mids[symbol] += rng.choice((-1, 1))
        if roll < 0.60:
            symbol = rng.choice(SYMBOLS)
            side = BUY if rng.random() < 0.5 else SELL
            offset = rng.randint(1, 5)
            price = mids[symbol] - offset if side == BUY else mids[symbol] + offset
            command: Any = NewOrder(
                ts, session, session, cl_ord_id, symbol, side, OrdType.LIMIT,
                rng.randint(1, 20) * 10, price, None, TimeInForce.DAY,
            )  # fmt: skip
        elif roll < 0.90 and live.items:
            target_session, target, symbol, side = live.pick(rng)
            command = CancelOrder(ts, target_session, cl_ord_id, target, symbol, side)
        else:
            symbol = rng.choice(SYMBOLS)
            side = BUY if rng.random() < 0.5 else SELL
            qty = rng.randint(5, 40) * 10
            if rng.random() < 0.5:
                command = NewOrder(
                    ts, session, session, cl_ord_id, symbol, side, OrdType.MARKET, qty, None,
                    None, TimeInForce.DAY,
                )  # fmt: skip
            else:
                through = rng.randint(1, 4)
                price = mids[symbol] + through if side == BUY else mids[symbol] - through
                command = NewOrder(
                    ts, session, session, cl_ord_id, symbol, side, OrdType.LIMIT, qty, price,
                    None, TimeInForce.IOC,
                )  # fmt: skip
        commands.append(command)
        for event in scratch.process(command):
            if isinstance(event, Accepted):
                order = event.order
                live.add((order.session, order.cl_ord_id, order.symbol, order.side))
            elif isinstance(event, Trade):
                for order in (event.aggressor, event.resting):
                    if order.status == OrdStatus.FILLED:
                        live.discard(order.session, order.cl_ord_id)
            elif isinstance(event, Cancelled):
                order = event.order
                live.discard(order.session, order.orig_cl_ord_id or order.cl_ord_id)
                live.discard(order.session, order.cl_ord_id)
    return commands


def run(engine_type: type, commands: list[Any]) -> tuple[float, float, int]:
    """Wall and CPU seconds to process `commands` into a fresh engine, and the events."""
    engine = engine_type(INSTRUMENTS)
    process = engine.process
    events = 0
    gc.collect()
    started = time.perf_counter()
    cpu_started = time.process_time()
    for command in commands:
        events += len(process(command))
    return time.perf_counter() - started, time.process_time() - cpu_started, events


def figure(name: str, commands: list[Any], results: list[tuple[float, float, int]]) -> float:
    """Print one engine's line; return its best ops/s by CPU time."""
    seconds, _, events = min(results)
    # CPU time leaves out what other processes took of this CPU (a shared VM).
    cpu_seconds = min(cpu for _, cpu, _ in results)
    print(
        f"engine {name}: {len(commands) / seconds:,.0f} ops/s "
        f"({events / seconds:,.0f} events/s) over {len(commands):,} commands; "
        f"by CPU time {len(commands) / cpu_seconds:,.0f} ops/s",
        flush=True,
    )
    return len(commands) / cpu_seconds


def resting_orders(count: int) -> list[NewOrder]:
    """`count` passive limit orders that all rest: bids below 10,000, asks above."""
    orders = []
    for n in range(count):
        session = SESSIONS[n % len(SESSIONS)]
        symbol = SYMBOLS[n // len(SESSIONS) % len(SYMBOLS)]
        level = n // (len(SESSIONS) * len(SYMBOLS)) % 500 + 1
        side, price = (BUY, 10_000 - level) if n % 2 else (SELL, 10_000 + level)
        orders.append(NewOrder(START + n, session, session, f"r{n:x}", symbol, side,
                               OrdType.LIMIT, 100, price, None, TimeInForce.GTC))
    return orders


def bytes_per_resting_order(engine_type: type, count: int = 100_000) -> float:
    """What the engine holds per resting order (see the module docstring)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    engine = engine_type(INSTRUMENTS)
    orders = resting_orders(count)
    process = engine.process
    for command in orders:
        process(command)
    del orders, command
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert sum(engine.book(s).live_count() for s in SYMBOLS) == count
    return held / count


def describe(commands: list[Any]) -> str:
    news = [c for c in commands if isinstance(c, NewOrder)]
    passive = sum(1 for c in news if c.tif == TimeInForce.DAY and c.ord_type == OrdType.LIMIT)
    cancels = len(commands) - len(news)
    aggressive = len(news) - passive
    total = len(commands)
    return (
        f"{passive / total:.0%} passive limit, {cancels / total:.0%} cancels, "
        f"{aggressive / total:.0%} aggressive (IOC/market)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 commands, one round")
    parser.add_argument("--count", type=int, default=None, help="commands for MatchingEngine")
    parser.add_argument("--reference-count", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to")
    args = parser.parse_args(argv)
    count = args.count or (100_000 if args.quick else 1_000_000)
    rounds = args.rounds or (1 if args.quick else 3)
    pinned = pin_to_one_core(args.cpu)
    commands = generate(count)
    engines = builds()
    print(
        f"# fixgw engine throughput, Python {sys.version.split()[0]} "
        f"(builds: {', '.join(engines)}), {pinned}, {describe(commands)}, best of {rounds}, "
        "rounds interleaved",
        flush=True,
    )
    tune_gc()
    results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in engines}
    for _ in range(rounds):
        for name, engine_type in engines.items():
            results[name].append(run(engine_type, commands))
    best = {name: figure(f"MatchingEngine {name}", commands, results[name])
            for name in engines}
    for name, engine_type in engines.items():
        print(f"engine MatchingEngine {name}: {bytes_per_resting_order(engine_type):,.0f} "
              "bytes per resting order (100,000 resting)", flush=True)
    if "compiled" in best:
        print(f"engine compiled / pure: {best['compiled'] / best['pure']:.2f}x ops/s by CPU time",
              flush=True)
    reference = commands[: min(args.reference_count, count)]
    figure("ReferenceEngine", reference, [run(ReferenceEngine, reference)])


if __name__ == "__main__":
    main()
