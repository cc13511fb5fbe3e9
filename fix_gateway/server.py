"""The asyncio shell around the sans-I/O cores: sockets, clock and disk.

Per read batch: decode and run every message through the session, flush the
session's store once (group commit), then write the batch's output in one
call. A ticker drives heartbeats and timeouts for every connection. A peer
that stops reading is paused (we stop reading from it) and cut off after
`slow_consumer_timeout`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from pathlib import Path

from fix_gateway.config import GatewaySettings
from fix_gateway.dictionary import Dictionary
from fix_gateway.echo_application import EchoApplication
from fix_gateway.session import Connection, Session, SessionRegistry
from fix_gateway.session.session import Application
from session_store import FileStore

log = logging.getLogger("fixgw.server")


def tune_gc() -> None:
    """Fewer, larger young-generation collections; start-up objects frozen.

    Each message allocates a few lists; at the default threshold (700) the
    collector runs every few hundred messages and rescans long-lived state.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def session_directory(data_dir: Path, sender: str, target: str) -> Path:
    return data_dir / "sessions" / f"{sender}-{target}"


class FixProtocol(asyncio.Protocol):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.transport: asyncio.Transport | None = None
        self.conn: Connection | None = None
        self.paused_since: float | None = None
        self.closing = False

    # --- asyncio callbacks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        peer = transport.get_extra_info("peername")
        limit = self.gateway.settings.server.write_buffer_limit
        transport.set_write_buffer_limits(high=limit, low=limit // 4)
        self.conn = Connection(
            self.gateway.registry,
            time.time(),
            self.gateway.settings.server.max_message_size,
            peer=f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer),
            explain_refused_logon=self.gateway.settings.server.explain_refused_logon,
        )
        self.gateway.connections.add(self)
        log.info("event=connect peer=%s", self.conn.peer)

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if conn is None or self.closing:
            return
        conn.data_received(data, time.time())
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gateway.connections.discard(self)
        if self.conn is None:
            return
        reason = self.conn.close_reason or (f"connection lost: {exc}" if exc else "peer closed")
        self.conn.connection_lost(time.time(), reason)
        if self.conn.session is not None:
            try:
                self.conn.session.store.flush()
            except OSError as exc:
                log.error("event=store_error session=%s error=%r", self.conn.session.config.name,
                          exc)
        log.info("event=disconnect peer=%s session=%s reason=%r", self.conn.peer,
                 self.conn.session.config.name if self.conn.session else "-", reason)

    def pause_writing(self) -> None:
        self.paused_since = time.time()
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused_since = None
        if self.transport is not None and not self.closing:
            self.transport.resume_reading()

    # --- driven by the gateway -------------------------------------------------------

    def tick(self, now: float) -> None:
        if self.conn is None or self.closing:
            return
        server = self.gateway.settings.server
        if self.paused_since is not None and now - self.paused_since > server.slow_consumer_timeout:
            log.warning("event=slow_consumer peer=%s", self.conn.peer)
            self.conn.close_reason = "peer not reading (slow consumer)"
            self._abort()
            return
        self.conn.tick(now, server.logon_timeout)
        self.flush()

    def flush(self) -> None:
        """Write ahead, then speak: store first, socket second."""
        conn = self.conn
        if conn is None or self.transport is None:
            return
        out = conn.take_output()
        if conn.session is not None:
            try:
                conn.session.store.flush()
            except OSError as exc:
                # Write ahead, then speak: what could not be stored is not sent.
                log.error("event=store_error session=%s error=%r", conn.session.config.name, exc)
                conn.close_reason = f"session store write failed: {exc}"
                self._abort()
                return
        if out:
            self.transport.write(b"".join(out))
        if conn.close_reason is not None and not self.closing:
            self.closing = True
            self.transport.close()

    def _abort(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()


class Gateway:
    """Everything the venue runs, wired together in one place."""

    def __init__(self, settings: GatewaySettings, application: Application | None = None) -> None:
        self.settings = settings
        self.dictionary = Dictionary.load(settings.server.dictionary)
        if application is None and settings.server.application == "echo":
            application = EchoApplication()
        self.sessions: list[Session] = []
        for s in settings.sessions:
            config = s.to_config()
            store = FileStore(
                session_directory(settings.store.data_dir, config.sender_comp_id,
                                  config.target_comp_id),
                fsync=settings.store.fsync,
                fsync_interval=settings.store.fsync_interval,
            )
            self.sessions.append(Session(config, store, self.dictionary, application))
        self.registry = SessionRegistry(self.sessions)
        self.connections: set[FixProtocol] = set()
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        listen = self.settings.listen
        self._server = await loop.create_server(
            lambda: FixProtocol(self), listen.host, listen.port, reuse_address=True
        )
        self._ticker = loop.create_task(self._tick_forever())
        tune_gc()
        log.info("event=listening host=%s port=%d sessions=%d", listen.host, self.port,
                 len(self.sessions))

    async def _tick_forever(self) -> None:
        interval = self.settings.server.tick_interval
        while True:
            await asyncio.sleep(interval)
            now = time.time()
            for proto in list(self.connections):
                try:
                    proto.tick(now)
                except Exception:  # one bad connection must not stop the clock for all
                    log.exception("event=tick_error")
                    proto._abort()

    async def stop(self, drain_timeout: float = 2.0) -> None:
        """Log every session out, wait briefly for answers, flush and close."""
        if self._server is not None:
            self._server.close()
        now = time.time()
        for proto in list(self.connections):
            session = proto.conn.session if proto.conn else None
            if session is not None and session.connected and not proto.closing:
                session.logout("Gateway shutting down", now)
                proto.flush()
        deadline = time.monotonic() + drain_timeout
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for proto in list(self.connections):
            proto._abort()
        if self._ticker is not None:
            self._ticker.cancel()
        for session in self.sessions:
            session.store.close()
        log.info("event=stopped")
