"""The MQTT drop-copy feed against a real broker over TCP.

Mosquitto when installed (`make test` installs it from Debian where it can),
else the embedded amqtt broker, both as subprocesses. Three order-entry
sessions trade thousands of executions; a subscriber must see every copy
exactly once in drop-copy sequence order, across a broker restart.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drop_copy.mqtt import ack_path
from drop_copy.record import DropCopyRecord, topic_for
from drop_copy.stream import StreamReader, stream_directory
from drop_copy.subscriber import GapTracker, follow
from fix_gateway.config import GatewaySettings, MqttSettings
from fix_gateway.server import Gateway
from fix_gateway.utc_time import format_timestamp
from tests.drop_copy_venue import CLIENTS, Peer, drop_copy_settings
from tests.mqtt_broker import REPO, Broker, free_port


def with_mqtt(data_dir: Path, **mqtt: object) -> GatewaySettings:
    base = drop_copy_settings(data_dir)
    return base.model_copy(update={"drop_copy": base.drop_copy.model_copy(update={
        "mqtt": MqttSettings.model_validate({"enabled": True, **mqtt})})})


@pytest.fixture
def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    b = Broker(tmp_path)
    yield b  # type: ignore[misc]
    b.stop()


def stream_entries(data_dir: Path) -> list[tuple[int, bytes]]:
    with StreamReader(stream_directory(data_dir)) as reader:
        return reader.read(1, 1_000_000)


async def heavy_trading(clients: list[Peer], rounds: int, tag: str = "") -> None:
    """Each round: CLIENT1 rests a bid, CLIENT2 sells into it, CLIENT3 adds and cancels."""
    one, two, three = clients
    for i in range(rounds):
        await one.order(f"{tag}B{i}", "buy", 10, "ACME", "10.00", account="ACC1")
        await two.order(f"{tag}S{i}", "sell", 10, "ACME", "10.00", account="ACC2")
        await three.order(f"{tag}R{i}", "sell", 5, "GLOBEX", "99.00")
        await three.send("F", (41, f"{tag}R{i}"), (11, f"{tag}C{i}"), (55, "GLOBEX"), (54, "2"),
                         (60, format_timestamp(time.time())))
    for _ in range(2):
        for peer in clients:
            await peer.sync(timeout=30)


async def collect_until(tracker: GapTracker, head: int, records: list[DropCopyRecord],
                        stop: asyncio.Event, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(records) < head:
        assert time.monotonic() < deadline, (
            f"subscriber has {len(records)} of {head}; missing {tracker.missing()}")
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # nothing more may arrive
    stop.set()


@pytest.mark.slow
async def test_every_copy_once_in_order_across_a_broker_restart(
    broker: Broker, tmp_path: Path,
) -> None:
    """The issue's acceptance run: three order-entry sessions trade; a FIX
    drop-copy session (which drops off mid-stream and recovers by
    ResendRequest) and an MQTT subscriber (whose broker restarts mid-stream)
    each end with every ExecutionReport exactly once, in drop-copy order."""
    data = tmp_path / "data"
    gw = Gateway(with_mqtt(data, host="127.0.0.1", port=broker.port, reconnect_max=0.5))
    await gw.start()
    records: list[DropCopyRecord] = []
    stop = asyncio.Event()
    tracker = GapTracker()
    settings = gw.settings.drop_copy.mqtt
    subscriber = asyncio.create_task(follow(settings, records.append, stop=stop, tracker=tracker))
    try:
        dc = await Peer.log_on(gw.port, "DC1")
        clients = [await Peer.log_on(gw.port, c) for c in CLIENTS]
        await asyncio.sleep(0.3)  # the subscriber is subscribed
        await heavy_trading(clients, 200)
        await dc.reports_until(500)  # it reads some, then drops off, the rest unread
        await dc.close()
        await asyncio.to_thread(broker.restart, 0.5)
        await heavy_trading(clients, 200, "again-")
        head = len(stream_entries(data))
        assert head == 2400  # 6 reports a round
        back = await Peer.log_on(gw.port, "DC1", dc.tcp.next_seq, dc.expected_in)
        await back.reports_until(head - len(dc.received), timeout=30)
        await back.sync()
        await collect_until(tracker, head, records, stop)
        await asyncio.wait_for(subscriber, 10)
    finally:
        stop.set()
        await gw.stop(drain_timeout=0.5)

    assert [r.seq for r in records] == list(range(1, head + 1))
    entries = stream_entries(data)
    copies = [(m.get(17), m.get(37)) for m in dc.received + back.received]
    assert copies == [(r.fields["ExecID"].encode(), r.fields["OrderID"].encode())
                      for r in records]
    assert back.resent > 0
    for record, (seq, raw) in zip(records, entries, strict=True):
        assert record.raw.encode("latin-1") == raw, seq
        assert record.fields["MsgType"] == "8"
        assert record.fields["ExecID"] and record.symbol in ("ACME", "GLOBEX")
        assert record.session == f"FIXGW-{record.target_comp_id}"
    # What every client received is in the feed, once.
    sent = sorted((m.get(17), m.get(37)) for c in clients for m in c.received
                  if m.msg_type == b"8")
    fed = sorted((r.fields["ExecID"].encode(), r.fields["OrderID"].encode()) for r in records)
    assert fed == sent
    assert int(ack_path(data).read_text()) == head


async def test_embedded_broker_and_tail_command(tmp_path: Path) -> None:
    """No broker configured: the gateway runs amqtt itself; `fixgw dropcopy tail` follows."""
    data = tmp_path / "data"
    port = free_port()
    gw = Gateway(with_mqtt(data, embedded_port=port))
    await gw.start()
    config = tmp_path / "tail.toml"
    config.write_text(f'[drop_copy.mqtt]\nenabled = true\nembedded_port = {port}\n')
    try:
        clients = [await Peer.log_on(gw.port, c) for c in CLIENTS]
        await heavy_trading(clients, 3)
        head = len(stream_entries(data))
        tail = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "fix_gateway.cli", "dropcopy", "tail", "--config", str(config),
            "--json", "--count", str(head), cwd=REPO, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(tail.communicate(), 60)
    finally:
        await gw.stop(drain_timeout=0.5)
    assert tail.returncode == 0, err
    lines = [DropCopyRecord.model_validate_json(line) for line in out.decode().splitlines()]
    assert [r.seq for r in lines] == list(range(1, head + 1))


async def test_replay_prints_and_publishes_from_a_sequence_number(
    broker: Broker, tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    gw = Gateway(drop_copy_settings(data))  # the stream only: no feed running
    await gw.start()
    try:
        clients = [await Peer.log_on(gw.port, c) for c in CLIENTS]
        await heavy_trading(clients, 5)
    finally:
        await gw.stop(drain_timeout=0.5)
    head = len(stream_entries(data))
    config = tmp_path / "replay.toml"
    config.write_text(f'[store]\ndata_dir = "{data}"\n')
    cli = [sys.executable, "-m", "fix_gateway.cli", "dropcopy", "replay", "--config", str(config)]
    printed = subprocess.run([*cli, "--from", "4"], cwd=REPO, capture_output=True, text=True,
                             timeout=60, check=True)
    records = [DropCopyRecord.model_validate_json(line) for line in printed.stdout.splitlines()]
    assert [r.seq for r in records] == list(range(4, head + 1))
    assert records[0].raw.encode("latin-1") == stream_entries(data)[3][1]

    received: list[DropCopyRecord] = []
    stop = asyncio.Event()
    settings = MqttSettings(enabled=True, host="127.0.0.1", port=broker.port)
    subscribed = asyncio.Event()
    listener = asyncio.create_task(
        follow(settings, received.append, start=head - 2, topic="fixgw/dropcopy/+/+", stop=stop,
               subscribed=subscribed))
    await asyncio.wait_for(subscribed.wait(), 20)  # what is published next reaches it
    published = await asyncio.create_subprocess_exec(
        *cli, "--from", str(head - 2), "--publish", "--broker", f"127.0.0.1:{broker.port}",
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = await asyncio.wait_for(published.communicate(), 60)
    assert published.returncode == 0, err
    deadline = time.monotonic() + 20
    while len(received) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(listener, 10)
    assert [r.seq for r in received] == [head - 2, head - 1, head]
    assert topic_for("fixgw", received[0]).startswith("fixgw/dropcopy/FIXGW-CLIENT")


@pytest.mark.unit
def test_gap_tracker_orders_dedups_and_names_gaps() -> None:
    def rec(seq: int) -> DropCopyRecord:
        return DropCopyRecord(seq=seq, session="A-B", sender_comp_id="A", target_comp_id="B",
                              symbol="S", account=None, msg_seq_num=seq, fields={}, raw="")

    t = GapTracker()
    assert [r.seq for r in t.offer(rec(1))] == [1]
    assert t.offer(rec(3)) == [] and t.missing() == (2, 2)
    assert t.offer(rec(1)) == [] and t.duplicates == 1
    assert [r.seq for r in t.offer(rec(2))] == [2, 3]
    assert t.missing() is None
    t.saw_head(6)  # the status topic says 6 exist: 4..6 are missing at the end
    assert t.missing() == (4, 6)
    assert t.offer(rec(5)) == [] and t.missing() == (4, 4)


@pytest.mark.unit
def test_record_schema_names_every_field() -> None:
    from fix_gateway.dictionary import Dictionary

    raw = (b"8=FIX.4.4\x019=99\x0135=8\x0134=7\x0149=FIXGW\x0152=20260101-00:00:00.000\x01"
           b"56=CLIENT1\x0137=1\x0111=A\x0117=5\x01150=0\x0139=0\x011=ACC\x0155=ACME\x01"
           b"54=1\x0138=10\x0140=2\x0144=1.5\x01151=10\x0114=0\x016=0\x0160=20260101-00:00:00"
           b".000\x0110=000\x01")
    record = DropCopyRecord.from_report(9, raw, Dictionary.load())
    assert (record.seq, record.session, record.symbol, record.account, record.msg_seq_num) == \
        (9, "FIXGW-CLIENT1", "ACME", "ACC", 7)
    assert record.fields["ExecType"] == "0" and record.fields["Price"] == "1.5"
    assert "BeginString" not in record.fields and "CheckSum" not in record.fields
    assert json.loads(record.model_dump_json())["raw"] == raw.decode()


async def test_drop_copy_lag_and_mqtt_state_in_metrics(broker: Broker, tmp_path: Path) -> None:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    data = tmp_path / "data"
    base = with_mqtt(data, host="127.0.0.1", port=broker.port)
    settings = base.model_copy(update={"metrics": base.metrics.model_copy(update={"port": 0})})
    gw = Gateway(settings)
    await gw.start()
    try:
        dc = await Peer.log_on(gw.port, "DC1")
        clients = [await Peer.log_on(gw.port, c) for c in CLIENTS]
        await heavy_trading(clients, 5)
        head = len(stream_entries(data))
        await dc.reports_until(head)
        assert gw.mqtt_feed is not None
        deadline = time.monotonic() + 20
        while gw.mqtt_feed.publisher.acked < head:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert gw.metrics is not None
        url = f"http://127.0.0.1:{gw.metrics.server.port}/metrics"
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(url).read().decode())
    finally:
        await gw.stop(drain_timeout=0.5)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    lag = {dict(k[1])["consumer"]: v for k, v in samples.items()
           if k[0] == "fixgw_drop_copy_lag_events"}
    # DC1 has everything; the others never logged on; the feed has published all.
    assert lag == {"FIXGW-DC1": 0, "FIXGW-DC2": head, "FIXGW-DC3": head,
                   "FIXGW-DCLIVE": head, "mqtt": 0}
    assert samples[("fixgw_mqtt_connected", (("broker", f"127.0.0.1:{broker.port}"),))] == 1


async def test_bad_replay_requests_do_not_stop_the_feed(broker: Broker, tmp_path: Path) -> None:
    import aiomqtt

    data = tmp_path / "data"
    gw = Gateway(with_mqtt(data, host="127.0.0.1", port=broker.port))
    await gw.start()
    records: list[DropCopyRecord] = []
    stop = asyncio.Event()
    tracker = GapTracker()
    subscriber = asyncio.create_task(
        follow(gw.settings.drop_copy.mqtt, records.append, stop=stop, tracker=tracker))
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="hostile") as bad:
            for payload in (b"not json", b'{"from": 1e400, "reply_to": "x"}',
                            b'{"from": 1, "reply_to": "#"}', b'{"from": 1, "reply_to": ""}',
                            b'{"from": 1}', b'{"from": 1, "reply_to": 7}'):
                await bad.publish("fixgw/dropcopy/replay", payload, qos=1)
        clients = [await Peer.log_on(gw.port, c) for c in CLIENTS]
        await heavy_trading(clients, 5)
        head = len(stream_entries(data))
        await collect_until(tracker, head, records, stop)
        await asyncio.wait_for(subscriber, 10)
        assert gw.mqtt_feed is not None and gw.mqtt_feed.connected
        # The replay service itself is still there: a good request is answered.
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="good") as good:
            await good.subscribe("test/replies", qos=1)
            await good.publish("fixgw/dropcopy/replay",
                               b'{"from": 2, "to": 3, "reply_to": "test/replies"}', qos=1)
            messages = aiter(good.messages)
            answers = [DropCopyRecord.model_validate_json(bytes(
                (await asyncio.wait_for(anext(messages), 10)).payload))  # type: ignore[arg-type]
                for _ in range(2)]
        assert [a.seq for a in answers] == [2, 3]
    finally:
        stop.set()
        await gw.stop(drain_timeout=0.5)
    assert [r.seq for r in records] == list(range(1, head + 1))
