"""Engine snapshots and archived journals, through real gateways and real files.

A start replays only what came after the last snapshot, and ends where a
start replaying the whole history would: the same engine state, to the hash.
The snapshot is taken at stop, after a start that replayed commands, and
after each end of day; a crash between archiving the journal and saving the
snapshot, or a damaged snapshot, loses nothing.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.engine import MatchingEngine
from engine.history import EngineHistory
from engine.journal import read_entries
from engine.snapshot import restore, take
from engine.types import Instrument, StpMode
from fix_gateway.server import Gateway
from tests.gateway_process import REPO, GatewayProcess
from tests.load_clients import CLIENTS, ClientView, LoadClient, write_config
from tests.venue import Client, venue_settings


def trade(port: int, seed: int, rounds: int = 3) -> None:
    """Orders and cancels from every client, until the gateway is quiet."""

    async def run() -> None:
        rng = random.Random(seed)
        clients = [LoadClient(c, port, ClientView(), rng) for c in CLIENTS]
        for client in clients:
            client.next_seq = 1  # a fresh logon (141=Y) each time
            await client.connect()
        for _ in range(rounds):
            for client in clients:
                await client.send_random(30)
        for client in clients:
            await client.drain()
            assert client.peer is not None
            await client.peer.close()

    asyncio.run(run())


def trade_and_stop(config: Path, seed: int, log: Path | None = None) -> dict[str, Any]:
    """A gateway that trades and stops cleanly (so takes a snapshot); its state before."""
    gw = GatewayProcess(config, log=log)
    trade(gw.port, seed)
    state = gw.state(config.parent / "data")
    assert gw.stop() == 0
    return state


def history_from_scratch(data: Path) -> str:
    """The state hash of every archived and live journal replayed into a fresh engine,
    as the gateway configured in write_config would build it."""
    engine = MatchingEngine([Instrument("ACME"), Instrument("GLOBEX", Decimal("0.05"))],
                            StpMode.CANCEL_RESTING,
                            end_of_day=21 * 3600 * 10**9)
    for path in EngineHistory(data / "engine").paths():
        for entry in read_entries(path):
            engine.process(entry.command)
    return engine.state_hash()


def history_setup(tmp_path: Path) -> tuple[Path, Path, EngineHistory, Path]:
    """A gateway config, its data directory, its engine history and a log file."""
    data = tmp_path / "data"
    return write_config(tmp_path), data, EngineHistory(data / "engine"), tmp_path / "gw.log"


def serve_once(config: Path) -> subprocess.CompletedProcess[str]:
    """`fixgw serve`, for a start that is expected to be refused (it exits at once)."""
    serve = [sys.executable, "-m", "fix_gateway.cli", "serve", "--config", str(config)]
    return subprocess.run(serve, cwd=REPO, capture_output=True, text=True, timeout=60)


def recovered_line(log: Path) -> str:
    lines = [line for line in log.read_text().splitlines() if "event=engine_recovered" in line]
    return lines[-1]


@pytest.mark.slow
def test_a_start_replays_only_what_came_after_the_snapshot(tmp_path: Path) -> None:
    config, data, history, log = history_setup(tmp_path)

    first = trade_and_stop(config, seed=1, log=log)
    assert first["open_orders"], "the scenario should leave orders resting"
    # The stop archived the journal and saved the state after it.
    assert [n for n, _ in history.archives()] == [1]
    assert history.journal_path.stat().st_size == 0
    loaded = history.load_snapshot()
    assert loaded is not None and loaded[0] == 1

    gw = GatewayProcess(config, log=log)
    assert "snapshot=1 commands=0 " in recovered_line(log)
    assert gw.state(data) == first
    trade(gw.port, seed=2)  # cancels of orders that came back from the snapshot, and more
    second = gw.state(data)
    assert second["hash"] != first["hash"]
    gw.kill()  # no snapshot at a crash: the journal holds what came after

    gw = GatewayProcess(config, log=log)
    line = recovered_line(log)
    assert "snapshot=1 " in line and "commands=0 " not in line, line
    try:
        assert gw.state(data) == second
        # That start replayed commands, so it took a snapshot of its own.
        assert [n for n, _ in history.archives()] == [1, 2]
        loaded = history.load_snapshot()
        assert loaded is not None and loaded[0] == 2
        # The archives are the whole history: replayed from scratch, the same state.
        assert history_from_scratch(data) == second["hash"]
    finally:
        assert gw.stop() == 0


@pytest.mark.slow
def test_a_crash_between_archiving_and_saving_the_snapshot_loses_nothing(
    tmp_path: Path,
) -> None:
    config, data, history, log = history_setup(tmp_path)
    trade_and_stop(config, seed=3, log=log)  # snapshot 1
    gw = GatewayProcess(config, log=log)
    trade(gw.port, seed=4)
    before = gw.state(data)
    # The snapshot cannot be written (a directory stands where its temporary file
    # goes): the stop archives the journal, then fails to save, as a crash between
    # the two steps would leave it.
    blocker = history.snapshot_path.with_suffix(".tmp")
    blocker.mkdir()
    assert gw.stop() == 0
    assert "event=engine_snapshot_failed archive=2" in log.read_text()
    assert [n for n, _ in history.archives()] == [1, 2]
    loaded = history.load_snapshot()
    assert loaded is not None and loaded[0] == 1  # still the old one
    blocker.rmdir()

    gw = GatewayProcess(config, log=log)
    try:
        line = recovered_line(log)
        assert "snapshot=1 " in line and "commands=0 " not in line, line  # archive 2 replayed
        assert gw.state(data) == before
    finally:
        assert gw.stop() == 0


@pytest.mark.slow
def test_archives_beyond_archives_kept_are_deleted_once_a_snapshot_covers_them(
    tmp_path: Path,
) -> None:
    config, data, history, log = history_setup(tmp_path)
    config.write_text(config.read_text() + "\n[engine]\narchives_kept = 2\n")
    kept = []
    for seed in (11, 12, 13):
        state = trade_and_stop(config, seed=seed, log=log)  # snapshot 1, 2, 3
        kept.append([n for n, _ in history.archives()])
    assert kept == [[1], [1, 2], [2, 3]]
    assert "event=engine_archives_pruned first=1 last=1" in log.read_text()
    gw = GatewayProcess(config, log=log)  # recovery needs none of them
    try:
        assert "snapshot=3 commands=0 " in recovered_line(log)
        assert gw.state(data) == state
    finally:
        assert gw.stop() == 0


@pytest.mark.slow
def test_after_a_clean_stop_the_engine_settings_may_change_but_not_a_tick_size_in_use(
    tmp_path: Path,
) -> None:
    """A start that replays nothing after the snapshot may change STP mode, end of day
    and bands; one that replays orders may not; a tick size under kept orders never."""
    config, data, _, log = history_setup(tmp_path)
    original = config.read_text()
    before = trade_and_stop(config, seed=21, log=log)
    symbols = {o["symbol"] for o in before["open_orders"]}
    assert "ACME" in symbols, symbols
    changed = original.replace('symbol = "ACME"\ntick_size = "0.01"',
                               'symbol = "ACME"\ntick_size = "0.01"\nband_low = "0.05"\n'
                               'band_high = "100000"') + (
        '\n[engine]\nstp_mode = "cancel_both"\nend_of_day = "22:30:00"\n')
    config.write_text(changed)
    gw = GatewayProcess(config, log=log)
    assert "snapshot=1 commands=0 " in recovered_line(log)
    # Snapshotted again at once: what it journals next follows the new settings.
    assert "event=engine_snapshot archive=2" in log.read_text()
    after = gw.state(data)
    assert after["open_orders"] == before["open_orders"]
    trade(gw.port, seed=22)
    gw.kill()  # the journal now holds orders made under the changed settings

    config.write_text(original)
    refused = serve_once(config)
    assert refused.returncode == 2, refused.stderr
    assert "engine.stp_mode: 'cancel_both' -> 'cancel_resting'" in refused.stderr
    assert "instruments[ACME].band_low" in refused.stderr

    config.write_text(changed)
    assert GatewayProcess(config, log=log).stop() == 0  # replays under its own settings
    config.write_text(changed.replace('tick_size = "0.01"', 'tick_size = "0.05"'))
    refused = serve_once(config)
    assert refused.returncode == 2, refused.stderr
    assert "snapshot keeps orders priced in ticks" in refused.stderr, refused.stderr
    assert "instruments[ACME].tick_size: '0.01' -> '0.05'" in refused.stderr


@pytest.mark.slow
def test_a_damaged_snapshot_is_a_clear_start_error_and_the_archives_recover_it(
    tmp_path: Path,
) -> None:
    config, data, history, _ = history_setup(tmp_path)
    before = trade_and_stop(config, seed=5)
    damaged = bytearray(history.snapshot_path.read_bytes())
    damaged[-10] ^= 0xFF
    history.snapshot_path.write_bytes(bytes(damaged))
    refused = serve_once(config)
    assert refused.returncode == 1, refused.stderr
    assert "snapshot.dat: damaged" in refused.stderr and "move it away" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert history.snapshot_path.read_bytes() == bytes(damaged)  # left as it is

    history.snapshot_path.rename(tmp_path / "snapshot.damaged")
    gw = GatewayProcess(config)
    try:
        assert gw.state(data) == before  # every archive replayed
    finally:
        assert gw.stop() == 0


async def exec_type(client: Client) -> str:
    """ExecType of the next ExecutionReport; a TestRequest (the clock jumped a day
    ahead of the heartbeat timers) is answered on the way."""
    while True:
        f = await client.next()
        if f[35] == "1":
            await client.send("0", (112, f[112]))
            continue
        assert f[35] == "8", f
        return f[150]


@pytest.mark.socket
def test_a_snapshot_is_taken_once_a_day_after_the_end_of_day(tmp_path: Path) -> None:
    async def run() -> None:
        gw = Gateway(venue_settings(tmp_path / "data", [{"TargetCompID": "C1"}]))
        await gw.start()
        history = gw.history
        assert history is not None
        try:
            client = await Client.logged_on(gw.port, "C1")
            await client.order("day-1", "buy", 10, "10.00")
            assert await exec_type(client) == "0"
            now = time.time()
            gw.tick(now + 1)  # the same day: nothing to expire, no snapshot
            assert history.archives() == []
            gw.tick(now + 86_400)  # past the end of day: the Day order expires
            assert await exec_type(client) == "C"
            assert [n for n, _ in history.archives()] == [1]
            loaded = history.load_snapshot()
            assert loaded is not None and loaded[0] == 1
            engine = gw.order_entry.engine  # type: ignore[union-attr]
            assert loaded[1] == take(engine)
            settings = gw.settings
            assert restore(loaded[1], [i.to_instrument() for i in settings.instruments],
                           settings.engine.stp, settings.engine.end_of_day_ns
                           ).dump() == engine.dump()
            gw.tick(now + 86_402)  # later that new day: no second snapshot
            assert [n for n, _ in history.archives()] == [1]
            await client.close()
        finally:
            await gw.stop()
        # Nothing was journaled since: the stop had nothing to archive.
        assert [n for n, _ in history.archives()] == [1]

    asyncio.run(run())
