"""The least a CPython order gateway must spend per order: a floor, not a gateway.

Issue 3 asks for 100,000 orders/s on one core (10 us per order, socket I/O
included). This benchmark asks what the unavoidable per-order work alone
costs in CPython on this machine, written as tightly as we know how and with
everything a venue adds left out:

1. frame and checksum the NewOrderSingle / OrderCancelRequest
   (`bytes.index`, the codec's adler32-based `checksum`);
2. split it into fields (`split` on SOH, `partition` on "=");
3. check MsgSeqNum and build the engine command (ints, price to ticks);
4. `MatchingEngine.process` (the real engine: it is the venue's order book);
5. one ExecutionReport per event: one `%` format of its fields, BodyLength
   and CheckSum;
6. journal the command (the real `encode_command`: marshal and crc32) and
   append the reports to a store buffer, written to a file with one
   `os.write` per read of 50 orders.

Left out: socket reads and writes, validation against the dictionary, the
session layer's state, metrics, drop copy, surveillance, sequence-number
files, fsync, timestamps per message (one fixed SendingTime), OrderState
lookups for cancels. The same order stream as `gateway_load.py` (one
session: 50% passive limit, 25% crossing IOC, 25% cancels) is made up front.

    .venv/bin/python bench/python_floor.py              # 200,000 orders, best of 3
    .venv/bin/python bench/python_floor.py --orders 50000 --repeat 1
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gateway_load import INSTRUMENTS, TS_SLOT, make_stream
from engine.engine import MatchingEngine
from engine.journal import encode_command
from engine.types import (
    Accepted,
    Cancelled,
    CancelOrder,
    Instrument,
    NewOrder,
    OrdType,
    Side,
    TimeInForce,
    Trade,
)
from fix_gateway.codec import checksum

SENDING_TIME = b"20261122-10:00:00.000"
BATCH = 50
SOH = b"\x01"

ER = (
    b"35=8\x0134=%d\x0149=FIXGW\x0152=%b\x0156=CLIENT1\x011=%b\x016=%b\x0111=%b\x01"
    b"14=%d\x0117=%d\x0131=%b\x0132=%d\x0137=%d\x0138=%d\x0139=%b\x0140=2\x0144=%b\x01"
    b"54=%b\x0155=%b\x0159=%b\x0160=%b\x01150=%b\x01151=%d\x01"
)


def real_frames(n_orders: int) -> list[bytes]:
    """The stream's order messages with SendingTime/TransactTime and CheckSum filled in."""
    stream = make_stream("CLIENT1", "F-", n_orders, seed=1)
    out = []
    for frame, kind in zip(stream.frames, stream.kinds, strict=True):
        if kind != 1:
            continue
        frame = frame.replace(TS_SLOT, SENDING_TIME)[:-7]
        out.append(frame + b"10=%03d\x01" % (sum(frame) % 256))
    return out


def to_ticks(text: bytes) -> int:
    whole, _, frac = text.partition(b".")
    return int(whole) * 100 + int(frac.ljust(2, b"0"))


def new_engine() -> MatchingEngine:
    return MatchingEngine([Instrument(s, Decimal("0.01")) for s, _, _ in INSTRUMENTS])


def run(frames: list[bytes], out_fd: int, commands: list[object]) -> float:
    """Seconds for the whole stream, one read of BATCH orders at a time; the
    engine commands it made are appended to `commands`."""
    engine = new_engine()
    reads = [b"".join(frames[i:i + BATCH]) for i in range(0, len(frames), BATCH)]
    expected = 2  # MsgSeqNum 1 was the stream's Logon
    out_seq = 1
    ts = 1_790_000_000 * 10**9
    sides = {b"1": Side.BUY, b"2": Side.SELL}
    tifs = {b"0": TimeInForce.DAY, b"3": TimeInForce.IOC}
    status = {0: b"0", 1: b"1", 2: b"2", 4: b"4"}
    started = time.perf_counter()
    for buf in reads:
        store: list[bytes] = []
        journal: list[bytes] = []
        pos = 0
        end_of_buf = len(buf)
        while pos < end_of_buf:
            # 1. frame and checksum
            trailer = buf.index(b"\x0110=", pos) + 1
            if checksum(buf[pos:trailer]) != int(buf[trailer + 3:trailer + 6]):
                raise ValueError("checksum")
            msg = buf[pos:trailer]
            pos = trailer + 7
            # 2. fields
            fields = {}
            for part in msg.split(SOH)[2:-1]:
                tag, _, value = part.partition(b"=")
                fields[tag] = value
            # 3. sequence and command
            if int(fields[b"34"]) != expected:
                raise ValueError("sequence")
            expected += 1
            ts += 1000
            if fields[b"35"] == b"D":
                cmd = NewOrder(ts, "S", fields[b"1"].decode(), fields[b"11"].decode(),
                               fields[b"55"].decode(), sides[fields[b"54"]], OrdType.LIMIT,
                               int(fields[b"38"]), to_ticks(fields[b"44"]), None,
                               tifs[fields[b"59"]])
            else:
                cmd = CancelOrder(ts, "S", fields[b"11"].decode(), fields[b"41"].decode(),
                                  fields[b"55"].decode(), sides[fields[b"54"]])
            journal.append(encode_command(cmd))
            commands.append(cmd)
            # 4. engine
            for event in engine.process(cmd):
                kind = type(event)
                if kind is Trade:
                    states = (event.aggressor, event.resting)
                    last_qty, last_px = event.qty, b"%d" % event.price
                elif kind is Accepted or kind is Cancelled:
                    states = (event.order,)
                    last_qty, last_px = 0, b"0"
                else:
                    continue
                # 5. one ExecutionReport per order in the event
                for o in states:
                    body = ER % (
                        out_seq, SENDING_TIME, o.account.encode(), b"0",
                        o.cl_ord_id.encode(), o.cum_qty, event.seq, last_px, last_qty,
                        o.order_id, o.qty, status.get(o.status, b"4"), b"%d" % o.price,
                        b"1" if o.side == 1 else b"2", o.symbol.encode(), b"0",
                        SENDING_TIME, b"F", o.leaves_qty,
                    )
                    head = b"8=FIX.4.4\x019=%d\x01" % len(body)
                    whole = head + body
                    store.append(whole + b"10=%03d\x01" % checksum(whole))
                    out_seq += 1
        # 6. write ahead: one write each per read
        os.write(out_fd, b"".join(journal))
        os.write(out_fd, b"".join(store))
    return time.perf_counter() - started


def engine_alone(commands: list[object]) -> float:
    """Seconds for step 4 alone: the same commands into a fresh engine."""
    engine = new_engine()
    process = engine.process
    started = time.perf_counter()
    for cmd in commands:
        process(cmd)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    frames = real_frames(args.orders)
    best = best_engine = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        fd = os.open(Path(tmp) / "out.dat", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        for _ in range(args.repeat):
            commands: list[object] = []
            best = min(best, run(frames, fd, commands))
            best_engine = min(best_engine, engine_alone(commands))
            os.ftruncate(fd, 0)
        os.close(fd)
    per = best / len(frames) * 1e6
    per_engine = best_engine / len(frames) * 1e6
    print(f"python floor: {len(frames):,} orders, best of {args.repeat}: {per:.1f} us per order "
          f"(= {1e6 / per:,.0f} orders/s on one core, before any socket I/O, validation, "
          f"session state, drop copy, metrics or surveillance)")
    rest = per - per_engine
    print(f"  of which the engine alone: {per_engine:.1f} us; everything else: {rest:.1f} us "
          f"(= {1e6 / rest:,.0f} orders/s with an engine that cost nothing)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
