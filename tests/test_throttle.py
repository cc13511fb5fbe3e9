"""Per-session throttle and MaxOpenOrders.

The throttle's window and the session's answers are tested sans-I/O with an
injected clock; then over real TCP against an in-process gateway, where the
interval is long (60 s) so that the window never slides during a test. The
open-order count is checked against the engine after every command of a
random flow, and across a restart.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from engine.engine import MatchingEngine
from engine.journal import CommandJournal
from engine.types import (
    AdvanceTime,
    CancelOrder,
    Instrument,
    MassCancel,
    MassCancelScope,
    NewOrder,
    OrdType,
    ReplaceOrder,
    Side,
    TimeInForce,
)
from fix_gateway.application.open_orders import OpenOrders
from fix_gateway.application.order_entry import OrderEntry
from fix_gateway.config import GatewaySettings
from fix_gateway.server import Gateway
from fix_gateway.session.throttle import Throttle
from session_store import FsyncPolicy
from tests.fix_peer import SansIOPeer
from tests.venue import Client, fields, venue_settings

# --- the window, injected clock ---------------------------------------------------------


def test_sliding_window_admits_n_per_interval() -> None:
    throttle = Throttle(3, 1.0)
    assert [throttle.admit(t) for t in (0.0, 0.1, 0.2, 0.3, 0.99)] == [True] * 3 + [False] * 2
    assert throttle.admit(1.0)  # the message of t=0.0 left the window
    assert not throttle.admit(1.05)  # 0.1 and 0.2 are still in it
    assert throttle.admit(1.1) and throttle.admit(1.2)
    assert not throttle.admit(1.25)


# --- the session's answers (sans-I/O) ---------------------------------------------------


def new_order(peer: SansIOPeer, cl_ord_id: str) -> list[dict[int, str]]:
    replies = peer.send("D", (11, cl_ord_id), (55, "ACME"), (54, "1"), (60, "20270115-10:00:00"),
                        (38, 10), (40, "2"), (44, "10"), now=peer.now)
    return [fields(m) for m in replies]


def test_excess_application_messages_get_business_reject_380_8() -> None:
    peer = SansIOPeer(throttle_messages=2, throttle_interval=1.0)
    peer.log_on()
    # The default application answers every order with 380=3: it was acted on.
    assert [f[380] for m in ("A", "B") for f in new_order(peer, m)] == ["3", "3"]
    [reject] = new_order(peer, "C")
    assert reject[35] == "j"
    assert (reject[380], reject[372], reject[379], reject[45]) == ("8", "D", "C", "4")
    assert reject[58] == "throttle exceeded: max 2 messages per 1 s"
    # Session messages count against the same limit: a TestRequest gets Reject 373=99.
    [refused] = [fields(m) for m in peer.send("1", (112, "T"))]
    assert (refused[35], refused[373], refused[372]) == ("3", "99", "1")
    assert peer.closed is None and peer.session.throttle is not None
    assert peer.session.throttle.rejected == 2
    peer.now += 1.0  # the window moved on
    assert [f[380] for f in new_order(peer, "D")] == ["3"]
    assert peer.store.next_target_seq == 7  # every message used its sequence number


def test_throttle_action_logout_ends_the_session_at_the_first_excess() -> None:
    peer = SansIOPeer(throttle_messages=2, throttle_action="logout")
    peer.log_on()
    new_order(peer, "A")
    new_order(peer, "B")
    [logout] = new_order(peer, "C")
    assert (logout[35], logout[58]) == ("5", "throttle exceeded: max 2 messages per 1 s")
    assert peer.closed == "throttle exceeded: max 2 messages per 1 s"


def test_gross_abuse_logs_a_rejecting_session_out() -> None:
    peer = SansIOPeer(throttle_messages=2, throttle_logout_multiple=3.0)
    peer.log_on()
    answers = [f[35] + f.get(380, "") for i in range(6) for f in new_order(peer, f"O{i}")]
    # 2 admitted, 3 rejected, the 6th (3 x the limit in one interval) ends the session.
    assert answers == ["j3", "j3", "j8", "j8", "j8", "5"]
    assert peer.closed is not None and "logged out for sending 3 times the limit" in peer.closed


def test_slow_excess_is_rejected_but_not_abuse() -> None:
    peer = SansIOPeer(throttle_messages=2, throttle_logout_multiple=3.0)
    peer.log_on()
    for second in range(5):  # 3 a second: one over the limit each time, never 3x
        answers = [f[380] for i in range(3) for f in new_order(peer, f"O{second}-{i}")]
        assert answers == ["3", "3", "8"]
        peer.now += 1.0
    assert peer.closed is None


# --- over TCP -------------------------------------------------------------------------------


@pytest.fixture
def gateway_settings(tmp_path: Path) -> GatewaySettings:
    return venue_settings(tmp_path, [
        {"TargetCompID": "CLIENT1", "ThrottleMessages": 5, "ThrottleInterval": 60},
        {"TargetCompID": "CLIENT2", "ThrottleMessages": 2, "ThrottleInterval": 60,
         "ThrottleAction": "logout"},
        {"TargetCompID": "CLIENT3", "MaxOpenOrders": 2},
        {"TargetCompID": "CLIENT4"},
    ])  # fmt: skip


@pytest.mark.socket
async def test_throttle_over_tcp_rejects_the_excess_and_keeps_the_session(
    gateway: Gateway,
) -> None:
    client = await Client.logged_on(gateway.port, "CLIENT1")
    for i in range(8):
        await client.order(f"O{i}", "buy", 10, "100.00")
    answers = [await client.next() for _ in range(8)]
    assert [(f[35], f[11] if f[35] == "8" else f[379]) for f in answers] == \
        [("8", f"O{i}") for i in range(5)] + [("j", f"O{i}") for i in range(5, 8)]
    for f in answers[5:]:
        assert (f[380], f[372], f[58]) == ("8", "D", "throttle exceeded: max 5 messages per 60 s")
    assert [f[45] for f in answers[5:]] == ["7", "8", "9"]  # Logon was 1, orders 2..9
    # A TestRequest counts too: Reject 373=99, and the session goes on.
    await client.send("1", (112, "T1"))
    refused = await client.next("3")
    assert (refused[45], refused[372], refused[373]) == ("10", "1", "99")
    # Throttled orders never reached the engine.
    assert [o.cl_ord_id for o in gateway.order_entry.engine.open_orders("FIXGW-CLIENT1")] == \
        [f"O{i}" for i in range(5)]  # type: ignore[union-attr]
    await client.close()


@pytest.mark.socket
async def test_throttle_action_logout_over_tcp(gateway: Gateway) -> None:
    client = await Client.logged_on(gateway.port, "CLIENT2")
    for i in range(3):
        await client.order(f"O{i}", "buy", 10, "100.00")
    assert [(await client.next())[35] for _ in range(2)] == ["8", "8"]
    logout = await client.next("5")
    assert logout[58] == "throttle exceeded: max 2 messages per 60 s"
    assert await client.peer.closed_by_peer()
    await client.close()


@pytest.mark.socket
async def test_max_open_orders_rejects_then_frees_slots_exactly(gateway: Gateway) -> None:
    limited = await Client.logged_on(gateway.port, "CLIENT3")
    other = await Client.logged_on(gateway.port, "CLIENT4")
    await limited.order("L1", "buy", 10, "100.00")
    await limited.order("L2", "buy", 10, "99.00")
    assert [(await limited.next("8"))[150] for _ in range(2)] == ["0", "0"]
    await limited.order("L3", "buy", 10, "98.00")
    reject = await limited.next("8")
    assert (reject[11], reject[150], reject[39], reject[103]) == ("L3", "8", "8", "3")
    assert reject[58] == "MaxOpenOrders exceeded: 2 open orders already"
    assert (reject[151], reject[14]) == ("0", "0")
    # A cancel frees a slot.
    await limited.cancel("C1", "L2", "buy")
    assert (await limited.next("8"))[150] == "4"
    await limited.order("L4", "buy", 10, "97.00")
    assert (await limited.next("8"))[150] == "0"
    # A partial fill does not free one; a full fill does.
    await other.order("S1", "sell", 4, "100.00")
    assert (await limited.next("8"))[39] == "1"
    await limited.order("L5", "buy", 10, "96.00")
    assert (await limited.next("8"))[150] == "8"
    await other.order("S2", "sell", 6, "100.00")
    assert (await limited.next("8"))[39] == "2"
    await limited.order("L6", "buy", 10, "96.00")
    assert (await limited.next("8"))[150] == "0"
    await limited.alive()
    # The limit is per session: the other session rests as many orders as it likes.
    for i in range(4):
        await other.order(f"B{i}", "buy", 1, "90.00")
    reports = [(await other.next("8"))[150] for _ in range(8)]
    assert reports == ["0", "F", "0", "F"] + ["0"] * 4  # S1, S2 (ack, fill each), B0..B3
    await limited.close()
    await other.close()


@pytest.mark.socket
async def test_max_open_orders_count_survives_a_restart(tmp_path: Path) -> None:
    settings = venue_settings(tmp_path, [{"TargetCompID": "CLIENT3", "MaxOpenOrders": 2}])
    gw = Gateway(settings)
    await gw.start()
    client = await Client.logged_on(gw.port, "CLIENT3")
    await client.order("L1", "buy", 10, "100.00")
    await client.order("L2", "buy", 10, "99.00")
    assert [(await client.next("8"))[150] for _ in range(2)] == ["0", "0"]
    await client.close()
    await gw.stop(drain_timeout=0.5)
    gw = Gateway(settings)  # same data directory: the engine is rebuilt from the journal
    await gw.start()
    try:
        client = await Client.logged_on(gw.port, "CLIENT3", (141, "Y"))
        await client.order("L3", "buy", 10, "98.00")
        f = await client.next("8")
        assert f[11] == "L3" and (f[150], f[103]) == ("8", "3")
        await client.close()
    finally:
        await gw.stop(drain_timeout=0.5)


# --- the count is exact ------------------------------------------------------------------


def test_open_order_count_matches_the_engine_after_every_command(tmp_path: Path) -> None:
    instruments = [Instrument("ACME")]
    engine = MatchingEngine(instruments)
    entry = OrderEntry(engine, CommandJournal(tmp_path / "j.dat", fsync=FsyncPolicy.NONE),
                       instruments, lambda name: None)
    counter = OpenOrders.install(entry)
    rng = random.Random(7)
    sessions = ["S1", "S2", "S3"]
    ids: dict[str, list[str]] = {s: [] for s in sessions}
    ts = 1_800_000_000 * 10**9
    for i in range(3000):
        ts += 1_000_000
        s = rng.choice(sessions)
        kind = rng.random()
        if kind < 0.55 or not ids[s]:
            cl = f"{s}-{i}"
            ids[s].append(cl)
            ord_type = rng.choice([OrdType.LIMIT] * 6 + [OrdType.MARKET, OrdType.STOP_LIMIT])
            price = rng.randint(95, 105) if ord_type is not OrdType.MARKET else None
            stop = price if ord_type is OrdType.STOP_LIMIT else None
            tif = rng.choice([TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC,
                              TimeInForce.FOK, TimeInForce.GTD])
            expire = ts + rng.randint(1, 50) * 1_000_000 if tif is TimeInForce.GTD else None
            command = NewOrder(ts, s, rng.choice(["", "A1", "A2"]), cl, "ACME",
                               rng.choice([Side.BUY, Side.SELL]), ord_type,
                               rng.randint(1, 20), price, stop, tif, expire)
        elif kind < 0.75:
            command = CancelOrder(ts, s, f"{s}-c{i}", rng.choice(ids[s]), "ACME", Side.BUY)
        elif kind < 0.9:
            new = f"{s}-r{i}"
            command = ReplaceOrder(ts, s, new, rng.choice(ids[s]), "ACME", Side.BUY,
                                   rng.randint(1, 25), rng.randint(95, 105))
            ids[s].append(new)
        elif kind < 0.97:
            command = AdvanceTime(ts)
        else:
            command = MassCancel(ts, s, f"{s}-m{i}", MassCancelScope.ALL)
        entry.submit(command, ts / 1e9)
        for name in sessions:
            assert counter.count(name) == len(engine.open_orders(name)), (i, command)
    assert sum(counter.count(s) for s in sessions) > 0  # the flow left orders resting
