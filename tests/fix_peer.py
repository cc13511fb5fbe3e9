"""A scripted FIX counterparty for tests: builds client messages with its own
sequence numbers and reads what the gateway answered.

`SansIOPeer` drives a `Connection` directly (no socket, a fake clock);
`TcpPeer` speaks to a real gateway over a real socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Iterable

from fix_gateway.codec import Decoder, FieldValue, Garbled, Message, encode
from fix_gateway.dictionary import Dictionary
from fix_gateway.session import Connection, Session, SessionConfig, SessionRegistry
from fix_gateway.utc_time import format_timestamp
from session_store import MemoryStore

T0 = 1_800_000_000.0  # a fixed "now" for sans-I/O tests
DICTIONARY = Dictionary.load()
OUR_ID = "FIXGW"
THEIR_ID = "CLIENT1"


class MessageBuilder:
    """Client-side message construction with automatic MsgSeqNum."""

    def __init__(self, sender: str = THEIR_ID, target: str = OUR_ID) -> None:
        self.sender = sender
        self.target = target
        self.next_seq = 1

    def build(
        self,
        msg_type: str | bytes,
        *body: tuple[int, FieldValue],
        seq: int | None = None,
        now: float = T0,
        header: Iterable[tuple[int, FieldValue]] = (),
        sending_time: FieldValue | None = None,
        begin_string: bytes = b"FIX.4.4",
        sender: str | None = None,
        target: str | None = None,
    ) -> bytes:
        if seq is None:
            seq = self.next_seq
            self.next_seq += 1
        fields: list[tuple[int, FieldValue]] = [
            (35, msg_type),
            (49, sender if sender is not None else self.sender),
            (56, target if target is not None else self.target),
            (34, seq),
            (52, sending_time if sending_time is not None else format_timestamp(now)),
            *header,
            *body,
        ]
        return encode(fields, begin_string)

    def logon(self, heartbeat: int = 30, *extra: tuple[int, FieldValue], **kw: object) -> bytes:
        return self.build("A", (98, 0), (108, heartbeat), *extra, **kw)  # type: ignore[arg-type]


class SansIOPeer(MessageBuilder):
    """One client connection against a Session, with a controllable clock."""

    def __init__(
        self,
        session: Session | None = None,
        now: float = T0,
        registry: SessionRegistry | None = None,
        **config: object,
    ) -> None:
        super().__init__()
        if session is None:
            cfg = SessionConfig(sender_comp_id=OUR_ID, target_comp_id=THEIR_ID, **config)  # type: ignore[arg-type]
            session = Session(cfg, MemoryStore(now), DICTIONARY, on_event=lambda *a: None)
        self.session = session
        self.registry = registry or SessionRegistry([session])
        self.now = now
        self.conn = Connection(self.registry, now)
        self._decoder = Decoder()

    @property
    def store(self) -> MemoryStore:
        return self.session.store  # type: ignore[return-value]

    def feed(self, data: bytes) -> list[Message]:
        self.conn.data_received(data, self.now)
        pending = self.conn.pending_logon
        if pending is not None:  # what the asyncio shell does on a worker thread
            self.conn.credentials_checked(pending.verify(), self.now)
        return self.replies()

    def send(self, msg_type: str, *body: tuple[int, FieldValue], **kw: object) -> list[Message]:
        kw.setdefault("now", self.now)
        return self.feed(self.build(msg_type, *body, **kw))  # type: ignore[arg-type]

    def log_on(self, heartbeat: int = 30, *extra: tuple[int, FieldValue]) -> list[Message]:
        replies = self.feed(self.logon(heartbeat, *extra, now=self.now))
        assert replies and replies[0].msg_type == b"A", replies
        return replies

    def advance(self, seconds: float) -> list[Message]:
        self.now += seconds
        self.conn.tick(self.now, logon_timeout=5.0)
        return self.replies()

    def replies(self) -> list[Message]:
        out: list[Message] = []
        for chunk in self.conn.take_output():
            items, _ = self._decoder.feed(chunk)
            out += [m for m in items if not isinstance(m, Garbled)]
        return out

    @property
    def closed(self) -> str | None:
        return self.conn.close_reason

    def disconnect(self) -> None:
        self.conn.connection_lost(self.now, "test disconnect")


class TcpPeer(MessageBuilder):
    """A raw-socket FIX client for tests against a running gateway."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, **kw: str
    ) -> None:
        super().__init__(**kw)
        self.reader = reader
        self.writer = writer
        self._decoder = Decoder()
        self._pending: list[Message] = []

    @classmethod
    async def connect(
        cls, port: int, tls: ssl.SSLContext | None = None, source: str | None = None, **kw: str
    ) -> TcpPeer:
        """`tls`: speak TLS with this context; `source`: connect from this local IP."""
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=tls, server_hostname="localhost" if tls else None,
            local_addr=(source, 0) if source else None,
        )
        return cls(reader, writer, **kw)

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send(self, msg_type: str, *body: tuple[int, FieldValue], **kw: object) -> None:
        import time

        kw.setdefault("now", time.time())
        await self.write(self.build(msg_type, *body, **kw))  # type: ignore[arg-type]

    async def receive(self, timeout: float = 5.0) -> Message:
        """The next message from the gateway; raises EOFError if it closed."""
        while not self._pending:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise EOFError("gateway closed the connection")
            items, _ = self._decoder.feed(data)
            self._pending += [m for m in items if isinstance(m, Message)]
        return self._pending.pop(0)

    async def expect(self, msg_type: str, timeout: float = 5.0) -> Message:
        """Skip heartbeats until a message of `msg_type` arrives."""
        while True:
            msg = await self.receive(timeout)
            if msg.msg_type == msg_type.encode():
                return msg
            if msg.msg_type not in (b"0",):
                raise AssertionError(f"expected 35={msg_type}, got {msg}")

    async def closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True once the gateway has closed the connection (after any messages)."""
        try:
            while True:
                await self.receive(timeout)
        except EOFError:
            return True
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionResetError, BrokenPipeError, ssl.SSLError):
            await self.writer.wait_closed()


async def logged_on(port: int, heartbeat: int = 30, **kw: str) -> TcpPeer:
    """A TcpPeer on `port` whose Logon the gateway answered with a Logon."""
    peer = await TcpPeer.connect(port, **kw)
    await peer.write(peer.logon(heartbeat, now=time.time()))
    reply = await peer.receive()
    assert reply.msg_type == b"A", reply
    return peer
