"""Surveillance detectors over ~1,000,000 events: events/s with MLX and with NumPy.

The flow is the scenario generator's (background from many accounts over
eight symbols through the real matching engine, every abuse pattern planted);
the figure times `run_detectors` -- all five detectors, from the NumPy columns
to the alert list -- best of `--repeat` runs, on one core. The per-part lines
time each detector alone (its arrays evaluated, its alerts read back).

    .venv/bin/python bench/surveillance_throughput.py [--rate 400] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from surveillance import detectors
from surveillance.detectors import Frame, evaluate, run_detectors
from surveillance.ops import make_ops
from surveillance.scenarios import BENEFICIAL_OWNERS, planted_flow
from surveillance.settings import SurveillanceSettings


def best_of(repeat: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=400.0,
                        help="background messages/s over the 30-minute scenario")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    t0 = time.perf_counter()
    batch = planted_flow(seed=1, rate=args.rate).batch()
    print(f"generated {len(batch):,} events through the engine in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    settings = SurveillanceSettings(beneficial_owners=BENEFICIAL_OWNERS)
    for name in ("mlx", "numpy"):
        ops = make_ops(name)
        alerts = run_detectors(batch, settings, ops)
        best = best_of(args.repeat, lambda ops=ops: run_detectors(batch, settings, ops))
        print(f"{name:5s} all detectors: {len(batch) / best:,.0f} events/s "
              f"({best * 1000:.0f} ms, {len(alerts)} alerts)")
        frame = Frame(ops, batch)
        parts = {
            "columns to backend": lambda ops=ops: Frame(ops, batch),
            "order_to_trade": lambda f=frame, ops=ops: evaluate(
                ops, [detectors.order_to_trade(f, settings.order_to_trade)]),
            "message_burst": lambda f=frame, ops=ops: evaluate(
                ops, [detectors.message_burst(f, settings.message_burst)]),
            "spoofing": lambda f=frame, ops=ops: evaluate(
                ops, [detectors.spoofing(f, settings.spoofing)]),
            "wash_trades": lambda f=frame, ops=ops: evaluate(
                ops, [detectors.wash_trades(f, settings.beneficial_owners)]),
            "price_moves": lambda f=frame, ops=ops: evaluate(
                ops, [detectors.price_moves(f, settings.price_move)]),
        }
        for part, fn in parts.items():
            print(f"{name:5s}   {part}: {best_of(args.repeat, fn) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
