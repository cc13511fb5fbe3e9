"""Crash and restart under load, with real subprocesses: kill -9 several times,
SIGTERM in the middle of traffic, and what a client was told against the engine.

Three sessions send orders that trade with each other (and cancels). After the
last restart every client recovers by ResendRequest and then, per client:
every acknowledged order exists with the same leaves/cum quantities, its fills
add up to its CumQty, no ExecID arrives twice as new, and the gateway's new
messages never reuse a MsgSeqNum across the restarts.
"""

from __future__ import annotations

import asyncio
import random
import signal
from pathlib import Path
from typing import Any

import pytest

from fix_gateway.codec import Message
from tests.gateway_process import GatewayProcess
from tests.test_recovery import (
    CLIENTS,
    ClientView,
    LoadClient,
    engine_open_orders,
    write_config,
)


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


@pytest.mark.slow
def test_repeated_kill_9_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    log = tmp_path / "gw.log"
    views, clients, rng = load_clients(2024)
    kills = 3
    for _ in range(kills):
        gw = GatewayProcess(config, log=log)
        try:
            asyncio.run(recover_then_load(clients, gw.port, rng, gw.kill,
                                          drop=rng.choice(clients)))
        finally:
            if gw.proc.poll() is None:
                gw.kill()
    final = GatewayProcess(config, log=log)
    try:
        asyncio.run(recover_and_hang_up(clients, final.port))
        assert_views_match_engine(views, final.state(tmp_path / "data"))
        assert sum(v.resent for v in views.values()) >= kills, "too little recovered by resend"
        assert sum(len(v.fills) for v in views.values()), "the load should trade"
    finally:
        assert final.stop() == 0
    assert "Traceback" not in log.read_text()


@pytest.mark.slow
def test_sigterm_under_load_drains_logs_out_and_restart_resumes(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    log = tmp_path / "gw.log"
    views, clients, rng = load_clients(99)
    gw = GatewayProcess(config, log=log)
    logouts: list[bytes] = []

    async def load_and_terminate() -> None:
        await reconnect_and_recover(clients, gw.port)
        for client in clients:
            await client.send_random(40)
        gw.proc.send_signal(signal.SIGTERM)
        for client in clients:
            assert client.peer is not None
            while True:  # everything in flight is answered, then a Logout
                msg = await client.peer.receive(timeout=10)
                if msg.msg_type == b"5":
                    logouts.append(msg.get(58) or b"")
                    client.view.absorb(msg)
                    await client.peer.send("5")
                    client.next_seq = client.peer.next_seq
                    break
                client.view.absorb(msg)
            assert await client.peer.closed_by_peer()

    try:
        asyncio.run(load_and_terminate())
        assert gw.proc.wait(15) == 0
    finally:
        if gw.proc.poll() is None:
            gw.kill()
    assert logouts == [b"Gateway shutting down"] * len(CLIENTS)
    restart_recover_and_check(config, log, clients, views, rng, tmp_path / "data")
    assert "Traceback" not in log.read_text()
