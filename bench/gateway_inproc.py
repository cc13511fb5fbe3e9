"""The gateway's own CPU per order, without sockets: a steadier figure than a TCP run.

The whole gateway (session layer, order entry, engine, journal, session stores,
drop-copy stream, metrics, surveillance) runs in this process with its
configuration from `gateway_load.py`; two sessions' messages from the same
order mix are handed to `FixProtocol.data_received` as a TCP read would hand
them (`--batch` messages per read), and what it writes goes to a transport
that only counts bytes. Reported: event-loop thread CPU per order, so other
processes on the machine matter much less than in `gateway_load.py`, which
stays the benchmark of record.

    .venv/bin/python bench/gateway_inproc.py                   # 50 per read, and 1 per read
    .venv/bin/python bench/gateway_inproc.py --profile         # + cProfile, top functions
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.gateway_load import Stream, make_stream, write_config  # noqa: E402
from fix_gateway.config import load_settings  # noqa: E402
from fix_gateway.server import FixProtocol, Gateway  # noqa: E402
from fix_gateway.utc_time import format_timestamp  # noqa: E402


class CountingTransport:
    """What a protocol needs of a transport; writes are counted, not sent."""

    def __init__(self, port: int) -> None:
        self.written = 0
        self.closed = False
        self._peer = ("127.0.0.1", port)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._peer if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def writelines(self, chunks: list[bytes]) -> None:
        self.written += sum(map(len, chunks))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    abort = close

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def stamped(st: Stream) -> list[bytes]:
    """The stream's frames with SendingTime/TransactTime of now and their checksums."""
    ts = format_timestamp(time.time())
    out = []
    for frame, (s1, s2), base in zip(st.frames, st.slots, st.base_sums, strict=True):
        buf = bytearray(frame)
        buf[s1:s1 + 21] = ts
        total = base + sum(ts)
        if s2 != 0xFFFF:
            buf[s2:s2 + 21] = ts
            total += sum(ts)
        buf[-4:-1] = b"%03d" % (total % 256)
        out.append(bytes(buf))
    return out


async def run(orders: int, batch: int, profile: bool, workdir: Path, extra: list[str]) -> float:
    """Event-loop CPU seconds per order for `orders` orders fed `batch` messages a read."""
    config = write_config(workdir, "interval", ["LOAD1", "LOAD2"], extra=extra)
    gateway = Gateway(load_settings(config))
    await gateway.start()
    try:
        protos, feeds = [], []
        for i, sender in enumerate(("LOAD1", "LOAD2")):
            st = make_stream(sender, f"P{i}-", orders // 2, 1 + i)
            frames = stamped(st)[:-1]  # no Logout
            proto = FixProtocol(gateway)
            proto.connection_made(CountingTransport(40000 + i))  # type: ignore[arg-type]
            proto.data_received(frames[0])  # Logon
            protos.append(proto)
            feeds.append(frames[1:])
        await asyncio.sleep(0.2)  # let the Logons' side work settle
        profiler = cProfile.Profile() if profile else None
        started = time.thread_time()
        if profiler is not None:
            profiler.enable()
        n = len(feeds[0])
        for lo in range(0, n, batch):
            for proto, frames in zip(protos, feeds, strict=True):
                proto.data_received(b"".join(frames[lo:lo + batch]))
        if profiler is not None:
            profiler.disable()
        cpu = time.thread_time() - started
        fed = sum(len(f) for f in feeds)
        if profiler is not None:
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(35)
            print(text.getvalue())
        return cpu / fed
    finally:
        await gateway.stop(drain_timeout=0.1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--batch", type=int, action="append",
                    help="messages per read (repeatable; default 50 and 1)")
    ap.add_argument("--rounds", type=int, default=3, help="best of this many runs each")
    ap.add_argument("--profile", action="store_true", help="cProfile one run per batch size")
    ap.add_argument("--extra-config", action="append", default=[], metavar="TOML",
                    help="TOML appended to the gateway's config (repeatable)")
    args = ap.parse_args()
    for batch in args.batch or [50, 1]:
        best = float("inf")
        for r in range(args.rounds):
            workdir = Path(tempfile.mkdtemp(prefix="fixgw-inproc-"))
            try:
                per = asyncio.run(run(args.orders, batch, args.profile and r == 0, workdir,
                                      args.extra_config))
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            best = min(best, per)
        print(f"{batch} message(s) per read, {args.orders:,} orders: best of {args.rounds} "
              f"{best * 1e6:.1f} us event-loop CPU per order (= {1 / best:,.0f} orders/s)",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
