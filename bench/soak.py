"""Soak benchmark: the whole gateway under a steady mixed flow for minutes, over TCP.

Starts `fixgw serve` as a subprocess (its own temporary config and data directory,
`fsync = "interval"`, N sessions, two symbols) and drives it from one asyncio
client process: every session sends, on a schedule at `--rate` orders/s in
total, a mix of

    40%  new passive limit orders (1..10 ticks behind the mid; rest in the book)
    20%  crossing limit IOC orders (trade against other sessions' resting orders)
    20%  cancels of the session's oldest live order
    20%  replaces (new price and quantity) of a live order

and, when a session has more than `--max-live` live orders, a cancel instead
of a new order, so the books stay bounded however long it runs. Latency is
order -> first answer for its ClOrdID (ack, fill, cancel/replace ER or
OrderCancelReject), from just before the write to the read that returns it.

Per minute, one line: orders sent, answered orders/s, p50/p99/p99.9 latency,
the gateway's RSS (VmRSS) and its data directory size. At the end: whether
memory is flat after warm-up (RSS growth from the end of --warmup minutes to
the end of the run, against --flat-mb).

    .venv/bin/python bench/soak.py                 # 10 minutes, 10 sessions, 1,000 orders/s
    .venv/bin/python bench/soak.py --minutes 2     # shorter
    .venv/bin/python bench/soak.py --rate 2000 --sessions 20
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fix_gateway.codec import Decoder, Message, encode  # noqa: E402
from fix_gateway.utc_time import format_timestamp  # noqa: E402

SYMBOLS = ("ACME", "GLOBEX")
MID = 10_000  # cents


def write_config(workdir: Path, sessions: list[str]) -> Path:
    config = workdir / "soak.toml"
    blocks = "\n".join(f'[[sessions]]\nSenderCompID = "FIXGW"\nTargetCompID = "{s}"\n'
                       for s in sessions)
    instruments = "\n".join(f'[[instruments]]\nsymbol = "{s}"\n' for s in SYMBOLS)
    config.write_text(f"""
log_level = "WARNING"

[listen]
host = "127.0.0.1"
port = 0

[store]
data_dir = "{workdir / 'data'}"
fsync = "interval"

{instruments}
{blocks}
""")
    return config


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


@dataclass
class Minute:
    sent: int = 0
    answered: int = 0
    latencies: list[float] = field(default_factory=list)
    rejects: int = 0
    fills: int = 0


@dataclass
class Session:
    name: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    rng: random.Random
    seq: int = 1
    next_id: int = 0
    live: deque[tuple[str, str, int]] = field(default_factory=deque)  # ClOrdID, symbol, side
    pending: dict[bytes, float] = field(default_factory=dict)  # ClOrdID -> send time

    def build(self, msg_type: str, *body: tuple[int, object]) -> bytes:
        now = format_timestamp(time.time())
        transact = [(60, now)] if msg_type in ("D", "F", "G") else []
        data = encode([(35, msg_type), (34, self.seq), (49, self.name), (52, now),
                       (56, "FIXGW"), *body, *transact])  # type: ignore[list-item]
        self.seq += 1
        return data

    def new_id(self) -> str:
        self.next_id += 1
        return f"{self.name}-{self.next_id}"


class Soak:
    def __init__(self, args: argparse.Namespace, port: int) -> None:
        self.args = args
        self.port = port
        self.minute = Minute()
        self.sessions: list[Session] = []

    async def connect(self, name: str, seed: int) -> Session:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        session = Session(name, reader, writer, random.Random(seed))
        writer.write(session.build("A", (98, 0), (108, 30), (141, "Y")))
        await writer.drain()
        return session

    def next_message(self, s: Session) -> bytes:
        rng = s.rng
        roll = rng.random()
        if len(s.live) > self.args.max_live or (roll < 0.4 and s.live):
            if roll < 0.2 or len(s.live) > self.args.max_live:  # cancel the oldest
                orig, symbol, side = s.live.popleft()
                cl = s.new_id()
                s.pending[cl.encode()] = time.perf_counter()
                return s.build("F", (11, cl), (41, orig), (54, side), (55, symbol))
            index = rng.randrange(len(s.live))  # replace: new price and quantity
            orig, symbol, side = s.live[index]
            del s.live[index]
            cl = s.new_id()
            offset = rng.randint(1, 10)
            price = MID - offset if side == 1 else MID + offset
            s.pending[cl.encode()] = time.perf_counter()
            return s.build("G", (11, cl), (41, orig), (1, s.name), (38, rng.randint(1, 10) * 10),
                           (40, 2), (44, f"{price / 100:.2f}"), (54, side), (55, symbol))
        symbol = rng.choice(SYMBOLS)
        side = rng.choice((1, 2))
        cl = s.new_id()
        if roll < 0.6:  # passive
            offset = rng.randint(1, 10)
            price, tif = (MID - offset if side == 1 else MID + offset), 1
        else:  # crossing IOC
            price, tif = (MID + 10 if side == 1 else MID - 10), 3
        if symbol == "GLOBEX":
            price -= price % 5
        s.pending[cl.encode()] = time.perf_counter()
        return s.build("D", (11, cl), (1, s.name), (38, rng.randint(1, 10) * 10), (40, 2),
                       (44, f"{price / 100:.2f}"), (54, side), (55, symbol), (59, tif))

    async def read_loop(self, s: Session) -> None:
        decoder = Decoder()
        while True:
            data = await s.reader.read(65536)
            if not data:
                raise ConnectionError(f"{s.name}: the gateway closed the connection")
            now = time.perf_counter()
            items, _ = decoder.feed(data)
            for msg in items:
                if isinstance(msg, Message):
                    self.absorb(s, msg, now)

    def absorb(self, s: Session, msg: Message, now: float) -> None:
        kind = msg.msg_type
        if kind in (b"3", b"5", b"j"):  # never expected: show it
            print(f"{s.name}: unexpected {msg}", flush=True)
        if kind not in (b"8", b"9"):
            if kind == b"1":  # TestRequest: answer it
                s.writer.write(s.build("0", (112, msg.get(112) or b"")))
            return
        cl = msg.get(11) or b""
        sent = s.pending.pop(cl, None)
        minute = self.minute
        if sent is not None:
            minute.answered += 1
            minute.latencies.append(now - sent)
        if kind == b"9":
            return
        exec_type = msg.get(150)
        if (exec_type == b"0" and msg.get(59) != b"3") or exec_type == b"5":  # now resting
            s.live.append((cl.decode(), (msg.get(55) or b"").decode(), int(msg.get(54) or 1)))
        elif exec_type == b"F":
            minute.fills += 1
            if msg.get(39) == b"2":
                self.forget(s, cl.decode())
        elif exec_type == b"8":
            minute.rejects += 1

    @staticmethod
    def forget(s: Session, cl: str) -> None:
        for i, (live, _, _) in enumerate(s.live):
            if live == cl:
                del s.live[i]
                return

    async def send_loop(self, s: Session, per_second: float, stop: float) -> None:
        interval = 1.0 / per_second
        due = time.perf_counter()
        while due < stop:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            batch = []
            while due <= time.perf_counter() and due < stop:
                batch.append(self.next_message(s))
                due += interval
            if batch:
                s.writer.write(b"".join(batch))
                self.minute.sent += len(batch)
                await s.writer.drain()


async def run(args: argparse.Namespace, gateway: subprocess.Popen[str], port: int,
              data_dir: Path) -> int:
    soak = Soak(args, port)
    names = [f"SOAK{i:02d}" for i in range(args.sessions)]
    soak.sessions = [await soak.connect(n, args.seed + i) for i, n in enumerate(names)]
    readers = [asyncio.create_task(soak.read_loop(s)) for s in soak.sessions]
    start = time.perf_counter()
    stop = start + args.minutes * 60
    senders = [asyncio.create_task(soak.send_loop(s, args.rate / args.sessions, stop))
               for s in soak.sessions]
    print(f"soak: {args.sessions} sessions, {args.rate} orders/s offered, "
          f"{args.minutes} min, gateway pid {gateway.pid}", flush=True)
    print("minute  sent/s  answered/s  fills/s  p50_ms  p99_ms  p99.9_ms  rss_mb  data_mb",
          flush=True)
    rss: list[float] = []
    for m in range(1, int(args.minutes * 60 / args.interval) + 1):
        await asyncio.sleep(max(0.0, start + m * args.interval - time.perf_counter()))
        for task in readers:
            if task.done():
                task.result()  # re-raise what ended a reader
        minute, soak.minute = soak.minute, Minute()
        lat = sorted(minute.latencies)
        rss.append(rss_mb(gateway.pid))
        per = args.interval
        print(f"{m * per / 60:6.1f}  {minute.sent / per:6.0f}  {minute.answered / per:10.0f}  "
              f"{minute.fills / per:7.0f}  {percentile(lat, 0.5) * 1e3:6.2f}  "
              f"{percentile(lat, 0.99) * 1e3:6.2f}  {percentile(lat, 0.999) * 1e3:8.2f}  "
              f"{rss[-1]:6.1f}  {dir_mb(data_dir):7.1f}", flush=True)
    await asyncio.gather(*senders)
    for task in readers:
        task.cancel()
    warm = rss[min(len(rss) - 1, max(0, int(args.warmup * 60 / args.interval) - 1))]
    growth = max(rss) - warm
    flat = growth <= args.flat_mb
    print(f"memory after {args.warmup:g} min warm-up: {warm:.1f} MB -> max {max(rss):.1f} MB,"
          f" end {rss[-1]:.1f} MB (+{growth:.1f} MB):"
          f" {'flat' if flat else 'NOT flat'} (bound {args.flat_mb} MB)")
    return 0 if flat else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--rate", type=float, default=1000.0, help="orders/s, all sessions")
    parser.add_argument("--max-live", type=int, default=100,
                        help="live orders per session before it cancels instead of adding")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds per report line")
    parser.add_argument("--warmup", type=float, default=4.0,
                        help="minutes of warm-up before memory must stay flat")
    parser.add_argument("--flat-mb", type=float, default=20.0,
                        help="RSS growth after warm-up that still counts as flat")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    with tempfile.TemporaryDirectory(prefix="fixgw-soak-") as tmp:
        workdir = Path(tmp)
        config = write_config(workdir, [f"SOAK{i:02d}" for i in range(args.sessions)])
        with open(workdir / "gateway.log", "w") as log:
            gateway = subprocess.Popen(
                [sys.executable, "-m", "fix_gateway.cli", "serve", "--config", str(config)],
                cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            assert gateway.stdout is not None
            line = gateway.stdout.readline()
            if "listening on" not in line:
                print(f"gateway did not start: {(workdir / 'gateway.log').read_text()}")
                return 2
            port = int(line.rsplit(":", 1)[1])
            return asyncio.run(run(args, gateway, port, workdir / "data"))
        finally:
            gateway.terminate()
            gateway.wait(30)
            errors = [ln for ln in (workdir / "gateway.log").read_text().splitlines()
                      if " ERROR " in ln or " CRITICAL " in ln or "Traceback" in ln]
            print(f"gateway exit {gateway.returncode}, {len(errors)} error lines in its log")
            for err in errors[:5]:
                print("  " + err)


if __name__ == "__main__":
    sys.exit(main())
