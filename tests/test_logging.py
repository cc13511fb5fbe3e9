"""Structured event logs (kv / JSON, rotated files) and per-session FIX message logs.

Event logs are checked on a real `fixgw serve` subprocess (its stderr or its
log file); message logs on an in-process gateway over real TCP, reading the
files it wrote.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

import pytest

from fix_gateway.config import ConfigError, GatewaySettings, load_settings
from fix_gateway.log_format import configure_logging, parse_pairs
from fix_gateway.server import Gateway
from tests.fix_peer import TcpPeer
from tests.gateway_process import GatewayProcess, write_config
from tests.gateway_settings import order_entry_settings
from tests.venue import Trader

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z (IN |OUT) 8=FIX\.4\.4\|9=\d+\|35=")


async def log_on_and_out(port: int) -> None:
    peer = await TcpPeer.connect(port)
    await peer.write(peer.logon(30, (141, "Y"), now=time.time()))  # seqnums from 1 again
    assert (await peer.receive()).msg_type == b"A"
    await peer.send("5")
    assert await peer.closed_by_peer()
    await peer.close()


def serve(tmp_path: Path, logging_toml: str) -> GatewayProcess:
    config = write_config(tmp_path / "gw.toml", tmp_path / "data",
                          "[metrics]\nport = 0\n[logging]\n" + logging_toml)
    return GatewayProcess(config)


# --- event logs ---------------------------------------------------------------------


@pytest.mark.process
async def test_json_event_log_is_one_object_per_line(tmp_path: Path) -> None:
    gw = serve(tmp_path, 'format = "json"\nmessages = false\n')
    try:
        await log_on_and_out(gw.port)
    finally:
        assert gw.stop() == 0
    assert gw.proc.stderr is not None
    lines = gw.proc.stderr.read().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    events = {r.get("event"): r for r in records}
    assert {"listening", "metrics_listening", "connect", "logon", "disconnect"} <= set(events)
    logon = events["logon"]
    assert (logon["level"], logon["logger"], logon["session"]) == (
        "INFO", "fixgw.session", "FIXGW-CLIENT1")
    assert logon["seq"] == "1" and logon["heartbeat"] == "30"
    assert events["disconnect"]["reason"] == "Logout requested by peer"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", logon["ts"])
    assert int(events["metrics_listening"]["port"]) > 0


@pytest.mark.process
async def test_kv_event_log_to_a_rotated_file(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "fixgw.log"
    gw = serve(tmp_path, f'file = "{log_file}"\nmax_bytes = 1024\nbackups = 2\n'
                         "messages = false\n")
    try:
        for _ in range(8):  # each session logs about 500 bytes of events
            await log_on_and_out(gw.port)
    finally:
        assert gw.stop() == 0
    assert gw.proc.stderr is not None and gw.proc.stderr.read() == ""
    files = sorted(p.name for p in log_file.parent.iterdir())
    assert files == ["fixgw.log", "fixgw.log.1", "fixgw.log.2"]
    for path in log_file.parent.iterdir():
        assert path.stat().st_size <= 1024
        for line in path.read_text().splitlines():
            assert re.match(r"ts=\S+Z level=[A-Z]+ logger=fixgw\.\w+ event=\w+", line), line
    assert "event=stopped" in log_file.read_text()


@pytest.mark.unit
def test_old_top_level_log_level_still_applies(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text('log_level = "WARNING"\n')
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        configure_logging(load_settings(path))
        assert root.level == logging.WARNING
        path.write_text('log_level = "WARNING"\n[logging]\nlevel = "DEBUG"\n')
        configure_logging(load_settings(path))
        assert root.level == logging.DEBUG  # [logging].level wins when both are given
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]


@pytest.mark.unit
def test_bad_logging_setting_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text('[logging]\nformat = "xml"\n')
    with pytest.raises(ConfigError, match=r"'logging\.format'"):
        load_settings(path)
    path.write_text('[metrics]\nport = 70000\n')
    with pytest.raises(ConfigError, match=r"'metrics\.port'"):
        load_settings(path)


@pytest.mark.unit
def test_json_formatter_parses_quoted_values() -> None:
    assert parse_pairs("event=disconnect peer=1.2.3.4:5 reason='peer closed' n=3") == {
        "event": "disconnect", "peer": "1.2.3.4:5", "reason": "peer closed", "n": "3"}
    assert parse_pairs("not key value") is None


# --- message logs -------------------------------------------------------------------


def message_settings(data_dir: Path, **logging_keys: object) -> GatewaySettings:
    return order_entry_settings(data_dir, metrics={"enabled": False}, logging=logging_keys)


@pytest.fixture
def gateway_settings(tmp_path: Path) -> GatewaySettings:
    return message_settings(tmp_path, messages_max_bytes=4096, messages_backups=2)


async def test_message_log_holds_every_message_in_and_out(tmp_path: Path) -> None:
    gateway = Gateway(message_settings(tmp_path))
    await gateway.start()
    try:
        trader = await Trader.log_on(gateway.port, "CLIENT1")
        await trader.order("B1", "buy", 10, "ACME", "10.00")
        ack = await trader.next("8")
        await trader.send("5")
        await trader.next("5")
        assert await trader.peer.closed_by_peer()
    finally:
        await gateway.stop(drain_timeout=0.5)  # flushes the logs

    path = tmp_path / "logs" / "FIXGW-CLIENT1.messages.log"
    lines = path.read_text().splitlines()
    for line in lines:
        assert LINE.match(line), line
    kinds = [(line.split()[1], re.search(r"\|35=(\w+)\|", line).group(1))  # type: ignore[union-attr]
             for line in lines]
    assert kinds == [("IN", "A"), ("OUT", "A"), ("IN", "D"), ("OUT", "8"), ("IN", "5"),
                     ("OUT", "5")]
    assert lines[3].split(" ", 2)[2] == ack.raw.decode().replace("\x01", "|")
    assert not (tmp_path / "logs" / "FIXGW-CLIENT2.messages.log").stat().st_size


async def test_message_log_rotates_at_its_size_limit(gateway: Gateway, tmp_path: Path) -> None:
    trader = await Trader.log_on(gateway.port, "CLIENT1")
    assert gateway.message_logs is not None
    for i in range(40):  # about 500 bytes logged per order
        await trader.order(f"B{i}", "buy", 10, "ACME", "10.00")
        await trader.next("8")
        gateway.message_logs.flush()  # what the tick does, made deterministic
    directory = tmp_path / "logs"
    names = sorted(p.name for p in directory.glob("FIXGW-CLIENT1.messages.log*"))
    assert names == ["FIXGW-CLIENT1.messages.log", "FIXGW-CLIENT1.messages.log.1",
                     "FIXGW-CLIENT1.messages.log.2"]
    logged: list[str] = []
    for name in reversed(names):  # oldest first
        path = directory / name
        assert path.stat().st_size <= 4096
        logged += path.read_text().splitlines()
    new_orders = (re.search(r"\|35=D\|.*\|11=B(\d+)\|", line) for line in logged)
    orders = [int(m.group(1)) for m in new_orders if m]
    # What is kept is the newest part of the log, in order, ending at the last order.
    assert orders and orders == list(range(orders[0], 40))
    await trader.peer.close()


async def test_message_logs_off_writes_no_files(tmp_path: Path) -> None:
    gw = Gateway(message_settings(tmp_path, messages=False))
    await gw.start()
    try:
        assert gw.message_logs is None
        assert all(s.message_log is None for s in gw.sessions)
        trader = await Trader.log_on(gw.port, "CLIENT1")
        await trader.order("B1", "buy", 10, "ACME", "10.00")
        await trader.next("8")
        await trader.peer.close()
    finally:
        await gw.stop(drain_timeout=0.5)
    assert not (tmp_path / "logs").exists()


async def test_message_logs_go_to_a_configured_directory(tmp_path: Path) -> None:
    where = tmp_path / "elsewhere"
    gw = Gateway(message_settings(tmp_path / "data", messages_dir=str(where)))
    await gw.start()
    try:
        await Trader.log_on(gw.port, "CLIENT2")
    finally:
        await gw.stop(drain_timeout=0.5)
    text = (where / "FIXGW-CLIENT2.messages.log").read_text()
    assert " IN  8=FIX.4.4|" in text and " OUT 8=FIX.4.4|" in text
    assert not (tmp_path / "data" / "logs").exists()
