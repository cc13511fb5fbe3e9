"""A message whose handling raises, after an order in the same read batch: the
gateway answers, closes that connection and writes ahead in order -- the engine
journal before the session store -- so a kill -9 right after leaves no
acknowledgement on disk for an order the engine never journaled.

The gateway is a real subprocess (tests/raising_gateway.py: its order entry
raises on an OrderStatusRequest, and no clock tick commits behind the test's back).
"""

from __future__ import annotations

import time
from pathlib import Path

from fix_gateway.codec import Message
from fix_gateway.replay.store_reader import find_session
from fix_gateway.utc_time import format_timestamp
from tests.fix_peer import TcpPeer
from tests.gateway_process import GatewayProcess
from tests.load_clients import CLIENTS, engine_orders, write_config
from tests.venue import Client, fields


def order_then_failing_status(peer: TcpPeer) -> bytes:
    """One write: a NewOrderSingle, then an OrderStatusRequest the gateway fails on."""
    now = time.time()
    order = peer.build("D", (11, "o1"), (55, "ACME"), (54, "1"), (60, format_timestamp(now)),
                       (38, 10), (40, "2"), (44, "100.00"), now=now)
    status = peer.build("H", (11, "o1"), (55, "ACME"), (54, "1"), now=now)
    return order + status


async def until_closed(peer: TcpPeer) -> list[Message]:
    got: list[Message] = []
    try:
        while True:
            got.append(await peer.receive(5.0))
    except (EOFError, ConnectionResetError):
        return got


def stored_acks(data_dir: Path, client: str) -> set[str]:
    """OrderIDs of the New acknowledgements in the client's session store."""
    stored = find_session(data_dir, client)
    return {(m.msg.get(37) or b"").decode() for m in stored.outbound
            if m.msg.msg_type == b"8" and m.msg.get(150) == b"0"}


async def test_kill_after_a_failing_message_leaves_no_ack_without_its_order(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    data = tmp_path / "data"
    gw = GatewayProcess(config, log=tmp_path / "gw.log", module="tests.raising_gateway")
    try:
        client = await Client.logged_on(gw.port, CLIENTS[0])
        await client.peer.write(order_then_failing_status(client.peer))
        answered = await until_closed(client.peer)
        gw.state(data)  # the loop has gone past the disconnect: the window, if any, is open
    finally:
        gw.kill()

    again = GatewayProcess(config, log=tmp_path / "gw.log")
    try:
        acks = stored_acks(data, CLIENTS[0])
        engine = engine_orders(again.state(data))
        assert acks, "the order was acknowledged and stored"
        assert acks <= engine.keys(), f"stored acks {acks}, engine knows {set(engine)}"
        other = await Client.logged_on(again.port, CLIENTS[1])
        await other.order("p1", "sell", 5, "101.00")
        assert (await other.next("8"))[37] not in acks  # no OrderID given twice
        await other.close()
    finally:
        assert again.stop() == 0
    assert "event=input_error" in (tmp_path / "gw.log").read_text()
    # The client was told: the ack, then a Logout saying why, then the close.
    kinds = [fields(m)[35] for m in answered if m.msg_type != b"0"]
    assert kinds == ["8", "5"], kinds
    assert "internal error" in fields(answered[-1]).get(58, "").lower()
