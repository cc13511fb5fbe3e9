"""A client that stops reading while another session trades against its resting
orders (in-process gateway, real sockets, real files).

Its queue at the gateway stays bounded, it is cut off (after
server.slow_consumer_timeout, or at once past server.write_buffer_max), and
after reconnecting it gets every fill it missed by ResendRequest, PossDupFlag=Y,
each ExecID once, adding up to what the engine says it traded.
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from fix_gateway.codec import Decoder, Message
from fix_gateway.config import GatewaySettings
from fix_gateway.server import Gateway
from fix_gateway.utc_time import format_timestamp
from tests.fix_peer import MessageBuilder, TcpPeer
from tests.gateway_settings import loopback_settings
from tests.venue import record_write_buffer

RESTING = 5
RESTING_QTY = 1_000_000


def settings(data_dir: Path, **server: object) -> GatewaySettings:
    return loopback_settings(
        data_dir,
        server={"tick_interval": 0.05, "write_buffer_limit": 4096, **server},
        instruments=[{"symbol": "ACME"}],
        sessions=[{"SenderCompID": "FIXGW", "TargetCompID": "SLOW"},
                  {"SenderCompID": "FIXGW", "TargetCompID": "FAST"}],
    )


def _now() -> bytes:
    return format_timestamp(time.time())


class NonReader:
    """A client on a raw socket with a tiny receive buffer that reads only when told."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.builder = MessageBuilder(sender="SLOW")
        self.decoder = Decoder()
        self.seen: list[Message] = []

    @classmethod
    async def connect(cls, port: int) -> NonReader:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        return cls(sock)

    async def send(self, msg_type: str, *body: tuple[int, object]) -> None:
        data = self.builder.build(msg_type, *body, now=time.time())  # type: ignore[arg-type]
        await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def read(self, count: int) -> None:
        loop = asyncio.get_running_loop()
        while len(self.seen) < count:
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), 5)
            items, _ = self.decoder.feed(data)
            self.seen += [m for m in items if isinstance(m, Message)]


async def rest_orders_then_stop_reading(port: int) -> NonReader:
    slow = await NonReader.connect(port)
    await slow.send("A", (98, 0), (108, 30), (141, "Y"))
    for i in range(RESTING):
        await slow.send("D", (11, f"S{i}"), (1, "ACC-S"), (38, RESTING_QTY), (40, 2),
                        (44, "100.00"), (54, 1), (55, "ACME"), (59, 1), (60, _now()))
    await slow.read(1 + RESTING)  # Logon and one ack per order; then it never reads again
    assert [m.get(150) for m in slow.seen[1:]] == [b"0"] * RESTING
    return slow


async def trade_against(gw: Gateway, batch: int, pause: float) -> tuple[int, int]:
    """FAST sells 1 lot at a time into SLOW's bids until SLOW is cut off.
    Returns (lots traded, the most bytes ever queued for SLOW)."""
    slow_session = gw.sessions[0]
    fast = await TcpPeer.connect(gw.port, sender="FAST")
    await fast.write(fast.logon(30, (141, "Y"), now=time.time()))
    assert (await fast.receive()).msg_type == b"A"
    traded = most_queued = 0
    for _ in range(400):
        proto = gw._protocols.get(slow_session)
        if proto is None:
            break
        assert proto.transport is not None
        most_queued = max(most_queued, proto.transport.get_write_buffer_size())
        for _ in range(batch):
            await fast.send("D", (11, f"F{fast.next_seq}"), (1, "ACC-F"), (38, 1), (40, 2),
                            (44, "100.00"), (54, 2), (55, "ACME"), (59, 3), (60, _now()))
        fills = 0
        while fills < batch:  # FAST reads its own reports: it is not the slow one
            msg = await fast.receive()
            fills += msg.msg_type == b"8" and msg.get(150) == b"F"
        traded += batch
        await asyncio.sleep(pause)
    await fast.close()
    assert gw._protocols.get(slow_session) is None, "the slow consumer was never cut off"
    return traded, most_queued


async def recover(gw: Gateway, slow: NonReader) -> list[Message]:
    """SLOW logs on again and asks for everything after the last message it read."""
    slow.sock.close()
    peer = await TcpPeer.connect(gw.port, sender="SLOW")
    peer.next_seq = slow.builder.next_seq
    await peer.write(peer.logon(30, now=time.time()))
    logon = await peer.receive()
    assert logon.msg_type == b"A"
    last_seen = int(slow.seen[-1].get(34) or 0)
    await peer.send("2", (7, last_seen + 1), (16, 0))
    resent: list[Message] = []
    covered = last_seen
    while covered < int(logon.get(34) or 0) - 1:
        msg = await peer.receive()
        seq = int(msg.get(34) or 0)
        assert seq == covered + 1 and msg.get(43) == b"Y", msg  # in order, nothing skipped
        covered = int(msg.get(36) or 0) - 1 if msg.msg_type == b"4" else seq
        resent.append(msg)
    await peer.close()
    return resent


def assert_every_fill_recovered(gw: Gateway, resent: list[Message], traded: int) -> None:
    fills = [m for m in resent if m.msg_type == b"8" and m.get(150) in (b"1", b"F")]
    exec_ids = [m.get(17) for m in fills]
    assert len(exec_ids) == len(set(exec_ids)) == traded
    assert sum(int(m.get(32) or 0) for m in fills) == traded
    assert gw.order_entry is not None
    engine = gw.order_entry.engine.open_orders("FIXGW-SLOW")
    assert sum(o.cum_qty for o in engine) == traded
    assert len(engine) == RESTING


@pytest.mark.slow
async def test_slow_consumer_is_cut_off_after_the_timeout_and_recovers_by_resend(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    # A trickle: the buffer stays under write_buffer_max, so the timeout decides.
    gw = Gateway(settings(tmp_path, slow_consumer_timeout=0.5))
    await gw.start()
    try:
        slow = await rest_orders_then_stop_reading(gw.port)
        traded, most_queued = await trade_against(gw, batch=100, pause=0.01)
        assert most_queued <= gw.settings.server.write_buffer_max
        assert "event=slow_consumer" in caplog.text and "buffer_full" not in caplog.text
        assert_every_fill_recovered(gw, await recover(gw, slow), traded)
    finally:
        await gw.stop(drain_timeout=0.2)


async def test_slow_consumer_flooded_is_cut_off_at_write_buffer_max(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    # A flood and a long timeout: the queue limit decides, and holds.
    limit = 64 * 1024
    gw = Gateway(settings(tmp_path, slow_consumer_timeout=600, write_buffer_max=limit))
    await gw.start()
    try:
        slow = await rest_orders_then_stop_reading(gw.port)
        batch = 50
        traded, most_queued = await trade_against(gw, batch=batch, pause=0)
        one_batch = batch * 400  # the check follows a write: at most one batch over
        assert most_queued <= limit + one_batch
        assert "event=slow_consumer" in caplog.text and "reason=buffer_full" in caplog.text
        assert_every_fill_recovered(gw, await recover(gw, slow), traded)
    finally:
        await gw.stop(drain_timeout=0.2)


async def test_a_resend_larger_than_write_buffer_max_is_served_in_chunks(tmp_path: Path) -> None:
    """A client recovering far more than write_buffer_max by ResendRequest, reading as
    fast as it can, is served chunk by chunk, not cut off as a slow consumer; reports
    made meanwhile (another session trades against it) follow the resend, so every
    MsgSeqNum arrives once, in order."""
    orders = 10000  # ~2.5 MB of ExecutionReports against a 64 KiB write_buffer_max
    gw = Gateway(settings(tmp_path, write_buffer_max=65536))
    await gw.start()
    try:
        # A small receive window: what the kernel does not take waits at the gateway.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", gw.port))
        slow = TcpPeer(*await asyncio.open_connection(sock=sock), sender="SLOW")
        await slow.write(slow.logon(30, now=time.time()))
        assert (await slow.receive()).msg_type == b"A"
        acked = 0
        for i in range(orders):
            await slow.send("D", (11, f"B{i}"), (55, "ACME"), (54, "1"), (60, _now()),
                            (38, 10), (40, "2"), (44, "10.00"))
            while acked < i + 1 - 200 or (i == orders - 1 and acked < orders):
                assert (await slow.receive()).get(150) == b"0"
                acked += 1

        fast = await TcpPeer.connect(gw.port, sender="FAST")
        await fast.write(fast.logon(30, now=time.time()))
        assert (await fast.receive()).msg_type == b"A"
        # How much waits at the gateway after each write to SLOW.
        proto = next(p for p in gw.connections if p.session and p.session.config.name
                     == "FIXGW-SLOW")
        queued = record_write_buffer(proto)
        await slow.send("2", (7, 1), (16, 0))
        await fast.send("D", (11, "S1"), (55, "ACME"), (54, "2"), (60, _now()), (38, 30),
                        (40, "2"), (44, "10.00"))  # fills three of SLOW's orders now

        seqs, fills = [], 0
        while fills < 3:
            msg = await slow.receive(10.0)
            if msg.msg_type == b"4":  # the gap fill for the Logon
                seqs += list(range(int(msg.get(34) or 0), int(msg.get(36) or 0)))
                continue
            seqs.append(int(msg.get(34) or 0))
            if msg.get(43) != b"Y":
                assert msg.get(150) == b"F", msg  # live: only the fills
                fills += 1
        assert seqs == list(range(1, orders + 5)), "each MsgSeqNum once, in order"
        # One chunk at a time: never the whole resend (~2.5 MB) queued at once.
        assert len(queued) > 10 and max(queued) < 65536, max(queued)
        assert gw.connections and all(not p.closing for p in gw.connections)
        await slow.close()
        await fast.close()
    finally:
        await gw.stop(drain_timeout=0.2)
