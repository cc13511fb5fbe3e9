"""Where the gateway's event loop is held: a probe around `fixgw serve`, for benchmarks.

Run as `python bench/loop_probe.py OUT.json serve --config ...` (gateway_load.py
and quickfix_load.py do so with --probe). It starts fixgw as the CLI would and
records, with time.monotonic() stamps (comparable across processes), until the
gateway exits:

- every garbage collection: generation and duration (gc.callbacks);
- every call of the loop's entry points into fixgw (FixProtocol.data_received,
  the backlog continuation, Gateway.tick) that took over 1 ms, with the
  collector's time inside it;
- every wake-up of a 1 ms timer that came over 2 ms late: the loop was held
  by something, whatever it was (a callback, another thread holding the GIL).

On exit it writes them to OUT.json; `summarize` reads them back for a time
window (a benchmark's run). The product is not changed: this is bench code.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import json
import sys
import time
from pathlib import Path

SLOW_CALL = 0.001  # seconds: entry-point calls recorded when longer
LAG_TIMER = 0.001  # seconds between the lag timer's wake-ups
LAG_RECORD = 0.002  # seconds late: recorded


def install(out: Path) -> None:
    from fix_gateway import server

    gcs: list[tuple[float, int, float, float]] = []  # (start, generation, seconds, CPU s)
    # (start, name, seconds, gc seconds, CPU seconds of the loop's thread)
    calls: list[tuple[float, str, float, float, float]] = []
    lags: list[tuple[float, float]] = []  # (wake-up, seconds late)
    gc_total = [0.0]
    started = [0.0]

    cpu_started = [0.0]

    def on_gc(phase: str, info: dict) -> None:
        now = time.perf_counter()
        if phase == "start":
            started[0] = now
            cpu_started[0] = time.thread_time()
        else:
            took = now - started[0]
            gc_total[0] += took
            gcs.append((time.monotonic() - took, info["generation"], took,
                        time.thread_time() - cpu_started[0]))

    gc.callbacks.append(on_gc)

    def timed(cls: type, name: str) -> None:
        inner = getattr(cls, name)
        label = f"{cls.__name__}.{name}"

        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            gc_before = gc_total[0]
            t0 = time.perf_counter()
            c0 = time.thread_time()
            try:
                return inner(*args, **kwargs)
            finally:
                took = time.perf_counter() - t0
                if took >= SLOW_CALL:
                    calls.append((time.monotonic() - took, label, took, gc_total[0] - gc_before,
                                  time.thread_time() - c0))

        setattr(cls, name, wrapper)

    timed(server.FixProtocol, "data_received")
    timed(server.FixProtocol, "_continue_backlog")
    timed(server.Gateway, "tick")

    async def lag_watch() -> None:
        while True:
            due = time.monotonic() + LAG_TIMER
            await asyncio.sleep(LAG_TIMER)
            now = time.monotonic()
            if now - due >= LAG_RECORD:
                lags.append((due, now - due))

    start = server.Gateway.start

    async def start_and_watch(self):  # type: ignore[no-untyped-def]
        await start(self)
        self._probe_task = asyncio.get_running_loop().create_task(lag_watch())

    server.Gateway.start = start_and_watch  # type: ignore[method-assign]

    def dump() -> None:
        out.write_text(json.dumps({"gc": gcs, "calls": calls, "lags": lags}))

    atexit.register(dump)


def summarize(path: Path, window: tuple[float, float]) -> list[str]:
    """Lines describing what held the loop between window[0] and window[1]."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return [f"probe: no data ({exc!r})"]
    lo, hi = window
    seconds = hi - lo
    lines = []
    gcs = [g for g in data["gc"] if lo <= g[0] <= hi]
    for gen in (0, 1, 2):
        durs = sorted(g[2] for g in gcs if g[1] == gen)
        if durs:
            lines.append(f"probe: gen-{gen} collections {len(durs)} in {seconds:.1f} s, "
                         f"total {sum(durs) * 1e3:.1f} ms, median {durs[len(durs) // 2] * 1e3:.2f}"
                         f" ms, max {durs[-1] * 1e3:.2f} ms, >=1 ms: "
                         f"{sum(d >= 0.001 for d in durs)}; max CPU "
                         f"{max(g[3] for g in gcs if g[1] == gen) * 1e3:.2f} ms")
        else:
            lines.append(f"probe: gen-{gen} collections 0 in {seconds:.1f} s")
    calls = [c for c in data["calls"] if lo <= c[0] <= hi]
    by_name: dict[str, list[tuple[float, float, float]]] = {}
    for _, name, took, in_gc, cpu in calls:
        by_name.setdefault(name, []).append((took, in_gc, cpu))
    for name, rows in sorted(by_name.items()):
        rows.sort()
        no_gc = sorted(t - g for t, g, _ in rows)
        cpu = sorted(c - g for _, g, c in rows)  # the loop's own work, the collector's left out
        lines.append(f"probe: {name} calls >=1 ms: {len(rows)}, max {rows[-1][0] * 1e3:.2f} ms;"
                     f" without the collector's part >=1 ms: {sum(t >= 0.001 for t in no_gc)},"
                     f" max {no_gc[-1] * 1e3:.2f} ms; of which CPU (not preempted) >=1 ms: "
                     f"{sum(c >= 0.001 for c in cpu)}, max {cpu[-1] * 1e3:.2f} ms")
    if not by_name:
        lines.append("probe: no entry-point call took >=1 ms")
    lags = sorted(lag for t, lag in data["lags"] if lo <= t <= hi)
    if lags:
        # Lateness not spent in a recorded call or collection: another callback, another
        # thread holding the GIL, or the process not scheduled.
        spans = sorted([(c[0], c[0] + c[2]) for c in calls]
                       + [(g[0], g[0] + g[2]) for g in gcs])
        unexplained = []
        for t, lag in data["lags"]:
            if not lo <= t <= hi or lag < 0.005:
                continue
            inside = sum(max(0.0, min(b, t + lag) - max(a, t)) for a, b in spans
                         if a < t + lag and b > t)
            if inside < lag / 2:
                unexplained.append(lag)
        lines.append(f"probe: 1 ms timer late by >=2 ms: {len(lags)} times, "
                     f">=5 ms {sum(x >= 0.005 for x in lags)}, max {lags[-1] * 1e3:.1f} ms;"
                     f" >=5 ms and not half in a call or collection above: {len(unexplained)}"
                     + (f", max {max(unexplained) * 1e3:.1f} ms" if unexplained else ""))
    else:
        lines.append("probe: 1 ms timer never late by >=2 ms")
    return lines


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    install(Path(sys.argv[1]))
    from fix_gateway.cli import main

    sys.exit(main(sys.argv[2:]))
