"""Order entry survives kill -9: a gateway subprocess under load is killed and
restarted; engine state and what clients were told must agree exactly."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fix_gateway.codec import Message
from fix_gateway.utc_time import format_timestamp
from tests.fix_peer import TcpPeer
from tests.gateway_process import REPO, GatewayProcess

CLIENTS = ("C1", "C2", "C3")


def write_config(tmp_path: Path) -> Path:
    sessions = "\n".join(
        f'[[sessions]]\nSenderCompID = "FIXGW"\nTargetCompID = "{c}"\n' for c in CLIENTS
    )
    path = tmp_path / "gw.toml"
    path.write_text(f"""
[listen]
host = "127.0.0.1"
port = 0

[store]
data_dir = "{tmp_path / 'data'}"
fsync = "interval"

[[instruments]]
symbol = "ACME"
tick_size = "0.01"

[[instruments]]
symbol = "GLOBEX"
tick_size = "0.05"

{sessions}
""")
    return path


@dataclass
class ClientView:
    """What one client was told: the last report per order, every ExecID once."""

    orders: dict[str, dict[int, bytes]] = field(default_factory=dict)  # by OrderID
    exec_ids: set[bytes] = field(default_factory=set)
    fills: dict[str, int] = field(default_factory=dict)
    last_seq: int = 0

    def absorb(self, msg: Message) -> None:
        self.last_seq = max(self.last_seq, int(msg.get(34) or 0))
        if msg.msg_type != b"8" or msg.get(37) in (None, b"NONE"):
            return
        exec_id = msg.get(17) or b""
        if exec_id in self.exec_ids:
            assert msg.get(43) == b"Y", f"ExecID {exec_id!r} reported twice without PossDup"
            return
        self.exec_ids.add(exec_id)
        order_id = (msg.get(37) or b"").decode()
        if msg.get(150) == b"F":
            self.fills[order_id] = self.fills.get(order_id, 0) + int(msg.get(32) or 0)
        fields = {tag: msg.get(tag) or b"" for tag in (11, 39, 151, 14, 38, 54, 55)}
        self.orders[order_id] = fields

    def open_orders(self) -> dict[str, int]:
        return {
            oid: int(f[151]) for oid, f in self.orders.items() if f[39] in (b"0", b"1")
        }


class LoadClient:
    def __init__(self, name: str, port: int, view: ClientView, rng: random.Random) -> None:
        self.name = name
        self.port = port
        self.view = view
        self.rng = rng
        self.peer: TcpPeer | None = None
        self.next_seq = 1
        self.sent_orders: list[str] = []

    async def connect(self) -> None:
        peer = await TcpPeer.connect(self.port, sender=self.name)
        peer.next_seq = self.next_seq
        reset = self.next_seq == 1
        extra = [(141, "Y")] if reset else []
        await peer.write(peer.logon(30, *extra, now=time.time()))
        self.peer = peer
        logon = await peer.receive()
        assert logon.msg_type == b"A", logon
        their_next = int(logon.get(34) or 0)
        if not reset and their_next > self.view.last_seq + 1:
            await peer.send("2", (7, self.view.last_seq + 1), (16, 0))
        self.view.last_seq = max(self.view.last_seq, their_next)

    async def send_random(self, count: int) -> None:
        assert self.peer is not None
        rng = self.rng
        for _ in range(count):
            ts = format_timestamp(time.time())
            if self.sent_orders and rng.random() < 0.25:
                target = rng.choice(self.sent_orders)
                await self.peer.send("F", (11, f"{self.name}-X{self.peer.next_seq}"),
                                     (41, target), (54, 1 if target.endswith("B") else 2),
                                     (55, "ACME"), (60, ts))
                continue
            side = rng.choice((1, 2))
            cl = f"{self.name}-{self.peer.next_seq}{'B' if side == 1 else 'S'}"
            price = f"{100 + rng.randint(-5, 5) * 0.01:.2f}"
            await self.peer.send("D", (11, cl), (1, f"ACC-{self.name}"), (21, 1),
                                 (38, rng.randint(1, 10) * 10), (40, 2), (44, price),
                                 (54, side), (55, "ACME"), (59, 1), (60, ts))
            self.sent_orders.append(cl)
        self.next_seq = self.peer.next_seq

    async def read_until_acks(self, count: int) -> None:
        assert self.peer is not None
        while len(self.view.exec_ids) < count:
            self.view.absorb(await self.peer.receive(timeout=5))

    async def drain(self, quiet: float = 0.5) -> None:
        """Absorb everything that arrives until the line is quiet."""
        assert self.peer is not None
        while True:
            try:
                msg = await self.peer.receive(timeout=quiet)
            except TimeoutError:
                return
            except (EOFError, ConnectionResetError):
                return
            if msg.msg_type == b"2":  # the gateway lost our tail: those orders were never acked
                begin = int(msg.get(7) or 0)
                await self.peer.send("4", (36, self.peer.next_seq), (123, "Y"), seq=begin,
                                     header=[(43, "Y"), (122, format_timestamp(time.time()))])
                continue
            self.view.absorb(msg)


def engine_open_orders(state: dict, session: str) -> dict[str, int]:  # type: ignore[type-arg]
    return {
        str(o["order_id"]): o["leaves_qty"]
        for o in state["open_orders"] if o["session"] == session
    }


def test_state_after_kill_9_equals_state_before(tmp_path: Path) -> None:
    """Quiesce, dump, kill -9, restart: the recovered engine is identical."""
    config = write_config(tmp_path)
    gw = GatewayProcess(config)

    async def trade() -> None:
        rng = random.Random(7)
        clients = [LoadClient(c, gw.port, ClientView(), rng) for c in CLIENTS]
        for client in clients:
            await client.connect()
        for _ in range(5):
            for client in clients:
                await client.send_random(40)
        for client in clients:
            await client.drain()

    asyncio.run(trade())
    before = gw.state(tmp_path / "data")
    gw.kill()
    again = GatewayProcess(config)
    try:
        after = again.state(tmp_path / "data")
        assert after["hash"] == before["hash"]
        assert after["state"] == before["state"]
        assert before["open_orders"], "the scenario should leave orders resting"
    finally:
        assert again.stop() == 0


@pytest.mark.slow
def test_kill_9_mid_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """Kill in the middle of pipelined orders; after restart and resend, what the
    clients were told matches the engine exactly, with no fill twice or lost."""
    config = write_config(tmp_path)
    gw = GatewayProcess(config)
    views = {c: ClientView() for c in CLIENTS}
    rng = random.Random(11)
    clients = [LoadClient(c, gw.port, views[c], rng) for c in CLIENTS]

    async def before_crash() -> None:
        for client in clients:
            await client.connect()
        for client in clients:
            await client.send_random(50)
        for client in clients:
            await client.read_until_acks(10)
        # A second burst is in flight when the gateway dies.
        for client in clients:
            await client.send_random(50)
        await asyncio.sleep(rng.uniform(0.0, 0.02))
        gw.kill()
        for client in clients:
            await client.drain(quiet=0.3)

    asyncio.run(before_crash())
    again = GatewayProcess(config)
    try:
        async def after_restart() -> None:
            for client in clients:
                client.port = again.port
                await client.connect()
            for client in clients:
                await client.drain(quiet=1.0)

        asyncio.run(after_restart())
        state = again.state(tmp_path / "data")
        for client in clients:
            view = views[client.name]
            assert view.orders, "no order was acknowledged before the kill"
            session = f"FIXGW-{client.name}"
            assert view.open_orders() == engine_open_orders(state, session)
            for order_id, fields in view.orders.items():
                assert view.fills.get(order_id, 0) == int(fields[14]), (order_id, fields)
    finally:
        assert again.stop() == 0


@pytest.mark.slow
def test_settings_that_would_replay_orders_differently_are_refused(tmp_path: Path) -> None:
    """A journal holding orders replays only under the settings it was written with:
    a changed tick size is a start error naming the key; a new instrument is fine."""
    config = write_config(tmp_path)
    original = config.read_text()
    serve = [sys.executable, "-m", "fix_gateway.cli", "serve", "--config", str(config)]

    # Only the engine clock in the journal: the settings may still change.
    GatewayProcess(config).stop()
    config.write_text(original.replace('tick_size = "0.05"', 'tick_size = "0.10"'))
    GatewayProcess(config).stop()

    gw = GatewayProcess(config)

    async def one_order() -> None:
        client = LoadClient("C1", gw.port, ClientView(), random.Random(3))
        await client.connect()
        await client.send_random(1)
        await client.read_until_acks(1)

    try:
        asyncio.run(one_order())
    finally:
        assert gw.stop() == 0
    config.write_text(original.replace('tick_size = "0.01"', 'tick_size = "0.05"'))
    refused = subprocess.run(serve, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2, refused.stderr
    assert "instruments[ACME].tick_size: '0.01' -> '0.05'" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr

    # GLOBEX back as journaled (0.10), and a new instrument: it starts.
    config.write_text(original.replace('tick_size = "0.05"', 'tick_size = "0.10"').replace(
        "[[sessions]]", '[[instruments]]\nsymbol = "NEWCO"\n\n[[sessions]]', 1))
    assert GatewayProcess(config).stop() == 0
