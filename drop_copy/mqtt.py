"""The MQTT drop-copy feed: the stream, published in order with QoS 1, resumable.

`Publisher` follows the stream files (never the gateway's memory) and
publishes each entry as a `DropCopyRecord` JSON on
`{prefix}/dropcopy/{session}/{symbol}`. After each batch the broker has
acknowledged (PUBACK for every message), the last sequence number is written
to `<data_dir>/dropcopy/mqtt.ack`; after a broker outage, a publisher restart
or a gateway crash, publishing resumes from there, with a backoff between
reconnect attempts. A batch cut short by an outage is published again, so a
subscriber may see a sequence number twice, never a gap: it keeps the
highest seq seen and drops anything not above it.

Consumers find gaps by sequence number. The publisher keeps a retained
`{prefix}/dropcopy/status` message, {"head": N}, with the last sequence
number published, so a consumer also sees a gap at the end; and it answers
replay requests published on `{prefix}/dropcopy/replay` as JSON
{"from": N, "to": M, "reply_to": "some/topic"} by publishing entries N..M
(M optional: up to the head) on `reply_to`.

`MqttFeed` runs a publisher (and the embedded amqtt broker when no broker
host is configured) on a thread with its own event loop, so the order path's
loop never waits on the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import ssl
import threading
from collections import deque
from pathlib import Path
from typing import Any

import aiomqtt
import paho.mqtt.client as mqtt

from drop_copy.record import field_names, record_dict, topic_for
from drop_copy.stream import StreamReader, stream_directory
from fix_gateway.config import MqttSettings
from fix_gateway.dictionary import Dictionary

log = logging.getLogger("fixgw.mqtt")

BATCH = 500  # entries per publish_all round (replays), which waits for all its PUBACKs
WINDOW = 100  # unacknowledged copies in flight while following the stream
ACK_SAVE_INTERVAL = 0.05  # seconds between writes of mqtt.ack (and the status message)
POLL_INTERVAL = 0.01  # seconds between looks at the stream when idle
MAX_INFLIGHT = 100  # paho's window: as large as ours, so paho queues nothing
PUBACK_TIMEOUT = 5.0  # seconds: a broker that stops acknowledging is an outage
MAX_REPLAY = 100_000  # entries one replay request may ask for


def ack_path(data_dir: Path) -> Path:
    return data_dir / "dropcopy" / "mqtt.ack"


def status_topic(prefix: str) -> str:
    return f"{prefix}/dropcopy/status"


def replay_topic(prefix: str) -> str:
    return f"{prefix}/dropcopy/replay"


def broker_address(settings: MqttSettings) -> tuple[str, int]:
    if settings.host:
        return settings.host, settings.port
    return settings.embedded_host, settings.embedded_port


def make_client(settings: MqttSettings, identifier: str | None = None) -> aiomqtt.Client:
    host, port = broker_address(settings)
    tls = None
    if settings.tls:
        tls = ssl.create_default_context(
            cafile=str(settings.ca_file) if settings.ca_file else None)
    client = aiomqtt.Client(
        host, port,
        identifier=identifier or settings.client_id,
        username=settings.username,
        password=settings.password,
        keepalive=settings.keepalive,
        tls_context=tls,
        max_inflight_messages=MAX_INFLIGHT,
        # Many small packets in a row: without TCP_NODELAY Nagle's algorithm holds
        # them until the broker's (delayed) ACK, tens of ms per batch.
        socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        timeout=PUBACK_TIMEOUT,
    )
    # A batch is BATCH publishes in flight at once, by design: not worth a warning.
    client.pending_calls_threshold = BATCH + 10
    return client


class Publisher:
    def __init__(self, settings: MqttSettings, data_dir: Path, dictionary: Dictionary) -> None:
        self.settings = settings
        self.names = field_names(dictionary)
        self.stream_dir = stream_directory(data_dir)
        self.ack_file = ack_path(data_dir)
        self.acked = self._load_ack()  # last seq the broker acknowledged
        self.connected = False
        self.client: aiomqtt.Client | None = None  # while connected

    def _load_ack(self) -> int:
        try:
            return int(self.ack_file.read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError:
            log.warning("event=mqtt_ack_unreadable path=%s resume_from=1", self.ack_file)
            return 0

    def _save_ack(self) -> None:
        tmp = self.ack_file.with_suffix(".tmp")
        tmp.write_text(f"{self.acked}\n")
        os.replace(tmp, self.ack_file)

    def records(self, entries: list[tuple[int, bytes]]) -> list[tuple[str, str]]:
        """(topic, JSON payload) per stream entry."""
        prefix = self.settings.topic_prefix
        out = []
        for seq, raw in entries:
            record = record_dict(seq, raw, self.names)
            out.append((topic_for(prefix, record), json.dumps(record, separators=(",", ":"))))
        return out

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set, reconnecting with backoff after failures."""
        backoff = 0.2
        host, port = broker_address(self.settings)
        while not stop.is_set():
            try:
                async with make_client(self.settings) as client:
                    self.connected = True
                    self.client = client
                    backoff = 0.2
                    log.info("event=mqtt_connected broker=%s:%d resume_from=%d", host, port,
                             self.acked + 1)
                    await client.subscribe(replay_topic(self.settings.topic_prefix), qos=1)
                    replays = asyncio.create_task(self._serve_replays(client))
                    try:
                        await self._publish_until(client, stop)
                    finally:
                        replays.cancel()
                        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                            await replays
            except aiomqtt.MqttError as exc:
                log.warning("event=mqtt_disconnected broker=%s:%d error=%r retry_in=%.1f",
                            host, port, str(exc), backoff)
            except Exception as exc:  # the stream not there yet, a bad entry: retry, never die
                log.error("event=mqtt_feed_error error=%r retry_in=%.1f", exc, backoff)
            finally:
                self.connected = False
                self.client = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, self.settings.reconnect_max)

    async def _publish_until(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        """Stream entries out with at most WINDOW unacknowledged, in order.

        PUBACKs come back in order; the acknowledged prefix advances `acked`,
        which is saved (with the retained status) at most every ACK_SAVE_INTERVAL.
        """
        paho = client._client
        loop = asyncio.get_running_loop()
        inflight: deque[tuple[int, float, mqtt.MQTTMessageInfo]] = deque()
        next_seq = self.acked + 1
        saved = self.acked
        saved_at = loop.time()
        pause = 0.0005
        with StreamReader(self.stream_dir) as reader:
            if self.acked > reader.head():  # the stream lost a tail the OS had not written
                log.warning("event=mqtt_ack_beyond_stream acked=%d head=%d", self.acked,
                            reader.head())
                self.acked = reader.head()
                next_seq, saved = self.acked + 1, self.acked
            while not stop.is_set():
                now = loop.time()
                while inflight and inflight[0][2].is_published():
                    self.acked = inflight.popleft()[0]
                if inflight and now - inflight[0][1] > PUBACK_TIMEOUT:
                    raise aiomqtt.MqttError("timed out waiting for PUBACKs")
                if self.acked != saved and (not inflight or now - saved_at > ACK_SAVE_INTERVAL):
                    self._save_ack()
                    paho.publish(status_topic(self.settings.topic_prefix),
                                 json.dumps({"head": self.acked}), qos=1, retain=True)
                    saved, saved_at = self.acked, now
                entries = reader.read(next_seq, WINDOW - len(inflight)) \
                    if len(inflight) < WINDOW else []
                for (seq, _), (topic, payload) in zip(entries, self.records(entries),
                                                      strict=True):
                    info = paho.publish(topic, payload, qos=1)
                    if info.rc != mqtt.MQTT_ERR_SUCCESS:
                        raise aiomqtt.MqttError(f"publish failed: {mqtt.error_string(info.rc)}")
                    inflight.append((seq, now, info))
                    next_seq = seq + 1
                if entries:
                    pause = 0.0005
                    await asyncio.sleep(0)
                elif inflight:  # waiting for PUBACKs
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 0.005)
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), POLL_INTERVAL)

    async def _serve_replays(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            try:
                begin, end, reply_to = self._replay_request(bytes(message.payload))
            except (ValueError, KeyError, TypeError, OverflowError) as exc:
                log.warning("event=mqtt_bad_replay_request error=%r", str(exc))
                continue
            log.info("event=mqtt_replay from=%d to=%d reply_to=%s", begin, end, reply_to)
            with StreamReader(self.stream_dir) as reader:
                while begin <= end:
                    entries = reader.read(begin, min(BATCH, end - begin + 1))
                    if not entries:
                        break
                    records = [(reply_to, payload) for _, payload in self.records(entries)]
                    await publish_all(client, records)
                    begin = entries[-1][0] + 1

    def _replay_request(self, payload: bytes) -> tuple[int, int, str]:
        """(from, to, reply_to) of a replay request; ValueError when it is not one."""
        request = json.loads(payload)
        begin = max(1, int(request["from"]))
        end = min(int(request.get("to") or self.acked), self.acked, begin + MAX_REPLAY - 1)
        reply_to = request["reply_to"]
        if not isinstance(reply_to, str) or not 0 < len(reply_to) <= 200 \
                or "+" in reply_to or "#" in reply_to:
            raise ValueError(f"reply_to must be a topic name without wildcards: {reply_to!r}")
        return begin, end, reply_to


async def publish_all(client: aiomqtt.Client, messages: list[tuple[str, str]],
                      timeout: float = PUBACK_TIMEOUT) -> None:
    """Publish in order with QoS 1 and wait for every PUBACK.

    The messages go straight to aiomqtt's underlying paho client, in order:
    aiomqtt's own `publish` keeps a future per message and checks its pending
    calls in O(n) per call, which made a batch cost O(n^2) (~200 us of CPU per
    message at 500 in flight). paho queues what exceeds its in-flight window
    and keeps the order; we wait until the broker has acknowledged them all.
    """
    paho = client._client
    infos = []
    for topic, payload in messages:
        info = paho.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise aiomqtt.MqttError(f"publish failed: {mqtt.error_string(info.rc)}")
        infos.append(info)
    deadline = asyncio.get_running_loop().time() + timeout
    pause = 0.0005
    for info in infos:  # PUBACKs come in order: wait for each in turn
        while not info.is_published():
            if asyncio.get_running_loop().time() > deadline:
                raise aiomqtt.MqttError("timed out waiting for PUBACKs")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.01)


async def start_embedded_broker(host: str, port: int) -> Any:
    """An amqtt broker on this event loop, for a newcomer's `make run`."""
    from amqtt.broker import Broker

    for noisy in ("amqtt", "transitions"):  # the broker and its state machines
        logging.getLogger(noisy).setLevel(logging.WARNING)
    broker = Broker({
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                    {"allow_anonymous": True}},
    })
    await broker.start()
    log.info("event=embedded_broker_started address=%s:%d", host, port)
    return broker


class MqttFeed:
    """A publisher (and the embedded broker, if configured) on its own thread."""

    def __init__(self, settings: MqttSettings, data_dir: Path, dictionary: Dictionary) -> None:
        self.settings = settings
        self.publisher = Publisher(settings, data_dir, dictionary)
        self._thread = threading.Thread(target=self._run, name="fixgw-mqtt", daemon=True)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    @property
    def connected(self) -> bool:
        return self.publisher.connected

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main())
        except Exception:  # the feed must never take the gateway down with it
            log.exception("event=mqtt_feed_failed")
        finally:
            loop.close()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        broker = None
        try:
            if not self.settings.host:
                broker = await start_embedded_broker(self.settings.embedded_host,
                                                     self.settings.embedded_port)
        finally:
            self._ready.set()
        try:
            await self.publisher.run(self._stop)
        finally:
            if broker is not None:
                await broker.shutdown()

    def publish_soon(self, topic: str, payload: str) -> None:
        """Publish one message (QoS 1) from any thread, if the broker is connected now.

        For best-effort extras such as surveillance alerts (which are kept in
        their own file): not part of the sequenced, recoverable drop-copy stream.
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        async def publish() -> None:
            client = self.publisher.client
            if client is not None:
                with contextlib.suppress(aiomqtt.MqttError):
                    await client.publish(topic, payload, qos=1)

        with contextlib.suppress(RuntimeError):  # the loop has just stopped
            loop.call_soon_threadsafe(lambda: loop.create_task(publish()))

    def stop(self, timeout: float = 5.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop already finished
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
