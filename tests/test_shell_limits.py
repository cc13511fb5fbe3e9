"""Bounds of the asyncio shell, through real sockets: the listen backlog that
holds connects while the loop is busy, and /metrics' answer to oversized headers."""

from __future__ import annotations

import asyncio
import errno
import itertools
import select
import socket
import time
from pathlib import Path

import pytest

from fix_gateway.config import ConfigError, GatewaySettings, load_settings
from fix_gateway.server import FixProtocol, Gateway
from tests.gateway_settings import metrics_settings
from tests.venue import Trader

CONNECTS = 600  # well past asyncio's default backlog (100)


def connect_all(port: int, count: int, deadline: float) -> list[socket.socket]:
    """`count` non-blocking connects; returns once all are established. Only the
    kernel answers them (the caller holds the event loop): a full accept queue
    drops the SYN, and that connect does not complete while the loop is held."""
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.setblocking(False)
        err = s.connect_ex(("127.0.0.1", port))
        assert err in (0, errno.EINPROGRESS), err
        socks.append(s)
    waiting = set(socks)
    while waiting:
        left = deadline - time.monotonic()
        if left <= 0:
            for s in socks:
                s.close()
            pytest.fail(f"{len(waiting)} of {count} connects not answered: backlog too small")
        _, ready, _ = select.select([], list(waiting), [], left)
        for s in ready:
            assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            waiting.discard(s)
    return socks


async def test_connects_wait_in_the_backlog_while_the_loop_is_busy(tmp_path: Path) -> None:
    gw = Gateway(metrics_settings(tmp_path))
    assert gw.settings.server.listen_backlog >= CONNECTS
    await gw.start()
    try:
        # Synchronous on purpose: the gateway's loop (this one) accepts nothing meanwhile.
        socks = connect_all(gw.port, CONNECTS, time.monotonic() + 10)
        for s in socks:
            s.close()
    finally:
        await gw.stop(drain_timeout=0.5)


@pytest.mark.unit
def test_a_bad_listen_backlog_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "gw.toml"
    config.write_text("[server]\nlisten_backlog = 0\n")
    with pytest.raises(ConfigError, match=r"server\.listen_backlog"):
        load_settings(config)
    assert GatewaySettings.model_validate({}).server.listen_backlog == 1024


async def test_metrics_answers_oversized_headers_with_431(tmp_path: Path) -> None:
    gw = Gateway(metrics_settings(tmp_path))
    await gw.start()
    try:
        assert gw.metrics is not None and gw.metrics.server.port
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.metrics.server.port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
                     + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 100) for i in range(200))
                     + b"\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)  # to the gateway's close
        writer.close()
        assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer
        assert b"Connection: close" in answer
    finally:
        await gw.stop(drain_timeout=0.5)


FLOOD = 20_000  # TestRequests pipelined in one write


async def test_one_clients_flood_is_worked_through_in_turns_with_the_others(
    tmp_path: Path,
) -> None:
    """20,000 pipelined TestRequests: all answered, in order, at most
    server.max_messages_per_read per turn of the loop, and another session's
    TestRequest sent just after them is answered before the flood is done."""
    gw = Gateway(metrics_settings(tmp_path))
    limit = gw.settings.server.max_messages_per_read
    await gw.start()
    try:
        flooder = await Trader.log_on(gw.port, "CLIENT1")
        other = await Trader.log_on(gw.port, "CLIENT2")
        flood_session = gw._by_name["FIXGW-CLIENT1"]
        answered_then: list[int] = []  # the flood's Heartbeats sent, after each commit
        other_answered_at: list[int] = []
        commit = gw.commit

        def observed_commit(origin: FixProtocol | None) -> None:
            commit(origin)
            sent = flood_session.counters.sent.get(b"0", 0)
            answered_then.append(sent)
            if origin is not None and origin.session is not None \
                    and origin.session.config.target_comp_id == "CLIENT2" \
                    and origin.session.counters.sent.get(b"0", 0) and not other_answered_at:
                other_answered_at.append(sent)

        gw.commit = observed_commit  # type: ignore[method-assign]
        peer, now = flooder.peer, time.time()
        peer.writer.write(b"".join(peer.build("1", (112, f"t{i}"), now=now)
                                   for i in range(FLOOD)))
        other.peer.writer.write(other.peer.build("1", (112, "other"), now=now))
        ids = [(await flooder.peer.receive()).get(112) for _ in range(FLOOD)]
        assert (await other.peer.receive()).get(112) == b"other"
        assert ids == [f"t{i}".encode() for i in range(FLOOD)]  # every one, in order
        steps = [b - a for a, b in itertools.pairwise(answered_then)]
        assert max(steps) <= limit, max(steps)
        assert other_answered_at and other_answered_at[0] < FLOOD, other_answered_at
        await flooder.peer.close()
        await other.peer.close()
    finally:
        await gw.stop(drain_timeout=0.5)
