"""The live detectors in their own process, away from the gateway's GIL and core.

The gateway hands each interval's rows over a pipe as raw int64 bytes (plus
the account and symbol names added since the last call) and gets the new
alerts back; the `Evaluator` and its history live in the child. The child
runs at the lowest scheduling priority, ignores Ctrl-C (the gateway's stop
sends the last rows) and exits when the pipe closes, so a gateway killed
outright takes its worker with it.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
from array import array
from multiprocessing.connection import Connection
from typing import Any

from surveillance.alerts import Alert
from surveillance.settings import SurveillanceSettings

log = logging.getLogger("fixgw.surveillance")


def serve(conn: Connection, settings_json: str) -> None:
    """The child: evaluate each batch of rows sent until the pipe closes."""
    from surveillance.evaluator import Evaluator

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(19)
    evaluator = Evaluator(SurveillanceSettings.model_validate_json(settings_json))
    accounts: list[str] = []
    symbols: list[str] = []
    while True:
        try:
            rows = conn.recv_bytes()
            new_accounts, new_symbols = conn.recv()
        except (EOFError, OSError):
            return
        accounts += new_accounts
        symbols += new_symbols
        try:
            reply: Any = evaluator.analyse(rows, accounts, symbols)
        except Exception as exc:  # reported to the gateway, which logs it
            reply = exc
        conn.send(reply)


class ProcessEvaluator:
    """The gateway's side: the same `analyse` as `Evaluator`, answered by the child.
    Blocking pipe I/O: call it from a worker thread, one call at a time."""

    def __init__(self, settings: SurveillanceSettings) -> None:
        self.settings = settings
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._sent_accounts = 0
        self._sent_symbols = 0

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a threaded event loop
        parent, child = context.Pipe()
        self._process = context.Process(
            target=serve, args=(child, self.settings.model_dump_json()),
            name="fixgw-surveillance", daemon=True)
        self._process.start()
        child.close()
        self._conn = parent
        self._sent_accounts = self._sent_symbols = 0

    def analyse(self, rows: array[int], accounts: list[str],
                symbols: list[str]) -> tuple[list[Alert], int | None]:
        if self._conn is None:
            self.start()
        conn = self._conn
        assert conn is not None
        try:
            conn.send_bytes(memoryview(rows).cast("B"))
            conn.send((accounts[self._sent_accounts:], symbols[self._sent_symbols:]))
            self._sent_accounts, self._sent_symbols = len(accounts), len(symbols)
            reply: tuple[list[Alert], int | None] | Exception = conn.recv()
        except (EOFError, OSError) as exc:
            # The worker died (and its history with it): the next call starts a new one.
            log.error("event=surveillance_worker_lost error=%r", exc)
            self.close()
            raise RuntimeError("surveillance worker process lost") from exc
        if isinstance(reply, Exception):
            raise reply
        return reply

    def close(self) -> None:
        """Close the pipe (the child exits) and reap the child."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._process = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid
