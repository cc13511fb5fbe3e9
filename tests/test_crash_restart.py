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
import signal
from pathlib import Path

import pytest

from tests.gateway_process import GatewayProcess
from tests.load_clients import (
    CLIENTS,
    assert_views_match_engine,
    load_clients,
    reconnect_and_recover,
    recover_and_hang_up,
    recover_then_load,
    restart_recover_and_check,
    write_config,
)


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
