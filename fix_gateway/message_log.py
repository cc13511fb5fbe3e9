"""Per-session FIX message logs: every message in and out, one line each.

    2026-11-21T20:59:52.123456Z IN  8=FIX.4.4|9=71|35=A|34=1|...|10=123|
    2026-11-21T20:59:52.123901Z OUT 8=FIX.4.4|9=71|35=A|34=1|...|10=045|

On the hot path a message costs one list append (the time and the frame);
formatting and writing happen when the gateway flushes the logs on its tick
(a few times a second) and at shutdown. Files are rotated by size: `NAME.log`
becomes `NAME.log.1`, `.1` becomes `.2`, and so on up to `backups`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger("fixgw.message_log")

IN = b"IN "
OUT = b"OUT"


class RotatingBinaryFile:
    """An append-only file that rolls over to numbered backups at `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = open(path, "ab")  # noqa: SIM115 -- kept open between writes
        self._size = self._file.tell()

    def write(self, data: bytes) -> None:
        if self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
        self._file.write(data)
        self._file.flush()
        self._size += len(data)

    def close(self) -> None:
        self._file.close()

    def _rotate(self) -> None:
        self._file.close()
        if self.backups > 0:
            for i in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{i}")
                if older.exists():
                    older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        self._file = open(self.path, "wb")  # noqa: SIM115
        self._size = 0


class MessageLog:
    """One session's message log (the `MessageSink` a `Session` copies inbound to)."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.file = RotatingBinaryFile(path, max_bytes, backups)
        self._pending: list[tuple[float, bytes, bytes]] = []
        self._second = -1
        self._second_text = b""

    def inbound(self, now: float, raw: bytes) -> None:
        self._pending.append((now, IN, raw))

    def outbound(self, now: float, frames: Iterable[bytes]) -> None:
        pending = self._pending
        for raw in frames:
            pending.append((now, OUT, raw))

    def flush(self) -> None:
        """Write what is buffered (called on the gateway's tick)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        parts: list[bytes] = []
        last = -1.0
        stamp = b""
        for now, direction, raw in pending:
            if now != last:  # a batch's messages share one time: format it once
                last = now
                stamp = b"%b.%06dZ " % (self._stamp(now), int(now % 1 * 1e6))
            parts += (stamp, direction, b" ", raw, b"\n")
        # Timestamps hold no SOH, so one replace over the whole chunk is enough.
        self.file.write(b"".join(parts).replace(b"\x01", b"|"))

    def close(self) -> None:
        self.flush()
        self.file.close()

    def _stamp(self, now: float) -> bytes:
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)).encode()
        return self._second_text


class MessageLogs:
    """The message logs of all of a gateway's sessions, under one directory."""

    def __init__(self, directory: Path, max_bytes: int, backups: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.backups = backups
        self.logs: dict[str, MessageLog] = {}

    def open(self, session_name: str) -> MessageLog:
        path = self.directory / f"{session_name}.messages.log"
        message_log = MessageLog(path, self.max_bytes, self.backups)
        self.logs[session_name] = message_log
        return message_log

    def flush(self) -> None:
        for name, message_log in self.logs.items():
            try:
                message_log.flush()
            except OSError as exc:  # a full disk must not stop trading; say so and go on
                log.error("event=message_log_error session=%s error=%r", name, str(exc))

    def close(self) -> None:
        for name, message_log in self.logs.items():
            try:
                message_log.close()
            except OSError as exc:
                log.error("event=message_log_error session=%s error=%r", name, str(exc))
