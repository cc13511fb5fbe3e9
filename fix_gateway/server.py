"""The venue's composition root, and the asyncio shell around the sans-I/O cores.

`Gateway` wires the whole venue in one place (`__init__`, `_make_application`,
`_make_drop_copy`, `_subscribe`); `FixProtocol` only moves bytes, ticks time
and asks the gateway to commit. The order path, stage by stage, each handing
its results forward and none calling back into an earlier one:

    socket read (up to server.max_messages_per_read messages a loop turn)
      FixProtocol.data_received
      -> Connection / Session      framing, checksum, parse; logon, seqnums,
                                   rejects, resend (fix_gateway/session)
      -> OrderEntry.on_message     FIX -> one engine command, validated at the
                                   boundary (fix_gateway/application/order_entry)
      -> CommandJournal.append     buffered: written ahead at the commit
      -> MatchingEngine.process    one writer: command in, sequenced events out
      -> EventStream.publish(command, events, now)       (application/event_stream)
           stages     ReportWriter.on_events    ERs, cancel rejects, mass cancel
                                                reports: stored and queued on the
                                                session owning each order
                      DropCopyHub.on_events     those ERs into the drop-copy stream
                                                and out to live drop-copy sessions
           observers  OpenOrders.observe        MaxOpenOrders counts
                      SurveillanceMonitor.observe  rows for the detectors (off-loop)
                      EngineStats.observe       metrics
      -> Batch                     handed forward: the sessions given output
                                   (for the commit), the ERs just sent (for the
                                   drop-copy stage, drained per command)
    Gateway.commit, once per read (write ahead, then speak):
      journal flush -> drop-copy stream flush -> the store of every session in
      the batch -> the journal's commit mark (written with the next batch) ->
      each session's output to its socket, one write per connection

The MQTT feed and the surveillance detectors follow from other threads or
processes (the stream's files, the monitor's row buffer). A ticker drives
heartbeats, timeouts, drop-copy catch-up and the engine's clock (expiries), each
followed by a commit. A peer that stops reading is paused (we stop reading from
it) and cut off after `slow_consumer_timeout`; a stall watch thread writes the
stacks when the loop is held.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from enum import IntEnum
from pathlib import Path
from time import perf_counter
from typing import Any

from drop_copy.application import DropCopyApplication
from drop_copy.hub import Consumer, DropCopyHub
from drop_copy.mqtt import MqttFeed, broker_address
from drop_copy.stream import DropCopyStream, stream_directory
from engine import MatchingEngine
from engine.history import EngineHistory
from engine.journal import CommandJournal
from engine.snapshot import SnapshotMismatch, holds_orders, priced_symbols, restore, take
from fix_gateway import gc_policy
from fix_gateway.application.echo import EchoApplication
from fix_gateway.application.event_stream import Batch
from fix_gateway.application.journal_settings import RECORD_NAME, check_and_save
from fix_gateway.application.open_orders import OpenOrders
from fix_gateway.application.order_entry import OrderEntry
from fix_gateway.config import ConfigError, GatewaySettings
from fix_gateway.dictionary import Dictionary
from fix_gateway.message_log import MessageLogs
from fix_gateway.metrics import GatewayMetrics
from fix_gateway.session import Connection, Session, SessionRegistry
from fix_gateway.session.counters import ConnectionCounters
from fix_gateway.session.logon_failures import LogonFailures
from fix_gateway.session.session import RESEND_CHUNK_BYTES, Application, RejectingApplication
from fix_gateway.stall_watch import StallWatch
from fix_gateway.tls import peer_subject, server_context
from session_store import BackgroundSyncer, FileStore
from surveillance.monitor import SurveillanceMonitor

log = logging.getLogger("fixgw.server")

ENGINE_CLOCK_INTERVAL = 1.0  # seconds between AdvanceTime commands (expiries)
CREDENTIAL_THREADS = 2  # threads hashing Logon passwords (scrypt: ~50 ms, 16 MiB each)
MAX_CREDENTIAL_CHECKS = 64  # Logons waiting for them, all connections together


def tune_gc() -> None:
    """Start-up objects frozen, and the survivors of every collection after them:
    collections stay small however many orders the engine keeps (gc_policy)."""
    gc_policy.install()


def write_state(engine: MatchingEngine, path: Path) -> None:
    """The engine's canonical dump and its hash, as JSON, replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    open_orders = [
        {k: int(v) if isinstance(v, IntEnum) else v for k, v in o._asdict().items()}
        for o in engine.open_orders()
    ]
    tmp.write_text(json.dumps(
        {"hash": engine.state_hash(), "state": engine.dump(), "open_orders": open_orders},
        sort_keys=True, indent=1,
    ))
    os.replace(tmp, path)


def session_directory(data_dir: Path, sender: str, target: str) -> Path:
    return data_dir / "sessions" / f"{sender}-{target}"


@contextlib.contextmanager
def _naming_the_key(keys: str, host: str, port: int) -> Iterator[None]:
    """A listener that cannot bind says which setting to change."""
    try:
        yield
    except OSError as exc:
        raise OSError(exc.errno, f"{keys} = {host}:{port}: {exc.strerror or exc}") from exc


class FixProtocol(asyncio.Protocol):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.transport: asyncio.Transport | None = None
        self.conn: Connection | None = None
        self.session: Session | None = None
        self.paused_since: float | None = None
        self.closing = False
        self.checking_credentials = False
        self._resend_scheduled = False
        self._backlog_scheduled = False

    # --- asyncio callbacks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        peer = transport.get_extra_info("peername")
        server = self.gateway.settings.server
        transport.set_write_buffer_limits(high=server.write_buffer_limit,  # type: ignore[attr-defined]
                                          low=server.write_buffer_limit // 4)
        self.conn = Connection(
            self.gateway.registry,
            time.time(),
            server.max_message_size,
            peer=f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer),
            explain_refused_logon=server.explain_refused_logon,
            counters=self.gateway.connection_counters,
            failures=self.gateway.logon_failures,
            host=peer[0] if isinstance(peer, tuple) else str(peer),
        )
        self.gateway.connections.add(self)
        tls = transport.get_extra_info("ssl_object")
        if tls is None:
            log.info("event=connect peer=%s", self.conn.peer)
        else:
            log.info("event=connect peer=%s tls=%s client_cert=%s", self.conn.peer,
                     tls.version(), peer_subject(tls))

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if conn is None or self.closing:
            return
        metrics = self.gateway.metrics
        if metrics is not None:
            metrics.batch_started()
        limit = self.gateway.settings.server.max_messages_per_read
        self._guarded(lambda now: conn.data_received(data, now, limit))
        self._after_feed()

    def _after_feed(self) -> None:
        conn = self.conn
        assert conn is not None
        if conn.pending_logon is not None and not self.checking_credentials \
                and conn.close_reason is None:
            self._check_credentials()
        self._after_input()
        self._schedule_backlog()

    def _schedule_backlog(self) -> None:
        """More of this peer's read is waiting: act on it in a later turn of the loop,
        after the other connections, and read nothing more from it until it is done."""
        conn = self.conn
        if conn is None or self.closing or not conn.backlogged or self._backlog_scheduled:
            return
        if self.transport is not None:
            self.transport.pause_reading()
        self._backlog_scheduled = True
        asyncio.get_running_loop().call_soon(self._continue_backlog)

    def _continue_backlog(self) -> None:
        self._backlog_scheduled = False
        conn = self.conn
        if conn is None or self.closing or self.checking_credentials:
            return  # the credential check's answer goes on with it
        metrics = self.gateway.metrics
        if metrics is not None:
            metrics.batch_started()
        limit = self.gateway.settings.server.max_messages_per_read
        self._guarded(lambda now: conn.continue_backlog(now, limit))
        self._after_feed()
        self._resume_reading()

    def _resume_reading(self) -> None:
        """Read again unless something else still holds it: a full socket, a
        credential check, a backlog."""
        conn = self.conn
        if self.transport is None or self.closing or self.paused_since is not None \
                or self.checking_credentials or (conn is not None and conn.backlogged):
            return
        self.transport.resume_reading()

    def _check_credentials(self) -> None:
        """Hash the Logon's password on a worker thread; read nothing more meanwhile.

        A few threads of the gateway's own do the hashing, and only so many checks
        may wait for them: a flood of Logons is refused, not queued without end.
        """
        conn = self.conn
        assert conn is not None and conn.pending_logon is not None
        gateway = self.gateway
        if gateway.checks_in_flight >= MAX_CREDENTIAL_CHECKS:
            log.warning("event=logon_refused reason=too_many_credential_checks peer=%s",
                        conn.peer)
            conn.pending_logon = None
            conn.close_reason = "too many logons being checked; retry later"
            return
        gateway.checks_in_flight += 1
        self.checking_credentials = True
        if self.transport is not None:
            self.transport.pause_reading()
        future = asyncio.get_running_loop().run_in_executor(gateway.credential_checker,
                                                            conn.pending_logon.verify)
        future.add_done_callback(self._credentials_checked)

    def _credentials_checked(self, future: asyncio.Future[bool]) -> None:
        self.checking_credentials = False
        self.gateway.checks_in_flight -= 1
        conn = self.conn
        if conn is None or self.closing or future.cancelled() \
                or self not in self.gateway.connections:  # the peer left meanwhile
            return
        metrics = self.gateway.metrics
        if metrics is not None:
            metrics.batch_started()
        if future.exception() is not None:
            log.error("event=credential_check_error peer=%s error=%r", conn.peer,
                      future.exception())
        ok = future.exception() is None and future.result()
        self._guarded(lambda now: conn.credentials_checked(ok, now))
        self._after_feed()
        self._resume_reading()

    def _guarded(self, step: Callable[[float], None]) -> None:
        """Run one input step; a message whose handling raises ends the connection
        with a Logout, and what the batch decided before it is still written ahead
        in order by `_after_input` (an exception left to asyncio would close the
        socket with the journal behind the store)."""
        conn = self.conn
        assert conn is not None
        now = time.time()
        try:
            step(now)
        except Exception:
            session = conn.session
            log.exception("event=input_error peer=%s session=%s", conn.peer,
                          session.config.name if session is not None else "-")
            if session is not None and session.connected and session.close_reason is None:
                try:
                    session.logout("Internal error handling a message", now, close=True)
                except Exception:  # the session is past saying so: just close
                    log.exception("event=input_error_logout peer=%s", conn.peer)
            conn.pending_logon = None
            conn.close_reason = conn.close_reason or "internal error handling a message"

    def _after_input(self) -> None:
        conn = self.conn
        assert conn is not None
        if self.session is None and conn.session is not None and conn.close_reason is None:
            self.session = conn.session
            self.gateway.bind(conn.session, self)
        self.gateway.commit(self)
        metrics = self.gateway.metrics
        if metrics is not None:
            metrics.batch_written()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gateway.connections.discard(self)
        conn = self.conn
        if conn is None:
            return
        reason = conn.close_reason or (f"connection lost: {exc}" if exc else "peer closed")
        conn.connection_lost(time.time(), reason)
        if self.session is not None:
            self.gateway.unbind(self.session, self)
        self.closing = True  # nothing more is written to this socket
        if self.gateway.fatal_reason is None and not self.gateway.files_closed:
            # What this connection's last batch decided, written ahead in the one
            # order there is: journal, drop-copy stream, then the stores (after a
            # failed write nothing more is written: _fatal set the reason).
            self.gateway.commit(self)
        log.info("event=disconnect peer=%s session=%s reason=%r", conn.peer,
                 conn.session.config.name if conn.session else "-", reason)

    def pause_writing(self) -> None:
        self.paused_since = time.time()
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused_since = None
        self._resume_reading()
        self._schedule_resend()

    def _schedule_resend(self) -> None:
        """Serve the next chunk of a ResendRequest once the socket has room: the loop
        goes round other connections in between, and the buffer stays bounded."""
        conn = self.conn
        if self._resend_scheduled or self.closing or self.paused_since is not None \
                or conn is None or conn.session is None or not conn.session.resending:
            return
        self._resend_scheduled = True
        asyncio.get_running_loop().call_soon(self._continue_resend)

    def _continue_resend(self) -> None:
        self._resend_scheduled = False
        conn = self.conn
        if self.closing or self.paused_since is not None or conn is None \
                or conn.session is None:
            return
        limit = self.gateway.settings.server.write_buffer_limit
        conn.session.continue_resend(time.time(), max_bytes=min(limit, RESEND_CHUNK_BYTES))
        self.write_output()

    # --- driven by the gateway -------------------------------------------------------

    def tick(self, now: float) -> None:
        if self.conn is None or self.closing:
            return
        server = self.gateway.settings.server
        if self.paused_since is not None and now - self.paused_since > server.slow_consumer_timeout:
            log.warning("event=slow_consumer peer=%s", self.conn.peer)
            self.conn.close_reason = "peer not reading (slow consumer)"
            self.abort()
            return
        self.conn.tick(now, server.logon_timeout)

    def write_output(self) -> None:
        """Send what the connection and its session queued (already stored)."""
        conn = self.conn
        if conn is None or self.transport is None or self.closing:
            return
        out = conn.take_output()
        if out:
            self.transport.write(b"".join(out))
            if conn.session is not None and conn.session.message_log is not None:
                conn.session.message_log.outbound(time.time(), out)
            if self.paused_since is not None and self.transport.get_write_buffer_size() \
                    > self.gateway.settings.server.write_buffer_max:
                log.warning("event=slow_consumer peer=%s reason=buffer_full", conn.peer)
                conn.close_reason = "peer not reading (slow consumer, buffer full)"
                self.abort()
                return
        if conn.close_reason is not None:
            self.closing = True
            self.transport.close()
            return
        if conn.session is not None and conn.session.resending:
            self._schedule_resend()

    def abort(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()


class Gateway:
    """Everything the venue runs, wired together in one place."""

    def __init__(self, settings: GatewaySettings, application: Application | None = None) -> None:
        self.settings = settings
        self.dictionary = Dictionary.load(settings.server.dictionary)
        self.order_entry: OrderEntry | None = None
        self.journal: CommandJournal | None = None
        self.history: EngineHistory | None = None
        self._snapshot_day: int | None = None  # the engine's next end of day at the last day's end
        self.surveillance: SurveillanceMonitor | None = None
        self.syncer = BackgroundSyncer(settings.store.fsync_interval)
        self.sessions: list[Session] = []
        self.drop_copy: DropCopyHub | None = None
        self.open_orders: OpenOrders | None = None  # MaxOpenOrders, when any session has it
        self.mqtt_feed: MqttFeed | None = None
        self._roles: dict[str, str] = {}
        for s in settings.sessions:
            config = s.to_config()
            store = FileStore(
                session_directory(settings.store.data_dir, config.sender_comp_id,
                                  config.target_comp_id),
                fsync=settings.store.fsync,
                fsync_interval=settings.store.fsync_interval,
                syncer=self.syncer,
                record_inbound=settings.store.record_inbound,
            )
            self.sessions.append(Session(config, store, self.dictionary))
            self._roles[config.name] = s.role
        self._by_name = {s.config.name: s for s in self.sessions}
        self.batch = Batch()  # what a read batch produced: written ahead, then spoken
        if application is None:
            application = self._make_application()
        listener = DropCopyApplication()
        for session in self.sessions:
            is_copy = self._roles[session.config.name] == "drop-copy"
            session.application = listener if is_copy else application
        self.registry = SessionRegistry(self.sessions)
        self.connection_counters = ConnectionCounters()
        self.fatal_reason: str | None = None  # set when orders may no longer be acknowledged
        self.failed_stores: set[str] = set()  # sessions whose last store flush failed
        self.message_logs = self._open_message_logs()
        self.metrics = GatewayMetrics(self) if settings.metrics.enabled else None
        self._subscribe()
        sec = settings.security
        self.logon_failures = LogonFailures(sec.max_logon_failures, sec.logon_failure_window,
                                            sec.lockout, sec.lockout_max)
        self.connections: set[FixProtocol] = set()
        self._protocols: dict[Session, FixProtocol] = {}
        self._server: asyncio.Server | None = None
        self._tls_server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.loop_stalls = 0  # times the event loop was held up past server.stall_seconds
        self.stall_log = settings.store.data_dir / "stalls.log"  # stacks while it was
        self._last_clock = 0.0
        # Set when what was decided cannot be written ahead (disk full, I/O error):
        # the venue stops and the process exits non-zero (see _fatal).
        self.on_fatal: Callable[[], None] = lambda: None
        self.credential_checker = ThreadPoolExecutor(CREDENTIAL_THREADS, "fixgw-auth")
        self.checks_in_flight = 0
        self.files_closed = False  # stop() closed the journal and stores: commit no more

    def _open_message_logs(self) -> MessageLogs | None:
        cfg = self.settings.logging
        if not cfg.messages:
            return None
        logs = MessageLogs(cfg.messages_dir or self.settings.store.data_dir / "logs",
                           cfg.messages_max_bytes, cfg.messages_backups)
        for session in self.sessions:
            session.message_log = logs.open(session.config.name)
        return logs

    def _make_application(self) -> Application:
        kind = self.settings.server.application
        if kind == "echo":
            return EchoApplication()
        if kind == "reject":
            return RejectingApplication()
        settings = self.settings
        instruments = [i.to_instrument() for i in settings.instruments]
        history = self.history = EngineHistory(settings.store.data_dir / "engine")
        history.directory.mkdir(parents=True, exist_ok=True)
        saved = history.load_snapshot()
        covered, state = saved if saved is not None else (0, None)
        # After a clean stop the snapshot is all there is: nothing replayed after it
        # depends on the settings, and only its orders' tick sizes must stay.
        nothing_after_snapshot = state is not None and not history.replay_holds_commands(covered)

        def replay_depends_on_settings() -> bool:
            return not nothing_after_snapshot and (
                (state is not None and holds_orders(state))
                or history.replay_holds_orders(covered))

        settings_changed = check_and_save(
            history.directory / RECORD_NAME, settings, replay_depends_on_settings,
            priced_symbols(state) if state is not None else ())
        if state is None:
            engine = MatchingEngine(instruments, settings.engine.stp,
                                    end_of_day=settings.engine.end_of_day_ns,
                                    max_iceberg_slices=settings.engine.max_iceberg_slices)
        else:
            try:
                engine = restore(state, instruments, settings.engine.stp,
                                 settings.engine.end_of_day_ns, new_rules=nothing_after_snapshot,
                                 max_iceberg_slices=settings.engine.max_iceberg_slices)
            except SnapshotMismatch as exc:
                raise ConfigError(f"{history.snapshot_path}: {exc}") from exc
        self.journal = CommandJournal(history.journal_path,
                                      fsync=settings.store.fsync,
                                      fsync_interval=settings.store.fsync_interval,
                                      syncer=self.syncer)
        order_entry_sessions = {name: s for name, s in self._by_name.items()
                                if self._roles[name] == "order-entry"}
        self.order_entry = OrderEntry(engine, self.journal, instruments,
                                      order_entry_sessions.get, self.batch)
        if settings.drop_copy.enabled:
            self._make_drop_copy()
        now = time.time()
        replayed = self.order_entry.recover(history.entries_after(covered, self.journal), now)
        if any(s.max_open_orders is not None for s in settings.sessions):
            self.open_orders = OpenOrders(engine)  # counts from the recovered state on
        # Restored reports are stored (stream, then stores) before the journal
        # says so: a crash in between restores them again at the next start.
        if self.drop_copy is not None:
            self.drop_copy.recovered(now)
            self.drop_copy.stream.flush()
        for session in self.sessions:
            session.store.flush()
        self.journal.mark_committed()
        self.journal.flush()
        log.info("event=engine_recovered snapshot=%s commands=%d open_orders=%d",
                 covered if state is not None else "none", replayed, len(engine.open_orders()))
        if replayed and settings.engine.snapshots:
            self._take_snapshot()  # the next start replays none of this again
        elif nothing_after_snapshot and settings_changed:
            # What is journaled from now on is made under the new settings: so must the
            # snapshot it follows be.
            self._take_snapshot()
        self._snapshot_day = engine.next_end_of_day
        if settings.surveillance.enabled:
            self.surveillance = SurveillanceMonitor(settings.surveillance, settings.store.data_dir)
        return self.order_entry

    def _make_drop_copy(self) -> None:
        settings = self.settings
        stream = DropCopyStream(stream_directory(settings.store.data_dir),
                                fsync=settings.store.fsync,
                                fsync_interval=settings.store.fsync_interval,
                                syncer=self.syncer)
        consumers = [
            Consumer(self._by_name[c.to_config().name], frozenset(c.drop_copy_sessions),
                     frozenset(a.encode() for a in c.drop_copy_accounts),
                     c.drop_copy_delivery)
            for c in settings.sessions if c.role == "drop-copy"
        ]
        hub = DropCopyHub(stream, consumers, self.batch)
        for consumer in consumers:
            consumer.session.on_event = hub.event_sink(consumer, consumer.session.on_event)
        self.drop_copy = hub

    def _subscribe(self) -> None:
        """Every consumer of the engine's event stream, in the order it runs (the
        reports, the first stage, are order entry's own)."""
        entry = self.order_entry
        if entry is None:
            return
        stream = entry.stream
        if self.drop_copy is not None:
            stream.stages.append(self.drop_copy.on_events)  # the reports just sent
        if self.open_orders is not None:
            stream.observers.append(self.open_orders.observe)
            entry.order_checks.append(self.open_orders.check)
        if self.surveillance is not None:
            stream.observers.append(self.surveillance.observe)
        if self.metrics is not None:
            stream.observers.append(self.metrics.engine_stats.observe)

    # --- sessions <-> connections ----------------------------------------------------

    def bind(self, session: Session, proto: FixProtocol) -> None:
        self._protocols[session] = proto

    def unbind(self, session: Session, proto: FixProtocol) -> None:
        if self._protocols.get(session) is proto:
            del self._protocols[session]

    def _ready(self, session: Session) -> bool:
        """The session's socket has taken what it was given (writing is not paused)."""
        proto = self._protocols.get(session)
        return proto is not None and proto.paused_since is None and not proto.closing

    def commit(self, origin: FixProtocol | None) -> None:
        """Write ahead, then speak: journal, drop-copy stream, session stores, sockets."""
        touched = self.batch.sessions
        journaled = False
        metrics = self.metrics
        started = perf_counter() if metrics is not None else 0.0
        hub = self.drop_copy
        if hub is not None and hub.waiting:
            hub.pump(time.time(), self._ready)  # a drop-copy session catching up: its next chunk
        if self.order_entry is not None:
            journal = self.journal
            assert journal is not None
            if journal.pending:
                try:
                    journal.flush()
                except OSError as exc:
                    self._fatal(f"engine journal write failed: {exc}")
                    return
                journaled = True
        if hub is not None and hub.stream.pending:
            try:
                hub.stream.flush()
            except OSError as exc:
                self._fatal(f"drop-copy stream write failed: {exc}")
                return
        if origin is not None and origin.conn is not None and origin.conn.session is not None:
            touched.add(origin.conn.session)  # bound, or refusing a Logon
        for session in touched:
            try:
                session.store.flush()
            except OSError as exc:
                # What could not be stored is not sent, and the journal gets no
                # commit mark: recovery restores these reports from the journal.
                log.error("event=store_error session=%s error=%r", session.config.name, exc)
                self.failed_stores.add(session.config.name)
                self._fatal(f"session store write failed ({session.config.name}): {exc}")
                return
        if metrics is not None and (journaled or touched):
            metrics.store_flushed(started)
        if journaled and self.journal is not None:
            self.journal.mark_committed()  # written with the next batch
        for session in touched:
            proto = self._protocols.get(session)
            if proto is not None and proto is not origin:
                proto.write_output()
        touched.clear()
        if origin is not None:
            origin.write_output()

    def _fatal(self, reason: str) -> None:
        """Write-ahead failed: nothing more may be acknowledged, so the venue stops.

        Every connection is cut without a word (what was not stored is not
        said), the listener closes and `on_fatal` tells the owner to exit.
        What was written stays as it is; a restart recovers from it.
        """
        if self.fatal_reason is not None:
            return
        self.fatal_reason = reason
        log.critical("event=fatal reason=%r", reason)
        for proto in list(self.connections):
            proto.abort()
        for server in (self._server, self._tls_server):
            if server is not None:
                server.close()
        self.on_fatal()

    def snapshot_engine(self) -> None:
        """Archive the journal and save the engine's state, so that a start replays
        only what comes after (engine.history). Called at a committed point: every
        journaled command has its reports stored."""
        try:
            self._take_snapshot()
        except OSError as exc:  # the journal may be closed or half moved: stop
            self._fatal(f"engine journal archive failed: {exc}")

    def _take_snapshot(self) -> None:
        """snapshot_engine; an error archiving the journal is raised (at start, it
        is a start error)."""
        if self.order_entry is None or self.history is None or self.journal is None:
            return
        started = time.monotonic()
        number = self.history.archive(self.journal)
        engine = self.order_entry.engine
        self._snapshot_day = engine.next_end_of_day
        # The snapshot's records live only until written: no collector passes over
        # the whole heap while the loop waits for them.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self.history.save_snapshot(number, take(engine))
        except OSError as exc:  # the previous snapshot and the archives still recover it all
            log.error("event=engine_snapshot_failed archive=%d error=%r", number, exc)
            return
        finally:
            if collecting:
                gc.enable()
        log.info("event=engine_snapshot archive=%d seconds=%.3f", number,
                 time.monotonic() - started)
        keep = self.settings.engine.archives_kept
        if keep:
            try:
                pruned = self.history.prune(number, keep)
            except OSError as exc:  # only disk space at stake: trading goes on
                log.error("event=engine_archive_prune_failed error=%r", exc)
            else:
                if pruned:
                    log.info("event=engine_archives_pruned first=%d last=%d", pruned[0],
                             pruned[-1])

    def _after_end_of_day(self) -> None:
        """A new trading day began (Day orders expired): once a day, snapshot the
        engine (engine.snapshots) and free the reference cycles frozen during the day
        (gc_policy: without it they would pile up day after day)."""
        if self.order_entry is None:
            return
        day = self.order_entry.engine.next_end_of_day
        if self._snapshot_day is None:
            self._snapshot_day = day  # the first command of a fresh history set it
        elif day != self._snapshot_day and self.fatal_reason is None:
            self._snapshot_day = day
            if self.settings.engine.snapshots:
                self.snapshot_engine()
            gc_policy.full_collection()

    def dump_engine(self) -> Path | None:
        """Write the engine's canonical state to <data_dir>/engine/state.json (atomically)."""
        if self.order_entry is None:
            return None
        path = self.settings.store.data_dir / "engine" / "state.json"
        write_state(self.order_entry.engine, path)
        log.info("event=engine_dumped path=%s", path)
        return path

    # --- lifecycle -------------------------------------------------------------------

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def tls_port(self) -> int | None:
        if self._tls_server is None:
            return None
        return int(self._tls_server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        listen = self.settings.listen
        tls = self.settings.tls
        context = server_context(tls) if tls.enabled else None  # before binding anything
        with _naming_the_key("listen.host/listen.port", listen.host, listen.port):
            self._server = await loop.create_server(
                lambda: FixProtocol(self), listen.host, listen.port, reuse_address=True,
                backlog=self.settings.server.listen_backlog,
            )
        if context is not None:
            with _naming_the_key("tls.host/tls.port", tls.host or listen.host, tls.port):
                self._tls_server = await loop.create_server(
                    lambda: FixProtocol(self), tls.host or listen.host, tls.port, ssl=context,
                    reuse_address=True, ssl_handshake_timeout=self.settings.server.logon_timeout,
                    backlog=self.settings.server.listen_backlog,
                )
            log.info("event=listening_tls host=%s port=%d verify_client=%s",
                     tls.host or listen.host, self.tls_port, tls.verify_client)
        self._ticker = loop.create_task(self._tick_forever())
        mqtt = self.settings.drop_copy.mqtt
        if self.drop_copy is not None and mqtt.enabled and mqtt.in_process:
            self.mqtt_feed = MqttFeed(mqtt, self.settings.store.data_dir, self.dictionary)
            self.mqtt_feed.start()
        self._drop_copy_metrics()
        self._alert_outlets()
        if self.surveillance is not None:
            self.surveillance.start()
        tune_gc()
        log.info("event=listening host=%s port=%d sessions=%d", listen.host, self.port,
                 len(self.sessions))
        if self.metrics is not None:
            await self.metrics.start(self.settings.metrics.host, self.settings.metrics.port)

    def _alert_outlets(self) -> None:
        """Surveillance alerts: counted for /metrics, published on MQTT when the feed runs."""
        monitor = self.surveillance
        if monitor is None:
            return
        if self.metrics is not None:
            self.metrics.external.surveillance_alerts = monitor.alert_counts
        feed = self.mqtt_feed
        if feed is not None:
            prefix = feed.settings.topic_prefix
            monitor.on_alert.append(lambda alert: feed.publish_soon(
                f"{prefix}/alerts/{alert.type}", alert.model_dump_json()))

    def _drop_copy_metrics(self) -> None:
        """Drop-copy lag per consumer and the MQTT connection state, read at scrape time."""
        hub = self.drop_copy
        if self.metrics is None or hub is None:
            return
        external = self.metrics.external
        stream = hub.stream
        for consumer in hub.consumers:
            external.set_drop_copy_lag(
                consumer.session.config.name,
                lambda c=consumer: stream.committed - (c.cursor or 0))  # type: ignore[misc]
        feed = self.mqtt_feed
        if feed is not None:
            host, port = broker_address(feed.settings)
            external.set_mqtt_state(f"{host}:{port}", lambda: feed.connected)
            external.set_drop_copy_lag("mqtt", lambda: stream.committed - feed.publisher.acked)

    async def _tick_forever(self) -> None:
        interval = self.settings.server.tick_interval
        stall = self.settings.server.stall_seconds
        watch = self._start_stall_watch(interval + stall) if stall else None
        last = time.monotonic()
        try:
            while True:
                await asyncio.sleep(interval)
                if watch is not None:
                    watch.beat()
                now = time.monotonic()
                late = now - last - interval
                last = now
                if stall and late >= stall:
                    self.loop_stalls += 1
                    log.warning("event=loop_stalled seconds=%.3f stacks=%s", late,
                                self.stall_log)
                try:
                    self.tick(time.time())
                except Exception:  # the clock must keep going for everyone else
                    log.exception("event=tick_error")
        finally:
            if watch is not None:
                watch.stop()
                watch.out.close()

    def _start_stall_watch(self, threshold: float) -> StallWatch | None:
        """A thread that writes the stacks to <data_dir>/stalls.log when no tick came
        for `threshold` seconds. A file, not stderr: a stderr pipe nobody reads would
        block it."""
        try:
            stacks = open(self.stall_log, "a")  # noqa: SIM115 -- open while ticking
        except OSError as exc:  # stalls are still logged, without the stacks
            log.error("event=stall_log_unavailable path=%s error=%r", self.stall_log, exc)
            return None
        watch = StallWatch(threshold, stacks)
        watch.start()
        return watch

    def tick(self, now: float) -> None:
        gc_policy.young_collection()
        if self.message_logs is not None:
            self.message_logs.flush()
        if self.fatal_reason is not None:
            return
        if self.order_entry is not None and now - self._last_clock >= ENGINE_CLOCK_INTERVAL:
            self._last_clock = now
            self.order_entry.advance_time(now)
            self.commit(None)
            self._after_end_of_day()
        if self.drop_copy is not None and self.drop_copy.waiting:
            self.commit(None)  # drop-copy sessions catching up get their next chunk
        for proto in list(self.connections):
            try:
                proto.tick(now)
            except Exception:  # one bad connection must not stop the clock for all
                log.exception("event=tick_error peer=%s", proto.conn.peer if proto.conn else "-")
                proto.abort()
                continue
            self.commit(proto)

    async def stop(self, drain_timeout: float = 2.0) -> None:
        """Log every session out, wait briefly for answers, flush and close."""
        if self._server is not None:
            self._server.close()
        if self._tls_server is not None:
            self._tls_server.close()
        now = time.time()
        for proto in list(self.connections):
            session = proto.session
            if session is not None and session.connected and not proto.closing:
                session.logout("Gateway shutting down", now)
                self.commit(proto)
        deadline = time.monotonic() + drain_timeout
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for proto in list(self.connections):
            proto.abort()
        await asyncio.sleep(0)  # their connection_lost commits while the files are open
        if self._ticker is not None:
            self._ticker.cancel()
        if self.surveillance is not None:
            await self.surveillance.stop()
        if self.mqtt_feed is not None:
            self.mqtt_feed.stop()
        self.credential_checker.shutdown(wait=False, cancel_futures=True)
        if self.metrics is not None:
            await self.metrics.stop()
        if self.message_logs is not None:
            self.message_logs.close()
        if self.drop_copy is not None:
            self.drop_copy.close()
        if self.fatal_reason is None:  # after a failed write, leave the files as they are
            if self.settings.engine.snapshots and self.journal is not None \
                    and self.journal.holds_commands():
                self.snapshot_engine()  # the next start replays nothing
            self._close_files()
        self.syncer.stop()
        gc_policy.uninstall()  # what this gateway leaves is garbage like any other
        log.info("event=stopped")

    def _close_files(self) -> None:
        self.files_closed = True  # closing flushes them: journal, stream, then stores
        files: list[Any] = [self.journal] if self.journal is not None else []
        if self.drop_copy is not None:
            files.append(self.drop_copy.stream)
        for closable in [*files, *(s.store for s in self.sessions)]:
            try:
                closable.close()
            except OSError as exc:
                log.error("event=close_error error=%r", exc)
