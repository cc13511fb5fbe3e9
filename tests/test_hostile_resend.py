"""Resends over a real socket (in-process gateway, real files): many ResendRequests
in one write cost one resend, served a chunk per loop turn; what was made after a
connection was cut goes out by resend on the next one, never ahead of its Logon."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from fix_gateway.server import Gateway
from tests.fix_peer import TcpPeer
from tests.gateway_settings import session_layer_settings
from tests.venue import record_write_buffer

STORED = 5000  # ExecutionReports of ~240 bytes: ~1.2 MB to resend
REQUESTS = 100


async def test_a_hundred_resend_requests_in_one_write_are_one_bounded_resend(
    tmp_path: Path,
) -> None:
    gw = Gateway(session_layer_settings(tmp_path))
    await gw.start()
    try:
        session = next(s for s in gw.sessions if s.config.target_comp_id == "CLIENT1")
        for i in range(STORED):  # made while the client was away: stored only
            session.send(b"8", [(17, f"E{i}"), (58, "r" * 150)], time.time())
        session.store.flush()
        peer = await TcpPeer.connect(gw.port)
        await peer.write(peer.logon(30, now=time.time()))
        assert (await peer.receive()).get(34) == str(STORED + 1).encode()

        proto = next(iter(gw.connections))
        queued = record_write_buffer(proto)
        await peer.write(b"".join(peer.build("2", (7, 1), (16, 0), now=time.time())
                                  for _ in range(REQUESTS)))
        seqs: list[int] = []
        while True:  # read at full speed until a resend reaches its end
            msg = await peer.receive(10.0)
            assert msg.get(43) == b"Y", msg
            seqs.append(int(msg.get(34) or 0))
            if msg.msg_type == b"4" and msg.get(36) == str(STORED + 2).encode():
                break
        # Nothing else is on its way: a TestRequest is answered next.
        await peer.send("1", (112, "after"))
        answer = await peer.receive()
        assert (answer.msg_type, answer.get(112)) == (b"0", b"after")

        last = len(seqs) - 1 - seqs[::-1].index(1)
        assert seqs[last:] == list(range(1, STORED + 2)), "the last request: each once"
        assert max(seqs.count(s) for s in set(seqs)) <= 2, "earlier ones: one chunk at most"
        assert max(queued) < gw.settings.server.write_buffer_limit, max(queued)
        assert not proto.closing
        assert session.counters.resend_requests_served == REQUESTS
        await peer.close()
    finally:
        await gw.stop(drain_timeout=0.2)


async def test_a_report_made_after_a_cut_comes_by_resend_after_the_next_logon(
    tmp_path: Path,
) -> None:
    gw = Gateway(session_layer_settings(tmp_path))
    await gw.start()
    try:
        peer = await TcpPeer.connect(gw.port)
        await peer.write(peer.logon(30, now=time.time()))
        assert (await peer.receive()).get(34) == b"1"
        proto = next(iter(gw.connections))
        session = proto.session
        assert session is not None
        proto.abort()  # as for a slow consumer: connection_lost comes a loop turn later
        session.send(b"8", [(17, "E-after-cut")], time.time())  # seq 2
        await peer.closed_by_peer()
        while gw.connections:
            await asyncio.sleep(0.01)

        again = await TcpPeer.connect(gw.port)
        again.next_seq = peer.next_seq
        await again.write(again.logon(30, now=time.time()))
        logon = await again.receive()
        assert (logon.msg_type, logon.get(34)) == (b"A", b"3"), logon
        await again.send("2", (7, 2), (16, 0))
        report, gap_fill = await again.receive(), await again.receive()
        assert (report.get(34), report.get(43), report.get(17)) == (b"2", b"Y", b"E-after-cut")
        assert (gap_fill.msg_type, gap_fill.get(36)) == (b"4", b"4")
        await again.close()
    finally:
        await gw.stop(drain_timeout=0.2)
