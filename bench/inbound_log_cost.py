"""What `store.record_inbound` costs per message on the store path.

One FileStore with the inbound log and one without, fed the same
NewOrderSingle-sized message as both an inbound and an outbound append,
flushed every 10 messages (a read batch), fsync off so that only the Python
and write() cost shows. Interleaved rounds, best kept; prints one line a figure.

    .venv/bin/python bench/inbound_log_cost.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from session_store import FileStore, FsyncPolicy

RAW = (b"8=FIX.4.4\x019=120\x0135=D\x0134=2\x0149=CLIENT1\x0152=20261121-21:03:42.238\x01"
       b"56=FIXGW\x0111=B1\x0155=ACME\x0154=1\x0160=20261121-21:03:42.237\x0138=100\x01"
       b"40=2\x0144=10.00\x0110=151\x01")
MESSAGES = 100_000
ROUNDS = 7
BATCH = 10


def one_round(store: FileStore) -> float:
    start = time.perf_counter()
    for i in range(MESSAGES):
        store.append_inbound(RAW, 1.0)
        store.append_outbound(i, RAW)
        if i % BATCH == BATCH - 1:
            store.flush()
    store.flush()
    return (time.perf_counter() - start) / MESSAGES


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stores = {rec: FileStore(Path(tmp) / str(rec), fsync=FsyncPolicy.NONE,
                                 record_inbound=rec) for rec in (False, True)}
        best = {rec: float("inf") for rec in stores}
        for _ in range(ROUNDS):
            for rec, store in stores.items():
                best[rec] = min(best[rec], one_round(store))
        for store in stores.values():
            store.close()
    for rec, seconds in best.items():
        print(f"store path per message, record_inbound={str(rec).lower()}: "
              f"{seconds * 1e9:,.0f} ns")
    print(f"record_inbound cost per message: {(best[True] - best[False]) * 1e9:,.0f} ns")


if __name__ == "__main__":
    main()
