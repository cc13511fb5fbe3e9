"""Hostile peers at the socket against a real gateway subprocess.

Each attack is checked for its specified answer (what comes back, or that the
connection is closed), for bounded memory (the gateway's VmRSS before and after,
a generous resource bound, not a timing) and for the other sessions: a
well-behaved client keeps doing NewOrderSingle -> ExecutionReport round trips
during the attack.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest

from fix_gateway.utc_time import format_timestamp
from tests.fix_peer import MessageBuilder, TcpPeer
from tests.gateway_process import GatewayProcess

LOGON_TIMEOUT = 1.0
MAX_MESSAGE = 8192
RSS_BOUND_KB = 50 * 1024  # what one attack may leave behind in the gateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("hostile")
    config = root / "gw.toml"
    config.write_text(f"""
[listen]
host = "127.0.0.1"
port = 0

[store]
data_dir = "{root / 'data'}"
fsync = "none"

[server]
logon_timeout = {LOGON_TIMEOUT}
max_message_size = {MAX_MESSAGE}
tick_interval = 0.05

[[instruments]]
symbol = "ACME"

[[sessions]]
SenderCompID = "FIXGW"
TargetCompID = "GOOD"

[[sessions]]
SenderCompID = "FIXGW"
TargetCompID = "ATTACK"
""")
    gw = GatewayProcess(config, log=root / "gw.log")
    yield gw
    assert gw.stop() == 0
    assert "Traceback" not in gw.stderr_text()


async def logged_on(port: int, sender: str) -> TcpPeer:
    peer = await TcpPeer.connect(port, sender=sender)
    await peer.write(peer.logon(30, (141, "Y"), now=time.time()))
    reply = await peer.receive()
    assert reply.msg_type == b"A", reply
    return peer


async def round_trips(peer: TcpPeer, stop: asyncio.Event) -> int:
    """NewOrderSingle (IOC, so nothing rests) -> its first ExecutionReport, until `stop`."""
    done = 0
    while not stop.is_set():
        cl = f"G{peer.next_seq}"
        await peer.send("D", (11, cl), (1, "ACC-G"), (38, 10), (40, 2), (44, "1.00"),
                        (54, 1), (55, "ACME"), (59, 3), (60, format_timestamp(time.time())))
        while True:
            msg = await peer.receive(timeout=5)
            if msg.msg_type == b"8" and msg.get(11) == cl.encode():
                break
        done += 1
    return done


async def under_attack(gw: GatewayProcess, attack: Callable[[], Awaitable[None]]) -> int:
    """Run `attack` while the GOOD session trades; the round trips made meanwhile."""
    good = await logged_on(gw.port, "GOOD")
    stop = asyncio.Event()
    trader = asyncio.create_task(round_trips(good, stop))
    await asyncio.sleep(0.05)
    try:
        await attack()
    finally:
        stop.set()
        done = await trader
        await good.send("5")
        while (await good.receive()).msg_type != b"5":
            pass  # the rest of the last IOC's reports
        assert await good.closed_by_peer()  # the next test can log GOOD on again
    return done


def attacked(gw: GatewayProcess, attack: Callable[[], Awaitable[None]]) -> None:
    before = gw.rss_kb()
    done = asyncio.run(under_attack(gw, attack))
    assert done > 0, "the well-behaved session made no round trip during the attack"
    assert gw.proc.poll() is None, "the gateway died"
    grown = gw.rss_kb() - before
    assert grown < RSS_BOUND_KB, f"gateway RSS grew by {grown} kB"


async def closed_silently(reader: asyncio.StreamReader, timeout: float = 5.0) -> bool:
    """True if the gateway closes without sending a single byte."""
    try:
        return await asyncio.wait_for(reader.read(65536), timeout) == b""
    except ConnectionError:  # reset, or our own write already failed on the closed socket
        return True


def test_oversized_body_length_closes_the_connection(gateway: GatewayProcess) -> None:
    async def attack() -> None:
        # Before a Logon: the frame is too big to ever be a Logon.
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        writer.write(b"8=FIX.4.4\x019=999999999\x0135=A\x01" + b"x" * 100)
        assert await closed_silently(reader)
        writer.close()
        # Logged on: the stream cannot be trusted any more; cut without a word.
        peer = await logged_on(gateway.port, "ATTACK")
        await peer.write(b"8=FIX.4.4\x019=%d\x0135=D\x0134=2\x01" % (MAX_MESSAGE * 10))
        assert await closed_silently(peer.reader)
        await peer.close()

    attacked(gateway, attack)


def test_endless_bytes_without_soh_are_cut_off(gateway: GatewayProcess) -> None:
    chunk = b"A" * 65536

    async def flood(prefix: bytes) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        sent = 0
        with contextlib.suppress(ConnectionError):
            writer.write(prefix)
            for _ in range(10 * 1024 * 1024 // len(chunk)):  # 10 MB at most
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
                if reader.at_eof():
                    break
                await asyncio.sleep(0)
        assert await closed_silently(reader)
        writer.close()
        return sent

    async def attack() -> None:
        # No "8=FIX" at all: garbage before a Logon ends the connection at once.
        await flood(b"")
        # A start of message that never ends: cut at max_message_size.
        await flood(b"8=FIX.4.4")

    attacked(gateway, attack)


def test_logon_that_never_comes_times_out(gateway: GatewayProcess) -> None:
    async def attack() -> None:
        silent = [await asyncio.open_connection("127.0.0.1", gateway.port) for _ in range(20)]
        for reader, writer in silent:
            assert await closed_silently(reader, timeout=LOGON_TIMEOUT + 5)
            writer.close()

    attacked(gateway, attack)


def test_slowloris_is_cut_off_by_the_logon_timeout(gateway: GatewayProcess) -> None:
    """Clients that dribble a Logon one byte at a time never get to finish it."""
    message = MessageBuilder(sender="ATTACK").logon(30, now=time.time())

    async def dribble() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        sent = 0
        with contextlib.suppress(ConnectionError):
            for byte in message:
                if reader.at_eof():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                sent += 1
                with contextlib.suppress(TimeoutError):
                    if await asyncio.wait_for(reader.read(1), 0.2) == b"":
                        break
        assert await closed_silently(reader)
        writer.close()
        return sent

    async def attack() -> None:
        sent = await asyncio.gather(*(dribble() for _ in range(30)))
        assert max(sent) < len(message)  # nobody finished a Logon

    attacked(gateway, attack)


def test_a_thousand_connections_opened_and_dropped(gateway: GatewayProcess) -> None:
    async def attack() -> None:
        for burst in range(4):
            conns = await asyncio.gather(*(
                asyncio.open_connection("127.0.0.1", gateway.port) for _ in range(250)))
            for i, (_, writer) in enumerate(conns):
                if i % 2:
                    writer.write(b"8=FIX.4.4\x019=")  # half a header, then gone
                if burst % 2:
                    writer.transport.abort()  # RST instead of FIN
                else:
                    writer.close()
            await asyncio.sleep(0)

    log = gateway.log
    assert log is not None
    disconnects = log.read_text().count("event=disconnect")
    attacked(gateway, attack)
    deadline = time.monotonic() + 10
    while log.read_text().count("event=disconnect") - disconnects < 1000:
        assert time.monotonic() < deadline, "the gateway did not see every connection go"
        time.sleep(0.05)
