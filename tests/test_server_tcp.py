"""The gateway over real TCP sockets on loopback (in-process server, real files)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from fix_gateway.config import GatewaySettings
from fix_gateway.server import Gateway
from tests.fix_peer import TcpPeer, logged_on
from tests.gateway_settings import session_layer_settings


@pytest.fixture
def gateway_settings(tmp_path: Path) -> GatewaySettings:
    return session_layer_settings(tmp_path)


def _now() -> float:
    import time

    return time.time()


async def test_logon_test_request_and_logout_round_trip(gateway: Gateway) -> None:
    peer = await logged_on(gateway.port)
    await peer.send("1", (112, "abc"))
    hb = await peer.expect("0")
    assert hb.get(112) == b"abc"
    await peer.send("5")
    logout = await peer.expect("5")
    assert logout.get(34) == b"3"
    assert await peer.closed_by_peer()


async def test_messages_split_at_every_byte_are_reassembled(gateway: Gateway) -> None:
    peer = await TcpPeer.connect(gateway.port)
    data = peer.logon(30, now=_now()) + peer.build("1", (112, "split"), now=_now())
    for i in range(len(data)):
        peer.writer.write(data[i : i + 1])
        await peer.writer.drain()
    assert (await peer.receive()).msg_type == b"A"
    assert (await peer.expect("0")).get(112) == b"split"


async def test_many_messages_in_one_write(gateway: Gateway) -> None:
    peer = await logged_on(gateway.port)
    burst = b"".join(peer.build("1", (112, f"n{i}"), now=_now()) for i in range(500))
    await peer.write(burst)
    ids = [(await peer.expect("0")).get(112) for _ in range(500)]
    assert ids == [f"n{i}".encode() for i in range(500)]


async def test_unknown_session_gets_logout_with_text_and_close(gateway: Gateway) -> None:
    peer = await TcpPeer.connect(gateway.port, sender="NOBODY")
    await peer.write(peer.logon(30, now=_now()))
    logout = await peer.receive()
    assert logout.msg_type == b"5" and b"Unknown session" in (logout.get(58) or b"")
    assert await peer.closed_by_peer()


async def test_first_message_not_logon_closes_without_answer(gateway: Gateway) -> None:
    peer = await TcpPeer.connect(gateway.port)
    await peer.send("0")
    data = await asyncio.wait_for(peer.reader.read(1000), 5)
    assert data == b""


async def test_silent_connection_is_closed_after_logon_timeout(gateway: Gateway) -> None:
    reader, _writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    assert await asyncio.wait_for(reader.read(100), 5) == b""


async def test_duplicate_logon_leaves_live_session_alone(gateway: Gateway) -> None:
    first = await logged_on(gateway.port)
    second = await TcpPeer.connect(gateway.port)
    await second.write(second.logon(30, now=_now()))
    assert await asyncio.wait_for(second.reader.read(1000), 5) == b""
    await first.send("1", (112, "alive"))
    assert (await first.expect("0")).get(112) == b"alive"


async def test_two_sessions_run_side_by_side(gateway: Gateway) -> None:
    one = await logged_on(gateway.port)
    two = await logged_on(gateway.port, sender="CLIENT2")
    await one.send("1", (112, "one"))
    await two.send("1", (112, "two"))
    assert (await one.expect("0")).get(112) == b"one"
    assert (await two.expect("0")).get(112) == b"two"


async def test_gap_is_recovered_by_resend_request_and_gap_fill(gateway: Gateway) -> None:
    peer = await logged_on(gateway.port)
    await peer.send("1", (112, "after-gap"), seq=5)
    resend = await peer.expect("2")
    assert (resend.get(7), resend.get(16)) == (b"2", b"0")
    await peer.send("4", (36, 5), (123, "Y"), seq=2, header=[(43, "Y"), (122, _ts())])
    assert (await peer.expect("0")).get(112) == b"after-gap"


def _ts() -> bytes:
    from fix_gateway.utc_time import format_timestamp

    return format_timestamp(_now())


async def test_garbage_between_messages_is_dropped(gateway: Gateway) -> None:
    peer = await logged_on(gateway.port)
    await peer.write(b"\x00\xffgarbage\x01\x01=" * 10)
    await peer.write(b"8=FIX.4.4\x019=5\x0135=0\x0110=000\x01")
    await peer.send("1", (112, "still-ok"), seq=2)
    assert (await peer.expect("0")).get(112) == b"still-ok"


async def test_oversized_message_closes_connection(tmp_path: Path) -> None:
    gw = Gateway(session_layer_settings(tmp_path, max_message_size=1024))
    await gw.start()
    try:
        peer = await logged_on(gw.port)
        await peer.write(b"8=FIX.4.4\x019=100000\x01" + b"x" * 5000)
        assert await peer.closed_by_peer()
    finally:
        await gw.stop(drain_timeout=0.2)


async def test_slow_consumer_is_disconnected(tmp_path: Path) -> None:
    gw = Gateway(session_layer_settings(tmp_path, write_buffer_limit=4096,
                                        slow_consumer_timeout=0.3))
    await gw.start()
    try:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", gw.port))
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock)
        peer = TcpPeer(reader, writer)
        await peer.write(peer.logon(30, now=_now()))
        big = "x" * 2000
        # Ask for heartbeats and never read them.
        burst = b"".join(peer.build("1", (112, big), now=_now()) for _ in range(3000))
        writer.write(burst)
        deadline = asyncio.get_running_loop().time() + 10
        while gw.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        assert not gw.connections, "slow consumer was not cut off"
        writer.close()
    finally:
        await gw.stop(drain_timeout=0.2)


async def test_resend_after_gateway_restart_is_served_from_disk(tmp_path: Path) -> None:
    gw = Gateway(session_layer_settings(tmp_path))
    await gw.start()
    peer = await logged_on(gw.port)
    for i in range(3):
        await peer.send("D", (11, f"C{i}"), (54, 1), (60, _ts()), (40, 1))
        assert (await peer.expect("j")).get(379) == f"C{i}".encode()
    await peer.close()
    while gw.connections:
        await asyncio.sleep(0.01)
    await gw.stop(drain_timeout=0.2)

    gw2 = Gateway(session_layer_settings(tmp_path))
    await gw2.start()
    try:
        peer2 = await TcpPeer.connect(gw2.port)
        peer2.next_seq = 5
        await peer2.write(peer2.logon(30, now=_now()))
        logon = await peer2.receive()
        assert logon.get(34) == b"5"  # our seqnums continued across the restart
        await peer2.send("2", (7, 2), (16, 0))
        resent = [await peer2.receive() for _ in range(4)]
        assert [m.msg_type for m in resent] == [b"j", b"j", b"j", b"4"]
        assert [m.get(379) for m in resent[:3]] == [b"C0", b"C1", b"C2"]
        assert all(m.get(43) == b"Y" for m in resent)
    finally:
        await gw2.stop(drain_timeout=0.2)


async def test_stop_logs_out_connected_sessions(tmp_path: Path) -> None:
    gw = Gateway(session_layer_settings(tmp_path))
    await gw.start()
    peer = await logged_on(gw.port)
    stopping = asyncio.create_task(gw.stop(drain_timeout=2.0))
    logout = await peer.expect("5")
    assert b"shutting down" in (logout.get(58) or b"")
    await peer.send("5")
    await stopping
    assert await peer.closed_by_peer()


async def test_repeating_group_disorder_is_rejected_373_15_over_the_socket(
    gateway: Gateway,
) -> None:
    """QuickFIX/J's answers: a NoRelatedSym entry starting with a nested group instead
    of Symbol, and a NoPartyIDs entry out of dictionary order, are 373=15 on the
    misplaced tag; the session carries on."""
    peer = await logged_on(gateway.port)
    email = [(164, "T1"), (94, "0"), (147, "Hi")]
    await peer.send("C", *email, (146, 1), (454, 1), (455, "X"), (456, "4"), (55, "ACME"),
                    (33, 1), (58, "hi"))
    reject = await peer.expect("3")
    assert (reject.get(373), reject.get(371), reject.get(372)) == (b"15", b"454", b"C")
    assert reject.get(58) == (
        b"The group NoRelatedSym (146) must begin with its delimiter field Symbol (55)")
    await peer.send("D", (11, "X"), (453, 1), (448, "A"), (452, 1), (447, "D"), (55, "ACME"),
                    (54, "1"), (60, _ts()), (38, 10), (40, "1"))
    reject = await peer.expect("3")
    assert (reject.get(373), reject.get(371), reject.get(372)) == (b"15", b"447", b"D")
    await peer.send("1", (112, "still-up"))
    assert (await peer.expect("0")).get(112) == b"still-up"
