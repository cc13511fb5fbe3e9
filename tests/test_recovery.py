"""Order entry survives kill -9: a gateway subprocess under load is killed and
restarted; engine state and what clients were told must agree exactly."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateway_process import REPO, GatewayProcess
from tests.load_clients import CLIENTS, ClientView, LoadClient, engine_open_orders, write_config


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
