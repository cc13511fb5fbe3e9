"""Live surveillance inside the gateway: buffers on the hot path, detectors off it.

On the event loop the monitor only appends rows (`EventColumns.observe`, an
`EventStream` observer) and, every `interval` seconds, swaps the row
buffer out in O(1). The detectors run incrementally (`Evaluator`: only the
windows the new rows can touch) in a separate process by default
(`worker = "process"`: the rows go over a pipe as raw bytes from a helper
thread, so neither the GIL nor the event loop waits on the analysis), or in a
worker thread (`worker = "thread"`). Only the new alerts come back to the
loop, to be delivered once each (file, log, counts, callbacks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from engine.types import Command, Event
from surveillance.alerts import Alert, AlertCallback, AlertSink, ns_to_time
from surveillance.columns import EventColumns
from surveillance.evaluator import Evaluator
from surveillance.ops import make_ops
from surveillance.settings import SurveillanceSettings
from surveillance.worker import ProcessEvaluator

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
        try:  # a backend that cannot load fails at start-up, not in the worker
            make_ops(settings.backend)
        except ImportError as exc:
            raise RuntimeError(
                f"surveillance.backend = {settings.backend!r} cannot be loaded ({exc});"
                " install mlx (mlx[cpu] on Linux) or set surveillance.backend = 'numpy'"
            ) from exc
        self.evaluator: Evaluator | ProcessEvaluator = (
            ProcessEvaluator(settings) if settings.worker == "process" else Evaluator(settings))
        self.columns = EventColumns()
        self.sink = AlertSink(alerts_path(data_dir))
        self.evaluations = 0
        self.rows_lost = 0  # commands the columns could not take (see observe)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="surveillance",
                                            initializer=_lower_priority)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def observe(self, command: Command, events: list[Event], now: float) -> None:
        """The event-stream observer (hot path: appends one row per item)."""
        try:
            self.columns.observe(command, events, now)
        except Exception:
            # A value the columns cannot hold: lose this command's rows, keep the
            # columns aligned, never stop order handling for the analytics.
            self.columns.drop_partial_row()
            self.rows_lost += 1
            if self.rows_lost == 1 or self.rows_lost % 1000 == 0:
                log.exception("event=surveillance_row_lost lost=%d command=%r",
                              self.rows_lost, command)

    @property
    def alert_counts(self) -> dict[str, int]:
        return self.sink.alert_counts

    @property
    def on_alert(self) -> list[AlertCallback]:
        return self.sink.on_alert

    # --- evaluation --------------------------------------------------------------------

    async def evaluate(self) -> list[Alert]:
        """Run the detectors over what arrived since the last call; deliver new alerts."""
        if not len(self.columns):
            return []  # no new rows: no alert can change
        rows, accounts, symbols = self.columns.take()
        loop = asyncio.get_running_loop()
        alerts, forget = await loop.run_in_executor(
            self._executor, self.evaluator.analyse, rows, accounts, symbols)
        self.evaluations += 1
        if forget is not None:  # no later evaluation reports alerts before this
            self.sink.forget_before(ns_to_time(forget))
        return self.sink.deliver(alerts)

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        if isinstance(self.evaluator, ProcessEvaluator):
            self.evaluator.start()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.interval)
                return  # stop(): it runs the last evaluation itself
            try:
                await self.evaluate()
            except Exception:  # surveillance must never stop the venue
                log.exception("event=surveillance_error")

    async def stop(self) -> None:
        """Stop the interval task; one last evaluation catches the final rows."""
        if self._task is not None:
            # Not cancelled: an evaluation in progress has taken its rows and
            # must deliver its alerts; the loop ends at its next wait.
            self._stopping.set()
            await self._task
            self._task = None
        try:
            await self.evaluate()
        except Exception:
            log.exception("event=surveillance_error")
        self._executor.shutdown(wait=True)
        if isinstance(self.evaluator, ProcessEvaluator):
            self.evaluator.close()
