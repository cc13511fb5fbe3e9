"""Consuming the MQTT feed: in order, exactly once, gaps found and filled.

`GapTracker` is the consumer's bookkeeping, without I/O: records are offered
in whatever order MQTT delivers them (a republished batch after a broker
outage, a replay answer); it hands them on in sequence order, each once, and
says which range is missing. `follow` is the asyncio loop around it that
`fixgw dropcopy tail` uses: subscribe, ask for a replay of any gap that stays
open, print records as they complete the sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable

import aiomqtt

from drop_copy.mqtt import make_client, replay_topic, status_topic
from drop_copy.record import DropCopyRecord
from fix_gateway.config import MqttSettings

GAP_PATIENCE = 0.5  # seconds a gap may stay open before a replay is requested


class GapTracker:
    def __init__(self, start: int = 1) -> None:
        self.next_seq = start  # the next sequence number to hand on
        self.duplicates = 0
        self.head = start - 1  # highest sequence number known to exist
        self._held: dict[int, DropCopyRecord] = {}

    def offer(self, record: DropCopyRecord) -> list[DropCopyRecord]:
        """Records now deliverable in order (possibly none)."""
        seq = record.seq
        self.head = max(self.head, seq)
        if seq < self.next_seq or seq in self._held:
            self.duplicates += 1
            return []
        self._held[seq] = record
        ready = []
        while self.next_seq in self._held:
            ready.append(self._held.pop(self.next_seq))
            self.next_seq += 1
        return ready

    def saw_head(self, head: int) -> None:
        self.head = max(self.head, head)

    def missing(self) -> tuple[int, int] | None:
        """The first missing range (from, to), if any."""
        if self.next_seq > self.head:
            return None
        upto = min(self._held) - 1 if self._held else self.head
        return self.next_seq, upto


async def follow(
    settings: MqttSettings,
    on_record: Callable[[DropCopyRecord], None],
    start: int = 1,
    topic: str | None = None,
    stop: asyncio.Event | None = None,
    tracker: GapTracker | None = None,
    subscribed: asyncio.Event | None = None,
) -> GapTracker:
    """Subscribe and hand records to `on_record` in order until `stop` is set;
    `subscribed` is set once the broker has acknowledged the subscriptions."""
    prefix = settings.topic_prefix
    tracker = tracker or GapTracker(start)
    stop = stop or asyncio.Event()
    # Outside `{prefix}/dropcopy/+/+`, so that no other consumer gets our replays.
    reply_to = f"{prefix}/dropcopy-replies/{uuid.uuid4().hex[:12]}"
    copies = topic or f"{prefix}/dropcopy/+/+"
    while not stop.is_set():
        try:
            async with make_client(settings, identifier=f"fixgw-tail-{uuid.uuid4().hex[:8]}") \
                    as client:
                for t in (copies, reply_to, status_topic(prefix)):
                    await client.subscribe(t, qos=1)
                if subscribed is not None:
                    subscribed.set()
                await _consume(client, tracker, on_record, reply_to, stop, prefix)
        except aiomqtt.MqttError:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
    return tracker


async def _consume(
    client: aiomqtt.Client, tracker: GapTracker, on_record: Callable[[DropCopyRecord], None],
    reply_to: str, stop: asyncio.Event, prefix: str,
) -> None:
    status = status_topic(prefix)
    gap_since: float | None = None
    loop = asyncio.get_running_loop()
    messages = aiter(client.messages)
    while not stop.is_set():
        try:
            message = await asyncio.wait_for(anext(messages), GAP_PATIENCE / 2)
        except TimeoutError:
            message = None
        if message is not None:
            payload = bytes(message.payload)
            if message.topic.matches(status):
                tracker.saw_head(int(json.loads(payload)["head"]))
            else:
                for record in tracker.offer(DropCopyRecord.model_validate_json(payload)):
                    on_record(record)
        gap = tracker.missing()
        if gap is None:
            gap_since = None
        elif gap_since is None:
            gap_since = loop.time()
        elif loop.time() - gap_since > GAP_PATIENCE:
            await client.publish(replay_topic(prefix), json.dumps(
                {"from": gap[0], "to": gap[1], "reply_to": reply_to}), qos=1)
            gap_since = loop.time()
