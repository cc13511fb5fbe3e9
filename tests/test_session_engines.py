"""Session answers that independent FIX engines (QuickFIX/J) give, over real sockets:
a negative HeartBtInt, a message without MsgSeqNum, the ID a BusinessMessageReject
refers to."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fix_gateway.codec import encode
from fix_gateway.config import GatewaySettings
from fix_gateway.server import Gateway
from fix_gateway.utc_time import format_timestamp
from tests.fix_peer import TcpPeer, logged_on
from tests.gateway_settings import session_layer_settings


@pytest.fixture
def gateway_settings(tmp_path: Path) -> GatewaySettings:
    return session_layer_settings(tmp_path)


async def test_negative_heartbtint_gets_logout_saying_so_then_close(gateway: Gateway) -> None:
    peer = await TcpPeer.connect(gateway.port)
    await peer.write(peer.logon(-5, now=time.time()))
    logout = await peer.receive()
    assert logout.msg_type == b"5"
    assert logout.get(58) == b"HeartBtInt must not be negative"
    assert await peer.closed_by_peer()


async def test_message_without_msgseqnum_gets_logout_then_close(gateway: Gateway) -> None:
    peer = await logged_on(gateway.port)
    await peer.write(encode([(35, "1"), (49, "CLIENT1"), (56, "FIXGW"),
                             (52, format_timestamp(time.time())), (112, "T")]))
    logout = await peer.expect("5")
    assert logout.get(58) == b"Received message without MsgSeqNum(34)"
    assert await peer.closed_by_peer()


@pytest.mark.parametrize(("msg_type", "id_tag", "body"), [
    ("e", 324, [(55, "ACME"), (263, 0)]),  # SecurityStatusRequest: SecurityStatusReqID
    ("V", 262, [(263, 1), (264, 0)]),  # MarketDataRequest: MDReqID
    ("R", 131, []),  # QuoteRequest: QuoteReqID
    ("x", 320, [(559, 4)]),  # SecurityListRequest: SecurityReqID
    ("AD", 568, [(569, 0)]),  # TradeCaptureReportRequest: TradeRequestID
    ("AF", 584, [(585, 7)]),  # OrderMassStatusRequest: MassStatusReqID
])
async def test_business_reject_refers_to_the_requests_own_id(
    gateway: Gateway, msg_type: str, id_tag: int, body: list[tuple[int, object]],
) -> None:
    peer = await logged_on(gateway.port)
    await peer.send(msg_type, (id_tag, "REQ-7"), *body)  # type: ignore[arg-type]
    reject = await peer.expect("j")
    assert (reject.get(372), reject.get(379)) == (msg_type.encode(), b"REQ-7")
    await peer.close()
