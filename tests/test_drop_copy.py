"""FIX drop-copy sessions over real TCP: every ExecutionReport copied, in order.

An in-process gateway with three order-entry sessions and several drop-copy
sessions (all sessions, one client only, one Account only, live-only
delivery). Order-entry clients trade; each test compares what the drop-copy
sessions receive with what the clients received and with the stream on disk.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from drop_copy.stream import StreamReader, stream_directory
from fix_gateway.codec import Message
from fix_gateway.config import GatewaySettings
from fix_gateway.server import Gateway
from fix_gateway.utc_time import format_timestamp
from tests.drop_copy_venue import CLIENTS, Peer, drop_copy_settings


def ids(messages: list[Message]) -> list[tuple[bytes | None, bytes | None]]:
    """(ExecID, OrderID) of each ExecutionReport: unique per report."""
    return [(m.get(17), m.get(37)) for m in messages if m.msg_type == b"8"]


def stream_reports(data_dir: Path) -> list[tuple[int, bytes]]:
    with StreamReader(stream_directory(data_dir)) as reader:
        return reader.read(1, 1_000_000)


@pytest.fixture
def gateway_settings(tmp_path: Path) -> GatewaySettings:
    return drop_copy_settings(tmp_path)


async def trade_a_little(one: Peer, two: Peer, three: Peer, tag: str) -> None:
    """Adds, a fill on both sides, a partial fill, a cancel and a reject, one
    step at a time (each sender's TestRequest round trip orders the steps)."""
    await one.order(f"{tag}-B1", "buy", 100, "ACME", "10.00", account="ACC1")
    await one.sync()
    await two.order(f"{tag}-S1", "sell", 60, "ACME", "10.00", account="ACC2")
    await two.sync()
    await three.order(f"{tag}-S2", "sell", 50, "GLOBEX", "20.00")
    await three.sync()
    await one.order(f"{tag}-B2", "buy", 10, "GLOBEX", "20.00", account="ACC1")
    await one.sync()
    await three.order(f"{tag}-X", "buy", 5, "NOPE", "1.00")  # unknown symbol: rejected
    await one.send("F", (41, f"{tag}-B1"), (11, f"{tag}-C1"), (55, "ACME"), (54, "1"),
                   (60, format_timestamp(time.time())))
    # First round: every peer's orders have been processed; second: every
    # report they caused (for any peer) has arrived.
    for _ in range(2):
        for peer in (one, two, three):
            await peer.sync()


async def test_every_report_is_copied_in_order_with_identity(gateway: Gateway,
                                                              tmp_path: Path) -> None:
    dc = await Peer.log_on(gateway.port, "DC1")
    one, two, three = [await Peer.log_on(gateway.port, c) for c in CLIENTS]
    await trade_a_little(one, two, three, "A")
    sent = {c.name: [m for m in c.received if m.msg_type == b"8"] for c in (one, two, three)}
    total = sum(len(v) for v in sent.values())
    assert total == 10  # 4 acks, 2 fills x 2 sides, 1 reject, 1 cancel

    copies = await dc.reports_until(total)
    await dc.sync()
    assert len(ids(dc.received)) == total  # exactly once: nothing more arrived

    # In the venue's order: the stream's order, which is the order they were sent.
    stream = stream_reports(tmp_path)
    assert [m.get(17) for m in copies] == [
        raw.split(b"\x0117=")[1].split(b"\x01")[0] for _, raw in stream
    ]
    for msg in copies:
        assert msg.get(797) == b"Y"
        assert msg.get(115) == b"FIXGW" and msg.get(56) == b"DC1"
        client = msg.get(128).decode()  # type: ignore[union-attr]
        original = next(m for m in sent[client] if ids([m]) == ids([msg]))
        skip = {8, 9, 10, 34, 49, 52, 56, 115, 128, 797}
        assert [f for f in msg.fields if f[0] not in skip] == \
            [f for f in original.fields if f[0] not in skip]
    # The stream holds each report exactly as the client got it.
    by_exec = {ids([m])[0]: m for v in sent.values() for m in v}
    for seq, raw in stream:
        exec_id = raw.split(b"\x0117=")[1].split(b"\x01")[0]
        order_id = raw.split(b"\x0137=")[1].split(b"\x01")[0]
        assert by_exec[(exec_id, order_id)].raw == raw, seq


async def test_filters_by_session_and_account(gateway: Gateway) -> None:
    dc2 = await Peer.log_on(gateway.port, "DC2")  # CLIENT1 only
    dc3 = await Peer.log_on(gateway.port, "DC3")  # Account ACC2 only
    one, two, three = [await Peer.log_on(gateway.port, c) for c in CLIENTS]
    await trade_a_little(one, two, three, "F")
    await dc2.sync()
    await dc3.sync()
    assert ids(dc2.received) == ids(one.received)
    assert {m.get(128) for m in dc2.received} == {b"CLIENT1"}
    acc2 = [m for m in two.received if m.get(1) == b"ACC2"]
    assert acc2 and ids(dc3.received) == ids(acc2)


async def test_orders_on_a_drop_copy_session_are_refused(gateway: Gateway) -> None:
    dc = await Peer.log_on(gateway.port, "DC1")
    await dc.order("SNEAKY", "buy", 100, "ACME", "10.00")
    got = await dc.sync()
    assert [m.msg_type for m in got] == [b"j"]
    reject = got[0]
    assert (reject.get(372), reject.get(380), reject.get(379)) == (b"D", b"6", b"SNEAKY")
    assert b"Drop-copy session" in (reject.get(58) or b"")
    assert gateway.order_entry is not None and gateway.order_entry.engine.open_orders() == []
    assert stream_reports(gateway.settings.store.data_dir) == []


async def test_offline_consumer_recovers_by_resend_and_catch_up(gateway: Gateway) -> None:
    """Copies sent but never read come back by ResendRequest (PossDupFlag=Y);
    copies made while offline arrive after the next logon; live-only gets neither."""
    dc = await Peer.log_on(gateway.port, "DC1")
    live = await Peer.log_on(gateway.port, "DCLIVE")
    one, two, three = [await Peer.log_on(gateway.port, c) for c in CLIENTS]
    await trade_a_little(one, two, three, "P1")
    first = len(ids(one.received) + ids(two.received) + ids(three.received))
    await dc.reports_until(first)
    await live.reports_until(first)

    # The consumer stops reading: the next copies are sent to it but it never
    # sees them; then it drops off, and more trading happens while it is away.
    await trade_a_little(one, two, three, "P2")
    unread_from = dc.expected_in
    await dc.close()
    await live.close()
    await trade_a_little(one, two, three, "P3")
    everything = ids(one.received) + ids(two.received) + ids(three.received)

    # Its Logon reveals the gap; it asks for a resend (ResendRequest) and gets
    # the unread copies with PossDupFlag=Y, then the ones made while it was away.
    back = await Peer.log_on(gateway.port, "DC1", next_out=dc.tcp.next_seq,
                             expected_in=unread_from)
    await back.reports_until(len(everything) - len(ids(dc.received)))
    await back.sync()
    assert back.resent >= 10, "the unread copies come back as possible duplicates"
    got = ids(dc.received) + ids(back.received)
    assert sorted(got) == sorted(everything) and len(set(got)) == len(got)
    # In stream order: by drop-copy sequence.
    stream_order = [(raw.split(b"\x0117=")[1].split(b"\x01")[0],
                     raw.split(b"\x0137=")[1].split(b"\x01")[0])
                    for _, raw in stream_reports(gateway.settings.store.data_dir)]
    assert got == stream_order

    live_back = await Peer.log_on(gateway.port, "DCLIVE", next_out=live.tcp.next_seq,
                                  expected_in=live.expected_in)
    await live_back.sync()
    await one.order("AFTER", "buy", 1, "ACME", "1.00")
    await one.sync()
    await live_back.sync()
    # The copies it had been sent (P2) come back by resend; none made while it
    # was away (P3); live ones again from its logon.
    fresh = [(m.get(11) or b"").decode() for m in live_back.received if m.get(43) != b"Y"]
    resent = [(m.get(11) or b"").decode() for m in live_back.received if m.get(43) == b"Y"]
    assert fresh == ["AFTER"]
    assert "P2-C1" in resent and not any(c.startswith("P3-") for c in resent), resent


async def test_restart_resumes_each_consumer_where_it_stood(tmp_path: Path) -> None:
    gw = Gateway(drop_copy_settings(tmp_path))
    await gw.start()
    dc = await Peer.log_on(gw.port, "DC1")
    one, two, three = [await Peer.log_on(gw.port, c) for c in CLIENTS]
    await trade_a_little(one, two, three, "R1")
    before = ids(one.received) + ids(two.received) + ids(three.received)
    await dc.reports_until(len(before))
    clients = (one, two, three)
    for p in (dc, *clients):
        await p.close()
    await gw.stop(drain_timeout=0.5)

    gw = Gateway(drop_copy_settings(tmp_path))
    await gw.start()
    try:
        one, two, three = [await Peer.log_on(gw.port, c.name, 1, 1, (141, "Y"))
                           for c in clients]  # clients start afresh; the consumer does not
        # Trade before the consumer is back: it must get exactly these.
        await trade_a_little(one, two, three, "R2")
        after = ids(one.received) + ids(two.received) + ids(three.received)
        back = await Peer.log_on(gw.port, "DC1", next_out=dc.tcp.next_seq,
                                 expected_in=dc.expected_in)
        copies = await back.reports_until(len(after))
        await back.sync()
        stream = [(raw.split(b"\x0117=")[1].split(b"\x01")[0],
                   raw.split(b"\x0137=")[1].split(b"\x01")[0])
                  for _, raw in stream_reports(tmp_path)]
        assert stream[:len(before)] == sorted(before, key=stream.index)
        assert ids(copies) == stream[len(before):]  # all of the new ones, in order
        assert sorted(ids(copies)) == sorted(after)
    finally:
        await gw.stop(drain_timeout=0.5)


async def test_stream_can_be_turned_off(tmp_path: Path) -> None:
    gw = Gateway(drop_copy_settings(tmp_path, enabled=False))
    await gw.start()
    try:
        one = await Peer.log_on(gw.port, "CLIENT1")
        await one.order("O1", "buy", 1, "ACME", "1.00")
        assert [m.get(150) for m in await one.sync()] == [b"0"]
        assert gw.drop_copy is None
        assert not stream_directory(tmp_path).exists()
    finally:
        await gw.stop(drain_timeout=0.5)
