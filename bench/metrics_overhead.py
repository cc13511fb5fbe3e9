"""What metrics add to the hot path, per call, in isolation (timeit, one core).

The gateway benchmark (`gateway_load.py --metrics on|off`) shows the whole
effect but varies by more than it on a shared machine; this one measures the
added code alone: the per-message counter bumps, the engine observer per
command, the per-batch latency and flush timing, and the message-log append.
"""

from __future__ import annotations

import sys
import tempfile
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.types import Accepted, NewOrder, OrdType, Side, TimeInForce, Trade
from fix_gateway.codec import Decoder
from fix_gateway.message_log import MessageLog
from fix_gateway.metrics.engine_stats import EngineStats
from fix_gateway.metrics.histogram import BucketHistogram
from fix_gateway.session.counters import SessionCounters
from tests.fix_peer import MessageBuilder

N = 1_000_000


def per_call_ns(stmt: object, n: int = N) -> float:
    return min(timeit.repeat(stmt, number=n, repeat=3)) / n * 1e9  # type: ignore[arg-type]


def main() -> None:
    raw = MessageBuilder().build("D", (11, "X"), (55, "ACME"), (54, 1), (38, 100), (40, 2))
    (msg,), _ = Decoder().feed(raw)
    counters = SessionCounters()

    def count_inbound() -> None:  # Session._count_inbound with message logs off
        received = counters.received
        msg_type = msg.values[2]
        received[msg_type] = received.get(msg_type, 0) + 1
        if None is not None:
            pass

    stats = EngineStats()
    command = NewOrder(0, "S", "", "C", "ACME", Side.BUY, OrdType.LIMIT, 100, 1000, None,
                       TimeInForce.DAY)
    # The observer looks only at each event's class; the order snapshots do not matter.
    events = [Accepted(1, 0, None), Trade(2, 0, "ACME", 1000, 100, 1, None, None)]  # type: ignore[arg-type]
    hist = BucketHistogram()
    log = MessageLog(Path(tempfile.mkdtemp()) / "bench.log", 1 << 30, 0)

    print(f"inbound message counter (per message): {per_call_ns(count_inbound):.0f} ns")
    print(f"engine observer, command with 2 events (per command): "
          f"{per_call_ns(lambda: stats.observe(command, events, 0.0)):.0f} ns")
    print(f"histogram observe (per batch, x2 with the latency): "
          f"{per_call_ns(lambda: hist.observe(0.0003, 3)):.0f} ns")
    print(f"message log append (per message, when on): "
          f"{per_call_ns(lambda: log.inbound(0.0, raw), 200_000):.0f} ns")
    log._pending.clear()
    for _ in range(1000):
        log.inbound(1_800_000_000.123, raw)
    print(f"message log flush (per message, on the tick): "
          f"{per_call_ns(lambda: (log._pending.extend([(1.8e9, b'IN ', raw)] * 1000), log.flush()), 200) / 1000:.0f} ns")  # noqa: E501
    log.close()


if __name__ == "__main__":
    main()
