"""A watchdog thread that shows where the event loop is stuck.

The loop calls `beat()` on every tick. When no beat has come for `threshold`
seconds, the thread samples every thread's stack with `sys._current_frames()`
and `traceback.format_stack` and appends them to the stall log, once per stall.
That is ordinary Python code run under the GIL, so it reads each stack while
its thread is parked; faulthandler's timer walked the running main thread's
frames without the GIL and, under repeated stalls, crashed the interpreter.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from typing import TextIO


class StallWatch:
    def __init__(self, threshold: float, out: TextIO, loop_thread: int | None = None) -> None:
        self.threshold = threshold
        self.out = out
        self.loop_thread = loop_thread if loop_thread is not None else threading.get_ident()
        self.reports = 0  # stalls written to `out`
        self._last_beat = time.monotonic()
        self._reported = False  # the current stall is already written
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fixgw-stall-watch", daemon=True)

    def beat(self) -> None:
        """The loop is alive (called from the loop thread; a float store, no lock)."""
        self._last_beat = time.monotonic()
        self._reported = False

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)

    def _run(self) -> None:
        # Look several times per threshold, so a stall is caught soon after it passes it.
        period = max(self.threshold / 5, 0.01)
        while not self._stopped.wait(period):
            held = time.monotonic() - self._last_beat
            if held >= self.threshold and not self._reported:
                self._reported = True
                try:
                    self._report(held)
                    self.reports += 1
                except (OSError, ValueError):  # a full disk or a closed file: not fatal
                    pass

    def _report(self, held: float) -> None:
        frames = sys._current_frames()
        names = {t.ident: t.name for t in threading.enumerate()}
        lines = [f"Stall: event loop held for {held:.3f} s at "
                 f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n"]
        # The loop's thread first: that is where it is stuck.
        order = sorted(frames, key=lambda ident: ident != self.loop_thread)
        for ident in order:
            if ident == threading.get_ident():
                continue  # this thread, sampling
            label = "event loop" if ident == self.loop_thread else names.get(ident, "?")
            lines.append(f"Thread {ident:#x} ({label}), most recent call last:\n")
            lines.extend(traceback.format_stack(frames[ident]))
        lines.append("\n")
        self.out.write("".join(lines))
        self.out.flush()
