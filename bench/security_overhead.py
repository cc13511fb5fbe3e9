"""Per-order cost of the session throttle and MaxOpenOrders, in process.

Drives pre-encoded NewOrderSingles (resting limit orders, alternate ones
cancelled) through Connection -> Session -> OrderEntry -> engine -> reports,
sans-I/O with a journal on disk (fsync none), once with neither check and once
with ThrottleMessages (a limit never reached) and MaxOpenOrders (never reached)
on. Prints microseconds per inbound message for each, best of --repeat runs.

    .venv/bin/python bench/security_overhead.py          (~30 s)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from engine.engine import MatchingEngine
from engine.journal import CommandJournal
from engine.types import Instrument
from fix_gateway.application.open_orders import OpenOrders
from fix_gateway.application.order_entry import OrderEntry
from fix_gateway.codec import encode
from fix_gateway.dictionary import Dictionary
from fix_gateway.session import Connection, Session, SessionConfig, SessionRegistry
from fix_gateway.utc_time import format_timestamp
from session_store import FsyncPolicy, MemoryStore

T0 = time.time()
NOW = format_timestamp(T0)


def messages(count: int) -> list[bytes]:
    out = [encode([(35, "A"), (34, 1), (49, "C"), (52, NOW), (56, "FIXGW"), (98, 0),
                   (108, 30)])]
    seq = 2
    for i in range(count):
        out.append(encode([(35, "D"), (34, seq), (49, "C"), (52, NOW), (56, "FIXGW"),
                           (11, f"O{i}"), (55, "ACME"), (54, "1"), (60, NOW), (38, 10),
                           (40, "2"), (44, f"{90 + i % 10}")]))
        seq += 1
        if i % 2:
            out.append(encode([(35, "F"), (34, seq), (49, "C"), (52, NOW), (56, "FIXGW"),
                               (11, f"X{i}"), (41, f"O{i}"), (55, "ACME"), (54, "1"),
                               (60, NOW)]))
            seq += 1
    return out


def run(config: SessionConfig, data: list[bytes], directory: Path) -> float:
    dictionary = Dictionary.load()
    session = Session(config, MemoryStore(T0), dictionary, on_event=lambda *a: None)
    instruments = [Instrument("ACME")]
    entry = OrderEntry(MatchingEngine(instruments),
                       CommandJournal(directory / f"j{time.monotonic_ns()}.dat",
                                      fsync=FsyncPolicy.NONE),
                       instruments, {config.name: session}.get)
    if config.max_open_orders is not None:
        OpenOrders.install(entry)
    session.application = entry
    conn = Connection(SessionRegistry([session]), T0)
    start = time.perf_counter()
    for raw in data:
        conn.data_received(raw, T0)
        conn.take_output()
        entry.batch.sessions.clear()
    elapsed = time.perf_counter() - start
    assert conn.close_reason is None
    assert session.throttle is None or session.throttle.rejected == 0  # all admitted
    entry.journal.close()
    return elapsed / len(data) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    data = messages(args.orders)
    plain = SessionConfig("FIXGW", "C")
    guarded = replace(plain, throttle_messages=10**9, throttle_interval=1.0,
                      max_open_orders=10**9)
    configs = {"no checks": plain, "throttle + MaxOpenOrders": guarded}
    best = dict.fromkeys(configs, float("inf"))
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):  # interleaved, so that drift in machine load hits both
            for name, config in configs.items():
                best[name] = min(best[name], run(config, data, Path(tmp)))
    for name, us in best.items():
        print(f"{name}: {us:.2f} us per inbound message, best of {args.repeat}"
              f" ({len(data)} messages)")


if __name__ == "__main__":
    main()
