"""Surveillance through the real gateway: FIX over TCP in, alerts.jsonl out, and
`fixgw surveil` as a subprocess over the journal the gateway stored."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fix_gateway.config import load_settings
from fix_gateway.server import Gateway
from fix_gateway.utc_time import format_timestamp
from surveillance.alerts import Alert
from tests.fix_peer import TcpPeer
from tests.gateway_settings import FAR_END_OF_DAY

REPO = Path(__file__).resolve().parent.parent


def write_config(tmp_path: Path) -> Path:
    eod = FAR_END_OF_DAY
    config = tmp_path / "gateway.toml"
    config.write_text(f"""
[listen]
host = "127.0.0.1"
port = 0

[store]
data_dir = "{tmp_path / 'data'}"
fsync = "none"

[server]
tick_interval = 0.05

[engine]
end_of_day = "{eod}"

[surveillance]
interval = 0.1

[surveillance.beneficial_owners]
family = ["FAM-1", "FAM-2"]

[[instruments]]
symbol = "ACME"

[[sessions]]
SenderCompID = "FIXGW"
TargetCompID = "CLIENT1"

[[sessions]]
SenderCompID = "FIXGW"
TargetCompID = "CLIENT2"
""")
    return config


async def log_on(port: int, name: str) -> TcpPeer:
    peer = await TcpPeer.connect(port, sender=name)
    await peer.write(peer.logon(30, now=time.time()))
    assert (await peer.receive()).msg_type == b"A"
    return peer


async def order(peer: TcpPeer, cl: str, side: str, qty: int, price: str, account: str) -> None:
    await peer.send("D", (11, cl), (55, "ACME"), (54, side), (60, format_timestamp(time.time())),
                    (38, qty), (40, "2"), (44, price), (1, account))


async def test_wash_trade_over_fix_lands_in_alerts_file_and_in_fixgw_surveil(
        tmp_path: Path) -> None:
    config = write_config(tmp_path)
    gateway = Gateway(load_settings(config))
    assert gateway.surveillance is not None
    published: list[Alert] = []
    gateway.surveillance.on_alert.append(published.append)
    await gateway.start()
    alerts_file = tmp_path / "data" / "surveillance" / "alerts.jsonl"
    try:
        one = await log_on(gateway.port, "CLIENT1")
        two = await log_on(gateway.port, "CLIENT2")
        # Two accounts of one beneficial owner trade with each other ...
        await order(one, "S1", "2", 500, "10.00", "FAM-1")
        assert (await one.expect("8")).get(150) == b"0"
        await order(two, "B1", "1", 500, "10.00", "FAM-2")
        assert (await two.expect("8")).get(150) == b"0"
        assert (await two.expect("8")).get(150) == b"F"
        # ... and two unrelated accounts do too: no alert for them.
        await order(one, "S2", "2", 100, "10.01", "ALICE")
        await order(two, "B2", "1", 100, "10.01", "BOB")
        deadline = time.monotonic() + 10
        while not (alerts_file.exists() and alerts_file.read_text().strip()):
            assert time.monotonic() < deadline, "no alert written"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a few more evaluations: still one alert
        lines = alerts_file.read_text().splitlines()
        assert len(lines) == 1
        alert = json.loads(lines[0])
        assert alert["type"] == "wash_trade" and alert["account"] == "FAM-2"
        assert alert["symbol"] == "ACME"
        assert alert["details"]["counterparty"] == "FAM-1"
        assert alert["details"]["owner"] == "family" and alert["details"]["qty"] == 500
        sent = datetime.fromisoformat(alert["time"])
        assert abs((datetime.now(UTC) - sent).total_seconds()) < 30
        assert gateway.surveillance.alert_counts["wash_trade"] == 1
        assert [a.type for a in published] == ["wash_trade"]
        await one.close()
        await two.close()
    finally:
        await gateway.stop(drain_timeout=0.5)

    # The analyst's view: the same detectors over the stored journal.
    def surveil(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fix_gateway.cli", "surveil", "--config", str(config),
             *extra], cwd=REPO, capture_output=True, text=True, timeout=120)

    result = surveil()
    assert result.returncode == 0, result.stderr
    replayed = [json.loads(line) for line in result.stdout.splitlines()]
    assert replayed == [alert]
    numpy_run = surveil("--backend", "numpy")
    assert [json.loads(line) for line in numpy_run.stdout.splitlines()] == [alert]
    # Re-run with another beneficial-owner grouping: ALICE and BOB are one owner now.
    regrouped = surveil("--set", 'beneficial_owners={"couple": ["ALICE", "BOB"]}')
    assert regrouped.returncode == 0, regrouped.stderr
    [again] = [json.loads(line) for line in regrouped.stdout.splitlines()]
    assert (again["account"], again["details"]["counterparty"]) == ("BOB", "ALICE")
    assert again["details"]["owner"] == "couple" and again["details"]["qty"] == 100
    strict = surveil("--set", "spoofing.qty_ratio=0")
    assert strict.returncode == 2 and "spoofing.qty_ratio" in strict.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "fix_gateway.cli", "surveil", "--config", str(config),
         "--data-dir", str(tmp_path / "nowhere")], cwd=REPO, capture_output=True, text=True,
        timeout=60)
    assert missing.returncode == 1 and "no engine journal" in missing.stderr


@pytest.mark.socket
def test_surveillance_can_be_switched_off(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("interval = 0.1", "enabled = false"))
    assert Gateway(load_settings(config)).surveillance is None


async def test_alerts_reach_mqtt_and_metrics(tmp_path: Path) -> None:
    """With the MQTT feed on, an alert is published on fixgw/alerts/{type}; /metrics
    counts it under fixgw_surveillance_alerts_total."""
    import urllib.request

    import aiomqtt
    from prometheus_client.parser import text_string_to_metric_families

    from tests.mqtt_broker import Broker

    broker = Broker(tmp_path)
    config = write_config(tmp_path)
    config.write_text(config.read_text() + f"""
[metrics]
port = 0

[drop_copy.mqtt]
enabled = true
host = "127.0.0.1"
port = {broker.port}
""")
    gateway = Gateway(load_settings(config))
    await gateway.start()
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="alert-test") as sub:
            await sub.subscribe("fixgw/alerts/#", qos=1)
            one = await log_on(gateway.port, "CLIENT1")
            two = await log_on(gateway.port, "CLIENT2")
            await order(one, "S1", "2", 500, "10.00", "FAM-1")
            await order(two, "B1", "1", 500, "10.00", "FAM-2")
            message = await asyncio.wait_for(anext(aiter(sub.messages)), 20)
        assert str(message.topic) == "fixgw/alerts/wash_trade"
        alert = Alert.model_validate_json(bytes(message.payload))  # type: ignore[arg-type]
        assert (alert.account, alert.details["counterparty"]) == ("FAM-2", "FAM-1")

        assert gateway.metrics is not None and gateway.metrics.server.port is not None
        url = f"http://127.0.0.1:{gateway.metrics.server.port}/metrics"
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(url).read().decode())
        counts = {s.labels["type"]: s.value for f in text_string_to_metric_families(text)
                  if f.name == "fixgw_surveillance_alerts" for s in f.samples
                  if s.name.endswith("_total")}
        assert counts["wash_trade"] == 1
        await one.close()
        await two.close()
    finally:
        await gateway.stop(drain_timeout=0.5)
        broker.stop()
