"""An in-process venue (gateway + order entry) and FIX clients over loopback TCP:
`Client` for the security tests, `Trader` for order entry (every order type, cancels,
replaces) in the order-entry, metrics and logging tests."""

from __future__ import annotations

import ssl
import time
from pathlib import Path
from typing import Any

from fix_gateway.codec import FieldValue, Message
from fix_gateway.config import GatewaySettings
from fix_gateway.server import FixProtocol
from fix_gateway.utc_time import format_timestamp
from tests.fix_peer import TcpPeer
from tests.gateway_settings import FAR_END_OF_DAY, loopback_settings


def venue_settings(data_dir: Path, sessions: list[dict[str, Any]],
                   **sections: dict[str, Any]) -> GatewaySettings:
    """Order entry on ACME (tick 0.01); `sections` add or override top-level tables."""
    eod = FAR_END_OF_DAY
    raw: dict[str, Any] = {
        "server": {"logon_timeout": 2.0, "tick_interval": 0.05, "application": "orders"},
        "engine": {"end_of_day": eod},
        "instruments": [{"symbol": "ACME", "tick_size": "0.01"}],
        "sessions": [{"SenderCompID": "FIXGW", **s} for s in sessions],
    }
    raw.update(sections)
    return loopback_settings(data_dir, **raw)


def fields(msg: Message) -> dict[int, str]:
    return {tag: value.decode("latin-1") for tag, value in msg.fields}


class Client:
    """One FIX client connection: log on, send orders, read what comes back."""

    def __init__(self, peer: TcpPeer, name: str) -> None:
        self.peer = peer
        self.name = name
        self._tests = 0

    @classmethod
    async def connect(cls, port: int, name: str, tls: ssl.SSLContext | None = None,
                      source: str | None = None) -> Client:
        return cls(await TcpPeer.connect(port, tls=tls, source=source, sender=name), name)

    async def logon(self, *extra: tuple[int, FieldValue]) -> Message:
        """Send a Logon (with e.g. (553, user), (554, password)); the first answer."""
        await self.peer.write(self.peer.logon(30, *extra, now=time.time()))
        return await self.peer.receive()

    @classmethod
    async def logged_on(cls, port: int, name: str, *extra: tuple[int, FieldValue],
                        tls: ssl.SSLContext | None = None, source: str | None = None) -> Client:
        client = await cls.connect(port, name, tls, source)
        reply = await client.logon(*extra)
        assert reply.msg_type == b"A", fields(reply)
        return client

    async def send(self, msg_type: str, *body: tuple[int, FieldValue]) -> None:
        await self.peer.send(msg_type, *body)

    async def order(self, cl_ord_id: str, side: str, qty: int, price: str,
                    symbol: str = "ACME") -> None:
        await self.send("D", (11, cl_ord_id), (55, symbol), (54, "1" if side == "buy" else "2"),
                        (60, format_timestamp(time.time())), (38, qty), (40, "2"), (44, price))

    async def cancel(self, cl_ord_id: str, orig: str, side: str) -> None:
        await self.send("F", (41, orig), (11, cl_ord_id), (55, "ACME"),
                        (54, "1" if side == "buy" else "2"), (60, format_timestamp(time.time())))

    async def next(self, msg_type: str | None = None) -> dict[int, str]:
        """The next message that is not a Heartbeat, as {tag: value}."""
        while True:
            msg = await self.peer.receive(5.0)
            if msg.msg_type == b"0":
                continue
            f = fields(msg)
            if msg_type is not None:
                assert f[35] == msg_type, f"expected 35={msg_type}, got {f}"
            return f

    async def alive(self) -> None:
        """A TestRequest is answered, and nothing else was queued before the answer."""
        self._tests += 1
        test_id = f"{self.name}-alive-{self._tests}"
        await self.send("1", (112, test_id))
        f = fields(await self.peer.receive(5.0))
        assert (f[35], f.get(112)) == ("0", test_id), f"expected Heartbeat {test_id}, got {f}"

    async def close(self) -> None:
        await self.peer.close()


class Trader:
    """One logged-on client session over TCP."""

    def __init__(self, peer: TcpPeer, name: str) -> None:
        self.peer = peer
        self.name = name
        self._test_ids = 0

    @classmethod
    async def log_on(cls, port: int, name: str) -> Trader:
        peer = await TcpPeer.connect(port, sender=name)
        await peer.write(peer.logon(30, now=time.time()))
        reply = await peer.receive()
        assert reply.msg_type == b"A", reply
        return cls(peer, name)

    async def send(self, msg_type: str, *body: tuple[int, FieldValue]) -> None:
        await self.peer.send(msg_type, *body)

    async def order(
        self, cl_ord_id: str, side: str, qty: FieldValue, symbol: str,
        price: FieldValue | None = None, ord_type: str | None = None,
        *extra: tuple[int, FieldValue],
    ) -> None:
        """NewOrderSingle; OrdType limit with a price, market without (unless given)."""
        if ord_type is None:
            ord_type = "2" if price is not None else "1"
        body: list[tuple[int, FieldValue]] = [
            (11, cl_ord_id), (55, symbol), (54, "1" if side == "buy" else "2"),
            (60, format_timestamp(time.time())), (38, qty), (40, ord_type),
        ]  # fmt: skip
        if price is not None:
            body.append((44, price))
        body += extra
        await self.send("D", *body)

    async def cancel(self, cl_ord_id: str, orig: str, symbol: str, side: str) -> None:
        await self.send("F", (41, orig), (11, cl_ord_id), (55, symbol),
                        (54, "1" if side == "buy" else "2"),
                        (60, format_timestamp(time.time())))

    async def replace(self, cl_ord_id: str, orig: str, symbol: str, side: str, qty: int,
                      price: str) -> None:
        await self.send("G", (41, orig), (11, cl_ord_id), (55, symbol),
                        (54, "1" if side == "buy" else "2"),
                        (60, format_timestamp(time.time())), (38, qty), (40, "2"), (44, price))

    async def next(self, msg_type: str | None = None) -> Message:
        """The next message that is not a Heartbeat (of the given type, if any)."""
        while True:
            msg = await self.peer.receive(5.0)
            if msg.msg_type == b"0":
                continue
            if msg_type is not None:
                assert msg.msg_type == msg_type.encode(), f"expected 35={msg_type}, got {msg}"
            return msg

    async def er(self, exec_type: str | None = None) -> dict[int, str]:
        msg = await self.next("8")
        f = fields(msg)
        if exec_type is not None:
            assert f[150] == exec_type, f
        return f

    async def alive(self) -> None:
        """A TestRequest is answered, and nothing else was waiting before the answer."""
        self._test_ids += 1
        test_id = f"{self.name}-alive-{self._test_ids}"
        await self.send("1", (112, test_id))
        msg = await self.peer.receive(5.0)
        assert msg.msg_type == b"0" and msg.get(112) == test_id.encode(), \
            f"expected the Heartbeat for {test_id}, got {msg}"


def record_write_buffer(proto: FixProtocol) -> list[int]:
    """The bytes waiting in `proto`'s transport after each of its writes, from now on."""
    queued: list[int] = []
    write_output = proto.write_output

    def measured_write_output() -> None:
        write_output()
        if proto.transport is not None:
            queued.append(proto.transport.get_write_buffer_size())

    proto.write_output = measured_write_output  # type: ignore[method-assign]
    return queued
