"""Codec throughput: fixgw's FIX codec against simplefix, on one core.

What is measured (messages per second; every figure is timed in interleaved
rounds and its best run kept, so a VM whose speed drifts affects all figures
alike; each run timed with `time.perf_counter`; the process is pinned to one CPU where the OS
allows it; the garbage collector stays on, as in the server):

parse
    Realistic FIX 4.4 NewOrderSingle (35=D) frames, 18 fields each, every one
    with its own ClOrdID, MsgSeqNum, price and quantity.

    - "one per feed": each frame handed to the parser on its own
      (fixgw `Decoder.feed(frame)`; simplefix `append_buffer(frame)` then
      `get_message()`), as when every TCP read carries one message.
    - "1000 pipelined": 1,000 frames in one chunk (fixgw one `feed(chunk)`;
      simplefix one `append_buffer(chunk)` then `get_message()` until None),
      as when a client streams orders.

    Both parsers are checked to return every message; fixgw also checks
    BodyLength and CheckSum, simplefix checks neither.

encode
    A realistic ExecutionReport (35=8), 26 fields with 8, 9 and 10, with a
    fresh MsgSeqNum, ExecID, OrderID, fill price and quantities each time.

    - "fixgw encode()": the generic path, a list of (tag, value) pairs with
      header fields put in standard order, 9 and 10 computed.
    - "fixgw render()+frame()": the session's hot path (as `Session.send`),
      the header `35=8|34=..|49=..|52=..|56=..|` spliced from pre-rendered
      49/56 bytes, the body through `render()`, then `frame()` adds 8, 9, 10.
    - "fixgw MessageTemplate": the layout rendered once, constants baked in,
      the varying values filled by one %-format, then 9 and 10 (how the order
      hot path builds ExecutionReports).
    - "simplefix": `FixMessage()`, `append_pair()` per field, `encode()`.

    All of them produce the same bytes for the same input (checked up front).
    Every encode loop also makes its varying values (timestamp via
    `format_timestamp`, ids, prices); the output gives that cost alone.

The output also times a bare Python loop, to compare machines.

Each figure above also gives its ratio to simplefix doing the same job; they
use `fix_gateway.codec` as the gateway does (compiled when built).

pure vs compiled
    The same jobs through both builds side by side, `fix_gateway.codec_pure`
    and `fix_gateway.codec_c` (skipped, and said so, when the extension is not
    built), in the same interleaved rounds, with every input made up front so
    the figure is the codec's alone:

    - "parse ... one per feed" and "1000 pipelined": as above.
    - "... + order fields read": each message's NewOrderSingle fields then read
      with `get_many` as order entry does (a compiled Message makes a bytes
      object only for the values read).
    - "... + all values": each message's `values` list taken whole, as the
      session layer and dictionary validation do today.
    - "encode ExecutionReport frame()": `Session.send_rendered`'s work after
      its %-format, the header and rendered body framed with 8, 9, 10.
    - "encode ExecutionReport render()+frame()": the body rendered from
      (tag, value) pairs, then framed.

    Targets (issue 13): >= 2,000,000 NewOrderSingles parsed per second and
    >= 2,000,000 ExecutionReports encoded per second, on one core.

Run from the repository root:

    .venv/bin/python bench/codec_throughput.py            # full run (~40 s)
    .venv/bin/python bench/codec_throughput.py --quick    # a few seconds
    FIXGW_PURE=1 .venv/bin/python bench/codec_throughput.py   # upper figures on the pure build
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import simplefix

from fix_gateway import codec_pure
from fix_gateway.codec import (
    COMPILED,
    Decoder,
    Message,
    MessageTemplate,
    codec_c,
    encode,
    frame,
    render,
)
from fix_gateway.server import tune_gc
from fix_gateway.utc_time import format_timestamp

T0 = 1_800_000_000.0
SYMBOLS = (b"AAPL", b"MSFT", b"VOD.L", b"BMW.DE", b"7203.T", b"ESZ5", b"EUR/USD", b"NESN.SW")
PARSE_TARGET = 2_000_000  # issue 13, on one core
ENCODE_TARGET = 2_000_000
# What order entry reads of a NewOrderSingle (fix_gateway.application.order_entry).
ORDER_TAGS = (11, 55, 1, 54, 40, 38, 44, 99, 59, 126, 110, 111)


# --- test data ----------------------------------------------------------------


def new_order_singles(count: int) -> list[bytes]:
    """`count` distinct NewOrderSingle frames (18 fields each)."""
    frames = []
    for i in range(count):
        now = T0 + i * 0.000_37
        ts = format_timestamp(now)
        frames.append(
            encode(
                [
                    (35, b"D"),
                    (49, b"CLIENT1"),
                    (56, b"FIXGW"),
                    (34, i + 1),
                    (52, ts),
                    (11, b"ORD-%08d-%04X" % (i, (i * 7919) & 0xFFFF)),
                    (1, b"ACC-%03d" % (i % 17)),
                    (21, b"1"),
                    (55, SYMBOLS[i % len(SYMBOLS)]),
                    (54, b"1" if i % 3 else b"2"),
                    (60, ts),
                    (38, (i % 50 + 1) * 100),
                    (40, b"2"),
                    (44, b"%d.%02d" % (100 + i % 37, (i * 13) % 100)),
                    (59, b"0"),
                ]
            )
        )
    return frames


def exec_report_values(i: int) -> tuple[int, bytes, bytes, bytes, bytes, int, int, bytes]:
    """The per-message varying values of an ExecutionReport."""
    qty = (i % 50 + 1) * 100
    last = qty // 2
    price = b"%d.%02d" % (100 + i % 37, (i * 13) % 100)
    return (i + 1, b"O-%09d" % i, b"E-%09d" % i, b"C-%09d" % i, price, qty, last, b"1")


SENDER, TARGET = b"FIXGW", b"CLIENT1"
BEGIN = b"FIX.4.4"
SENDER_FIELD = b"49=" + SENDER + b"\x01"
TARGET_FIELD = b"56=" + TARGET + b"\x01"


def er_fields(i: int, ts: bytes) -> list[tuple[int, bytes | int]]:
    seq, order_id, exec_id, cl_ord_id, price, qty, last, side = exec_report_values(i)
    return [
        (35, b"8"), (34, seq), (49, SENDER), (52, ts), (56, TARGET),
        (37, order_id), (11, cl_ord_id), (17, exec_id), (150, b"F"), (39, b"1"),
        (1, b"ACC-001"), (55, b"AAPL"), (54, side), (38, qty), (40, b"2"), (44, price),
        (59, b"0"), (32, last), (31, price), (151, qty - last), (14, last), (6, price),
        (60, ts),
    ]  # fmt: skip


# --- the measured loops ---------------------------------------------------------


def fixgw_parse_single(frames: list[bytes]) -> int:
    dec = Decoder()
    feed = dec.feed
    got = 0
    for raw in frames:
        got += len(feed(raw)[0])
    return got


def fixgw_parse_chunks(chunks: list[bytes]) -> int:
    dec = Decoder()
    feed = dec.feed
    got = 0
    for chunk in chunks:
        got += len(feed(chunk)[0])
    return got


def simplefix_parse_single(frames: list[bytes]) -> int:
    parser = simplefix.FixParser()
    append, get = parser.append_buffer, parser.get_message
    got = 0
    for raw in frames:
        append(raw)
        if get() is not None:
            got += 1
    return got


def simplefix_parse_chunks(chunks: list[bytes]) -> int:
    parser = simplefix.FixParser()
    append, get = parser.append_buffer, parser.get_message
    got = 0
    for chunk in chunks:
        append(chunk)
        while get() is not None:
            got += 1
    return got


def fixgw_encode(count: int) -> int:
    total = 0
    for i in range(count):
        ts = format_timestamp(T0 + i * 0.000_37)
        total += len(encode(er_fields(i, ts), BEGIN))
    return total


def fixgw_hot_path(count: int) -> int:
    total = 0
    sender, target = SENDER_FIELD, TARGET_FIELD
    for i in range(count):
        ts = format_timestamp(T0 + i * 0.000_37)
        seq, order_id, exec_id, cl_ord_id, price, qty, last, side = exec_report_values(i)
        body = render([
            (37, order_id), (11, cl_ord_id), (17, exec_id), (150, b"F"), (39, b"1"),
            (1, b"ACC-001"), (55, b"AAPL"), (54, side), (38, qty), (40, b"2"), (44, price),
            (59, b"0"), (32, last), (31, price), (151, qty - last), (14, last), (6, price),
            (60, ts),
        ])  # fmt: skip
        # As Session.send: header 35, 34, 49, 52, 56 in ascending tag order.
        head = b"35=8\x0134=%d\x01" % seq + sender + b"52=" + ts + b"\x01" + target
        total += len(frame(BEGIN, head + body))
    return total


# The order hot path's way: the ExecutionReport layout rendered once, values
# filled by one %-format (fix_gateway.codec.MessageTemplate).
ER_TEMPLATE = MessageTemplate([
    (35, b"8"), (34, int), (49, SENDER), (52, bytes), (56, TARGET),
    (37, bytes), (11, bytes), (17, bytes), (150, b"F"), (39, b"1"),
    (1, b"ACC-001"), (55, b"AAPL"), (54, bytes), (38, int), (40, b"2"), (44, bytes),
    (59, b"0"), (32, int), (31, bytes), (151, int), (14, int), (6, bytes), (60, bytes),
])  # fmt: skip


def fixgw_template(count: int) -> int:
    total = 0
    encode_er = ER_TEMPLATE.encode
    for i in range(count):
        ts = format_timestamp(T0 + i * 0.000_37)
        seq, order_id, exec_id, cl_ord_id, price, qty, last, side = exec_report_values(i)
        total += len(encode_er(seq, ts, order_id, cl_ord_id, exec_id, side, qty, price, last,
                               price, qty - last, last, price, ts))
    return total


def inputs_only(count: int) -> int:
    """What every encode loop spends making its varying values (the baseline)."""
    total = 0
    for i in range(count):
        ts = format_timestamp(T0 + i * 0.000_37)
        total += len(ts) + exec_report_values(i)[0]
    return total


def simplefix_encode(count: int) -> int:
    total = 0
    for i in range(count):
        ts = format_timestamp(T0 + i * 0.000_37)
        msg = simplefix.FixMessage()
        append = msg.append_pair
        append(8, BEGIN)
        for tag, value in er_fields(i, ts):
            append(tag, value)
        total += len(msg.encode())
    return total


# --- pure vs compiled: the same jobs through either module, inputs made up front ---


def parse_single(impl: Any, frames: list[bytes]) -> int:
    feed = impl.Decoder().feed
    got = 0
    for raw in frames:
        got += len(feed(raw)[0])
    return got


def parse_chunks(impl: Any, chunks: list[bytes]) -> int:
    feed = impl.Decoder().feed
    got = 0
    for chunk in chunks:
        got += len(feed(chunk)[0])
    return got


def parse_chunks_read(impl: Any, chunks: list[bytes]) -> int:
    feed = impl.Decoder().feed
    tags = ORDER_TAGS
    got = 0
    for chunk in chunks:
        for msg in feed(chunk)[0]:
            got += len(msg.get_many(tags))
    return got


def parse_chunks_values(impl: Any, chunks: list[bytes]) -> int:
    feed = impl.Decoder().feed
    got = 0
    for chunk in chunks:
        for msg in feed(chunk)[0]:
            got += len(msg.values)
    return got


def er_parts(count: int) -> list[tuple[bytes, list[tuple[int, bytes | int]]]]:
    """Per ExecutionReport: the header as `Session.send_rendered` makes it and
    the body fields (of which the rendered body follows the header)."""
    parts = []
    for i in range(count):
        ts = format_timestamp(T0 + i * 0.000_37)
        fields = er_fields(i, ts)
        head = (b"35=8\x0134=%d\x01" % fields[1][1] + SENDER_FIELD + b"52=" + ts + b"\x01"
                + TARGET_FIELD)
        parts.append((head, fields[5:]))
    return parts


def encode_frame(impl: Any, bodies: list[bytes]) -> int:
    wrap = impl.frame
    total = 0
    for body in bodies:
        total += len(wrap(BEGIN, body))
    return total


def encode_render_frame(impl: Any, parts: list[tuple[bytes, list[tuple[int, bytes | int]]]]) -> int:
    wrap, draw = impl.frame, impl.render
    total = 0
    for head, fields in parts:
        total += len(wrap(BEGIN, head + draw(fields)))
    return total


def compare_builds(frames: list[bytes], repeats: int, quick: bool) -> list[str]:
    """Pure vs compiled in interleaved rounds; prints the figures, returns the
    compiled figures below target."""
    if codec_c is None:
        print("# pure vs compiled: skipped, fix_gateway.codec_c is not built "
              "(python setup.py build_ext --inplace)")
        return []
    n_chunks = 3 if quick else 10
    chunk = b"".join(frames)
    parts = er_parts(1000)
    bodies = [head + codec_pure.render(fields) for head, fields in parts]
    for impl in (codec_pure, codec_c):  # the same answers, checked up front
        assert parse_chunks(impl, [chunk]) == parse_single(impl, frames) == 1000
    assert [encode_frame(codec_c, [b]) for b in bodies] == [
        encode_frame(codec_pure, [b]) for b in bodies]
    assert codec_c.render(parts[7][1]) == codec_pure.render(parts[7][1])
    jobs: list[tuple[str, Callable[[Any], object], int]] = [
        ("parse NewOrderSingle one per feed", lambda m: parse_single(m, frames * n_chunks),
         1000 * n_chunks),
        ("parse NewOrderSingle 1000 pipelined", lambda m: parse_chunks(m, [chunk] * n_chunks),
         1000 * n_chunks),
        ("parse NewOrderSingle 1000 pipelined + order fields read",
         lambda m: parse_chunks_read(m, [chunk] * n_chunks), 1000 * n_chunks),
        ("parse NewOrderSingle 1000 pipelined + all values",
         lambda m: parse_chunks_values(m, [chunk] * n_chunks), 1000 * n_chunks),
        ("encode ExecutionReport frame()", lambda m: encode_frame(m, bodies * n_chunks),
         1000 * n_chunks),
        ("encode ExecutionReport render()+frame()",
         lambda m: encode_render_frame(m, parts * n_chunks), 1000 * n_chunks),
    ]
    targets = {jobs[0][0]: PARSE_TARGET, jobs[1][0]: PARSE_TARGET, jobs[4][0]: ENCODE_TARGET}
    builds = (("pure", codec_pure), ("compiled", codec_c))
    best = {(name, build): float("inf") for name, _, _ in jobs for build, _ in builds}
    for _ in range(repeats):
        for name, job, _ in jobs:
            for build, impl in builds:
                start = time.perf_counter()
                job(impl)
                best[name, build] = min(best[name, build], time.perf_counter() - start)
    missed = []
    print(f"# pure vs compiled (fix_gateway.codec_pure / fix_gateway.codec_c), inputs made up "
          f"front, best of {repeats} interleaved rounds")
    for name, _, count in jobs:
        pure_rate, c_rate = count / best[name, "pure"], count / best[name, "compiled"]
        target = targets.get(name)
        flag = ""
        if target is not None:
            flag = f"  [target {target:,}: {'met' if c_rate >= target else 'below'}]"
            if c_rate < target:
                missed.append(f"{name} compiled")
        print(f"{name} pure: {pure_rate:,.0f} msg/s")
        print(f"{name} compiled: {c_rate:,.0f} msg/s{flag}")
        print(f"{name} ratio compiled/pure: {c_rate / pure_rate:.1f}x")
    return missed


# --- harness --------------------------------------------------------------------


def pin_to_one_core(cpu: int | None) -> str:
    """Pin to `cpu` (default: the highest allowed, away from CPU 0's interrupts)."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    chosen = max(os.sched_getaffinity(0)) if cpu is None else cpu
    os.sched_setaffinity(0, {chosen})
    return f"pinned to CPU {chosen}"


def check_equivalence(frames: list[bytes]) -> None:
    """Both parsers see every message; all three encoders agree byte for byte."""
    chunk = b"".join(frames)
    tune_gc()  # the collector settings `fixgw serve` runs with
    msgs, over = Decoder().feed(chunk)
    assert over is None and len(msgs) == len(frames)
    assert all(isinstance(m, Message) and m.raw == f for m, f in zip(msgs, frames, strict=True))
    assert simplefix_parse_chunks([chunk]) == len(frames)
    for i in (0, 1, 999):
        ts = format_timestamp(T0 + i * 0.000_37)
        generic = encode(er_fields(i, ts), BEGIN)
        sf = simplefix.FixMessage()
        sf.append_pair(8, BEGIN)
        for tag, value in er_fields(i, ts):
            sf.append_pair(tag, value)
        assert generic == sf.encode(), (generic, sf.encode())
        seq, *_ = exec_report_values(i)
        hot_fields = er_fields(i, ts)
        body = render(hot_fields[5:])
        head = b"35=8\x0134=%d\x01" % seq + SENDER_FIELD + b"52=" + ts + b"\x01" + TARGET_FIELD
        hot = frame(BEGIN, head + body)
        assert hot == generic, (hot, generic)
        _, order_id, exec_id, cl_ord_id, price, qty, last, side = exec_report_values(i)
        templated = ER_TEMPLATE.encode(seq, ts, order_id, cl_ord_id, exec_id, side, qty, price,
                                       last, price, qty - last, last, price, ts)
        assert templated == generic, (templated, generic)
    count = Decoder().feed(generic)[0][0].tags.__len__()
    assert count == 26, count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run (a few seconds)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per figure")
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to")
    args = parser.parse_args(argv)

    # Each timed repeat is short, and the best of many repeats is kept: that
    # filters out other load on the machine. simplefix, being 5-20x slower,
    # gets a smaller workload per repeat; rates are per message either way.
    repeats = args.repeats or (3 if args.quick else 15)
    n_chunks = 3 if args.quick else 10  # chunks of 1,000 pipelined frames per repeat
    sf_chunks = 1 if args.quick else 2
    n_encode = 3_000 if args.quick else 10_000
    sf_encode_n = 1_000 if args.quick else 3_000

    build = "compiled (fix_gateway.codec_c)" if COMPILED else "pure Python"
    print(
        f"# fixgw codec throughput, Python {sys.version.split()[0]}, {pin_to_one_core(args.cpu)}, "
        f"best of {repeats}; fix_gateway.codec is {build}"
    )
    frames = new_order_singles(1000)
    check_equivalence(frames)
    sizes = sorted(len(f) for f in frames)
    print(
        f"# NewOrderSingle: 18 fields, {sizes[0]}-{sizes[-1]} bytes; "
        f"ExecutionReport: 26 fields, {len(encode(er_fields(0, format_timestamp(T0))))} bytes"
    )

    chunk = b"".join(frames)
    loop = min(timeit.repeat("for i in range(1000): pass", number=1000, repeat=5))
    print(f"# machine reference: `for i in range(1000): pass` takes {loop * 1000:.1f} us")

    # Every measurement, as (key, run, messages per run). They are timed in
    # interleaved rounds, best run kept: on a shared VM whose speed drifts,
    # each figure then sees the whole run, not one slow stretch of it.
    runs: list[tuple[str, Callable[[], object], int]] = [
        ("parse1.ours", lambda: fixgw_parse_single(frames * n_chunks), 1000 * n_chunks),
        ("parse1.sf", lambda: simplefix_parse_single(frames * sf_chunks), 1000 * sf_chunks),
        ("parseN.ours", lambda: fixgw_parse_chunks([chunk] * n_chunks), 1000 * n_chunks),
        ("parseN.sf", lambda: simplefix_parse_chunks([chunk] * sf_chunks), 1000 * sf_chunks),
        ("inputs", lambda: inputs_only(n_encode), n_encode),
        ("encode.sf", lambda: simplefix_encode(sf_encode_n), sf_encode_n),
        ("encode.generic", lambda: fixgw_encode(n_encode), n_encode),
        ("encode.render", lambda: fixgw_hot_path(n_encode), n_encode),
        ("encode.template", lambda: fixgw_template(n_encode), n_encode),
    ]
    assert fixgw_parse_single(frames) == fixgw_parse_chunks([chunk]) == 1000
    assert simplefix_parse_single(frames) == simplefix_parse_chunks([chunk]) == 1000
    best = {key: float("inf") for key, _, _ in runs}
    for _ in range(repeats):
        for key, run, _ in runs:
            start = time.perf_counter()
            run()
            best[key] = min(best[key], time.perf_counter() - start)
    rate = {key: count / best[key] for key, _, count in runs}

    missed: list[str] = []

    def figure(name: str, ours: str, theirs: str, target: int | None = None) -> None:
        flag = "" if target is None or rate[ours] >= target else f"  [below target {target:,}]"
        if flag:
            missed.append(name)
        print(f"{name} fixgw: {rate[ours]:,.0f} msg/s{flag}")
        print(f"{name} simplefix: {rate[theirs]:,.0f} msg/s")
        print(f"{name} ratio fixgw/simplefix: {rate[ours] / rate[theirs]:.1f}x")

    figure("parse NewOrderSingle one per feed", "parse1.ours", "parse1.sf")
    figure("parse NewOrderSingle 1000 pipelined", "parseN.ours", "parseN.sf")
    print(
        f"# encode loops include making the varying values (timestamp, ids, prices): "
        f"{rate['inputs']:,.0f}/s alone"
    )
    figure("encode ExecutionReport MessageTemplate", "encode.template", "encode.sf")
    figure("encode ExecutionReport render()+frame()", "encode.render", "encode.sf")
    figure("encode ExecutionReport encode()", "encode.generic", "encode.sf")
    missed += compare_builds(frames, repeats, args.quick)
    print("# all targets met" if not missed else f"# below target: {', '.join(missed)}")


if __name__ == "__main__":
    main()
