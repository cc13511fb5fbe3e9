"""Structured event logs: one line per event, key=value or JSON.

The gateway logs events as `event=NAME key=value ...` messages (values that
may hold spaces are repr()-quoted). The kv format prefixes them with the
time, level and logger; the JSON format parses the pairs into an object:

    ts=2026-11-21T20:59:52.123Z level=INFO logger=fixgw.server event=connect peer=...
    {"ts": "2026-11-21T20:59:52.123Z", "level": "INFO", "logger": "fixgw.server",
     "event": "connect", "peer": "127.0.0.1:50312"}

A message that is not in key=value form keeps its text under "msg".
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import queue
import re
import sys
import threading
import time
from ast import literal_eval
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fix_gateway.config import GatewaySettings

# key=value where value is a quoted Python repr or a run of non-blanks.
_PAIR = re.compile(r"""(\w+)=('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S*)(?:\s+|$)""")


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + \
        f".{int(record.msecs):03d}Z"


def parse_pairs(text: str) -> dict[str, object] | None:
    """The key=value pairs of a whole message, or None if it is not all pairs."""
    pairs: dict[str, object] = {}
    pos = 0
    while pos < len(text):
        match = _PAIR.match(text, pos)
        if match is None:
            return None
        key, value = match.group(1), match.group(2)
        if value[:1] in ("'", '"'):
            try:
                pairs[key] = literal_eval(value)
            except (ValueError, SyntaxError):
                pairs[key] = value
        else:
            pairs[key] = value
        pos = match.end()
    return pairs


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"ts={_timestamp(record)} level={record.levelname} logger={record.name} " \
            f"{record.getMessage()}"
        if record.exc_info:
            line += " exception=" + repr(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {"ts": _timestamp(record), "level": record.levelname,
                                  "logger": record.name}
        message = record.getMessage()
        pairs = parse_pairs(message)
        if pairs:
            out.update({k: v for k, v in pairs.items() if k not in out})
        else:
            out["msg"] = message
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class BackgroundHandler(logging.Handler):
    """Hands records to a writer thread: the event loop never waits on log output.

    A log reader that stops reading (a full stderr pipe, a stuck journald, a
    slow disk under logging.file) would otherwise stop the loop at its next
    log line, and every session with it. The queue is bounded: when the writer
    is that far behind, records are dropped and counted, and the writer logs
    `event=log_records_dropped count=N` once it catches up.
    """

    def __init__(self, target: logging.Handler, capacity: int = 10_000) -> None:
        super().__init__()
        self.target = target
        self.dropped = 0
        self._queue: queue.Queue[logging.LogRecord | None] = queue.Queue(capacity)
        self._writer = threading.Thread(target=self._write, name="fixgw-log", daemon=True)
        self._writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def _write(self) -> None:
        reported = 0
        while (record := self._queue.get()) is not None:
            if self.dropped != reported:
                count, reported = self.dropped - reported, self.dropped
                self.target.handle(logging.makeLogRecord({
                    "name": "fixgw.log", "levelno": logging.WARNING, "levelname": "WARNING",
                    "msg": "event=log_records_dropped count=%d", "args": (count,)}))
            self.target.handle(record)

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued (waiting at most `timeout` for a stuck reader), then close."""
        if self._writer.is_alive():
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=timeout)
            self._writer.join(timeout)
        self.target.close()
        super().close()


def configure_logging(settings: GatewaySettings) -> logging.Handler:
    """Install the root handler [logging] asks for, behind a BackgroundHandler; returns it."""
    cfg = settings.logging
    handler: logging.Handler
    if cfg.file is not None:
        cfg.file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            cfg.file, maxBytes=cfg.max_bytes, backupCount=cfg.backups, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if cfg.format == "json" else KeyValueFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    background = BackgroundHandler(handler)
    root.addHandler(background)
    root.setLevel(cfg.level or settings.log_level)
    return background
