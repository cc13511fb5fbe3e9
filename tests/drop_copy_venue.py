"""The drop-copy venue of the drop-copy tests: its settings (three order-entry clients,
four drop-copy sessions with different filters and deliveries) and a Peer that takes
what it receives as a FIX engine would."""

from __future__ import annotations

import time
from pathlib import Path

from fix_gateway.codec import FieldValue, Message
from fix_gateway.config import GatewaySettings
from fix_gateway.utc_time import format_timestamp
from tests.fix_peer import TcpPeer
from tests.gateway_settings import FAR_END_OF_DAY, loopback_settings

CLIENTS = ("CLIENT1", "CLIENT2", "CLIENT3")


def drop_copy_settings(data_dir: Path, **drop_copy: object) -> GatewaySettings:
    eod = FAR_END_OF_DAY
    copies = [
        {"SenderCompID": "FIXGW", "TargetCompID": "DC1", "Role": "drop-copy"},
        {"SenderCompID": "FIXGW", "TargetCompID": "DC2", "Role": "drop-copy",
         "DropCopySessions": ["CLIENT1"]},
        {"SenderCompID": "FIXGW", "TargetCompID": "DC3", "Role": "drop-copy",
         "DropCopyAccounts": ["ACC2"]},
        {"SenderCompID": "FIXGW", "TargetCompID": "DCLIVE", "Role": "drop-copy",
         "DropCopyDelivery": "live"},
    ]  # fmt: skip
    return loopback_settings(data_dir, **{
        "server": {"logon_timeout": 2.0, "tick_interval": 0.02, "application": "orders"},
        "engine": {"end_of_day": eod},
        "instruments": [{"symbol": "ACME", "tick_size": "0.01"},
                        {"symbol": "GLOBEX", "tick_size": "0.05"}],
        "drop_copy": drop_copy,
        "sessions": [{"SenderCompID": "FIXGW", "TargetCompID": c} for c in CLIENTS] + copies,
    })  # fmt: skip


ADMIN = {b"0", b"1", b"2", b"4", b"5", b"A"}


class Peer:
    """A logged-on FIX client that processes what it receives as a FIX engine
    would: in MsgSeqNum order, each seqnum once, asking for a resend of a gap."""

    def __init__(self, tcp: TcpPeer, name: str) -> None:
        self.tcp = tcp
        self.name = name
        self.received: list[Message] = []  # application messages, in seqnum order
        self.expected_in = 1  # next MsgSeqNum we expect from the gateway
        self.resent = 0  # PossDupFlag=Y messages processed
        self._held: dict[int, Message] = {}
        self._resend_asked = False
        self._syncs = 0
        self._heartbeats: list[bytes] = []

    @classmethod
    async def log_on(cls, port: int, name: str, next_out: int = 1, expected_in: int = 1,
                     *extra: tuple[int, FieldValue]) -> Peer:
        tcp = await TcpPeer.connect(port, sender=name)
        tcp.next_seq = next_out
        peer = cls(tcp, name)
        peer.expected_in = expected_in
        await tcp.write(tcp.logon(30, *extra, now=time.time()))
        reply = await tcp.receive()
        assert reply.msg_type == b"A", reply
        await peer._accept(reply)
        return peer

    async def _accept(self, msg: Message) -> None:
        seq = int(msg.get(34) or 0)
        if seq < self.expected_in:
            return  # a possible duplicate of something already processed
        self._held[seq] = msg
        while self.expected_in in self._held:
            m = self._held.pop(self.expected_in)
            if m.msg_type == b"4":
                self.expected_in = int(m.get(36) or 0)
                continue
            self.expected_in += 1
            if m.get(43) == b"Y":
                self.resent += 1
            if m.msg_type == b"0" and m.get(112):
                self._heartbeats.append(m.get(112) or b"")
            if m.msg_type not in ADMIN:
                self.received.append(m)
        if self._held and not self._resend_asked:
            self._resend_asked = True
            await self.tcp.send("2", (7, self.expected_in), (16, 0))
        elif not self._held:
            self._resend_asked = False

    async def pump(self, deadline: float) -> None:
        await self._accept(await self.tcp.receive(max(0.1, deadline - time.monotonic())))

    async def send(self, msg_type: str, *body: tuple[int, FieldValue]) -> None:
        await self.tcp.send(msg_type, *body)

    async def order(self, cl_ord_id: str, side: str, qty: int, symbol: str, price: str,
                    account: str = "") -> None:
        body: list[tuple[int, FieldValue]] = [
            (11, cl_ord_id), (55, symbol), (54, "1" if side == "buy" else "2"),
            (60, format_timestamp(time.time())), (38, qty), (40, "2"), (44, price),
        ]  # fmt: skip
        if account:
            body.append((1, account))
        await self.send("D", *body)

    async def sync(self, timeout: float = 10.0) -> list[Message]:
        """What is processed until our TestRequest is answered (in order)."""
        self._syncs += 1
        test_id = f"{self.name}-sync-{self._syncs}".encode()
        before = len(self.received)
        await self.send("1", (112, test_id))
        deadline = time.monotonic() + timeout
        while test_id not in self._heartbeats:
            await self.pump(deadline)
        return self.received[before:]

    async def reports_until(self, count: int, timeout: float = 10.0) -> list[Message]:
        """Process messages until `count` ExecutionReports (in all) have arrived."""
        deadline = time.monotonic() + timeout
        while sum(m.msg_type == b"8" for m in self.received) < count:
            await self.pump(deadline)
        return [m for m in self.received if m.msg_type == b"8"]

    async def close(self) -> None:
        await self.tcp.close()
