"""Clients that trade under load against a gateway subprocess and remember what they
were told, and the checks of that against the engine after kill -9, SIGTERM and
restarts: for the recovery, crash/restart, crash-storage, engine-history, error-path
and stall-watch tests."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fix_gateway.codec import Message
from fix_gateway.utc_time import format_timestamp
from tests.fix_peer import TcpPeer
from tests.gateway_process import GatewayProcess

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


class StrictView(ClientView):
    """A ClientView that also proves the gateway's seqnums continue: a new message
    (not PossDup) never carries a MsgSeqNum used before, and a PossDup resend with
    a MsgSeqNum we know is the same message as before."""

    def __init__(self) -> None:
        super().__init__()
        self.last_new_seq = 0
        self.by_seq: dict[int, tuple[bytes | None, ...]] = {}
        self.resent = 0

    def absorb(self, msg: Message) -> None:
        seq = int(msg.get(34) or 0)
        identity = (msg.msg_type, msg.get(17), msg.get(11), msg.get(150))
        if msg.get(43) == b"Y":
            self.resent += 1
            if msg.msg_type != b"4":
                assert self.by_seq.setdefault(seq, identity) == identity, (seq, msg)
        else:
            assert seq > self.last_new_seq and seq not in self.by_seq, (
                f"MsgSeqNum {seq} reused (last new {self.last_new_seq})")
            self.last_new_seq = seq
            self.by_seq[seq] = identity
        super().absorb(msg)


def engine_orders(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every order record in an engine dump (resting, stops, done), by OrderID."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "order_id" in node and "leaves_qty" in node:
                found[str(node["order_id"])] = node
                return
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(state["state"])
    return found


def assert_views_match_engine(views: dict[str, StrictView], state: dict[str, Any]) -> None:
    orders = engine_orders(state)
    for name, view in views.items():
        assert view.orders, f"{name}: no order was acknowledged"
        assert view.open_orders() == engine_open_orders(state, f"FIXGW-{name}"), name
        for order_id, fields in view.orders.items():
            assert order_id in orders, f"{name}: acknowledged order {order_id} is gone"
            engine = orders[order_id]
            assert engine["session"] == f"FIXGW-{name}"
            assert (int(fields[151]), int(fields[14])) == (
                engine["leaves_qty"], engine["cum_qty"]), (name, order_id, fields, engine)
            assert view.fills.get(order_id, 0) == engine["cum_qty"], (name, order_id)
    all_ids = [e for v in views.values() for e in v.exec_ids]
    assert len(all_ids) == len(set(all_ids)), "an ExecID was given to two sessions"


async def reconnect_and_recover(clients: list[LoadClient], port: int) -> None:
    for client in clients:
        client.port = port
        await client.connect()
    for client in clients:
        await client.drain(quiet=0.5)
    remember_seqnums(clients)


async def recover_then_load(clients: list[LoadClient], port: int, rng: random.Random,
                            action: Any, hang_up: bool = False,
                            drop: LoadClient | None = None) -> None:
    await reconnect_and_recover(clients, port)
    await load_then(clients, rng, action, drop)
    if hang_up:
        await hang_up_all(clients)


def load_clients(seed: int) -> tuple[dict[str, StrictView], list[LoadClient], random.Random]:
    """One load client per session, each with the view of what it was told, sharing
    one seeded random stream."""
    rng = random.Random(seed)
    views = {c: StrictView() for c in CLIENTS}
    return views, [LoadClient(c, 0, views[c], rng) for c in CLIENTS], rng


def restart_recover_and_check(config: Path, log: Path, clients: list[LoadClient],
                              views: dict[str, StrictView], rng: random.Random,
                              data_dir: Path) -> None:
    """Start the gateway again: the clients recover and trade on (seqnums continue),
    what each was told equals the engine, and it stops cleanly."""
    again = GatewayProcess(config, log=log)
    try:
        asyncio.run(recover_then_load(clients, again.port, rng, lambda: None, hang_up=True))
        assert_views_match_engine(views, again.state(data_dir))
    finally:
        assert again.stop() == 0


async def recover_and_hang_up(clients: list[LoadClient], port: int) -> None:
    await reconnect_and_recover(clients, port)
    await hang_up_all(clients)


async def hang_up_all(clients: list[LoadClient]) -> None:
    """Close the sockets (no Logout), so that a SIGTERM need not wait for answers."""
    for client in clients:
        if client.peer is not None:
            await client.peer.close()


def remember_seqnums(clients: list[LoadClient]) -> None:
    """Logon, ResendRequest and gap fills used seqnums too: the next Logon continues."""
    for client in clients:
        if client.peer is not None:
            client.next_seq = client.peer.next_seq


async def load_then(clients: list[LoadClient], rng: random.Random, action: Any,
                    drop: LoadClient | None = None) -> None:
    """Pipelined orders from every client; `action` fires in the middle of the second burst.
    `drop` loses its connection just before, answers unread: it must recover by resend."""
    for client in clients:
        await client.send_random(30)
    for client in clients:
        await client.read_until_acks(len(client.view.exec_ids) + 5)
    for client in clients:
        await client.send_random(30)
    await asyncio.sleep(rng.uniform(0.0, 0.03))
    if drop is not None and drop.peer is not None:
        drop.peer.writer.transport.abort()  # what it had not read yet is lost with it
    action()
    for client in clients:
        if client is not drop:
            await client.drain(quiet=0.4)
    remember_seqnums(clients)
