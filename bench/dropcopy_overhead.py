"""What drop copy adds to the order path, in process, per order (one core).

The same order flow (buys and sells in turn at one price: every second order
crosses the one before, so an ack per order and two fill reports per trade,
two ExecutionReports per order on average) runs through OrderEntry with
real file stores, in batches of 10 orders each followed by the gateway's
flushes, in three set-ups: no drop copy; the drop-copy stream only (the
default); the stream plus one logged-on FIX drop-copy session that receives
every copy. Rounds are interleaved and the best of each kept, so that a
shared machine's drifting speed hits all three alike.

    .venv/bin/python bench/dropcopy_overhead.py [--orders 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drop_copy.hub import Consumer, DropCopyHub
from drop_copy.stream import DropCopyStream
from engine.engine import MatchingEngine
from engine.journal import CommandJournal
from engine.types import Instrument, StpMode
from fix_gateway.application.order_entry import OrderEntry
from fix_gateway.codec import Decoder
from fix_gateway.dictionary import Dictionary
from fix_gateway.session.config import SessionConfig
from fix_gateway.session.session import Session, State
from session_store import FileStore, FsyncPolicy
from tests.fix_peer import MessageBuilder

DICTIONARY = Dictionary.load()


def orders(n: int) -> list:
    builder = MessageBuilder()
    out = []
    for i in range(n):
        side = 1 if i % 2 == 0 else 2
        raw = builder.build("D", (11, f"O{i}"), (55, "ACME"), (54, side), (38, 100), (40, 2),
                            (44, "10.00"), (60, "20261121-00:00:00"))
        (msg,), _ = Decoder().feed(raw)
        out.append(msg)
    return out


def run(mode: str, msgs: list, workdir: Path) -> float:
    def session(name: str) -> Session:
        s = Session(SessionConfig("FIXGW", name), FileStore(workdir / name,
                    fsync=FsyncPolicy.NONE), DICTIONARY, on_event=lambda *a: None)
        s.state = State.LOGGED_ON
        return s

    client = session("CLIENT1")
    instruments = [Instrument("ACME", Decimal("0.01"), 1, None, None)]
    engine = MatchingEngine(instruments, StpMode.CANCEL_RESTING)
    journal = CommandJournal(workdir / "journal.dat", fsync=FsyncPolicy.NONE)
    entry = OrderEntry(engine, journal, instruments, {"FIXGW-CLIENT1": client}.get)
    hub = None
    if mode != "off":
        hub = DropCopyHub(DropCopyStream(workdir / "stream", fsync=FsyncPolicy.NONE),
                          batch=entry.batch)
        entry.stream.stages.append(hub.on_events)
        if mode == "fix":
            copies = session("DC1")
            consumer = Consumer(copies, cursor=0, live=True)
            hub.consumers.append(consumer)
    start = time.perf_counter()
    for i in range(0, len(msgs), 10):
        for msg in msgs[i:i + 10]:
            entry.on_message(client, msg, 1.8e9)
        journal.flush()
        if hub is not None:
            hub.stream.flush()
        for s in entry.batch.sessions:
            s.store.flush()
            s.take_output()
        entry.batch.sessions.clear()
    return (time.perf_counter() - start) / len(msgs) * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    msgs = orders(args.orders)
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for mode in ("off", "stream", "fix"):
            with tempfile.TemporaryDirectory() as tmp:
                best[mode] = min(best.get(mode, 1e9), run(mode, msgs, Path(tmp)))
    base = best["off"]
    print(f"{args.orders:,} orders, 2 ExecutionReports each on average, best of {args.rounds}"
          " rounds:")
    print(f"  no drop copy:                    {base:6.1f} us per order")
    print(f"  drop-copy stream (default):      {best['stream']:6.1f} us per order"
          f"  (+{best['stream'] - base:.1f})")
    print(f"  stream + a FIX drop-copy session: {best['fix']:6.1f} us per order"
          f"  (+{best['fix'] - base:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
