"""Live surveillance inside the gateway: buffers on the hot path, detectors off it.

On the event loop the monitor only appends rows (`EventColumns.observe`, an
`OrderEntry.observers` hook) and, every `interval` seconds, swaps the row
buffer out in O(1). Converting the rows, trimming the history to
`retention_s` and running every detector happen in one worker thread
(`run_in_executor`) at the lowest scheduling priority; NumPy and MLX release
the GIL in their kernels. Only the
new alerts come back to the loop, to be delivered (file, log, counts,
callbacks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from array import array
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from engine.types import Command, Event
from surveillance.alerts import Alert, AlertCallback, AlertSink, ns_to_time
from surveillance.columns import TS, Batch, EventColumns
from surveillance.detectors import SECOND, run_detectors
from surveillance.ops import make_ops
from surveillance.settings import SurveillanceSettings

log = logging.getLogger("fixgw.surveillance")


def _lower_priority() -> None:
    """The worker shares the gateway's core: let the scheduler favour the event loop
    (on Linux a thread has its own nice value)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def alerts_path(data_dir: Path) -> Path:
    return data_dir / "surveillance" / "alerts.jsonl"


class SurveillanceMonitor:
    def __init__(self, settings: SurveillanceSettings, data_dir: Path) -> None:
        self.settings = settings
        try:
            self.ops = make_ops(settings.backend)
        except ImportError as exc:
            raise RuntimeError(
                f"surveillance.backend = {settings.backend!r} cannot be loaded ({exc});"
                " install mlx (mlx[cpu] on Linux) or set surveillance.backend = 'numpy'"
            ) from exc
        self.columns = EventColumns()
        self.sink = AlertSink(alerts_path(data_dir))
        self.history: Batch | None = None
        self.evaluations = 0
        self._trimmed_at: int | None = None  # ns: history before this was dropped
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="surveillance",
                                            initializer=_lower_priority)
        self._task: asyncio.Task[None] | None = None
        # A burst is measured against the seconds before it: after a cut it needs
        # that much history behind it. Every other alert's time starts its window.
        self._lookback = {"message_burst": settings.message_burst.baseline_s * SECOND}

    def observe(self, command: Command, events: list[Event], now: float) -> None:
        """The `OrderEntry.observers` hook (hot path: appends one row per item)."""
        self.columns.observe(command, events, now)

    @property
    def alert_counts(self) -> dict[str, int]:
        return self.sink.alert_counts

    @property
    def on_alert(self) -> list[AlertCallback]:
        return self.sink.on_alert

    # --- evaluation --------------------------------------------------------------------

    def analyse(self, rows: array, accounts: list[str], symbols: list[str]) -> list[Alert]:
        """Worker thread: append the new rows, trim, run every detector."""
        batch = Batch.from_rows(rows, accounts, symbols)
        history = batch if self.history is None else self.history.concat(batch)
        if len(history):
            cut = int(history.cols[TS, -1]) - self.settings.retention_s * SECOND
            if int(history.cols[TS, 0]) < cut:
                history = history.since(cut)
                self._trimmed_at = cut
        self.history = history
        alerts = run_detectors(history, self.settings, self.ops)
        cut = self._trimmed_at
        if cut is None:
            return alerts
        self.sink.forget_before(ns_to_time(cut))
        return [a for a in alerts if a.time >= ns_to_time(cut + self._lookback.get(a.type, 0))]

    async def evaluate(self) -> list[Alert]:
        """Run the detectors over what arrived since the last call; deliver new alerts."""
        if not len(self.columns) and self.history is None:
            return []
        rows, accounts, symbols = self.columns.take()
        loop = asyncio.get_running_loop()
        alerts = await loop.run_in_executor(self._executor, self.analyse, rows, accounts,
                                            symbols)
        self.evaluations += 1
        return self.sink.deliver(alerts)

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.interval)
            try:
                await self.evaluate()
            except Exception:  # surveillance must never stop the venue
                log.exception("event=surveillance_error")

    async def stop(self) -> None:
        """Stop the interval task; one last evaluation catches the final rows."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        try:
            await self.evaluate()
        except Exception:
            log.exception("event=surveillance_error")
        self._executor.shutdown(wait=True)
