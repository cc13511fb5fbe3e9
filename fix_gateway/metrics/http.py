"""A minimal HTTP/1.1 endpoint on the gateway's event loop: /metrics and /healthz.

Runs on the loop (no thread) so the collector reads gateway state with no
locks. One request per connection; anything else gets a plain error status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

HealthReport = Callable[[], tuple[bool, dict[str, object]]]

_MAX_REQUEST = 8192  # bytes of request line and headers
_READ_TIMEOUT = 5.0  # seconds for a client to send its request
_DISCARD_LIMIT = 1024 * 1024  # bytes read and dropped after a 431, so the close is clean
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            431: "Request Header Fields Too Large", 503: "Service Unavailable"}


class MetricsServer:
    def __init__(self, registry: CollectorRegistry, health: HealthReport) -> None:
        self.registry = registry
        self.health = health
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int | None:
        if self._server is None or not self._server.sockets:
            return None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._handle, host, port, reuse_address=True,
                                                  limit=_MAX_REQUEST)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for one request."""
        path = path.split("?", 1)[0]
        if path not in ("/metrics", "/healthz"):
            return 404, "text/plain; charset=utf-8", b"not found: try /metrics or /healthz\n"
        if method not in ("GET", "HEAD"):
            return 405, "text/plain; charset=utf-8", b"only GET\n"
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        live, report = self.health()
        body = json.dumps(report, sort_keys=True).encode() + b"\n"
        return (200 if live else 503), "application/json", body

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT)
            except asyncio.LimitOverrunError:
                await _too_large(reader, writer)
                return
            parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                status, ctype, body = 400, "text/plain; charset=utf-8", b"bad request\n"
                method = "GET"
            else:
                method = parts[0]
                status, ctype, body = self.respond(method, parts[1])
            writer.write(
                f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ConnectionError):
            pass  # a client that went away or sent garbage: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def _too_large(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """431 for a request line and headers past _MAX_REQUEST, then close. The rest of
    the request is read and dropped first (up to a bound): closing a socket with
    unread input sends a reset, which can destroy the answer before it is read."""
    body = b"request line and headers too large\n"
    writer.write(
        f"HTTP/1.1 431 {_REASONS[431]}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()
    dropped = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_READ_TIMEOUT):
            while dropped < _DISCARD_LIMIT:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                dropped += len(chunk)
